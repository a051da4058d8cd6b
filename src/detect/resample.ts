/**
 * Letterboxing a frame into the detector's float input in one JS pass, without a second
 * image library call: a separable resample (area average when shrinking, bilinear when
 * enlarging) fused with BlazeFace's scaling to −1..1, into buffers reused across frames.
 * Pure functions; the taps depend only on the sizes, so they are computed once per size.
 */
import type { RgbImage } from '../shared/image.js';

/**
 * Resampling `n` source pixels to `m` along one axis: output `o` is
 * Σⱼ weights[o·taps + j] · source[start[o] + j]; the weights of an output sum to 1.
 */
export interface Taps {
  readonly start: Int32Array;
  readonly weights: Float32Array;
  readonly taps: number;
}

/**
 * Shrinking (m ≤ n): each output is the mean of the source interval it covers, partial pixels
 * weighted by coverage (no aliasing, no ringing). Enlarging (m > n): bilinear between pixel
 * centres, clamped at the edges.
 */
export function resampleTaps(n: number, m: number): Taps {
  if (n < 1 || m < 1) throw new RangeError(`cannot resample ${n} pixels to ${m}`);
  const scale = n / m;
  const rows: { start: number; w: number[] }[] = [];
  for (let o = 0; o < m; o++) {
    if (scale >= 1) {
      const a = o * scale;
      const b = Math.min(n, (o + 1) * scale);
      const i0 = Math.floor(a);
      const w: number[] = [];
      for (let i = i0; i < b; i++) w.push((Math.min(b, i + 1) - Math.max(a, i)) / scale);
      rows.push({ start: i0, w });
    } else {
      const x = Math.min(n - 1, Math.max(0, (o + 0.5) * scale - 0.5));
      const i0 = Math.min(n - 2, Math.floor(x));
      if (n === 1) rows.push({ start: 0, w: [1] });
      else rows.push({ start: i0, w: [1 - (x - i0), x - i0] });
    }
  }
  const taps = Math.max(...rows.map((r) => r.w.length));
  const start = new Int32Array(m);
  const weights = new Float32Array(m * taps);
  rows.forEach((r, o) => {
    // Rows with fewer taps are padded with zero weights; shift the window left so it stays inside the source.
    const s = Math.max(0, Math.min(r.start, n - taps));
    start[o] = s;
    r.w.forEach((w, j) => (weights[o * taps + (r.start - s) + j] = w));
  });
  return { start, weights, taps };
}

/** Where the resized frame goes in the detector input (`letterbox` in ./blazeface.ts computes it). */
export interface LetterboxBox {
  /** The resized frame's size and its top-left corner in the input. */
  readonly width: number;
  readonly height: number;
  readonly left: number;
  readonly top: number;
  /** The detector input's size; what the frame does not cover is padding. */
  readonly inputWidth: number;
  readonly inputHeight: number;
}

/** Buffers and taps for one frame size → one letterbox; reused while the frame size stays. */
export class LetterboxResampler {
  private key = '';
  private tx: Taps = resampleTaps(1, 1);
  private ty: Taps = resampleTaps(1, 1);
  private row = new Float32Array(0);
  private buffer = new Float32Array(0);

  /** The detector input of the last `fill`, NHWC `inputHeight`×`inputWidth`×3, padding at −1 (black). */
  get input(): Float32Array {
    return this.buffer;
  }

  /**
   * Writes `img` resized to `width`×`height` at (`left`, `top`) into the input, as x / 127.5 − 1.
   * The padding keeps −1 as long as the geometry does not change (it is refilled when it does).
   */
  fill(img: RgbImage, box: LetterboxBox): Float32Array {
    const { width: w, height: h, left, top, inputWidth, inputHeight } = box;
    if (left < 0 || top < 0 || left + w > inputWidth || top + h > inputHeight)
      throw new RangeError(`a ${w}×${h} frame at (${left}, ${top}) does not fit a ${inputWidth}×${inputHeight} input`);
    const W = img.width;
    const key = `${W}x${img.height}>${w}x${h}@${left},${top}in${inputWidth}x${inputHeight}`;
    if (key !== this.key) {
      this.tx = resampleTaps(W, w);
      this.ty = resampleTaps(img.height, h);
      this.row = new Float32Array(W * 3);
      const n = inputWidth * inputHeight * 3;
      if (this.buffer.length !== n) this.buffer = new Float32Array(n);
      this.buffer.fill(-1);
      this.key = key;
    }
    const src = img.data;
    const row = this.row;
    const out = this.buffer;
    const rowLen = W * 3;
    const S3 = inputWidth * 3;
    const { start: ys, weights: yw, taps: yt } = this.ty;
    const { start: xs, weights: xw, taps: xt } = this.tx;
    // Per output row: blend its source rows into one full-width row (contiguous reads), then
    // resample that row horizontally straight into the letterboxed input, scaled to −1..1.
    // Measured 0.65× the time of the horizontal-first order, which touches every source row twice.
    for (let y = 0; y < h; y++) {
      const base = ys[y]! * rowLen;
      const wo = y * yt;
      blendRows(src, base, rowLen, yw, wo, yt, row);
      let o = (y + top) * S3 + left * 3;
      for (let x = 0; x < w; x++) {
        let p = xs[x]! * 3;
        let r = 0;
        let g = 0;
        let b = 0;
        for (let j = x * xt, end = j + xt; j < end; j++, p += 3) {
          const k = xw[j]!;
          r += row[p]! * k;
          g += row[p + 1]! * k;
          b += row[p + 2]! * k;
        }
        out[o++] = r / 127.5 - 1;
        out[o++] = g / 127.5 - 1;
        out[o++] = b / 127.5 - 1;
      }
    }
    return out;
  }
}

/**
 * `row[i] = Σⱼ weights[wo + j] · src[base + j·rowLen + i]`: one output row from `taps` source
 * rows. Two to four taps (every shrink up to 3×, and bilinear) are written out, so that each
 * row is read once per output row in a single expression.
 */
function blendRows(
  src: Uint8Array,
  base: number,
  rowLen: number,
  weights: Float32Array,
  wo: number,
  taps: number,
  row: Float32Array,
): void {
  const w0 = weights[wo]!;
  const w1 = taps > 1 ? weights[wo + 1]! : 0;
  const w2 = taps > 2 ? weights[wo + 2]! : 0;
  const w3 = taps > 3 ? weights[wo + 3]! : 0;
  const r1 = base + rowLen;
  const r2 = r1 + rowLen;
  const r3 = r2 + rowLen;
  if (taps === 1) for (let i = 0; i < rowLen; i++) row[i] = src[base + i]! * w0;
  else if (taps === 2) for (let i = 0; i < rowLen; i++) row[i] = src[base + i]! * w0 + src[r1 + i]! * w1;
  else if (taps === 3)
    for (let i = 0; i < rowLen; i++) row[i] = src[base + i]! * w0 + src[r1 + i]! * w1 + src[r2 + i]! * w2;
  else if (taps === 4)
    for (let i = 0; i < rowLen; i++)
      row[i] = src[base + i]! * w0 + src[r1 + i]! * w1 + src[r2 + i]! * w2 + src[r3 + i]! * w3;
  else
    for (let i = 0; i < rowLen; i++) {
      let acc = 0;
      for (let j = 0, p = base + i; j < taps; j++, p += rowLen) acc += src[p]! * weights[wo + j]!;
      row[i] = acc;
    }
}
