/**
 * Activation range calibration: pure maths over the values a tensor took on real
 * images. Three methods, after onnxruntime's calibrators
 * (onnxruntime/python/tools/quantization/calibrate.py):
 * - `minmax`: the smallest and largest value seen;
 * - `percentile`: cut the rarest 0.001 % of values (99.999th percentile), from a
 *   2048-bin histogram;
 * - `entropy`: the clipping threshold whose 256-level quantised distribution is closest
 *   (KL divergence) to the observed one (TensorRT's method, Migacz 2017, "8-bit
 *   Inference with TensorRT").
 * Histogram methods need the min/max first, so they take two passes over the data.
 */

export const calibrationMethods = ['minmax', 'percentile', 'entropy'] as const;
export type CalibrationMethod = (typeof calibrationMethods)[number];

export interface Range {
  readonly min: number;
  readonly max: number;
}

/** Running min and max over any number of batches. */
export class RangeCollector {
  min = Infinity;
  max = -Infinity;
  count = 0;

  update(values: Float32Array): void {
    let lo = this.min;
    let hi = this.max;
    for (let i = 0; i < values.length; i++) {
      const v = values[i] as number;
      if (v !== v) throw new RangeError('tensor contains NaN: the fp32 model is broken for this input');
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    this.min = lo;
    this.max = hi;
    this.count += values.length;
  }

  range(): Range {
    if (this.count === 0) throw new RangeError('no values collected');
    return { min: this.min, max: this.max };
  }
}

/**
 * A fixed-range histogram. Values outside [lo, hi] land in the first / last bin
 * (they cannot occur when lo/hi come from a min/max pass over the same data).
 */
export class Histogram {
  readonly counts: Float64Array;
  private readonly width: number;

  constructor(
    readonly lo: number,
    readonly hi: number,
    readonly bins = 2048,
  ) {
    if (!(hi > lo)) throw new RangeError(`empty histogram range [${lo}, ${hi}]`);
    this.counts = new Float64Array(bins);
    this.width = (hi - lo) / bins;
  }

  update(values: Float32Array): void {
    const { counts, lo, bins } = this;
    const inv = 1 / this.width;
    const last = bins - 1;
    for (let i = 0; i < values.length; i++) {
      let b = Math.floor(((values[i] as number) - lo) * inv);
      if (b < 0) b = 0;
      else if (b > last) b = last;
      counts[b] = (counts[b] as number) + 1;
    }
  }

  /** Left edge of bin i (i = bins gives hi). */
  edge(i: number): number {
    return this.lo + i * this.width;
  }
}

/** The histogram a method needs for a tensor whose min/max pass gave `r`. */
export function histogramFor(method: 'percentile' | 'entropy', r: Range, bins = 2048): Histogram | undefined {
  if (r.max - r.min < 1e-12) return undefined;
  if (method === 'percentile' || r.min >= 0) return new Histogram(Math.min(r.min, 0), Math.max(r.max, 0), bins);
  // Entropy on signed data: symmetric around 0 so that windows can grow from the centre.
  const t = Math.max(Math.abs(r.min), Math.abs(r.max));
  return new Histogram(-t, t, bins);
}

/**
 * Range that keeps `percentile` % of the values, cutting the same share from each side
 * (onnxruntime's asymmetric percentile); never wider than the observed min/max.
 */
export function percentileRange(h: Histogram, observed: Range, percentile = 99.999): Range {
  if (!(percentile > 0 && percentile <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${percentile}`);
  const total = h.counts.reduce((a, b) => a + b, 0);
  if (total === 0) return observed;
  const cut = ((100 - percentile) / 200) * total;
  let acc = 0;
  let left = 0;
  while (left < h.bins - 1 && acc + (h.counts[left] as number) <= cut) acc += h.counts[left++] as number;
  acc = 0;
  let right = h.bins - 1;
  while (right > 0 && acc + (h.counts[right] as number) <= cut) acc += h.counts[right--] as number;
  return {
    min: Math.max(observed.min, Math.min(h.edge(left), 0)),
    max: Math.min(observed.max, Math.max(h.edge(right + 1), 0)),
  };
}

/** Smooths zero bins with eps so that KL(p || q) is finite (TensorRT / onnxruntime). */
function smooth(p: Float64Array, eps = 1e-4): Float64Array | undefined {
  let zeros = 0;
  for (const v of p) if (v === 0) zeros++;
  const nonzeros = p.length - zeros;
  if (nonzeros === 0) return undefined;
  const eps1 = (eps * zeros) / nonzeros;
  const out = new Float64Array(p.length);
  for (let i = 0; i < p.length; i++) out[i] = (p[i] as number) === 0 ? eps : (p[i] as number) - eps1;
  return out;
}

/** KL(p || q) of two unnormalised non-negative distributions. */
export function klDivergence(p: Float64Array, q: Float64Array): number {
  let sp = 0;
  let sq = 0;
  for (let i = 0; i < p.length; i++) {
    sp += p[i] as number;
    sq += q[i] as number;
  }
  let kl = 0;
  for (let i = 0; i < p.length; i++) {
    const pi = (p[i] as number) / sp;
    if (pi <= 0) continue;
    const qi = (q[i] as number) / sq;
    kl += pi * Math.log(pi / qi);
  }
  return kl;
}

/**
 * KL divergence between the histogram clipped to bins [start, end) and its quantised
 * version with `levels` levels (outliers folded into the edge bins, as clipping does).
 */
function windowDivergence(counts: Float64Array, start: number, end: number, levels: number): number {
  const n = end - start;
  const p = counts.slice(start, end);
  let left = 0;
  for (let i = 0; i < start; i++) left += counts[i] as number;
  let right = 0;
  for (let i = end; i < counts.length; i++) right += counts[i] as number;
  p[0] = (p[0] as number) + left;
  p[n - 1] = (p[n - 1] as number) + right;
  // Merge the clipped (outlier-free) window into `levels` bins, then spread each level
  // uniformly over the bins that were non-zero in p.
  const merged = Math.floor(n / levels);
  const q = new Float64Array(n);
  for (let l = 0; l < levels; l++) {
    const s = l * merged;
    const e = l === levels - 1 ? n : s + merged;
    let sum = 0;
    let nonzero = 0;
    for (let i = s; i < e; i++) {
      sum += counts[start + i] as number;
      if ((p[i] as number) !== 0) nonzero++;
    }
    if (nonzero === 0) continue;
    const v = sum / nonzero;
    for (let i = s; i < e; i++) if ((p[i] as number) !== 0) q[i] = v;
  }
  const ps = smooth(p);
  const qs = smooth(q);
  if (!ps || !qs) return Infinity;
  return klDivergence(ps, qs);
}

/**
 * Entropy (KL) calibration. On a non-negative histogram [0, max] (ReLU outputs) the
 * window grows from 0; on a symmetric one [-t, t] it grows from the centre. `levels` is
 * the number of uint8 levels the window is quantised to.
 */
export function entropyRange(h: Histogram, observed: Range, levels = 256): Range {
  const bins = h.bins;
  let best = Infinity;
  let bestRange: Range = observed;
  if (h.lo >= 0) {
    for (let end = Math.min(levels, bins); end <= bins; end++) {
      const kl = windowDivergence(h.counts, 0, end, levels);
      if (kl < best) {
        best = kl;
        bestRange = { min: h.lo, max: h.edge(end) };
      }
    }
  } else {
    const centre = Math.floor(bins / 2);
    for (let half = Math.floor(levels / 2); half <= centre; half++) {
      const kl = windowDivergence(h.counts, centre - half, Math.min(bins, centre + half), levels);
      if (kl < best) {
        best = kl;
        bestRange = { min: h.edge(centre - half), max: h.edge(Math.min(bins, centre + half)) };
      }
    }
  }
  return { min: Math.max(observed.min, bestRange.min), max: Math.min(observed.max, bestRange.max) };
}
