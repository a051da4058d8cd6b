/**
 * Decide across frames: track faces by box overlap, name a person only when k of the last n
 * frames of a track agree — or (`pool`) when the mean descriptor of the track's last n frames,
 * once it has k, reaches the gallery's aggregate threshold — then hold that person for
 * `cooldownMs`; an unknown face is reported once per track.
 */
import type { z } from 'zod';
import type { Decision, Match } from '../shared/messages.js';
import { IouTracker } from './tracker.js';
import { meanDescriptor } from './aggregate.js';
import { decideWindow, type Aggregate, type Vote } from './voting.js';
import { deciderOptionsSchema, type DeciderOptions } from './config.js';

interface TrackState {
  votes: Vote[];
  /** The descriptors of the track's last frames, of one model, that pooling may use. */
  pooled: { descriptor: Float32Array; source: string; faceSize: number }[];
  unknownReported: boolean;
}

export class Decider {
  private readonly opts: z.output<typeof deciderOptionsSchema>;
  private readonly tracker: IouTracker;
  private readonly states = new Map<number, TrackState>();
  /** Last time each person was announced (any track). */
  private readonly lastAnnounced = new Map<string, number>();

  constructor(opts: DeciderOptions = {}) {
    this.opts = deciderOptionsSchema.parse(opts);
    this.tracker = new IouTracker({ iouThreshold: this.opts.iouThreshold, maxAgeFrames: this.opts.maxAgeFrames });
  }

  /** Feeds one frame's matches (possibly none); returns the decisions this frame completes. */
  update(frameId: number, timestamp: number, matches: readonly Match[]): Decision[] {
    const { ids, expired } = this.tracker.update(
      frameId,
      timestamp,
      matches.map((m) => m.face.box),
    );
    for (const id of expired) this.states.delete(id);
    const decisions: Decision[] = [];
    matches.forEach((m, i) => {
      const trackId = ids[i] as number;
      let st = this.states.get(trackId);
      if (!st) {
        st = { votes: [], pooled: [], unknownReported: false };
        this.states.set(trackId, st);
      }
      const faceSize = Math.min(m.face.box.width, m.face.box.height);
      st.votes.push({ label: m.label, score: m.similarity, margin: m.margin, faceSize });
      if (st.votes.length > this.opts.n) st.votes.shift();
      const r = decideWindow(st.votes, this.opts.k, this.opts.n, this.pool(st, m, faceSize));
      if (r.kind === 'recognized') {
        const last = this.lastAnnounced.get(r.label);
        const cooling = last !== undefined && timestamp - last < this.opts.cooldownMs;
        // A person lingering at the door is announced again once the cooldown has passed.
        if (!cooling) {
          this.lastAnnounced.set(r.label, timestamp);
          decisions.push({
            kind: 'recognized',
            name: r.label,
            score: r.score,
            trackId,
            frameId,
            timestamp,
            margin: r.margin,
            faceSize: r.faceSize,
          });
        }
      } else if (r.kind === 'unknown' && !st.unknownReported) {
        st.unknownReported = true;
        const window = st.votes.filter((v) => v.label === null);
        const score = window.reduce((s, v) => s + v.score, 0) / Math.max(1, window.length);
        decisions.push({ kind: 'unknown', name: null, score, trackId, frameId, timestamp });
      }
    });
    return decisions;
  }

  /** The track's pooled frames scored; undefined without pooling or with fewer than k frames of one model. */
  private pool(st: TrackState, m: Match, faceSize: number): Aggregate | undefined {
    if (!this.opts.pool || !m.pool) {
      st.pooled = [];
      return undefined;
    }
    const source = m.pool.source;
    if (st.pooled.some((p) => p.source !== source)) st.pooled = [];
    st.pooled.push({ descriptor: m.pool.descriptor, source, faceSize });
    if (st.pooled.length > this.opts.n) st.pooled.shift();
    if (st.pooled.length < this.opts.k) return undefined;
    const s = m.pool.score(meanDescriptor(st.pooled.map((p) => p.descriptor)));
    return { ...s, frames: st.pooled.length, faceSize: Math.min(...st.pooled.map((p) => p.faceSize)) };
  }

  /** Live tracks (for metrics). */
  get activeTracks(): number {
    return this.tracker.size;
  }
}
