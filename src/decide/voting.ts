/**
 * A track's decision, as pure functions: k-of-n voting over a sliding window of per-frame
 * labels, the pooled aggregate besides it, and `stepTrack`, one face added to a track's window
 * — the one code path the kiosk's Decider and `facegate eval --gallery` both decide by.
 */
import type { PoolableFace } from '../shared/messages.js';
import { meanDescriptor } from './aggregate.js';

/** One frame's vote: a name, or null for "unknown". */
export interface Vote {
  readonly label: string | null;
  readonly score: number;
  /** Probability margin over the second-best person (door access reads it; absent in older callers). */
  readonly margin?: number;
  /** Shorter side of the face box, pixels. */
  readonly faceSize?: number;
}

export type VoteResult =
  | {
      readonly kind: 'recognized';
      readonly label: string;
      readonly score: number;
      readonly votes: number;
      /** Mean margin over the agreeing frames (NaN when a vote carried none). */
      readonly margin: number;
      /** Smallest face over the agreeing frames (NaN when a vote carried none). */
      readonly faceSize: number;
    }
  | { readonly kind: 'unknown'; readonly votes: number }
  | { readonly kind: 'undecided' };

/**
 * Looks at the last `n` votes: a name wins when at least `k` of them agree on it (score =
 * mean over those frames); "unknown" wins when at least `k` are unknown. A window with fewer
 * than k votes for anything is undecided. When both could win (k ≤ n/2), the name with the
 * most votes wins, then the more recent.
 */
export function kOfN(votes: readonly Vote[], k: number, n: number): VoteResult {
  if (!(k >= 1 && n >= k)) throw new RangeError(`need 1 ≤ k ≤ n, got k=${k}, n=${n}`);
  const window = votes.slice(-n);
  const tally = new Map<string | null, { count: number; sum: number; last: number; margin: number; face: number }>();
  window.forEach((v, i) => {
    const t = tally.get(v.label) ?? { count: 0, sum: 0, last: 0, margin: 0, face: Infinity };
    t.count++;
    t.sum += v.score;
    t.margin += v.margin ?? NaN;
    t.face = Math.min(t.face, v.faceSize ?? NaN);
    t.last = i;
    tally.set(v.label, t);
  });
  let best: { label: string; count: number; sum: number; last: number; margin: number; face: number } | null = null;
  for (const [label, t] of tally) {
    if (label === null || t.count < k) continue;
    if (!best || t.count > best.count || (t.count === best.count && t.last > best.last)) best = { label, ...t };
  }
  if (best)
    return {
      kind: 'recognized',
      label: best.label,
      score: best.sum / best.count,
      votes: best.count,
      margin: best.margin / best.count,
      faceSize: best.face,
    };
  const unknown = tally.get(null);
  if (unknown && unknown.count >= k) return { kind: 'unknown', votes: unknown.count };
  return { kind: 'undecided' };
}

/**
 * The track's evidence pooled (probe-side aggregation): the best person for the unit mean of
 * the window's descriptors, and whether that score reached the aggregate threshold.
 */
export interface Aggregate {
  /** The person named by the mean descriptor, null when it scored under the aggregate threshold. */
  readonly label: string | null;
  readonly score: number;
  /** Best minus second-best person for the mean descriptor. */
  readonly margin: number;
  /** Frames pooled (the window's, at most n). */
  readonly frames: number;
  /** Smallest face over the pooled frames. */
  readonly faceSize?: number;
}

/**
 * Whether the window's own frames back the aggregate's name: at least k − 1 of the last n
 * votes name that person at the frame threshold. The mean may stand in for one missing vote,
 * never for more: a stranger who resembles someone, whose frames mostly fall short of the
 * frame threshold, is not named by averaging them.
 */
export function framesBack(votes: readonly Vote[], label: string, k: number, n: number): boolean {
  return votes.slice(-n).filter((v) => v.label === label).length >= k - 1;
}

/**
 * The kiosk's decision over a track's window, shared by the Decider and `facegate eval
 * --gallery`: a name the aggregate gives, once it pools at least k frames and the frames back
 * it (framesBack), wins (its own, stricter threshold is the caller's); otherwise the k-of-n
 * vote of the single frames decides, so a track whose frames are alike decides as without
 * aggregation.
 */
export function decideWindow(votes: readonly Vote[], k: number, n: number, aggregate?: Aggregate): VoteResult {
  if (aggregate?.label && aggregate.frames >= k && framesBack(votes, aggregate.label, k, n))
    return {
      kind: 'recognized',
      label: aggregate.label,
      score: aggregate.score,
      votes: aggregate.frames,
      margin: aggregate.margin,
      faceSize: aggregate.faceSize ?? NaN,
    };
  return kOfN(votes, k, n);
}

/** A track's window as `stepTrack` keeps it. */
export interface TrackWindow {
  /** The last n frames' votes. */
  readonly votes: readonly Vote[];
  /** The descriptors of the track's last frames, of one model, that pooling may use. */
  readonly pooled: readonly { readonly descriptor: Float32Array; readonly source: string; readonly faceSize: number }[];
  /** Whether the track has already been reported unknown (once per track). */
  readonly unknownReported: boolean;
}

export const EMPTY_TRACK: TrackWindow = { votes: [], pooled: [], unknownReported: false };

/** One face of a track: its vote and, where the gallery pools, its descriptor and how to score a mean. */
export interface TrackFace {
  readonly vote: Vote & { readonly faceSize: number };
  readonly pool?: PoolableFace;
}

export interface TrackSettings {
  readonly k: number;
  readonly n: number;
  /** decide.pool */
  readonly pool: boolean;
}

/**
 * Adds one face to a track's window and decides the window (decideWindow, the pooled aggregate
 * once the track has k frames of one model). `report` says whether the decision is news: a
 * name always (the Decider's cooldown is per person, across tracks), "unknown" only the first
 * time for the track — which goes on being decided, so a later window may still name someone.
 */
export function stepTrack(
  w: TrackWindow,
  face: TrackFace,
  o: TrackSettings,
): { readonly window: TrackWindow; readonly result: VoteResult; readonly report: boolean } {
  const votes = [...w.votes, face.vote].slice(-o.n);
  let pooled: TrackWindow['pooled'] = [];
  let aggregate: Aggregate | undefined;
  if (o.pool && face.pool) {
    const { source, descriptor } = face.pool;
    // Frames of another model are not pooled with this one: their window starts again.
    const kept = w.pooled.some((p) => p.source !== source) ? [] : w.pooled;
    pooled = [...kept, { descriptor, source, faceSize: face.vote.faceSize }].slice(-o.n);
    if (pooled.length >= o.k) {
      const s = face.pool.score(meanDescriptor(pooled.map((p) => p.descriptor)));
      aggregate = { ...s, frames: pooled.length, faceSize: Math.min(...pooled.map((p) => p.faceSize)) };
    }
  }
  const result = decideWindow(votes, o.k, o.n, aggregate);
  const unknown = result.kind === 'unknown';
  return {
    window: { votes, pooled, unknownReported: w.unknownReported || unknown },
    result,
    report: result.kind === 'recognized' || (unknown && !w.unknownReported),
  };
}

/**
 * A whole visit fed to one track: the first name it gives (the name the door opens for), null
 * when no window names anyone — "unknown" does not end it, as it does not end a track.
 */
export function decideTrack(faces: Iterable<TrackFace>, o: TrackSettings): string | null {
  let w = EMPTY_TRACK;
  for (const f of faces) {
    const s = stepTrack(w, f, o);
    if (s.result.kind === 'recognized') return s.result.label;
    w = s.window;
  }
  return null;
}
