/**
 * Keras ImageDataGenerator's random affine transform as pure functions, with the
 * tutorial's parameters as defaults: rotation 20°, width and height shift 0.2,
 * horizontal flip, `fill_mode='nearest'`, bilinear interpolation (Keras's
 * `interpolation_order=1`).
 *
 * Follows keras_preprocessing/image/image_data_generator.py (`get_random_transform`,
 * `apply_transform`) and affine_transformations.py (`apply_affine_transform`,
 * `transform_matrix_offset_center`): the matrix maps output (row, col) to input
 * (row, col) around the image centre; the flip is applied after the affine warp.
 */
import { z } from 'zod';
import type { RgbImage } from '../shared/image.js';
import { uniform, type Rng } from './rng.js';

export const augmentConfigSchema = z
  .object({
    rotationRange: z.number().min(0).max(180).default(20).describe('degrees; angle drawn uniformly in ±range'),
    widthShiftRange: z.number().min(0).max(1).default(0.2).describe('fraction of the width; shift drawn in ±range'),
    heightShiftRange: z.number().min(0).max(1).default(0.2).describe('fraction of the height; shift drawn in ±range'),
    horizontalFlip: z.boolean().default(true).describe('flip left-right with probability 0.5'),
  })
  .strict();
export type AugmentConfig = z.infer<typeof augmentConfigSchema>;

/** The tutorial's parameters. */
export const TUTORIAL_AUGMENTATION: AugmentConfig = augmentConfigSchema.parse({});

/** One drawn transform: what Keras's `get_random_transform` returns (the parts we use). */
export interface TransformParams {
  /** Rotation in degrees (positive = counter-clockwise, as scipy/Keras). */
  readonly theta: number;
  /** Shift along rows (height axis), in pixels. */
  readonly tx: number;
  /** Shift along columns (width axis), in pixels. */
  readonly ty: number;
  readonly flipHorizontal: boolean;
}

export const IDENTITY_TRANSFORM: TransformParams = { theta: 0, tx: 0, ty: 0, flipHorizontal: false };

/** Draws parameters in Keras's order (theta, tx, ty, flip) for an image of height×width. */
export function randomTransform(rng: Rng, config: AugmentConfig, height: number, width: number): TransformParams {
  const theta = config.rotationRange > 0 ? uniform(rng, -config.rotationRange, config.rotationRange) : 0;
  // Keras: tx from height_shift_range times the row count, ty from width_shift_range times the column count.
  const tx = config.heightShiftRange > 0 ? uniform(rng, -config.heightShiftRange, config.heightShiftRange) * height : 0;
  const ty = config.widthShiftRange > 0 ? uniform(rng, -config.widthShiftRange, config.widthShiftRange) * width : 0;
  const flipHorizontal = config.horizontalFlip ? rng() < 0.5 : false;
  return { theta, tx, ty, flipHorizontal };
}

/**
 * Applies a transform; returns a new image of the same size. Nearest fill: coordinates
 * outside the source are clamped to the edge (scipy `mode='nearest'`).
 */
export function applyTransform(image: RgbImage, p: TransformParams): RgbImage {
  const { width: w, height: h, data: src } = image;
  const out = new Uint8Array(w * h * 3);
  const rad = (p.theta * Math.PI) / 180;
  const c = Math.cos(rad);
  const s = Math.sin(rad);
  // M = R · T (rotation then shift, as Keras composes them), then centred:
  // M' = Offset(o) · M · Offset(-o) with o = (h/2 + 0.5, w/2 + 0.5): Keras's
  // transform_matrix_offset_center uses +0.5 (not the pixel centre); we follow it.
  // R = [[c, -s], [s, c]], T = translation by (tx, ty)  =>  M·[r, col, 1] = R·[r + tx, col + ty].
  const or = h / 2 + 0.5;
  const oc = w / 2 + 0.5;
  for (let r = 0; r < h; r++) {
    for (let col = 0; col < w; col++) {
      const outCol = p.flipHorizontal ? w - 1 - col : col;
      const rr = r - or + p.tx;
      const cc = col - oc + p.ty;
      const sr = c * rr - s * cc + or;
      const sc = s * rr + c * cc + oc;
      // bilinear with edge clamping (nearest fill)
      const r0f = Math.floor(sr);
      const c0f = Math.floor(sc);
      const fr = sr - r0f;
      const fc = sc - c0f;
      const r0 = clamp(r0f, 0, h - 1);
      const r1 = clamp(r0f + 1, 0, h - 1);
      const c0 = clamp(c0f, 0, w - 1);
      const c1 = clamp(c0f + 1, 0, w - 1);
      const o = (r * w + outCol) * 3;
      for (let ch = 0; ch < 3; ch++) {
        const v00 = src[(r0 * w + c0) * 3 + ch] ?? 0;
        const v01 = src[(r0 * w + c1) * 3 + ch] ?? 0;
        const v10 = src[(r1 * w + c0) * 3 + ch] ?? 0;
        const v11 = src[(r1 * w + c1) * 3 + ch] ?? 0;
        const v = (1 - fr) * ((1 - fc) * v00 + fc * v01) + fr * ((1 - fc) * v10 + fc * v11);
        out[o + ch] = (v + 0.5) | 0; // Math.round for v ≥ 0, several times faster in this loop
      }
    }
  }
  return { data: out, width: w, height: h };
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/** Draws a transform and applies it. */
export function augment(
  image: RgbImage,
  rng: Rng,
  config: AugmentConfig = TUTORIAL_AUGMENTATION,
): { image: RgbImage; params: TransformParams } {
  const params = randomTransform(rng, config, image.height, image.width);
  return { image: applyTransform(image, params), params };
}
