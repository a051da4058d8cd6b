/**
 * Box-overlap tracking across frames (a simple SORT without motion model): each new face
 * joins the unmatched track whose last box overlaps it most, if IoU ≥ threshold; otherwise it
 * starts a new track. Tracks not seen for `maxAgeFrames` frames are dropped. Pure state machine.
 */
import type { Box } from '../shared/messages.js';
import { boxIou } from '../shared/geometry.js';

export interface Track {
  readonly id: number;
  box: Box;
  lastFrameId: number;
  lastTimestamp: number;
  /** Frames in which the track was seen (including the first). */
  hits: number;
}

export interface TrackerOptions {
  readonly iouThreshold: number;
  /** Frames a track survives unseen. */
  readonly maxAgeFrames: number;
}

export class IouTracker {
  private readonly tracks = new Map<number, Track>();
  private nextId = 1;

  constructor(private readonly opts: TrackerOptions) {}

  /**
   * Assigns each box a track id (greedy, highest IoU pairs first), in the order of `boxes`.
   * Returns the ids and the ids of tracks that expired in this call.
   */
  update(frameId: number, timestamp: number, boxes: readonly Box[]): { ids: number[]; expired: number[] } {
    const pairs: { t: Track; i: number; iou: number }[] = [];
    for (const t of this.tracks.values()) {
      boxes.forEach((b, i) => {
        const v = boxIou(t.box, b);
        if (v >= this.opts.iouThreshold && v > 0) pairs.push({ t, i, iou: v });
      });
    }
    pairs.sort((a, b) => b.iou - a.iou || a.t.id - b.t.id || a.i - b.i);
    const ids: (number | undefined)[] = new Array<number | undefined>(boxes.length);
    const used = new Set<number>();
    for (const p of pairs) {
      if (used.has(p.t.id) || ids[p.i] !== undefined) continue;
      used.add(p.t.id);
      ids[p.i] = p.t.id;
      p.t.box = boxes[p.i] as Box;
      p.t.lastFrameId = frameId;
      p.t.lastTimestamp = timestamp;
      p.t.hits++;
    }
    const out = boxes.map((b, i) => {
      const existing = ids[i];
      if (existing !== undefined) return existing;
      const t: Track = { id: this.nextId++, box: b, lastFrameId: frameId, lastTimestamp: timestamp, hits: 1 };
      this.tracks.set(t.id, t);
      return t.id;
    });
    const expired: number[] = [];
    for (const t of this.tracks.values()) {
      if (frameId - t.lastFrameId > this.opts.maxAgeFrames) {
        this.tracks.delete(t.id);
        expired.push(t.id);
      }
    }
    return { ids: out, expired };
  }

  get size(): number {
    return this.tracks.size;
  }
}
