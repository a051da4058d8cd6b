/**
 * Quality gate measures: sharpness as the variance of the Laplacian (Pech-Pacheco et al.,
 * "Diatom autofocusing in brightfield microscopy", 2000), on the luma of a face crop.
 */
import type { RgbImage } from '../shared/image.js';

/** ITU-R BT.601 luma, one value a pixel. */
export function luma(img: RgbImage, into?: Float32Array): Float32Array {
  const n = img.width * img.height;
  const y = into && into.length >= n ? into.subarray(0, n) : new Float32Array(n);
  const d = img.data;
  for (let i = 0, j = 0; i < n; i++, j += 3) y[i] = 0.299 * d[j]! + 0.587 * d[j + 1]! + 0.114 * d[j + 2]!;
  return y;
}

/** Variance of the 4-neighbour Laplacian over the interior pixels of a grey image. */
export function laplacianVariance(grey: Float32Array, width: number, height: number): number {
  if (width < 3 || height < 3) return 0;
  let sum = 0;
  let sumSq = 0;
  let n = 0;
  for (let y = 1; y < height - 1; y++) {
    for (let i = y * width + 1, end = y * width + width - 1; i < end; i++) {
      const l = grey[i - 1]! + grey[i + 1]! + grey[i - width]! + grey[i + width]! - 4 * grey[i]!;
      sum += l;
      sumSq += l * l;
      n++;
    }
  }
  const mean = sum / n;
  return Math.max(0, sumSq / n - mean * mean);
}

/** Luma scratch reused across calls (one face crop at a time; the pipeline is single-threaded JS). */
let lumaScratch = new Float32Array(0);

export function sharpness(img: RgbImage): number {
  const n = img.width * img.height;
  if (lumaScratch.length < n) lumaScratch = new Float32Array(n);
  return laplacianVariance(luma(img, lumaScratch), img.width, img.height);
}

export interface QualityThresholds {
  /** Smallest face (longer box side, frame pixels) that is matched. */
  readonly minFaceSize: number;
  /** Smallest Laplacian variance of the aligned crop that is matched. */
  readonly minSharpness: number;
}

export type QualityVerdict =
  { readonly ok: true } | { readonly ok: false; readonly reason: 'too-small' | 'too-blurred' };

/** Pure gate: too small first (cheaper, and a tiny face is also blurred once upscaled). */
export function qualityVerdict(faceSize: number, cropSharpness: number, t: QualityThresholds): QualityVerdict {
  if (faceSize < t.minFaceSize) return { ok: false, reason: 'too-small' };
  if (cropSharpness < t.minSharpness) return { ok: false, reason: 'too-blurred' };
  return { ok: true };
}
