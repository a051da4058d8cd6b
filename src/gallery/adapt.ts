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
  const m = cross.length;
  // Only scores at or above the pool's lowest quantile can give an excess: sort just those.
  const floor = poolFloor(pool);
  let above = 0;
  for (let i = 0; i < m; i++) if (cross[i]! >= floor) above++;
  const top = new Float32Array(above);
  for (let i = 0, j = 0; i < m; i++) if (cross[i]! >= floor) top[j++] = cross[i]!;
  return shiftOfTop(top.sort(), m, pool, o);
}

/** The pool's lowest quantile: cross scores below it never give an excess. */
const poolFloor = (pool: PoolQuantiles): number => Math.min(...pool.scores);

/** adaptiveShift from its m cross scores' `top` (those ≥ poolFloor, ascending). */
function shiftOfTop(
  top: Float32Array,
  m: number,
  pool: PoolQuantiles,
  o: { z?: number; minAbove?: number },
): AdaptiveShift {
  const z = o.z ?? ADAPT.z;
  const minAbove = o.minAbove ?? ADAPT.minAbove;
  const above = top.length;
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

/** A growable list of (other person's slot, score) pairs: one person's cross scores ≥ the floor. */
class ScoreList {
  tags = new Int32Array(16);
  vals = new Float32Array(16);
  len = 0;

  push(tag: number, v: number): void {
    if (this.len === this.vals.length) this.resize(2 * this.len);
    this.tags[this.len] = tag;
    this.vals[this.len++] = v;
  }

  /** Drops the pairs whose slot is marked in `gone`, pushing their scores onto `out`. */
  drop(gone: Uint8Array, out: number[]): void {
    let j = 0;
    for (let i = 0; i < this.len; i++) {
      const tag = this.tags[i]!;
      if (gone[tag]) out.push(this.vals[i]!);
      else {
        this.tags[j] = tag;
        this.vals[j++] = this.vals[i]!;
      }
    }
    this.len = j;
    if (this.vals.length > 64 && j < this.vals.length / 4) this.resize(2 * j);
  }

  private resize(n: number): void {
    const tags = new Int32Array(Math.max(16, n));
    const vals = new Float32Array(tags.length);
    tags.set(this.tags.subarray(0, this.len));
    vals.set(this.vals.subarray(0, this.len));
    this.tags = tags;
    this.vals = vals;
  }
}

interface HeldPerson {
  readonly templates: readonly Float32Array[];
  readonly slot: number;
  /** This person's templates scored against every other person, those ≥ the floor. */
  readonly scores: ScoreList;
}

/** Two template lists the same bit for bit, in the same order. */
function sameTemplates(a: readonly Float32Array[], b: readonly Float32Array[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    if (x.length !== y.length) return false;
    const xb = new Uint32Array(x.buffer, x.byteOffset, x.length);
    const yb = new Uint32Array(y.buffer, y.byteOffset, y.length);
    for (let j = 0; j < xb.length; j++) if (xb[j] !== yb[j]) return false;
  }
  return true;
}

/** `top` (ascending) less the scores of `gone`, plus those of `added` (both ascending); null if a score of `gone` is missing. */
function mergeSorted(top: Float32Array, gone: Float32Array, added: Float32Array): Float32Array | null {
  const out = new Float32Array(top.length - gone.length + added.length);
  let g = 0;
  let a = 0;
  let o = 0;
  for (let i = 0; i < top.length; i++) {
    const v = top[i]!;
    if (g < gone.length && gone[g]! < v) return null;
    if (g < gone.length && gone[g] === v) {
      g++;
      continue;
    }
    while (a < added.length && added[a]! < v) out[o++] = added[a++]!;
    out[o++] = v;
  }
  while (a < added.length) out[o++] = added[a++]!;
  return g === gone.length && o === out.length ? out : null;
}

/**
 * galleryShift kept up to date as the gallery changes: the same result, bit for bit, for
 * O(N·t·d) work per changed person instead of O(N²·t·d) (N people, t templates, d dims). It
 * holds, per person, its templates and its cross scores at or above the pool's lowest quantile
 * (against whom), and all those scores sorted; a person whose templates changed (compared bit
 * for bit) has their row (their templates against everyone, from the gallery's index) and
 * their column (everyone's templates against them, from an index of the changed people alone)
 * recomputed, the old scores taken out of the sorted list and the new merged in. The levels
 * are then read off the list (one pass over it, no sort). Memory: 12 bytes per cross score at
 * or above the floor, up to 20 with the lists' spare room; there are at most N·(N − 1)·t of them,
 * about a tenth as many where the gallery scores like the pool (whose lowest level is 0.1): it
 * grows as N² (4.2 MiB at 1,000 people of lfw-dev with 3 templates; at most about 55 MiB there).
 */
export class CrossScoreCache {
  private key = '';
  private readonly held = new Map<string, HeldPerson>();
  private readonly freeSlots: number[] = [];
  private slots = 0;
  /** Every held cross score ≥ the floor, ascending. */
  private top: Float32Array = new Float32Array(0);

  /** Bytes held in score lists (the templates are the caller's). */
  get bytes(): number {
    let n = this.top.byteLength;
    for (const h of this.held.values()) n += h.scores.tags.byteLength + h.scores.vals.byteLength;
    return n;
  }

  /** Forgets everything: the next update computes every cross score. */
  clear(): void {
    this.key = '';
    this.held.clear();
    this.freeSlots.length = 0;
    this.slots = 0;
    this.top = new Float32Array(0);
  }

  /** galleryShift(entries, pool, scoring, index), updated from the entries of the last call. */
  update(
    entries: readonly GalleryEntry[],
    pool: PoolQuantiles,
    scoring: ScoringOptions,
    index: GalleryIndex = buildIndex(entries, scoring),
  ): AdaptiveShift {
    const floor = poolFloor(pool);
    const key = `${floor} ${index.rule} ${index.k} ${index.dims}`;
    if (key !== this.key) {
      this.clear();
      this.key = key;
    }
    const people = entries.filter((e) => e.templates.length > 0);
    const n = people.length;
    if (new Set(people.map((e) => e.personId)).size !== n) {
      this.clear(); // one person twice: nothing to key the scores by
      return galleryShift(entries, pool, scoring, index);
    }
    // Who changed: kept people have the same templates as last time; the rest are fresh.
    const kept = new Uint8Array(n);
    const fresh: number[] = [];
    people.forEach((e, p) => {
      const h = this.held.get(e.personId);
      if (h && sameTemplates(h.templates, e.templates)) kept[p] = 1;
      else fresh.push(p);
    });
    // Take out every score of a person gone or changed: their row, and their column in the others' rows.
    const gone: number[] = [];
    const goneSlot = new Uint8Array(this.slots);
    const keptIds = new Set(people.filter((_, p) => kept[p]).map((e) => e.personId));
    for (const [id, h] of this.held) {
      if (keptIds.has(id)) continue;
      for (let i = 0; i < h.scores.len; i++) gone.push(h.scores.vals[i]!);
      goneSlot[h.slot] = 1;
      this.freeSlots.push(h.slot);
      this.held.delete(id);
    }
    if (goneSlot.includes(1)) for (const h of this.held.values()) h.scores.drop(goneSlot, gone);
    // Fresh people get a slot; every kept person's is theirs already.
    for (const p of fresh) {
      const e = people[p]!;
      this.held.set(e.personId, {
        templates: e.templates,
        slot: this.freeSlots.pop() ?? this.slots++,
        scores: new ScoreList(),
      });
    }
    const heldOf = people.map((e) => this.held.get(e.personId)!);
    const added: number[] = [];
    // Rows: a fresh person's templates against everyone (the gallery's index, as crossScores).
    const buf = new Float32Array(n);
    for (const p of fresh) {
      const h = heldOf[p]!;
      for (const t of people[p]!.templates) {
        personScores(index, t, buf);
        for (let q = 0; q < n; q++) {
          const v = buf[q]!;
          if (q !== p && v >= floor) {
            h.scores.push(heldOf[q]!.slot, v);
            added.push(v);
          }
        }
      }
    }
    // Columns: every kept person's templates against the fresh people (an index of them alone:
    // the same rows, so the same scores).
    if (fresh.length && fresh.length < n) {
      const freshIndex = buildIndex(
        fresh.map((p) => people[p]!),
        { rule: index.rule, k: index.k },
      );
      const fbuf = new Float32Array(fresh.length);
      for (let p = 0; p < n; p++) {
        if (!kept[p]) continue;
        const h = heldOf[p]!;
        for (const t of people[p]!.templates) {
          personScores(freshIndex, t, fbuf);
          for (let j = 0; j < fresh.length; j++) {
            const v = fbuf[j]!;
            if (v >= floor) {
              h.scores.push(heldOf[fresh[j]!]!.slot, v);
              added.push(v);
            }
          }
        }
      }
    }
    const top = mergeSorted(this.top, Float32Array.from(gone).sort(), Float32Array.from(added).sort());
    if (!top) {
      this.clear(); // cannot happen: the scores taken out are ones put in; start again rather than guess
      return this.update(entries, pool, scoring, index);
    }
    this.top = top;
    const m = people.reduce((s, e) => s + e.templates.length, 0) * Math.max(0, n - 1);
    return shiftOfTop(top, m, pool, {});
  }
}
