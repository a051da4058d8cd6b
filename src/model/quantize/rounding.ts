/**
 * Weight rounding that minimises each layer's output error instead of rounding every
 * weight to its nearest int8 step: GPTQ (Frantar et al. 2023, "GPTQ: Accurate
 * Post-Training Quantization for Generative Pre-trained Transformers", after Optimal
 * Brain Quantization). The scales stay those of round-to-nearest (|w|max / 127 per
 * output channel); only which neighbouring step each weight takes changes.
 *
 * For one output channel with weights w over the inputs x of its receptive field, the
 * output error of a rounded w' is (w' − w)·x. GPTQ rounds the weights one at a time and
 * spreads each one's rounding error over the weights not yet rounded, in the proportion
 * that cancels it best on the layer's inputs, which needs H = E[x xᵀ] (an estimate from
 * calibration images) through the upper Cholesky factor of H⁻¹.
 *
 * H is E[x xᵀ] (the mean included), as in GPTQ. Removing the mean (leaving the
 * constant part of the error to bias correction) looked better with float activations
 * but was worse once activations are uint8 too, because bias correction measures the
 * mean *after* the absorbed ReLU6, which clips part of the shift away. Measured on
 * MobileNet 0.25 with the trained dense head, all int8, bias correction on (relative
 * logits error, ORL validation, seed 1): nearest 0.095, GPTQ on E[x xᵀ] 0.091, on the
 * covariance 0.128; with mixed precision (search.ts) GPTQ brings the held-out error
 * from 0.052 to 0.034 with the same float stem — README, "Weight rounding".
 *
 * Pure maths here (fixture tests in test/model/quantize/rounding.test.ts); gathering
 * the inputs from the fp32 graph is `optimiseRounding` in gptq.ts.
 */
import { roundHalfEven } from './params.js';

/** How int8 weights can be rounded: GPTQ (here), or each weight to its nearest step. */
export const weightRoundings = ['gptq', 'nearest'] as const;
export type WeightRounding = (typeof weightRoundings)[number];

const I8_MAX = 127;
/** Damping added to H's diagonal, as a fraction of its mean (GPTQ's default). */
export const DAMPING = 0.01;

/** Cholesky factor L (lower, row-major) of a symmetric positive definite n×n matrix; undefined if it is not. */
export function choleskyLower(a: Float64Array, n: number): Float64Array | undefined {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j] as number;
      for (let k = 0; k < j; k++) s -= (l[i * n + k] as number) * (l[j * n + k] as number);
      if (i === j) {
        if (!(s > 0)) return undefined;
        l[i * n + i] = Math.sqrt(s);
      } else {
        l[i * n + j] = s / (l[j * n + j] as number);
      }
    }
  }
  return l;
}

/** Inverse of a symmetric positive definite matrix (through its Cholesky factor); undefined if it is not SPD. */
export function invertSpd(a: Float64Array, n: number): Float64Array | undefined {
  const l = choleskyLower(a, n);
  if (!l) return undefined;
  // L⁻¹ (lower), then A⁻¹ = L⁻ᵀ L⁻¹.
  const li = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    li[i * n + i] = 1 / (l[i * n + i] as number);
    for (let j = 0; j < i; j++) {
      let s = 0;
      for (let k = j; k < i; k++) s -= (l[i * n + k] as number) * (li[k * n + j] as number);
      li[i * n + j] = s / (l[i * n + i] as number);
    }
  }
  const inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let k = i; k < n; k++) s += (li[k * n + i] as number) * (li[k * n + j] as number);
      inv[i * n + j] = s;
      inv[j * n + i] = s;
    }
  }
  return inv;
}

/**
 * Running second moments E[x xᵀ] of K-vectors (the inputs one output of a layer sees).
 * Only the upper triangle is accumulated.
 */
export class InputStatistics {
  readonly products: Float64Array;
  count = 0;
  constructor(readonly size: number) {
    this.products = new Float64Array(size * size);
  }

  add(x: Float64Array): void {
    const k = this.size;
    for (let i = 0; i < k; i++) {
      const xi = x[i] as number;
      if (xi === 0) continue;
      const row = i * k;
      for (let j = i; j < k; j++) this.products[row + j] = (this.products[row + j] as number) + xi * (x[j] as number);
    }
    this.count++;
  }

  /**
   * H = E[x xᵀ], full and symmetric, damped: an input that was always 0 gets the mean
   * diagonal (its weights then round to nearest), and DAMPING × the mean diagonal is
   * added to every diagonal entry so that H is safely invertible.
   */
  dampedSecondMoments(): Float64Array {
    const k = this.size;
    const n = Math.max(this.count, 1);
    const h = new Float64Array(k * k);
    for (let i = 0; i < k; i++) {
      for (let j = i; j < k; j++) {
        const v = (this.products[i * k + j] as number) / n;
        h[i * k + j] = v;
        h[j * k + i] = v;
      }
    }
    let mean = 0;
    let live = 0;
    for (let i = 0; i < k; i++) {
      const d = h[i * k + i] as number;
      if (d > 1e-12) {
        mean += d;
        live++;
      }
    }
    mean = live > 0 ? mean / live : 1;
    for (let i = 0; i < k; i++) {
      if (!((h[i * k + i] as number) > 1e-12)) h[i * k + i] = mean;
      h[i * k + i] = (h[i * k + i] as number) + DAMPING * mean;
    }
    return h;
  }
}

/** The upper factor U with H⁻¹ = Uᵀ U (row-major); undefined when H is not SPD. */
export function inverseFactor(h: Float64Array, n: number): Float64Array | undefined {
  const inv = invertSpd(h, n);
  const l = inv && choleskyLower(inv, n);
  if (!l) return undefined;
  const u = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) u[j * n + i] = l[i * n + j] as number;
  return u;
}

/**
 * GPTQ rounding of one output channel's weights `w` (length K) to int8 steps of
 * `scale`, given U from `inverseFactor` of the channel's input covariance.
 */
export function roundRow(w: ArrayLike<number>, scale: number, u: Float64Array): Int8Array {
  const k = w.length;
  const row = Float64Array.from(w);
  const q = new Int8Array(k);
  for (let i = 0; i < k; i++) {
    const qi = Math.min(I8_MAX, Math.max(-I8_MAX, roundHalfEven((row[i] as number) / scale)));
    q[i] = qi;
    const e = ((row[i] as number) - qi * scale) / (u[i * k + i] as number);
    for (let j = i + 1; j < k; j++) row[j] = (row[j] as number) - e * (u[i * k + j] as number);
  }
  return q;
}

/** Output-error energy Σ dᵀ H d of a rounded row against the float weights: what GPTQ lowers (the tests compare it with round-to-nearest's). */
export function roundingError(w: ArrayLike<number>, q: ArrayLike<number>, scale: number, h: Float64Array): number {
  const k = w.length;
  const d = Float64Array.from({ length: k }, (_, i) => (q[i] as number) * scale - (w[i] as number));
  let e = 0;
  for (let i = 0; i < k; i++)
    for (let j = 0; j < k; j++) e += (d[i] as number) * (h[i * k + j] as number) * (d[j] as number);
  return e;
}

/** Geometry of a Conv as it affects which inputs each output sees. */
export interface ConvGeometry {
  readonly group: number;
  readonly kernel: readonly [number, number];
  readonly strides: readonly [number, number];
  /** [top, left, bottom, right] */
  readonly pads: readonly [number, number, number, number];
  readonly dilations: readonly [number, number];
}

/**
 * Visits receptive fields of an NCHW tensor (batch item `b`): for each group and each
 * of the chosen output positions (every `step`-th, row-major), fills `patch` in the
 * weight layout [channel of the group][ky][kx] (zero padding) and calls `visit(group)`.
 */
export function forEachPatch(
  x: Float32Array,
  dims: readonly number[],
  b: number,
  geo: ConvGeometry,
  step: number,
  patch: Float64Array,
  visit: (group: number) => void,
): void {
  const [, c = 1, h = 1, w = 1] = dims;
  const [kh, kw] = geo.kernel;
  const [sy, sx] = geo.strides;
  const [dy, dx] = geo.dilations;
  const [pt, pl] = geo.pads;
  const [ho, wo] = outputSize(dims, geo);
  const cpg = c / geo.group;
  const base = b * c * h * w;
  for (let p = 0; p < ho * wo; p += step) {
    const oy = Math.floor(p / wo);
    const ox = p % wo;
    for (let g = 0; g < geo.group; g++) {
      let k = 0;
      for (let ci = 0; ci < cpg; ci++) {
        const plane = base + (g * cpg + ci) * h * w;
        for (let ky = 0; ky < kh; ky++) {
          const y = oy * sy - pt + ky * dy;
          for (let kx = 0; kx < kw; kx++) {
            const xx = ox * sx - pl + kx * dx;
            patch[k++] = y >= 0 && y < h && xx >= 0 && xx < w ? (x[plane + y * w + xx] as number) : 0;
          }
        }
      }
      visit(g);
    }
  }
}

/** Output height and width of a conv over an NCHW input of `dims` (the ONNX formula). */
function outputSize(dims: readonly number[], geo: ConvGeometry): [number, number] {
  const [, , h = 1, w = 1] = dims;
  const [pt, pl, pb, pr] = geo.pads;
  const ho = Math.floor((h + pt + pb - (geo.dilations[0] * (geo.kernel[0] - 1) + 1)) / geo.strides[0]) + 1;
  const wo = Math.floor((w + pl + pr - (geo.dilations[1] * (geo.kernel[1] - 1) + 1)) / geo.strides[1]) + 1;
  return [ho, wo];
}

/** Output positions of a conv over an input of `dims`. */
export function outputPositions(dims: readonly number[], geo: ConvGeometry): number {
  const [ho, wo] = outputSize(dims, geo);
  return ho * wo;
}

/**
 * GPTQ-rounds a weight tensor given per-row scales and the input statistics of each
 * group of rows (`groupOf(row)`). `at(row, k)` maps to the flat index of weight k of
 * that row. Returns int8 values in the tensor's own layout.
 */
export function roundWeights(
  w: Float32Array,
  rows: number,
  k: number,
  at: (row: number, col: number) => number,
  scales: Float32Array,
  stats: readonly InputStatistics[],
  groupOf: (row: number) => number,
): Int8Array | undefined {
  const factors = stats.map((s) => inverseFactor(s.dampedSecondMoments(), k));
  if (factors.some((f) => !f)) return undefined;
  const out = new Int8Array(w.length);
  const row = new Float64Array(k);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < k; c++) row[c] = w[at(r, c)] as number;
    const q = roundRow(row, scales[r] as number, factors[groupOf(r)] as Float64Array);
    for (let c = 0; c < k; c++) out[at(r, c)] = q[c] as number;
  }
  return out;
}
