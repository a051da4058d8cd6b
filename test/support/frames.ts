/**
 * Camera frames composed at test time from ORL faces (never committed): a face scaled ×2
 * on a larger grey background, as a door camera would see it, written as JPEG files a
 * `directory` camera replays in name order.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { sharedPaths } from './shared.js';

export const FRAME_WIDTH = 480;
export const FRAME_HEIGHT = 360;

const cache = new Map<string, Buffer>();

/** A frame with ORL `person`'s image `n` (validation images are 9 and 10), or an empty scene for null. */
export async function composedFrame(person: string | null, n = 9): Promise<Buffer> {
  const key = `${person ?? '-'}/${n}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const scene = sharp({
    create: { width: FRAME_WIDTH, height: FRAME_HEIGHT, channels: 3, background: { r: 120, g: 120, b: 120 } },
  });
  let out: Buffer;
  if (person) {
    const split = n >= 9 ? 'validation' : 'train';
    const face = await sharp(path.join(sharedPaths.orl, split, person, `${n}.png`))
      .resize(184, 224)
      .toColourspace('srgb')
      .toBuffer();
    out = await scene
      .composite([{ input: face, left: FRAME_WIDTH / 2 - 92, top: FRAME_HEIGHT / 2 - 112 }])
      .jpeg({ quality: 90 })
      .toBuffer();
  } else {
    out = await scene.jpeg({ quality: 90 }).toBuffer();
  }
  cache.set(key, out);
  return out;
}

/** Writes a scene script to `dir`: [person or null, frames] pairs → 0001.jpg, 0002.jpg, … Returns the frame count. */
export async function writeScenes(dir: string, scenes: readonly (readonly [string | null, number])[]): Promise<number> {
  mkdirSync(dir, { recursive: true });
  let i = 0;
  for (const [person, count] of scenes) {
    for (let k = 0; k < count; k++) {
      i++;
      writeFileSync(path.join(dir, `${String(i).padStart(4, '0')}.jpg`), await composedFrame(person, 9 + (k % 2)));
    }
  }
  return i;
}

/**
 * Writes `frames` as 0001.jpg, 0002.jpg, … into `dir`, each through a temporary file renamed
 * over the old one, so a `directory` camera replaying `dir` never sees a missing or half-written
 * file: rewriting a folder of the same length changes what the camera shows mid-run.
 */
export function writeFrameFiles(dir: string, frames: readonly Buffer[]): void {
  mkdirSync(dir, { recursive: true });
  frames.forEach((jpeg, i) => {
    const file = path.join(dir, `${String(i + 1).padStart(4, '0')}.jpg`);
    writeFileSync(`${file}.tmp`, jpeg);
    renameSync(`${file}.tmp`, file);
  });
}
