/**
 * The ORL 8 + 2 split from ../shared, decoded to 224×224 RGB with class indices
 * (s1 … s40 → 0 … 39, in numeric order).
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { decodeRgb, listImages, type RgbImage } from '../../src/shared/image.js';
import { sharedPaths } from './shared.js';

export interface LabelledImages {
  readonly images: RgbImage[];
  readonly labels: number[];
  readonly classes: string[];
}

export async function orlSplit(
  split: 'train' | 'validation',
  size = 224,
  perClass = Infinity,
): Promise<LabelledImages> {
  const root = path.join(sharedPaths.orl, split);
  const classes = (await readdir(root))
    .filter((d) => /^s\d+$/.test(d))
    .sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)));
  const images: RgbImage[] = [];
  const labels: number[] = [];
  for (const [label, c] of classes.entries()) {
    const files = (await listImages(path.join(root, c))).slice(0, perClass);
    for (const f of files) {
      images.push(await decodeRgb(f, { width: size, height: size }));
      labels.push(label);
    }
  }
  return { images, labels, classes };
}
