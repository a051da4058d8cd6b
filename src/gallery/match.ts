/**
 * 1:N scoring of a face descriptor against the gallery, and the threshold for a gallery's size.
 * Pure functions, no I/O.
 *
 * A person's score is the best cosine similarity over that person's templates (`best`), or the
 * mean of the best k (`top-k`), or the cosine to the unit centroid of the templates
 * (`centroid`). Per-photo templates keep the variety of the enrolment photos (pose, light,
 * glasses) that one centroid averages away. The index is one contiguous Float32Array of unit
 * rows, normalised once when the gallery changes, so a search is one pass over it.
 */
import {
  MARGIN_TARGET_FAR,
  scoringRules,
  unfittedVariant,
  variantName,
  type BuiltinDescriptorName,
  type FITTED_VARIANTS,
  type MARGIN_VARIANTS,
  type MESH_FITTED_VARIANTS,
  type MESH_MARGIN_VARIANTS,
  type ScoringRule,
  type ScoringVariant,
} from './config.js';
import { ConfigError } from '../shared/errors.js';
import { dotKernel, paddedStride, type DotKernel } from './kernel.js';

export interface GalleryEntry {
  readonly personId: string;
  readonly templates: readonly Float32Array[];
}

export { scoringRules, variantName, type ScoringRule, type ScoringVariant };

/** top-k's k where a gallery does not say (the kiosk's impostor tails for top-k are fitted with it). */
export const TOP_K = 2;

export interface ScoringOptions {
  /** How a person's templates make one score (default `best`). */
  readonly rule?: ScoringRule;
  /** top-k: how many of the person's best template scores are averaged (default 2). */
  readonly k?: number;
}

export interface GalleryIndex {
  readonly people: number;
  readonly dims: number;
  /** Floats per row of `matrix` (dims rounded up to 16, zero-padded). */
  readonly stride: number;
  /** Every template (or, for `centroid`, each person's centroid), unit length, back to back. */
  readonly matrix: Float32Array;
  /** Person index of each row; rows of one person are consecutive. */
  readonly owner: Int32Array;
  readonly personIds: readonly string[];
  readonly rule: ScoringRule;
  readonly k: number;
  /** The WebAssembly SIMD dot products over `matrix` (null where WebAssembly SIMD is missing). */
  readonly kernel: DotKernel | null;
}

export interface GalleryHit {
  readonly personId: string;
  readonly score: number;
}

export interface SearchResult {
  readonly best: GalleryHit | null;
  readonly second: GalleryHit | null;
}

/** Writes the unit-length copy of `v` into `out` at `offset`; a zero vector stays zero. */
function writeUnit(v: Float32Array, out: Float32Array, offset: number): void {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
  for (let i = 0; i < v.length; i++) out[offset + i] = v[i]! * inv;
}

export function buildIndex(entries: readonly GalleryEntry[], o: ScoringOptions = {}): GalleryIndex {
  const rule = o.rule ?? 'best';
  const k = o.k ?? TOP_K;
  if (!(Number.isInteger(k) && k >= 1)) throw new RangeError(`top-k needs a whole k ≥ 1, got ${k}`);
  const dims = entries.find((e) => e.templates.length)?.templates[0]?.length ?? 0;
  for (const e of entries)
    for (const t of e.templates)
      if (t.length !== dims)
        throw new RangeError(
          `a template of ${e.personId} has ${t.length} values, the gallery ${dims}: templates of one gallery must come from one descriptor model`,
        );
  const people = entries.filter((e) => e.templates.length > 0);
  const rows = rule === 'centroid' ? people.length : people.reduce((n, e) => n + e.templates.length, 0);
  const stride = paddedStride(dims);
  const kernel = dotKernel(rows, stride);
  const matrix = kernel ? kernel.matrix : new Float32Array(rows * stride);
  const owner = new Int32Array(rows);
  let r = 0;
  people.forEach((e, p) => {
    if (rule === 'centroid') {
      const sum = new Float32Array(dims);
      const unit = new Float32Array(dims);
      for (const t of e.templates) {
        writeUnit(t, unit, 0);
        for (let i = 0; i < dims; i++) sum[i] = sum[i]! + unit[i]!;
      }
      writeUnit(sum, matrix, r * stride);
      owner[r++] = p;
      return;
    }
    for (const t of e.templates) {
      writeUnit(t, matrix, r * stride);
      owner[r++] = p;
    }
  });
  return {
    people: people.length,
    dims,
    stride,
    matrix,
    owner,
    personIds: people.map((e) => e.personId),
    rule,
    k,
    kernel,
  };
}

/** The dot product of the unit probe with every row (the kernel's, or a JS loop). */
function rowDots(index: GalleryIndex, probe: Float32Array): Float32Array {
  const { matrix, owner, dims, stride, kernel } = index;
  let s = 0;
  for (let i = 0; i < dims; i++) s += probe[i]! * probe[i]!;
  const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
  if (kernel) {
    for (let i = 0; i < dims; i++) kernel.probe[i] = probe[i]! * inv;
    kernel.run();
    return kernel.out;
  }
  const rows = owner.length;
  const out = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const o = r * stride;
    let d0 = 0;
    let d1 = 0;
    let d2 = 0;
    let d3 = 0;
    let i = 0;
    for (; i + 3 < dims; i += 4) {
      d0 += matrix[o + i]! * probe[i]!;
      d1 += matrix[o + i + 1]! * probe[i + 1]!;
      d2 += matrix[o + i + 2]! * probe[i + 2]!;
      d3 += matrix[o + i + 3]! * probe[i + 3]!;
    }
    for (; i < dims; i++) d0 += matrix[o + i]! * probe[i]!;
    out[r] = (d0 + d1 + d2 + d3) * inv;
  }
  return out;
}

/**
 * Every person's score for a probe, in index order (`scores[i]` is `index.personIds[i]`'s).
 * `out` (length ≥ people) may be passed to avoid an allocation per call.
 */
export function personScores(index: GalleryIndex, probe: Float32Array, out?: Float32Array): Float32Array {
  const { owner, dims, people, rule, k } = index;
  if (probe.length !== dims)
    throw new RangeError(
      `the probe has ${probe.length} values, the gallery's templates ${dims}: describe it with the gallery's model`,
    );
  const scores = out ?? new Float32Array(people);
  if (people === 0) return scores;
  const dots = rowDots(index, probe);
  const rows = owner.length;
  const top = new Float64Array(k);
  // Rows of one person are consecutive: fold each run of rows into the person's score.
  let r = 0;
  while (r < rows) {
    const who = owner[r]!;
    let best = -Infinity;
    let n = 0;
    for (; r < rows && owner[r] === who; r++) {
      const dot = dots[r]!;
      if (dot > best) best = dot;
      if (rule === 'top-k' && (n < k || dot > top[k - 1]!)) {
        // insert into the descending list of the person's k best
        let j = n < k ? n++ : k - 1;
        while (j > 0 && top[j - 1]! < dot) {
          top[j] = top[j - 1]!;
          j--;
        }
        top[j] = dot;
      }
    }
    if (rule === 'top-k') {
      let sum = 0;
      for (let j = 0; j < n; j++) sum += top[j]!;
      scores[who] = sum / n;
    } else scores[who] = best;
  }
  return scores;
}

/** The best and second-best person for a probe (each person counted once); null where there is none. */
export function search(index: GalleryIndex, probe: Float32Array): SearchResult {
  if (index.people === 0 || index.dims === 0) return { best: null, second: null };
  const scores = personScores(index, probe);
  let b = -1;
  let s = -1;
  for (let i = 0; i < scores.length; i++) {
    const v = scores[i]!;
    if (b < 0 || v > scores[b]!) {
      s = b;
      b = i;
    } else if (s < 0 || v > scores[s]!) s = i;
  }
  const hit = (i: number): GalleryHit | null => (i < 0 ? null : { personId: index.personIds[i]!, score: scores[i]! });
  return { best: hit(b), second: hit(s) };
}

/**
 * The upper tail of a descriptor's impostor scores against ONE enrolled person (a stranger's
 * face scored against a person's templates): P(score > t) = q0 · exp(−(t − t0) / beta) for
 * t ≥ t0 — an exponential (generalised Pareto, shape 0) tail above the (1 − q0) quantile t0,
 * beta the mean excess over t0 (its maximum-likelihood estimate).
 */
export interface ImpostorTail {
  readonly t0: number;
  readonly q0: number;
  readonly beta: number;
}

/**
 * faceres (`@vladmandic/human`), box alignment (margin 1.3, eyes levelled), no flip, `best`
 * of 3 templates, no score normalisation. Measured on 2 December 2026 with
 * `facegate eval --gallery --fit-impostors` on the impostor pool of the gallery protocol
 * (docs/recognition-accuracy.md): the 590 LFW people with 3–5 photos, each enrolled alone
 * with their first 3 photos and scored against every photo (detected and aligned by the
 * pipeline) of the other 1,368 people with 2–5 photos — 2,203,829 impostor scores. No enrolled
 * person, probe or stranger of the evaluation is among them.
 */
export const FACERES_IMPOSTOR_TAIL: ImpostorTail = { t0: 0.5958, q0: 0.01, beta: 0.0256 };

/**
 * dlib's ResNet descriptor (weights from `@vladmandic/face-api`), dlib's landmark alignment
 * (150×150), no flip, `best` of 3 templates, no score normalisation: fitted on the same
 * impostor pool as FACERES_IMPOSTOR_TAIL (590 people enrolled alone, 2,203,829 impostor
 * scores), measured on 2 December 2026, with t0 at the 99.9th percentile (q0 0.001). Its
 * impostor scores sit much higher than faceres's (t0) but fall off far faster (beta).
 *
 * Anchored at the 99th percentile instead (t0 0.9159, beta 0.0075), the tail overshot the
 * pool's own quantiles where a gallery needs them: 0.9679 against 0.9576 at one in 100,000
 * (1,000 people at FAR 1 %), so a 1,000-person gallery let 0.10 % of strangers in and
 * refused 73 % of its people. Anchored at 0.001 it gives 0.9596 there (0.9461 vs 0.9459 at
 * one in 10,000).
 */
export const DLIB_IMPOSTOR_TAIL: ImpostorTail = { t0: 0.9327, q0: 0.001, beta: 0.0059 };

/*
 * dlib's tails for the other scoring variants: the same descriptor, alignment and impostor
 * pool as DLIB_IMPOSTOR_TAIL (590 people enrolled alone with 3 templates, 2,203,829 impostor
 * scores, q0 0.001), measured on 2 December 2026 with `facegate eval --gallery --flip
 * --rule … --fit-impostors`. "flip": each template and probe is the unit mean of the crop's
 * and its mirror's descriptors. Each fit against the pool's own quantiles, at one in 10,000
 * and one in 100,000 (100 and 1,000 people at FAR 1 %): the tail is within 0.0004 at the
 * first and 0.0019–0.0025 above at the second (strict), as for DLIB_IMPOSTOR_TAIL.
 */

/** dlib, flip, `best`: 0.9485 vs the pool's 0.9485 at 1e-4; 0.9614 vs 0.9595 at 1e-5. */
export const DLIB_FLIP_IMPOSTOR_TAIL: ImpostorTail = { t0: 0.9355, q0: 0.001, beta: 0.0056 };

/** dlib, flip, `centroid` (of the unit templates): 0.9516 vs 0.9514 at 1e-4; 0.9643 vs 0.9624 at 1e-5. */
export const DLIB_FLIP_CENTROID_IMPOSTOR_TAIL: ImpostorTail = { t0: 0.939, q0: 0.001, beta: 0.0055 };

/** dlib, flip, `top-k` with k 2 (TOP_K): 0.9442 vs 0.9438 at 1e-4; 0.9583 vs 0.9558 at 1e-5. */
export const DLIB_FLIP_TOP2_IMPOSTOR_TAIL: ImpostorTail = { t0: 0.93, q0: 0.001, beta: 0.0061 };

/** dlib, no flip, `centroid`: 0.9495 vs 0.9494 at 1e-4; 0.9622 vs 0.9603 at 1e-5. */
export const DLIB_CENTROID_IMPOSTOR_TAIL: ImpostorTail = { t0: 0.9369, q0: 0.001, beta: 0.0055 };

/** A descriptor's fitted impostor tails, by variantName: only these variants can be run. */
export type ImpostorTails = Readonly<Partial<Record<string, ImpostorTail>>>;

/**
 * faceres, flip, `centroid`: the same pool and protocol as FACERES_IMPOSTOR_TAIL, fitted at
 * q0 0.001 on 2 December 2026 (`--descriptor faceres --flip --rule centroid --fit-impostors`):
 * 0.7300 vs the pool's 0.7297 at 1e-4; 0.7747 vs 0.7570 at 1e-5 (strict).
 */
export const FACERES_FLIP_CENTROID_IMPOSTOR_TAIL: ImpostorTail = { t0: 0.6853, q0: 0.001, beta: 0.0194 };

/** The built-in descriptors' fitted tails (each fit measured as its constant's comment says). */
export const BUILTIN_IMPOSTOR_TAILS: {
  readonly [D in BuiltinDescriptorName]: Readonly<Record<(typeof FITTED_VARIANTS)[D][number], ImpostorTail>>;
} = {
  dlib: {
    best: DLIB_IMPOSTOR_TAIL,
    centroid: DLIB_CENTROID_IMPOSTOR_TAIL,
    'flip+best': DLIB_FLIP_IMPOSTOR_TAIL,
    'flip+top-k': DLIB_FLIP_TOP2_IMPOSTOR_TAIL,
    'flip+centroid': DLIB_FLIP_CENTROID_IMPOSTOR_TAIL,
  },
  faceres: { best: FACERES_IMPOSTOR_TAIL, 'flip+centroid': FACERES_FLIP_CENTROID_IMPOSTOR_TAIL },
};

/** The tail a variant's threshold is read from; ConfigError naming the fitted variants when there is none. */
export function tailFor(tails: ImpostorTails, v: ScoringVariant, descriptor: string): ImpostorTail {
  const tail = tails[variantName(v)];
  if (!tail) throw new ConfigError(unfittedVariant(Object.keys(tails), v, descriptor) ?? '');
  return tail;
}

/**
 * Fits an ImpostorTail to impostor scores: t0 the (1 − q0) quantile, beta the mean excess above
 * it. The default q0 (0.001) puts the anchor among the probabilities a gallery needs (one
 * person in 1,000 to one in 100,000 for 10 to 1,000 people at FAR 1 %); it needs ≥ 10,000
 * scores.
 */
export function fitImpostorTail(scores: ArrayLike<number>, q0 = 0.001): ImpostorTail {
  const sorted = Float64Array.from(scores).sort();
  const n = sorted.length;
  const tailCount = Math.floor(n * q0);
  if (tailCount < 10)
    throw new RangeError(`fitting a tail at q0 = ${q0} needs ≥ ${Math.ceil(10 / q0)} impostor scores, got ${n}`);
  const t0 = sorted[n - tailCount - 1]!;
  let excess = 0;
  for (let i = n - tailCount; i < n; i++) excess += sorted[i]! - t0;
  return { t0, q0: tailCount / n, beta: excess / tailCount };
}

/**
 * The score above which a stranger passes one enrolled person with probability `p`. Fitted for
 * p ≤ q0; above q0 (galleries of under 10 people with q0 0.001) the exponential is carried down
 * below t0, which errs strict: for dlib at p 0.01 it gives 0.9191 where the pool's quantile is
 * 0.9159.
 */
export function tailQuantile(tail: ImpostorTail, p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`a probability in (0, 1) is needed, got ${p}`);
  return tail.t0 + tail.beta * Math.log(tail.q0 / p);
}

/**
 * The score a face must reach so that a stranger matches ANY of `people` enrolled people with
 * probability ≤ targetFar (default 1 %): each comparison may let in
 * 1 − (1 − targetFar)^(1/people) (the people are taken as independent, which errs on the safe
 * side), read from the descriptor's fitted impostor tail.
 */
export function thresholdForGallery(people: number, o: { targetFar?: number; tail?: ImpostorTail } = {}): number {
  const far = o.targetFar ?? 0.01;
  if (!(far > 0 && far < 1)) throw new RangeError(`targetFar must be in (0, 1), got ${far}`);
  const n = Math.max(1, people);
  const perPerson = -Math.expm1(Math.log1p(-far) / n);
  return tailQuantile(o.tail ?? FACERES_IMPOSTOR_TAIL, perPerson);
}

/**
 * dlib, flip, `centroid`, for a probe that is the unit mean of 4 photos of one person
 * (probe-side aggregation, src/decide/aggregate.ts): the pool and galleries of
 * DLIB_FLIP_CENTROID_IMPOSTOR_TAIL, each other pool person with ≥ 4 photos probing with the
 * mean of every 4 of their photos — 439,983 impostor scores, q0 0.001, measured on 3 December
 * 2026 (`facegate eval --gallery --fit-impostors` prints it). Means of 2, 3 and 5 photos
 * gave t0 0.9462, 0.9486, 0.9508 and beta 0.0050, 0.0047, 0.0039: a threshold for 249 people
 * at FAR 1 % of 0.9623, 0.9636, 0.9634 against this tail's 0.9644 (a single photo's: 0.9566).
 */
export const DLIB_FLIP_CENTROID_AGGREGATE_TAIL: ImpostorTail = { t0: 0.9497, q0: 0.001, beta: 0.0046 };

/**
 * faceres, flip, `centroid`, for the mean of 4 photos: fitted as DLIB_FLIP_CENTROID_AGGREGATE_TAIL
 * (439,983 scores, q0 0.001, 3 December 2026, `eval --gallery --descriptor faceres
 * --fit-impostors`); other numbers of photos were not fitted for faceres.
 */
export const FACERES_FLIP_CENTROID_AGGREGATE_TAIL: ImpostorTail = { t0: 0.7403, q0: 0.001, beta: 0.0207 };

/** The pool's impostor scores at upper-tail levels: `scores[i]` is exceeded by a share `levels[i]` of them. */
export interface PoolQuantiles {
  /** Upper-tail probabilities, descending (e.g. 0.1 … 1e-5). */
  readonly levels: readonly number[];
  readonly scores: readonly number[];
}

/**
 * gallery.adapt: the impostor pool's scores at upper-tail levels (src/gallery/adapt.ts), the
 * same 2,203,829 scores DLIB_FLIP_CENTROID_IMPOSTOR_TAIL was fitted on (590 pool people
 * enrolled alone with 3 photos, every photo of the other pool people), measured on
 * 3 December 2026 with `facegate eval --gallery --fit-impostors` ("impostor quantiles").
 */
export const DLIB_FLIP_CENTROID_POOL_QUANTILES: PoolQuantiles = {
  levels: [0.1, 0.03, 0.01, 0.003, 0.001, 3e-4, 1e-4, 3e-5, 1e-5],
  scores: [0.8961, 0.9122, 0.9227, 0.9319, 0.939, 0.9458, 0.9514, 0.9573, 0.9624],
};

/** The built-in descriptors' pool quantiles, by variantName (gallery.adapt runs only with these). */
export const BUILTIN_POOL_QUANTILES: {
  readonly [D in BuiltinDescriptorName]: Readonly<Partial<Record<string, PoolQuantiles>>>;
} = {
  dlib: { 'flip+centroid': DLIB_FLIP_CENTROID_POOL_QUANTILES },
  // faceres's (flip+centroid: 0.5437 … 0.7570 at the same levels) raised lfw-dev's colour
  // gallery by 0.0116 (FRR 30.0 → 35.4 %) and left the grey-scale sets unmoved: not shipped
  // (docs/decisions/recognition-accuracy.md).
  faceres: {},
};

/** The built-in descriptors' tails for aggregated probes, by variantName (only these variants aggregate). */
export const BUILTIN_AGGREGATE_TAILS: { readonly [D in BuiltinDescriptorName]: ImpostorTails } = {
  dlib: { 'flip+centroid': DLIB_FLIP_CENTROID_AGGREGATE_TAIL },
  faceres: { 'flip+centroid': FACERES_FLIP_CENTROID_AGGREGATE_TAIL },
};

/**
 * Frames an aggregated impostor probe pools (DLIB_FLIP_CENTROID_AGGREGATE_TAIL's), and the
 * share of the target FAR an aggregate may spend: it decides besides the single frames' vote,
 * so its threshold is calibrated ten times stricter (at 1 % for the gallery: 0.1 %).
 */
export const AGGREGATE_FIT_FRAMES = 4;
export const AGGREGATE_FAR_SHARE = 0.1;

/** The score the mean descriptor of a track must reach: thresholdForGallery at AGGREGATE_FAR_SHARE of the target FAR, from the aggregate tail. */
export function aggregateThreshold(people: number, tail: ImpostorTail, targetFar = 0.01): number {
  return thresholdForGallery(people, { targetFar: targetFar * AGGREGATE_FAR_SHARE, tail });
}

/**
 * `gallery.norm: margin`: the gallery is its own cohort. A face's score is its best person's
 * cosine plus `weight` times how far that person leads the runner-up, s1 + w · (s1 − s2): a
 * stranger's best match among many people seldom stands clear of the next one, and under one
 * camera, where every cross score runs high, the runner-up runs high with it. The threshold for
 * this score is read from a table fitted on the impostor pool for a range of gallery sizes;
 * outside that range (a cohort too small to say anything, or a gallery larger than the pool
 * could simulate) the raw cosine and the impostor tail's threshold are used.
 */
/** gallery.norm margin's weight of the lead (chosen among 0.25, 0.5, 0.75 and 1 on lfw-dev, docs/measurements/lfw-dev.md). */
export const MARGIN_WEIGHT = 0.5;

export interface MarginCalibration {
  /** w in s1 + w · (s1 − s2). */
  readonly weight: number;
  /** gallery.targetFar the table was fitted for. */
  readonly targetFar: number;
  /** Gallery sizes, ascending, and the threshold fitted at each (interpolated linearly in log size). */
  readonly people: readonly number[];
  readonly thresholds: readonly number[];
}

/**
 * dlib, flip, `centroid`, w 0.5, fitted on 3 December 2026 with `facegate eval --gallery
 * --fit-margin` (fitMarginThresholds in src/gallery/eval.ts) on the impostor pool of the
 * gallery protocol (lfw-dev people with 2–5 photos, never probes): 32 random galleries of 200
 * and of 300 pool people, 48 of 500, 64 of 1,000, every photo of the pool people left out a
 * stranger (47,232–95,951 stranger scores a size). At each size the threshold lets in the
 * share of those strangers that DLIB_FLIP_CENTROID_IMPOSTOR_TAIL's raw threshold lets in at
 * targetFar 1 % (0.68 / 0.74 / 0.72 / 0.61 %), never lower than a smaller size's, rounded up
 * to 4 decimals (fit: 0.96553, 0.96553, 0.96689, 0.97179; another seed moves them by ≤ 0.0003).
 * Below 200 people it is not used: on lfw-dev's 10-, 30- and 100-person galleries the margin
 * score let in more strangers than the raw one at the same pool rate.
 */
export const DLIB_FLIP_CENTROID_MARGIN: MarginCalibration = {
  weight: MARGIN_WEIGHT,
  targetFar: MARGIN_TARGET_FAR,
  people: [200, 300, 500, 1000],
  thresholds: [0.9656, 0.9656, 0.9669, 0.9718],
};

/** The built-in descriptors' margin calibrations, by variantName: `gallery.norm: margin` runs only with these. */
export const BUILTIN_MARGIN_CALIBRATIONS: {
  readonly [D in BuiltinDescriptorName]: Readonly<Record<(typeof MARGIN_VARIANTS)[D][number], MarginCalibration>>;
} = {
  dlib: { 'flip+centroid': DLIB_FLIP_CENTROID_MARGIN },
  faceres: {},
};

/*
 * dlib with gallery.landmarks mesh (its chip cut from the face mesh's dense landmarks on dlib's
 * 68-point mean face), flip, `centroid`: fitted on 3 December 2026 as the keypoint chip's
 * DLIB_FLIP_CENTROID_* were, on the same impostor pool (590 pool people enrolled alone with 3
 * photos, every photo of the other pool people: 2,203,829 scores; means of 4 photos: 439,983),
 * with `facegate eval --gallery --landmarks mesh --fit-impostors --fit-margin`
 * (docs/measurements/lfw-dev.md).
 */

/** The tail: 0.9511 vs the pool's 0.9510 at 1e-4; 0.9649 vs 0.9624 at 1e-5 (strict). */
export const DLIB_MESH_FLIP_CENTROID_IMPOSTOR_TAIL: ImpostorTail = { t0: 0.9373, q0: 0.001, beta: 0.006 };
/** The tail of a track's mean of 4 photos (decide.pool). */
export const DLIB_MESH_FLIP_CENTROID_AGGREGATE_TAIL: ImpostorTail = { t0: 0.9478, q0: 0.001, beta: 0.0054 };
/** The pool's quantiles (gallery.adapt), at POOL_QUANTILE_LEVELS. */
export const DLIB_MESH_FLIP_CENTROID_POOL_QUANTILES: PoolQuantiles = {
  levels: [0.1, 0.03, 0.01, 0.003, 0.001, 3e-4, 1e-4, 3e-5, 1e-5],
  scores: [0.8938, 0.91, 0.9206, 0.9301, 0.9373, 0.9447, 0.951, 0.9561, 0.9624],
};
/**
 * gallery.norm margin, fitted as DLIB_FLIP_CENTROID_MARGIN (the same draws): the raw threshold
 * lets in 0.70 / 0.65 / 0.67 / 0.53 % of the pool strangers at 200 / 300 / 500 / 1,000 people;
 * fit 0.96540, 0.96675, 0.96833, 0.97402, rounded up to 4 decimals.
 */
export const DLIB_MESH_FLIP_CENTROID_MARGIN: MarginCalibration = {
  weight: MARGIN_WEIGHT,
  targetFar: MARGIN_TARGET_FAR,
  people: [200, 300, 500, 1000],
  thresholds: [0.9654, 0.9668, 0.9684, 0.9741],
};

export const DLIB_MESH_IMPOSTOR_TAILS: Readonly<Record<(typeof MESH_FITTED_VARIANTS)[number], ImpostorTail>> = {
  'flip+centroid': DLIB_MESH_FLIP_CENTROID_IMPOSTOR_TAIL,
};
export const DLIB_MESH_AGGREGATE_TAILS: ImpostorTails = { 'flip+centroid': DLIB_MESH_FLIP_CENTROID_AGGREGATE_TAIL };
export const DLIB_MESH_POOL_QUANTILES: Readonly<Partial<Record<string, PoolQuantiles>>> = {
  'flip+centroid': DLIB_MESH_FLIP_CENTROID_POOL_QUANTILES,
};
export const DLIB_MESH_MARGIN_CALIBRATIONS: Readonly<Record<(typeof MESH_MARGIN_VARIANTS)[number], MarginCalibration>> =
  { 'flip+centroid': DLIB_MESH_FLIP_CENTROID_MARGIN };

/** s1 + w · (s1 − s2): the best person's score with its lead over the runner-up weighted in. */
export function marginScore(best: number, second: number, weight: number): number {
  return best + weight * (best - second);
}

/**
 * The margin score's threshold for a gallery of `people`: the table interpolated linearly in
 * log(people); null outside the table's sizes (the raw threshold applies there).
 */
export function marginThreshold(people: number, cal: MarginCalibration): number | null {
  const { people: sizes, thresholds } = cal;
  const first = sizes[0];
  const last = sizes[sizes.length - 1];
  if (first === undefined || last === undefined || people < first || people > last) return null;
  let i = 0;
  while (i < sizes.length - 2 && people > sizes[i + 1]!) i++;
  const n0 = sizes[i]!;
  const n1 = sizes[i + 1] ?? n0;
  const t0 = thresholds[i]!;
  const t1 = thresholds[i + 1] ?? t0;
  if (n1 === n0) return t0;
  return t0 + ((t1 - t0) * Math.log(people / n0)) / Math.log(n1 / n0);
}

/** How a gallery of a given size decides: the threshold, and the margin weight (null: the raw cosine is compared). */
export interface GalleryDecision {
  readonly threshold: number;
  readonly weight: number | null;
}

/**
 * The decision for a gallery of `people`: with a margin calibration fitted for targetFar and a
 * size inside its table, the margin score against its threshold; otherwise the best cosine
 * against thresholdForGallery's.
 */
export function galleryDecision(
  people: number,
  o: { targetFar?: number; tail?: ImpostorTail; margin?: MarginCalibration | null } = {},
): GalleryDecision {
  const far = o.targetFar ?? 0.01;
  const m = o.margin && o.margin.targetFar === far ? marginThreshold(people, o.margin) : null;
  if (o.margin && m !== null) return { threshold: m, weight: o.margin.weight };
  return { threshold: thresholdForGallery(people, { targetFar: far, tail: o.tail }), weight: null };
}

/** The score a search result is compared with the threshold by (−Infinity for an empty gallery). */
export function decisionScore(r: SearchResult, weight: number | null): number {
  if (!r.best) return -Infinity;
  if (weight === null || !r.second) return r.best.score;
  return marginScore(r.best.score, r.second.score, weight);
}
