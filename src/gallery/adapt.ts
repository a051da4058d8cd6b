/**
 * `gallery.adapt`: the threshold raised by how far the gallery's own cross scores sit above the
 * impostor pool's. The thresholds come from impostor tails fitted on colour photos of many
 * people; under one camera (grey-scale, infrared, one light) scores between different people
 * can run much higher. The enrolled people are each other's strangers: each person's templates
 * scored against every other person, as the pool was scored (a template against the other
 * person under the scoring rule: for `centroid`, against their centroid), give the gallery's
 * cross scores. Their upper quantiles are compared with the pool's at the same levels, using a
 * lower confidence bound (an order statistic) so that a gallery whose cross scores match the
 * pool is not moved by noise; the largest excess is the shift. Never negative.
 * Pure functions, no I/O.
 */
import {
  buildIndex,
  personScores,
  type GalleryEntry,
  type GalleryIndex,
  type PoolQuantiles,
  type ScoringOptions,
} from './match.js';

export type { PoolQuantiles };

/** The levels `--fit-impostors` measures the pool's quantiles at. */
export const POOL_QUANTILE_LEVELS = [0.1, 0.03, 0.01, 0.003, 0.001, 3e-4, 1e-4, 3e-5, 1e-5] as const;

/** The score exceeded by a share `level` of `scores` (the ⌈n·level⌉-th highest). */
export function upperQuantiles(scores: ArrayLike<number>, levels: readonly number[]): number[] {
  const sorted = Float64Array.from(scores).sort();
  const n = sorted.length;
  return levels.map((p) => {
    const k = Math.max(1, Math.ceil(n * p));
    return n ? sorted[n - k]! : NaN;
  });
}

/**
 * The gallery's cross scores: each person's templates scored against every other person under
 * the index's rule (personScores), the person's own score left out. `index` must be built from
 * `entries` (people with templates, in order).
 */
export function crossScores(entries: readonly GalleryEntry[], index: GalleryIndex): Float32Array {
  const people = entries.filter((e) => e.templates.length > 0);
  const total = people.reduce((n, e) => n + e.templates.length, 0) * Math.max(0, index.people - 1);
  const out = new Float32Array(total);
  const buf = new Float32Array(index.people);
  let o = 0;
  people.forEach((e, p) => {
    for (const t of e.templates) {
      personScores(index, t, buf);
      for (let q = 0; q < index.people; q++) if (q !== p) out[o++] = buf[q]!;
    }
  });
  return out;
}

/** How the shift is estimated: the confidence of the lower bound (z of a one-sided normal) and the scores a level needs above it. */
export const ADAPT = {
  /** One-sided 99 %: the gallery's quantile is above the bound with probability ≥ 0.99. */
  z: 2.326,
  /** A level counts only where the gallery's count of scores expected above it is ≥ this. */
  minAbove: 10,
} as const;

export interface AdaptiveShift {
  /** How much every threshold is raised (≥ 0). */
  readonly shift: number;
  /** The level (upper-tail probability) the shift was read at; null when no level moved the threshold. */
  readonly level: number | null;
  /** Cross scores the gallery gave. */
  readonly scores: number;
}

/**
 * The shift: for each pool level p with m·p ≥ minAbove (m cross scores), the gallery's lower
 * confidence bound on its (1 − p) quantile — its k-th highest score, k = ⌈m·p + z·√(m·p·(1−p))⌉
 * + 1, which exceeds the true quantile only when more than k − 1 scores do (probability ≈ the
 * normal tail beyond z) — minus the pool's quantile; the largest excess, never below 0.
 */
export function adaptiveShift(
  cross: ArrayLike<number>,
  pool: PoolQuantiles,
  o: { z?: number; minAbove?: number } = {},
): AdaptiveShift {
  const z = o.z ?? ADAPT.z;
  const minAbove = o.minAbove ?? ADAPT.minAbove;
  const m = cross.length;
  // Only scores at or above the pool's lowest quantile can give an excess: sort just those.
  const floor = Math.min(...pool.scores);
  let above = 0;
  for (let i = 0; i < m; i++) if (cross[i]! >= floor) above++;
  const top = new Float32Array(above);
  for (let i = 0, j = 0; i < m; i++) if (cross[i]! >= floor) top[j++] = cross[i]!;
  top.sort();
  let shift = 0;
  let level: number | null = null;
  pool.levels.forEach((p, i) => {
    const expected = m * p;
    if (expected < minAbove) return;
    const k = Math.ceil(expected + z * Math.sqrt(expected * (1 - p))) + 1;
    // the k-th highest score is below the floor (no excess) when fewer than k reach it
    if (k > above) return;
    const excess = top[above - k]! - pool.scores[i]!;
    if (excess > shift) {
      shift = excess;
      level = p;
    }
  });
  return { shift, level, scores: m };
}

/** crossScores then adaptiveShift: the shift of a gallery's entries under a scoring rule (builds its own index). */
export function galleryShift(
  entries: readonly GalleryEntry[],
  pool: PoolQuantiles,
  scoring: ScoringOptions,
  index: GalleryIndex = buildIndex(entries, scoring),
): AdaptiveShift {
  return adaptiveShift(crossScores(entries, index), pool);
}
