/**
 * `facegate eval --gallery`: open-set 1:N recognition with a face gallery, as the kiosk does it
 * without a trained head. The protocol (src/recognise/protocol.ts) enrols people from their
 * first photos, probes with their other photos, and shows strangers; the figures are per frame
 * and per visit (a visit: a person's photos shown in turn, decided as the kiosk's Decider decides a track).
 *
 * Pure scoring lives here (`decideVisit`, `visitRates`); descriptors come from
 * src/recognise/descriptors.ts (cached on disk).
 */
import { dirname } from 'node:path';
import { meanDescriptor } from '../decide/aggregate.js';
import { galleryShift, POOL_QUANTILE_LEVELS, upperQuantiles, type AdaptiveShift, type PoolQuantiles } from './adapt.js';
import { decideTrack, type TrackFace } from '../decide/voting.js';
import { builtinSpec, marginFor, type BuiltinDescriptorSpec } from './descriptor.js';
import type { FaceAlignment } from '../detect/align.js';
import { DETECTOR_LONG_SIDE } from '../detect/blazeface.js';
import { DEFAULT_NORM, type GalleryLandmarks, type GalleryNorm } from './config.js';
import {
  AGGREGATE_FIT_FRAMES,
  aggregateThreshold,
  buildIndex,
  fitImpostorTail,
  galleryDecision,
  MARGIN_WEIGHT,
  marginScore,
  personScores,
  thresholdForGallery,
  TOP_K,
  variantName,
  type GalleryIndex,
  type ImpostorTail,
  type MarginCalibration,
  type ScoringOptions,
} from './match.js';
import { mulberry32, permutation } from '../train/rng.js';
import {
  descriptorOf,
  describeFiles,
  loadDescriptorModel,
  type DescriptorBackbone,
  type PhotoDescriptor,
} from '../recognise/descriptors.js';
import type { GalleryProtocol } from '../recognise/protocol.js';
import {
  errorCurve,
  equalErrorRate,
  errorRates,
  nextUp,
  thresholdForFar,
  type ErrorRates,
  type ScoredProbe,
} from '../recognise/thresholds.js';

/** One probe scored against every enrolled person. */
export interface ScoredFrame {
  /** Enrolled person's index, or −1 for a stranger. */
  readonly truth: number;
  readonly scores: Float32Array;
  /** The descriptor as scored (for pooling a visit's frames). */
  readonly descriptor?: Float32Array;
  /** A stranger's folder: the stranger photos of one folder make visits (visitRates). */
  readonly group?: string;
}

export interface VisitSettings {
  /** Frames of a visit (the vote's window n). */
  readonly n: number;
  /** Frames that must agree (k). */
  readonly k: number;
}

/**
 * Best person of a frame, optionally ignoring one person (that person then plays a stranger).
 * `score` is what the kiosk compares with the threshold: the best score, or with a margin
 * weight (gallery.norm margin) marginScore of the best and the runner-up.
 */
export function bestOf(
  scores: Float32Array,
  exclude = -1,
  weight: number | null = null,
): { who: number; score: number } {
  let who = -1;
  let score = -Infinity;
  let second = -Infinity;
  for (let i = 0; i < scores.length; i++) {
    if (i === exclude) continue;
    const v = scores[i]!;
    if (v > score) {
      second = score;
      score = v;
      who = i;
    } else if (v > second) second = v;
  }
  if (weight === null || second === -Infinity) return { who, score };
  return { who, score: marginScore(score, second, weight) };
}

/** How a visit's frames are scored: the frame threshold, the gallery.norm weight, and the pooled mean's gallery and threshold. */
export interface VisitScoring {
  readonly threshold: number;
  readonly weight?: number | null;
  /** decide.pool: the gallery the mean descriptor is searched in, and its threshold; absent: the vote alone. */
  readonly pool?: { readonly index: GalleryIndex; readonly threshold: number };
}

/**
 * A visit decided as the kiosk decides a track (decideTrack, src/decide/voting.ts, the code
 * the Decider runs): the frames in turn, "unknown" reported and the track still decided, the
 * first name given counts. `exclude` leaves one person out of the gallery (they play a
 * stranger). Returns the person named (index), null when no window names anyone.
 */
export function decideVisit(
  visit: readonly ScoredFrame[],
  s: VisitScoring,
  v: VisitSettings,
  exclude = -1,
): number | null {
  const { pool } = s;
  const faces = visit.map((f): TrackFace => {
    const b = bestOf(f.scores, exclude, s.weight ?? null);
    const vote = { label: b.score >= s.threshold ? String(b.who) : null, score: b.score, faceSize: NaN };
    if (!pool) return { vote };
    if (!f.descriptor) throw new RangeError('pooling frames needs their descriptors');
    return {
      vote,
      pool: {
        descriptor: f.descriptor,
        source: 'eval',
        score: (mean) => {
          const m = bestOf(personScores(pool.index, mean), exclude);
          return { label: m.score >= pool.threshold ? String(m.who) : null, score: m.score, margin: NaN };
        },
      },
    };
  });
  const named = decideTrack(faces, { k: v.k, n: v.n, pool: pool !== undefined });
  return named === null ? null : Number(named);
}

/** Splits a person's probes (in file order) into visits of n frames; a shorter rest is a visit when it has ≥ k frames. */
export function visitsOf<T>(frames: readonly T[], v: VisitSettings): T[][] {
  const out: T[][] = [];
  for (let s = 0; s < frames.length; s += v.n) {
    const chunk = frames.slice(s, s + v.n);
    if (chunk.length >= v.k) out.push(chunk);
  }
  return out;
}

export interface VisitRates {
  readonly genuineVisits: number;
  readonly strangerVisits: number;
  /** Genuine visits not ending in the right name. */
  readonly frr: number;
  /** Stranger visits (an enrolled person left out of the gallery) ending in a name. */
  readonly far: number;
  /** Visits of the strangers' photos (each folder's, in visits of n frames, ≥ k), against the whole gallery. */
  readonly otherVisits: number;
  /** Those ending in a name. */
  readonly otherFar: number;
}

/**
 * Per-visit rates: each enrolled person's probes, in visits of n frames, are genuine visits;
 * the same visits scored with that person left out of the gallery are stranger visits (real
 * strangers with several photos each, none of them in any calibration); and the strangers'
 * photos of one folder (`group`) make visits of their own. Each visit is decided as the
 * kiosk decides one track (decideVisit).
 */
export function visitRates(frames: readonly ScoredFrame[], s: VisitScoring, v: VisitSettings): VisitRates {
  const byPerson = new Map<number, ScoredFrame[]>();
  const byGroup = new Map<string, ScoredFrame[]>();
  for (const f of frames)
    if (f.truth >= 0) byPerson.set(f.truth, [...(byPerson.get(f.truth) ?? []), f]);
    else if (f.group !== undefined) byGroup.set(f.group, [...(byGroup.get(f.group) ?? []), f]);
  let genuine = 0;
  let fr = 0;
  let strangers = 0;
  let fa = 0;
  for (const [who, list] of byPerson) {
    for (const visit of visitsOf(list, v)) {
      genuine++;
      if (decideVisit(visit, s, v) !== who) fr++;
      strangers++;
      if (decideVisit(visit, s, v, who) !== null) fa++;
    }
  }
  let other = 0;
  let otherFa = 0;
  for (const list of byGroup.values())
    for (const visit of visitsOf(list, v)) {
      other++;
      if (decideVisit(visit, s, v) !== null) otherFa++;
    }
  return {
    genuineVisits: genuine,
    strangerVisits: strangers,
    frr: genuine ? fr / genuine : 0,
    far: strangers ? fa / strangers : 0,
    otherVisits: other,
    otherFar: other ? otherFa / other : 0,
  };
}

/**
 * Per-frame FAR with each enrolled person in turn playing a stranger: their probes scored
 * against everyone else (an open-set figure that needs no stranger folder).
 */
export function leaveOneOutFar(
  frames: readonly ScoredFrame[],
  threshold: number,
  weight: number | null = null,
): number {
  let n = 0;
  let fa = 0;
  for (const f of frames) {
    if (f.truth < 0) continue;
    n++;
    if (bestOf(f.scores, f.truth, weight).score >= threshold) fa++;
  }
  return n ? fa / n : 0;
}

/** Per-frame probes for the threshold curve: best person and score. */
export function scoredProbes(frames: readonly ScoredFrame[], weight: number | null = null): ScoredProbe[] {
  return frames.map((f) => {
    const b = bestOf(f.scores, -1, weight);
    return { truth: f.truth >= 0 ? String(f.truth) : null, predicted: String(b.who), score: b.score };
  });
}

/** FRR where the impostor scores' FAR is at most `far` (the threshold read off those scores). */
export function frrAtFar(probes: readonly ScoredProbe[], impostorScores: readonly number[], far: number): ErrorRates {
  const r = errorRates(probes, thresholdForFar(impostorScores, far));
  return { ...r, far: impostorScores.filter((x) => x >= r.threshold).length / impostorScores.length };
}

/** Impostor scores: the strangers' best scores, or (with no strangers) each probe's best other person. */
export function impostorScores(frames: readonly ScoredFrame[], weight: number | null = null): number[] {
  const strangers = frames.filter((f) => f.truth < 0).map((f) => bestOf(f.scores, -1, weight).score);
  return strangers.length ? strangers : frames.map((f) => bestOf(f.scores, f.truth, weight).score);
}

export interface GalleryEvalOptions {
  readonly protocol: GalleryProtocol;
  readonly backbone: DescriptorBackbone;
  readonly alignment: FaceAlignment;
  readonly flip: boolean;
  readonly scoring: ScoringOptions;
  /** gallery.norm: margin compares marginScore with its calibrated threshold where the calibration covers the gallery's size. */
  readonly norm?: GalleryNorm;
  readonly targetFar: number;
  /** Fixed threshold instead of thresholdForGallery(enrolled people). */
  readonly threshold?: number;
  readonly visit: VisitSettings;
  /** Also fit the impostor tail on the protocol's pool. */
  readonly fitImpostors: boolean;
  /** gallery.adapt: raise the thresholds by how far the gallery's cross scores sit above the pool's (where the variant has pool quantiles). */
  readonly adapt?: boolean;
  /** Also fit gallery.norm margin's threshold table on the pool (fitMarginThresholds, MARGIN_FIT). */
  readonly fitMargin?: boolean;
  readonly threads?: number;
  /** The detector input's longer side (model.detectorSize). */
  readonly detectorSize?: number;
  /**
   * The detector's longer side for the templates only (the enrolled people's photos and, with
   * fitImpostors, the pool people's first photos); default detectorSize. A gallery enrolled at
   * one size and searched at another.
   */
  readonly enrolDetectorSize?: number;
  readonly onProgress?: (done: number, total: number) => void;
}

export interface GalleryEvalResult {
  readonly settings: {
    readonly backbone: string;
    readonly alignment: FaceAlignment;
    readonly flip: boolean;
    readonly scoring: ScoringOptions;
    /** The score compared with the threshold: the best cosine (none) or the margin score (margin). */
    readonly norm: GalleryNorm;
    readonly minPhotos: number;
    readonly enrolPerPerson: number;
    readonly visit: VisitSettings;
    readonly targetFar: number;
  };
  readonly enrolled: number;
  readonly genuineProbes: number;
  readonly strangerProbes: number;
  /** Photos in which no face was found (not scored; a genuine one counts as a reject in frrIncludingNotFound). */
  readonly facesNotFound: { readonly genuine: number; readonly strangers: number; readonly enrolment: number };
  readonly threshold: number;
  /** gallery.adapt: how much the thresholds were raised (in `threshold` and the pooled one), and at which level; null when not adapted. */
  readonly adapt: AdaptiveShift | null;
  /** Where the calibrated threshold's impostor tail came from (`given` with a fixed threshold). */
  readonly thresholdTail: string;
  readonly frame: ErrorRates;
  /** Per-frame FAR of enrolled people's probes against everyone else (leave-one-out). */
  readonly leaveOneOutFar: number;
  readonly frrIncludingNotFound: number;
  readonly visit: VisitRates;
  /** Per visit with the window's frames pooled (decideWindow), at the aggregate threshold; null without an aggregate tail. */
  readonly pooled: { readonly threshold: number; readonly thresholdTail: string; readonly visit: VisitRates } | null;
  readonly atFar: { readonly far001: ErrorRates; readonly far01: ErrorRates };
  readonly eer: ErrorRates | null;
  readonly curve: readonly ErrorRates[];
  /** The impostor tail fitted on the pool (with --fit-impostors). */
  readonly impostorTail:
    (ImpostorTail & { readonly scores: number; readonly people: number; readonly quantiles?: PoolQuantiles }) | null;
  /** The tail of pooled probes (means of AGGREGATE_FIT_FRAMES photos) fitted on the pool (with --fit-impostors). */
  readonly aggregateTail: (ImpostorTail & { readonly scores: number; readonly people: number }) | null;
  /** gallery.norm margin's thresholds fitted on the pool (with --fit-margin). */
  readonly marginFit: MarginFit | null;
}

/** How `--fit-margin` fits: the gallery sizes of the table, the draws per size, the weight and the seed. */
export const MARGIN_FIT = {
  sizes: [200, 300, 500, 1000],
  draws: (people: number): number => (people >= 1000 ? 64 : people >= 500 ? 48 : 32),
  weight: MARGIN_WEIGHT,
  seed: 1,
} as const;

/**
 * The photos the templates are cut from: the enrolled people's and, with `pool`, the first
 * `enrolPerPerson` of each pool person who has that many (poolImpostorScores' galleries).
 */
export function templateFiles(p: GalleryProtocol, pool: boolean): string[] {
  const poolTemplates = pool
    ? p.pool.filter((x) => x.files.length >= p.enrolPerPerson).flatMap((x) => x.files.slice(0, p.enrolPerPerson))
    : [];
  return [...p.enrolled.flatMap((x) => x.files), ...poolTemplates];
}

export async function evaluateGallery(o: GalleryEvalOptions): Promise<GalleryEvalResult> {
  const p = o.protocol;
  const probeSize = o.detectorSize ?? DETECTOR_LONG_SIDE;
  const enrolSize = o.enrolDetectorSize ?? probeSize;
  const mixed = enrolSize !== probeSize;
  if (o.fitMargin && mixed)
    throw new RangeError(
      'the margin thresholds are fitted at one detector size: leave out the enrolment detector size (--enrol-detector-size) with --fit-margin',
    );
  const poolFiles = o.fitImpostors || o.fitMargin ? p.pool.flatMap((x) => x.files) : [];
  // The enrolment photos at the probes' size only where they are templates at that size.
  const files = [
    ...(mixed ? [] : p.enrolled.flatMap((x) => x.files)),
    ...p.probes.flatMap((x) => x.files),
    ...p.strangers,
    ...poolFiles,
  ];
  const enrolFiles = mixed ? templateFiles(p, o.fitImpostors) : [];
  const model = await loadDescriptorModel(o.backbone, { threads: o.threads });
  let described;
  let enrolDescribed;
  try {
    const common = { model, alignment: o.alignment, threads: o.threads, onProgress: o.onProgress };
    described = await describeFiles(files, { ...common, detectorSize: probeSize });
    enrolDescribed = mixed ? await describeFiles(enrolFiles, { ...common, detectorSize: enrolSize }) : [];
  } finally {
    await model.close();
  }
  const lookup = (fs: readonly string[], ds: readonly (PhotoDescriptor | null)[]) => {
    const byFile = new Map(fs.map((f, i) => [f, ds[i] ?? null]));
    return (f: string): Float32Array | null => {
      const d = byFile.get(f);
      return d ? descriptorOf(d, o.flip) : null;
    };
  };
  const vec = lookup(files, described);
  // Templates: at the enrolment size where it differs.
  const enrolVec = mixed ? lookup(enrolFiles, enrolDescribed) : vec;
  let notFoundEnrol = 0;
  const entries = p.enrolled.map((e) => {
    const templates: Float32Array[] = [];
    for (const f of e.files) {
      const v = enrolVec(f);
      if (v) templates.push(v);
      else notFoundEnrol++;
    }
    return { personId: e.person, templates };
  });
  const index = buildIndex(entries, o.scoring);
  const personIndex = new Map(index.personIds.map((id, i) => [id, i]));
  const frames: ScoredFrame[] = [];
  let notFoundGenuine = 0;
  let notFoundStrangers = 0;
  let genuineTotal = 0;
  for (const probe of p.probes) {
    const who = personIndex.get(probe.person);
    if (who === undefined) continue; // no enrolment photo had a face
    for (const f of probe.files) {
      genuineTotal++;
      const v = vec(f);
      if (!v) notFoundGenuine++;
      else frames.push({ truth: who, scores: personScores(index, v), descriptor: v });
    }
  }
  for (const f of p.strangers) {
    const v = vec(f);
    if (!v) notFoundStrangers++;
    else frames.push({ truth: -1, scores: personScores(index, v), descriptor: v, group: dirname(f) });
  }
  let impostorTail: GalleryEvalResult['impostorTail'] = null;
  let aggregateTail: GalleryEvalResult['impostorTail'] = null;
  if (o.fitImpostors) {
    const scores = poolImpostorScores(p, vec, o.scoring, o.protocol.enrolPerPerson, 1, enrolVec);
    impostorTail = {
      ...fitImpostorTail(scores.scores),
      scores: scores.scores.length,
      people: scores.people,
      quantiles: { levels: [...POOL_QUANTILE_LEVELS], scores: upperQuantiles(scores.scores, POOL_QUANTILE_LEVELS) },
    };
    const pooled = poolImpostorScores(p, vec, o.scoring, o.protocol.enrolPerPerson, AGGREGATE_FIT_FRAMES, enrolVec);
    aggregateTail = { ...fitImpostorTail(pooled.scores), scores: pooled.scores.length, people: pooled.people };
  }
  const { tail, tailSource } = calibrationTail(o, impostorTail);
  const marginFit = o.fitMargin
    ? fitMarginThresholds(p, vec, {
        ...MARGIN_FIT,
        scoring: o.scoring,
        enrol: o.protocol.enrolPerPerson,
        tail,
        targetFar: o.targetFar,
      })
    : null;
  const kiosk = kioskCalibrations(o);
  const margin = kiosk.margin;
  const decision = galleryDecision(index.people, { targetFar: o.targetFar, tail, margin });
  // A given threshold is compared with the score gallery.norm asks for, at any size.
  const weight = margin && o.threshold !== undefined ? margin.weight : decision.weight;
  const quantiles = o.adapt && o.threshold === undefined ? (kiosk.poolQuantiles ?? null) : null;
  const adapted = quantiles ? galleryShift(entries, quantiles, o.scoring, index) : null;
  const shift = adapted?.shift ?? 0;
  const threshold = o.threshold ?? decision.threshold + shift;
  // The pooled probe's tail: the kiosk's for this variant, else this run's fit; none: no pooling.
  const poolTail = kiosk.aggregateTail
    ? { tail: kiosk.aggregateTail, tailSource: `${kiosk.name}'s ${kiosk.variant} aggregate tail` }
    : aggregateTail
      ? { tail: aggregateTail, tailSource: "this run's fit (no kiosk aggregate tail for this variant)" }
      : null;
  let pooled: GalleryEvalResult['pooled'] = null;
  if (poolTail) {
    const t = aggregateThreshold(index.people, poolTail.tail, o.targetFar) + shift;
    const visit = visitRates(frames, { threshold, weight, pool: { index, threshold: t } }, o.visit);
    pooled = { threshold: t, thresholdTail: poolTail.tailSource, visit };
  }
  const probes = scoredProbes(frames, weight);
  const impostors = impostorScores(frames, weight);
  const frame = errorRates(probes, threshold);
  const genuineFound = frames.filter((f) => f.truth >= 0).length;
  const correct = Math.round(frame.accuracy * genuineFound);
  const curve = errorCurve(probes, 400);
  return {
    settings: {
      backbone: o.backbone,
      alignment: o.alignment,
      flip: o.flip,
      scoring: { rule: index.rule, ...(index.rule === 'top-k' ? { k: index.k } : {}) },
      norm: weight === null ? 'none' : 'margin',
      minPhotos: p.minPhotos,
      enrolPerPerson: p.enrolPerPerson,
      visit: o.visit,
      targetFar: o.targetFar,
    },
    enrolled: index.people,
    genuineProbes: genuineTotal,
    strangerProbes: p.strangers.length,
    facesNotFound: { genuine: notFoundGenuine, strangers: notFoundStrangers, enrolment: notFoundEnrol },
    threshold,
    adapt: adapted,
    thresholdTail:
      o.threshold !== undefined
        ? 'given'
        : weight !== null
          ? `the ${variantName({ flip: o.flip, rule: o.scoring.rule ?? 'best' })} margin calibration (w ${weight})`
          : tailSource,
    frame,
    leaveOneOutFar: leaveOneOutFar(frames, threshold, weight),
    frrIncludingNotFound: genuineTotal ? (genuineTotal - correct) / genuineTotal : 0,
    visit: visitRates(frames, { threshold, weight }, o.visit),
    pooled,
    atFar: { far001: frrAtFar(probes, impostors, 0.001), far01: frrAtFar(probes, impostors, 0.01) },
    eer: equalErrorRate(curve),
    curve,
    impostorTail,
    aggregateTail,
    marginFit,
  };
}

/**
 * The tail the calibrated threshold is read from: the kiosk's, fitted for this descriptor, flip
 * and rule (faceres's for the development-only backbones); for a variant the kiosk has none
 * for, this run's fit (--fit-impostors), else the no-flip `best` tail, which the source says.
 */
export function calibrationTail(
  o: Pick<GalleryEvalOptions, 'backbone' | 'flip' | 'scoring'> & Partial<Pick<GalleryEvalOptions, 'alignment'>>,
  fitted: ImpostorTail | null,
): { tail: ImpostorTail; tailSource: string } {
  const name = o.backbone === 'dlib' ? 'dlib' : 'faceres';
  const tails = builtinSpec(name, landmarksOf(o)).impostorTails;
  const rule = o.scoring.rule ?? 'best';
  const variant = { flip: o.flip, rule };
  const kiosk = rule === 'top-k' && (o.scoring.k ?? TOP_K) !== TOP_K ? undefined : tails[variantName(variant)];
  if (kiosk) return { tail: kiosk, tailSource: `${name}'s ${variantName(variant)} tail` };
  if (fitted) return { tail: fitted, tailSource: "this run's fit (no kiosk tail for this variant)" };
  const best = tails.best;
  if (!best) throw new RangeError(`no impostor tail for ${name}`);
  return { tail: best, tailSource: `${name}'s best tail (none fitted for this variant)` };
}

/** The kiosk's gallery.landmarks for an evaluated alignment: mesh for the mesh chip, else keypoints. */
function landmarksOf(o: { readonly alignment?: FaceAlignment }): GalleryLandmarks {
  return o.alignment?.method === 'mesh' ? 'mesh' : 'keypoints';
}

/** Every choice of m items of `items` (in order). */
export function combinations<T>(items: readonly T[], m: number): T[][] {
  if (m === 0) return [[]];
  const out: T[][] = [];
  for (let i = 0; i + m <= items.length; i++)
    for (const rest of combinations(items.slice(i + 1), m - 1)) out.push([items[i]!, ...rest]);
  return out;
}

/**
 * The kiosk's calibrations for this descriptor, flip and rule beyond its impostor tail, looked
 * up once: the pooled-probe tail and the pool quantiles (gallery.adapt), each absent where none
 * is fitted, and the margin calibration `--norm` asks for (marginFor: null for none, ConfigError
 * where margin has none). A top-k other than the kiosk's k has none of them.
 */
export function kioskCalibrations(
  o: Pick<GalleryEvalOptions, 'backbone' | 'flip' | 'scoring' | 'norm'> &
    Partial<Pick<GalleryEvalOptions, 'alignment'>>,
): {
  readonly name: string;
  readonly variant: string;
  readonly aggregateTail?: ImpostorTail;
  readonly poolQuantiles?: PoolQuantiles;
  readonly margin: MarginCalibration | null;
} {
  const name = o.backbone === 'dlib' ? 'dlib' : 'faceres';
  const v = { flip: o.flip, rule: o.scoring.rule ?? 'best' };
  const variant = variantName(v);
  const otherK = v.rule === 'top-k' && (o.scoring.k ?? TOP_K) !== TOP_K;
  const spec: Pick<BuiltinDescriptorSpec, 'marginCalibrations' | 'aggregateTails' | 'poolQuantiles'> = otherK
    ? { marginCalibrations: {} }
    : builtinSpec(name, landmarksOf(o));
  const aggregateTail = spec.aggregateTails?.[variant];
  const poolQuantiles = spec.poolQuantiles?.[variant];
  return {
    name,
    variant,
    ...(aggregateTail ? { aggregateTail } : {}),
    ...(poolQuantiles ? { poolQuantiles } : {}),
    margin: marginFor(o.norm ?? DEFAULT_NORM, spec, v, o.backbone),
  };
}

/** gallery.norm margin's threshold table as fitted on the pool (MarginCalibration), with what each size's fit rests on. */
export interface MarginFit extends MarginCalibration {
  /** Stranger scores at each size (all draws together). */
  readonly strangers: readonly number[];
  /** The share of them the raw threshold (the impostor tail's) lets in, which the margin threshold matches. */
  readonly rawFar: readonly number[];
}

/**
 * Fits gallery.norm margin's thresholds on the pool, never on probes: for each gallery size N,
 * `draws(N)` galleries of N pool people drawn at random (people with ≥ `enrol` photos first,
 * enrolled with their first `enrol`, then people with fewer, enrolled with all of theirs);
 * every photo of the pool people left out is a stranger. The threshold lets in no larger a
 * share of those strangers (by their margin score) than the tail's raw threshold for N lets in
 * by their best cosine: where the margin score sorts faces better, the same strangers pass and
 * fewer known faces are refused. Where the raw threshold's share dips at a larger size, the
 * smaller size's threshold is kept. Seeded: the same pool gives the same table.
 */
export function fitMarginThresholds(
  p: GalleryProtocol,
  vec: (file: string) => Float32Array | null,
  o: {
    readonly scoring: ScoringOptions;
    readonly enrol: number;
    readonly sizes: readonly number[];
    readonly draws: (people: number) => number;
    readonly weight: number;
    readonly tail: ImpostorTail;
    readonly targetFar: number;
    readonly seed?: number;
  },
): MarginFit {
  const pool = p.pool
    .map((x) => ({ person: x.person, v: x.files.map(vec).filter((v) => v !== null) }))
    .filter((x) => x.v.length > 0);
  const rng = mulberry32(o.seed ?? 1);
  const thresholds: number[] = [];
  const strangers: number[] = [];
  const rawFar: number[] = [];
  for (const n of o.sizes) {
    if (n >= pool.length)
      throw new RangeError(`a gallery of ${n} people needs a larger pool (${pool.length} people with a face found)`);
    const raw = thresholdForGallery(n, { targetFar: o.targetFar, tail: o.tail });
    const margins: number[] = [];
    let rawPass = 0;
    for (let d = 0; d < o.draws(n); d++) {
      const order = permutation(pool.length, rng).map((i) => pool[i]!);
      const ranked = [...order.filter((x) => x.v.length >= o.enrol), ...order.filter((x) => x.v.length < o.enrol)];
      const index = buildIndex(
        ranked.slice(0, n).map((x) => ({ personId: x.person, templates: x.v.slice(0, o.enrol) })),
        o.scoring,
      );
      const scores = new Float32Array(index.people);
      for (const x of ranked.slice(n))
        for (const v of x.v) {
          const b = bestOf(personScores(index, v, scores), -1, o.weight);
          margins.push(b.score);
          if (scores[b.who]! >= raw) rawPass++;
        }
    }
    margins.sort((a, b) => b - a);
    // The rawPass-th highest margin score is refused: at most rawPass strangers pass; and a
    // larger gallery never gets a lower threshold than a smaller one (the strict side).
    thresholds.push(Math.max(nextUp(margins[rawPass] ?? -Infinity), thresholds[thresholds.length - 1] ?? -Infinity));
    strangers.push(margins.length);
    rawFar.push(margins.length ? rawPass / margins.length : 0);
  }
  return { weight: o.weight, targetFar: o.targetFar, people: [...o.sizes], thresholds, strangers, rawFar };
}

/**
 * Impostor scores on the pool: each pool person with ≥ `enrol` photos is enrolled alone with
 * their first `enrol` photos and scored against every photo of every other pool person — or,
 * with `frames` > 1, against the mean descriptor of every `frames` photos of every other pool
 * person with that many (pooled probes). Templates come from `enrolVec` (default `vec`): a
 * gallery enrolled at another detector size than its probes.
 */
export function poolImpostorScores(
  p: GalleryProtocol,
  vec: (file: string) => Float32Array | null,
  scoring: ScoringOptions,
  enrol: number,
  frames = 1,
  enrolVec: (file: string) => Float32Array | null = vec,
): { scores: Float32Array; people: number } {
  const photos: { person: string; v: Float32Array }[] = [];
  for (const x of p.pool) {
    const vs = x.files.map(vec).filter((v) => v !== null);
    if (frames === 1) for (const v of vs) photos.push({ person: x.person, v });
    else for (const c of combinations(vs, frames)) photos.push({ person: x.person, v: meanDescriptor(c) });
  }
  const galleries = p.pool
    .filter((x) => x.files.length >= enrol)
    .map((x) => ({
      personId: x.person,
      templates: x.files
        .slice(0, enrol)
        .map(enrolVec)
        .filter((v) => v !== null),
    }))
    .filter((e) => e.templates.length === enrol);
  const out: number[] = [];
  const buf = new Float32Array(1);
  for (const g of galleries) {
    const index = buildIndex([g], scoring);
    for (const ph of photos) if (ph.person !== g.personId) out.push(personScores(index, ph.v, buf)[0]!);
  }
  return { scores: Float32Array.from(out), people: galleries.length };
}

const r4 = (x: number): number => Math.round(x * 1e4) / 1e4;

/** The `--json` object. */
export function galleryResultJson(r: GalleryEvalResult): Record<string, unknown> {
  const rates = (e: ErrorRates | null): Record<string, number> | null =>
    e ? { threshold: r4(e.threshold), far: r4(e.far), frr: r4(e.frr), misidentified: r4(e.misidentified) } : null;
  return {
    mode: 'gallery',
    ...r.settings,
    enrolled: r.enrolled,
    genuine_probes: r.genuineProbes,
    stranger_probes: r.strangerProbes,
    faces_not_found: r.facesNotFound,
    threshold: r4(r.threshold),
    adapt: r.adapt && { shift: r4(r.adapt.shift), level: r.adapt.level, scores: r.adapt.scores },
    threshold_tail: r.thresholdTail,
    frame: rates(r.frame),
    leave_one_out_far: r4(r.leaveOneOutFar),
    frr_including_not_found: r4(r.frrIncludingNotFound),
    // the visit's window (settings.visit) and its rates in one object
    visit: {
      ...r.settings.visit,
      ...r.visit,
      far: r4(r.visit.far),
      frr: r4(r.visit.frr),
      otherFar: r4(r.visit.otherFar),
    },
    pooled: r.pooled && {
      threshold: r4(r.pooled.threshold),
      threshold_tail: r.pooled.thresholdTail,
      visit: {
        ...r.settings.visit,
        ...r.pooled.visit,
        far: r4(r.pooled.visit.far),
        frr: r4(r.pooled.visit.frr),
        otherFar: r4(r.pooled.visit.otherFar),
      },
    },
    at_far_0_1_percent: rates(r.atFar.far001),
    at_far_1_percent: rates(r.atFar.far01),
    eer: rates(r.eer),
    impostor_tail: r.impostorTail,
    aggregate_tail: r.aggregateTail,
    margin_fit: r.marginFit,
  };
}
