/**
 * BlazeFace (short range, 256×256, as shipped in `@vladmandic/human`'s `models/blazeface.json`)
 * anchors and output decoding, as pure functions.
 *
 * Layout, read from `@vladmandic/human` src/face/blazeface.ts and facemeshutil.ts:
 * - anchors: stride 16 with 2 anchors a cell, then stride 32 with 6 a cell (256×256 →
 *   16×16×2 + 8×8×6 = 896), centred at stride·(cell + 0.5), in input pixels, row-major
 *   (rows of the input, then columns). An input that is not square has as many cells per
 *   axis as its side holds (256 wide × 192 high → 16×12×2 + 8×6×6 = 672);
 * - each anchor's 17 values: [logit, dx, dy, w, h, kx0, ky0, …, kx5, ky5], offsets and sizes in
 *   input pixels, box centre = anchor + (dx, dy), keypoint k = anchor + (kxk, kyk);
 * - score = sigmoid(logit).
 */
import type { Point } from '../shared/messages.js';

/** One anchor centre in input pixels. */
export interface Anchor {
  readonly x: number;
  readonly y: number;
}

export interface AnchorSpec {
  readonly strides: readonly number[];
  /** Anchors per grid cell, per stride. */
  readonly anchorsPerCell: readonly number[];
}

/**
 * BlazeFace's anchor spec for a network whose square input is `size` pixels (256 for the
 * built-in detector: strides 16 and 32, whatever the input's actual sides).
 */
export function blazefaceAnchorSpec(size: number): AnchorSpec {
  return { strides: [size / 16, size / 8], anchorsPerCell: [2, 6] };
}

/**
 * Anchor centres for a `width`×`height` input (square when `height` is left out), row-major
 * per stride, repeated `anchorsPerCell` times a cell. The spec defaults to BlazeFace's for
 * the longer side.
 */
export function generateAnchors(
  width: number,
  height: number = width,
  spec: AnchorSpec = blazefaceAnchorSpec(Math.max(width, height)),
): Anchor[] {
  const anchors: Anchor[] = [];
  spec.strides.forEach((stride, i) => {
    const cols = Math.ceil(width / stride);
    const rows = Math.ceil(height / stride);
    const perCell = spec.anchorsPerCell[i] ?? 1;
    for (let gy = 0; gy < rows; gy++) {
      for (let gx = 0; gx < cols; gx++) {
        for (let n = 0; n < perCell; n++) anchors.push({ x: stride * (gx + 0.5), y: stride * (gy + 0.5) });
      }
    }
  });
  return anchors;
}

export function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/** A decoded candidate in detector-input pixels (before NMS). */
export interface Candidate {
  readonly x1: number;
  readonly y1: number;
  readonly x2: number;
  readonly y2: number;
  readonly score: number;
  readonly keypoints: readonly Point[];
}

export const BLAZEFACE_VALUES_PER_ANCHOR = 17;
export const BLAZEFACE_KEYPOINTS = 6;

/** One block of BlazeFace's outputs, anchors in order: a logit each, and 16 regressor values each. */
export interface BlazefaceBlock {
  readonly logits: Float32Array;
  readonly regressors: Float32Array;
}

/**
 * Decodes the raw regressors (`anchors.length × 17`, row-major; column 0 the logit) into
 * candidates with score ≥ `minScore`. Pure; the caller runs NMS.
 */
export function decodeBlazeface(raw: Float32Array, anchors: readonly Anchor[], minScore: number): Candidate[] {
  const stride = BLAZEFACE_VALUES_PER_ANCHOR;
  if (raw.length !== anchors.length * stride) {
    throw new RangeError(`expected ${anchors.length}×${stride} detector values, got ${raw.length}`);
  }
  const out: Candidate[] = [];
  decodeRange(raw, stride, raw, stride, 1, anchors, 0, anchors.length, minLogitOf(minScore), out);
  return out;
}

/**
 * The same from the model's blocks as they come (no copy into one array): blocks in anchor
 * order, their anchor counts adding up to `anchors.length`. Only anchors whose logit passes
 * read their regressors.
 */
export function decodeBlazefaceBlocks(
  blocks: readonly BlazefaceBlock[],
  anchors: readonly Anchor[],
  minScore: number,
): Candidate[] {
  const R = BLAZEFACE_VALUES_PER_ANCHOR - 1;
  const total = blocks.reduce((a, b) => a + b.logits.length, 0);
  if (total !== anchors.length || blocks.some((b) => b.regressors.length !== b.logits.length * R))
    throw new RangeError(
      `expected blocks of ${anchors.length} anchors in all (a logit and ${R} values each), got ${blocks
        .map((b) => `${b.logits.length}+${b.regressors.length}`)
        .join(', ')}`,
    );
  const out: Candidate[] = [];
  const minLogit = minLogitOf(minScore);
  let first = 0;
  for (const b of blocks) {
    decodeRange(b.logits, 1, b.regressors, R, 0, anchors, first, b.logits.length, minLogit, out);
    first += b.logits.length;
  }
  return out;
}

/** Compare logits, not sigmoids, so that most anchors cost one comparison. */
function minLogitOf(minScore: number): number {
  return minScore <= 0 ? -Infinity : minScore >= 1 ? Infinity : Math.log(minScore / (1 - minScore));
}

/**
 * Anchors `first` … `first + count − 1`: the i-th one's logit at `logits[i·logitStride]`, its
 * 16 values from `regs[i·regStride + regOffset]`.
 */
function decodeRange(
  logits: Float32Array,
  logitStride: number,
  regs: Float32Array,
  regStride: number,
  regOffset: number,
  anchors: readonly Anchor[],
  first: number,
  count: number,
  minLogit: number,
  out: Candidate[],
): void {
  for (let i = 0; i < count; i++) {
    const logit = logits[i * logitStride] ?? -Infinity;
    if (logit < minLogit) continue;
    const a = anchors[first + i] as Anchor;
    const o = i * regStride + regOffset;
    const cx = a.x + (regs[o] ?? 0);
    const cy = a.y + (regs[o + 1] ?? 0);
    const w = regs[o + 2] ?? 0;
    const h = regs[o + 3] ?? 0;
    const keypoints: Point[] = [];
    for (let k = 0; k < BLAZEFACE_KEYPOINTS; k++) {
      keypoints.push({ x: a.x + (regs[o + 4 + 2 * k] ?? 0), y: a.y + (regs[o + 5 + 2 * k] ?? 0) });
    }
    out.push({ x1: cx - w / 2, y1: cy - h / 2, x2: cx + w / 2, y2: cy + h / 2, score: sigmoid(logit), keypoints });
  }
}
