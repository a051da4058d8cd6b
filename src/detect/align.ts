/**
 * Crop and align: a square crop with margin around a face, rotated so that the eyes are level,
 * sampled straight to the model's input size. Pure functions (no sharp): one bilinear pass does
 * crop, rotation and resize, so the device and training get bit-identical crops.
 */
import type { RgbImage } from '../shared/image.js';
import type { Box, Point } from '../shared/messages.js';

/** Where to cut: centre and side of the square in frame pixels, rotation in radians. */
export interface CropSquare {
  readonly cx: number;
  readonly cy: number;
  readonly side: number;
  /** Angle of the eye line (image x axis towards y axis); the crop is rotated by −angle. */
  readonly angle: number;
}

/** Output pixel (u, v) → source (x, y): x = a·u + b·v + c, y = d·u + e·v + f (pixel centres at .5). */
export interface Affine {
  readonly a: number;
  readonly b: number;
  readonly c: number;
  readonly d: number;
  readonly e: number;
  readonly f: number;
}

export interface AlignOptions {
  /** Side of the square crop as a multiple of the face box's longer side. */
  readonly margin: number;
  /** Level the eyes when the detector gave keypoints. */
  readonly rotate: boolean;
  /** Largest rotation applied, radians; beyond it the keypoints are likely wrong. */
  readonly maxAngle?: number;
}

/**
 * The angle of the line between the eyes (BlazeFace keypoints 0 and 1), taken from the
 * eye on the image's left to the one on its right; 0 for a level face.
 */
export function eyeAngle(keypoints: readonly Point[]): number | null {
  const p = keypoints[0];
  const q = keypoints[1];
  if (!p || !q) return null;
  const [l, r] = p.x <= q.x ? [p, q] : [q, p];
  return Math.atan2(r.y - l.y, r.x - l.x);
}

/** The square to cut for a face: centred on the box, side = margin × longer side. */
export function cropSquare(box: Box, keypoints: readonly Point[], options: AlignOptions): CropSquare {
  let angle = options.rotate ? (eyeAngle(keypoints) ?? 0) : 0;
  const maxAngle = options.maxAngle ?? Math.PI / 4;
  if (Math.abs(angle) > maxAngle) angle = 0;
  return {
    cx: box.x + box.width / 2,
    cy: box.y + box.height / 2,
    side: Math.max(box.width, box.height) * options.margin,
    angle,
  };
}

/** The affine map from an `size`×`size` output to the frame for a crop square. */
export function alignmentTransform(sq: CropSquare, size: number): Affine {
  const s = sq.side / size;
  const cos = Math.cos(sq.angle);
  const sin = Math.sin(sq.angle);
  // Source = centre + R(angle)·s·(u + 0.5 − size/2, v + 0.5 − size/2), in pixel-centre coordinates
  // (minus 0.5 to index arrays).
  const h = size / 2 - 0.5;
  return {
    a: s * cos,
    b: -s * sin,
    c: sq.cx - 0.5 - s * (cos * h - sin * h),
    d: s * sin,
    e: s * cos,
    f: sq.cy - 0.5 - s * (sin * h + cos * h),
  };
}

/** Applies an affine map to a point (output → source). */
export function applyAffine(m: Affine, u: number, v: number): Point {
  return { x: m.a * u + m.b * v + m.c, y: m.d * u + m.e * v + m.f };
}

/**
 * Samples an RGB image through `m` into a `width`×`height` image, bilinear, clamping at the
 * edges (a face at the border gets its border pixels repeated rather than black bars).
 * When the map shrinks by more than 2×, it averages a 2×2 / 3×3 … grid of bilinear samples
 * per output pixel so that large faces are not aliased.
 */
export function warpAffine(src: RgbImage, m: Affine, width: number, height: number): RgbImage {
  const out = new Uint8Array(width * height * 3);
  const scale = Math.hypot(m.a, m.d);
  const n = Math.max(1, Math.min(4, Math.floor(scale)));
  const { data, width: W, height: H } = src;
  const k = n * n;
  const maxX = W - 1;
  const maxY = H - 1;
  // Hot loop (runs for every frame): plain indexing, no closures or allocations.
  for (let v = 0; v < height; v++) {
    for (let u = 0; u < width; u++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let sy = 0; sy < n; sy++) {
        const vv = v + (sy + 0.5) / n - 0.5;
        for (let sx = 0; sx < n; sx++) {
          const uu = u + (sx + 0.5) / n - 0.5;
          let x = m.a * uu + m.b * vv + m.c;
          let y = m.d * uu + m.e * vv + m.f;
          x = x < 0 ? 0 : x > maxX ? maxX : x;
          y = y < 0 ? 0 : y > maxY ? maxY : y;
          const x0 = x | 0;
          const y0 = y | 0;
          const x1 = x0 < maxX ? x0 + 1 : maxX;
          const y1 = y0 < maxY ? y0 + 1 : maxY;
          const fx = x - x0;
          const fy = y - y0;
          const w00 = (1 - fx) * (1 - fy);
          const w01 = fx * (1 - fy);
          const w10 = (1 - fx) * fy;
          const w11 = fx * fy;
          const i00 = (y0 * W + x0) * 3;
          const i01 = (y0 * W + x1) * 3;
          const i10 = (y1 * W + x0) * 3;
          const i11 = (y1 * W + x1) * 3;
          r += data[i00]! * w00 + data[i01]! * w01 + data[i10]! * w10 + data[i11]! * w11;
          g += data[i00 + 1]! * w00 + data[i01 + 1]! * w01 + data[i10 + 1]! * w10 + data[i11 + 1]! * w11;
          b += data[i00 + 2]! * w00 + data[i01 + 2]! * w01 + data[i10 + 2]! * w10 + data[i11 + 2]! * w11;
        }
      }
      const o = (v * width + u) * 3;
      out[o] = Math.round(r / k);
      out[o + 1] = Math.round(g / k);
      out[o + 2] = Math.round(b / k);
    }
  }
  return { data: out, width, height };
}

/** Crop, level and resize one face to `size`×`size`. */
export function alignFace(
  src: RgbImage,
  box: Box,
  keypoints: readonly Point[],
  size: number,
  options: AlignOptions,
): RgbImage {
  return warpAffine(src, alignmentTransform(cropSquare(box, keypoints, options), size), size, size);
}
