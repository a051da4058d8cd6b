/**
 * The checks every enrolment photo passes, whatever the path (CLI, camera, HTTP): one face,
 * big enough, facing the camera, lit, sharp. Pure functions over a decoded image and the
 * detector's faces; each refusal says what to do.
 */
import { faceTransform, warpAffine, type FaceAlignment } from '../detect/align.js';
import { luma, sharpness } from '../detect/quality.js';
import { FacegateError } from '../shared/errors.js';
import type { RgbImage } from '../shared/image.js';
import type { Box, Face, Point } from '../shared/messages.js';
import type { EnrolChecks } from './config.js';

export type RefusalCode =
  'no-face' | 'several-faces' | 'too-small' | 'blurred' | 'turned' | 'too-dark' | 'too-few' | 'duplicate' | 'bad-image';

/** An enrolment (or one of its photos) refused; the message says what to do. */
export class EnrolmentRefused extends FacegateError {
  constructor(
    readonly code: RefusalCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * How far the face is turned sideways: the nose's offset from the middle of the eyes along
 * the eye line, as a fraction of the eye distance (0 facing the camera; about 0.5 and more
 * when turned so that one eye starts to hide). null without the three keypoints.
 */
export function yawRatio(keypoints: readonly Point[]): number | null {
  const [r, l, n] = keypoints;
  if (!r || !l || !n) return null;
  const ux = l.x - r.x;
  const uy = l.y - r.y;
  const d2 = ux * ux + uy * uy;
  if (d2 === 0) return null;
  return ((n.x - (r.x + l.x) / 2) * ux + (n.y - (r.y + l.y) / 2) * uy) / d2;
}

export function meanBrightness(img: RgbImage): number {
  const y = luma(img);
  let s = 0;
  for (const v of y) s += v;
  return y.length ? s / y.length : 0;
}

export interface AcceptedFace {
  readonly face: Face;
  /** Aligned crop at the descriptor's input size. */
  readonly crop: RgbImage;
  readonly quality: {
    readonly size: number;
    readonly sharpness: number;
    readonly yaw: number;
    readonly brightness: number;
  };
}

const faceSize = (f: Face): number => Math.max(f.box.width, f.box.height);

/** Intersection of two boxes over the area of the smaller one (1: one lies inside the other). */
export function overlap(a: Box, b: Box): number {
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  if (w <= 0 || h <= 0) return 0;
  return (w * h) / Math.min(a.width * a.height, b.width * b.height);
}

/** Checks one photo's faces; the accepted face with its aligned crop, or the refusal. */
export function assessFace(
  img: RgbImage,
  faces: readonly Face[],
  checks: EnrolChecks,
  crop: { readonly settings: FaceAlignment; readonly size: number },
): AcceptedFace | EnrolmentRefused {
  if (faces.length === 0)
    return new EnrolmentRefused(
      'no-face',
      'no face found: use a photo where the face is clearly visible, front-on, not cut off by the edge',
    );
  const largest = faces.reduce((a, b) => (faceSize(b) > faceSize(a) ? b : a));
  // A much smaller face far behind is background, a box mostly inside the largest one is the same
  // face found twice; another face of similar size is a second person.
  const big = faces.filter(
    (f) =>
      f === largest ||
      (faceSize(f) >= Math.max(checks.minFaceSize / 2, faceSize(largest) * 0.5) && overlap(f.box, largest.box) < 0.5),
  );
  if (big.length > 1)
    return new EnrolmentRefused(
      'several-faces',
      `${big.length} faces found: use a photo of this person alone (or crop it to their face)`,
    );
  const size = faceSize(largest);
  if (size < checks.minFaceSize)
    return new EnrolmentRefused(
      'too-small',
      `the face is ${Math.round(size)} px, below ${checks.minFaceSize} px: come closer to the camera or use a larger photo`,
    );
  const yaw = yawRatio(largest.keypoints) ?? 0;
  if (Math.abs(yaw) > checks.maxYaw)
    return new EnrolmentRefused(
      'turned',
      `the face is turned to the side (${yaw.toFixed(2)}, at most ${checks.maxYaw} allowed): look straight at the camera`,
    );
  // The descriptor's own crop: the one it will describe.
  const aligned = warpAffine(
    img,
    faceTransform(largest.box, largest.keypoints, crop.size, crop.settings, largest.landmarks),
    crop.size,
    crop.size,
  );
  const brightness = meanBrightness(aligned);
  if (brightness < checks.minBrightness)
    return new EnrolmentRefused(
      'too-dark',
      `the face is too dark (brightness ${Math.round(brightness)}, at least ${checks.minBrightness} needed): add light in front of the face, not behind it`,
    );
  const sharp = sharpness(aligned);
  if (sharp < checks.minSharpness)
    return new EnrolmentRefused(
      'blurred',
      `the face is blurred (sharpness ${sharp.toFixed(1)}, at least ${checks.minSharpness} needed): hold still, clean the lens, or use a sharper photo`,
    );
  return { face: largest, crop: aligned, quality: { size, sharpness: sharp, yaw, brightness } };
}
