/**
 * Decide across frames: track faces by box overlap, name a person only when k of the last n
 * frames of a track agree — or (`pool`) when the mean descriptor of the track's last n frames,
 * once it has k, reaches the gallery's aggregate threshold and k − 1 of those frames name the
 * person too — then hold that person for `cooldownMs`; an unknown face is reported once per
 * track. The track's window is decided by `stepTrack` (src/decide/voting.ts), as `facegate
 * eval --gallery` decides a visit.
 */
import type { z } from 'zod';
import type { Decision, Match } from '../shared/messages.js';
import { IouTracker } from './tracker.js';
import { EMPTY_TRACK, stepTrack, type TrackWindow } from './voting.js';
import { deciderOptionsSchema, type DeciderOptions } from './config.js';

export class Decider {
  private readonly opts: z.output<typeof deciderOptionsSchema>;
  private readonly tracker: IouTracker;
  private readonly states = new Map<number, TrackWindow>();
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
      const faceSize = Math.min(m.face.box.width, m.face.box.height);
      const vote = { label: m.label, score: m.similarity, margin: m.margin, faceSize };
      const {
        window,
        result: r,
        report,
      } = stepTrack(this.states.get(trackId) ?? EMPTY_TRACK, { vote, ...(m.pool ? { pool: m.pool } : {}) }, this.opts);
      this.states.set(trackId, window);
      if (!report) return;
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
      } else if (r.kind === 'unknown') {
        const unknown = window.votes.filter((v) => v.label === null);
        const score = unknown.reduce((s, v) => s + v.score, 0) / Math.max(1, unknown.length);
        decisions.push({ kind: 'unknown', name: null, score, trackId, frameId, timestamp });
      }
    });
    return decisions;
  }

  /** Live tracks (for metrics). */
  get activeTracks(): number {
    return this.tracker.size;
  }
}
