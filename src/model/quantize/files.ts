/**
 * File-level helpers of `facegate quantize`: calibration images from a folder tree,
 * the default output path.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { DataError } from '../../shared/errors.js';
import { decodeRgb, isImageFile, type RgbImage } from '../../shared/image.js';
import { spread } from './io.js';

/** Image files under `dir`, recursively, in a stable (sorted) order. */
async function listImagesRecursive(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true, recursive: true });
  } catch (err) {
    throw new DataError(`cannot read calibration folder ${dir}: ${(err as Error).message}`, { cause: err });
  }
  return entries
    .filter((e) => e.isFile() && isImageFile(e.name))
    .map((e) => path.join(e.parentPath, e.name))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export interface CalibrationSet {
  readonly images: RgbImage[];
  readonly files: string[];
  /** Every image file found under the folder, sorted. */
  readonly all: string[];
  /** Files that failed to decode (corrupt, truncated, not an image), skipped. */
  readonly skipped: string[];
}

/**
 * Up to `samples` images spread evenly over the sorted tree (so every person's folder
 * is represented), decoded and resized to the model's input. A corrupt file is skipped
 * and counted, and the next file takes its place.
 */
export async function loadCalibration(
  dir: string,
  samples: number,
  size: { width: number; height: number },
): Promise<CalibrationSet> {
  const all = await listImagesRecursive(dir);
  if (all.length === 0) {
    throw new DataError(
      `no images (${['.jpg', '.png', '.gif', '.webp'].join(', ')}) under ${dir}: give the folder of training face crops`,
    );
  }
  const chosen = spread(all, samples);
  const spare = all.filter((f) => !chosen.includes(f));
  const images: RgbImage[] = [];
  const files: string[] = [];
  const skipped: string[] = [];
  const queue = [...chosen];
  while (images.length < samples && (queue.length > 0 || spare.length > 0)) {
    const f = (queue.length > 0 ? queue.shift() : spare.shift()) as string;
    try {
      images.push(await decodeRgb(f, size));
      files.push(f);
    } catch {
      skipped.push(f);
    }
  }
  if (images.length === 0)
    throw new DataError(`none of the ${all.length} images under ${dir} could be decoded (all corrupt?)`);
  return { images, files, all, skipped };
}

/** `x.onnx` → `x.int8.onnx` beside it (so `model.onnx` → `model.int8.onnx`). */
export function defaultOutputPath(model: string): string {
  const dir = path.dirname(model);
  const base = path.basename(model).replace(/\.onnx$/i, '');
  return path.join(dir, `${base}.int8.onnx`);
}
