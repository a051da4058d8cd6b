/**
 * Threshold calibration and error rates, as pure functions.
 *
 * A probe is accepted when its score ≥ threshold. For a known person, acceptance counts only
 * when the name is right; a known person accepted under another name is `misidentified`
 * (as dangerous as a stranger let in) and also a false reject.
 */

/** One scored probe. `truth` null for a stranger; `predicted` is the best candidate. */
export interface ScoredProbe {
  readonly truth: string | null;
  readonly predicted: string;
  readonly score: number;
}

export interface ErrorRates {
  readonly threshold: number;
  /** Strangers given a name. */
  readonly far: number;
  /** Known people refused or misnamed. */
  readonly frr: number;
  /** Known people named correctly. */
  readonly accuracy: number;
  /** Known people given another person's name. */
  readonly misidentified: number;
}

export function errorRates(probes: readonly ScoredProbe[], threshold: number): ErrorRates {
  let known = 0;
  let unknown = 0;
  let fa = 0;
  let correct = 0;
  let misid = 0;
  for (const p of probes) {
    const accepted = p.score >= threshold;
    if (p.truth === null) {
      unknown++;
      if (accepted) fa++;
      continue;
    }
    known++;
    if (accepted && p.predicted === p.truth) correct++;
    else if (accepted) misid++;
  }
  return {
    threshold,
    far: unknown ? fa / unknown : 0,
    frr: known ? (known - correct) / known : 0,
    accuracy: known ? correct / known : 0,
    misidentified: known ? misid / known : 0,
  };
}

/**
 * The lowest threshold whose false-accept rate on `impostorScores` is ≤ `targetFar`.
 * A false accept here is any impostor score ≥ threshold. With n impostors the rate moves in
 * steps of 1/n; when the target is below 1/n the threshold sits just above the highest
 * impostor score (FAR 0 on this data, no better claim possible). Ties are never split: all
 * impostors with equal scores are accepted or refused together.
 */
export function thresholdForFar(impostorScores: readonly number[], targetFar: number): number {
  if (!(targetFar >= 0 && targetFar <= 1)) throw new RangeError(`targetFar must be in 0..1, got ${targetFar}`);
  const sorted = [...impostorScores].sort((a, b) => b - a); // descending
  const n = sorted.length;
  if (n === 0) throw new RangeError('no impostor scores to calibrate on');
  const allowed = Math.floor(targetFar * n + 1e-9); // impostors that may score ≥ threshold
  if (allowed >= n) return -Infinity;
  // Accept the `allowed` highest only if the next one is strictly lower; else back off over ties.
  let k = allowed;
  while (k > 0 && sorted[k - 1] === sorted[k]) k--;
  const refused = sorted[k] as number; // the highest score that must be refused
  return nextUp(refused);
}

/** The smallest double greater than x (so that `score ≥ threshold` refuses x itself). */
export function nextUp(x: number): number {
  if (Number.isNaN(x) || x === Infinity) return x;
  if (x === 0) return Number.MIN_VALUE;
  const buf = new DataView(new ArrayBuffer(8));
  buf.setFloat64(0, x);
  const bits = buf.getBigInt64(0);
  buf.setBigInt64(0, x > 0 ? bits + 1n : bits - 1n);
  return buf.getFloat64(0);
}

/** FAR/FRR at every distinct score (plus ±∞), ascending threshold: a DET/ROC-style curve. */
export function errorCurve(probes: readonly ScoredProbe[], maxPoints = 200): ErrorRates[] {
  const scores = [...new Set(probes.map((p) => p.score))].sort((a, b) => a - b);
  let thresholds = [-Infinity, ...scores, nextUp(scores[scores.length - 1] ?? 0)];
  if (thresholds.length > maxPoints) {
    const step = (thresholds.length - 1) / (maxPoints - 1);
    thresholds = Array.from({ length: maxPoints }, (_, i) => thresholds[Math.round(i * step)] as number);
  }
  return thresholds.map((t) => errorRates(probes, t));
}

/** The equal error rate point: the threshold where FAR and FRR are closest. */
export function equalErrorRate(curve: readonly ErrorRates[]): ErrorRates | null {
  let best: ErrorRates | null = null;
  for (const r of curve) if (!best || Math.abs(r.far - r.frr) < Math.abs(best.far - best.frr)) best = r;
  return best;
}

/**
 * Inverse of the standard normal CDF (Acklam's rational approximation, relative error
 * < 1.2e-9; https://web.archive.org/web/20151030215612/http://home.online.no/~pjacklam/notes/invnorm/).
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`p must be in (0, 1), got ${p}`);
  const a = [
    -3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1,
    2.506628277459239,
  ];
  const b = [
    -5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1,
  ];
  const c = [
    -7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const poly = (k: number[], x: number): number => k.reduce((s, v) => s * x + v, 0);
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return poly(c, q) / (poly(d, q) * q + 1);
  }
  if (p > 1 - lo) {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    return -poly(c, q) / (poly(d, q) * q + 1);
  }
  const q = p - 0.5;
  const r = q * q;
  return (poly(a, r) * q) / (poly(b, r) * r + 1);
}

/**
 * The impostor tail extrapolated with a normal fit: mean + z(1 − targetFar)·sd. With a few
 * hundred impostor scores a FAR of 0.001 cannot be observed; the fit gives a threshold for
 * it that the empirical quantile alone would set too low (measured: ORL strangers let in).
 */
export function gaussianTailThreshold(impostorScores: readonly number[], targetFar: number): number {
  const n = impostorScores.length;
  if (n < 2 || targetFar <= 0 || targetFar >= 1) return -Infinity;
  const mean = impostorScores.reduce((s, x) => s + x, 0) / n;
  const sd = Math.sqrt(impostorScores.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1));
  return mean + normalQuantile(1 - targetFar) * sd;
}
