/**
 * Face thumbnails of the recent events on the admin page (`http.admin.eventThumbnails`, off
 * by default): when a decision is published, the face it is about is cut from the frame that
 * completed it, shrunk to a small JPEG and written to `<state.dir>/event-thumbnails/` (folder
 * 0700, files 0600). Only the last RECENT events keep one, like the list they belong to; the
 * folder is emptied at start and stop (the list lives in memory), and a person's pictures
 * are erased when the person is removed from the gallery.
 */
import { mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import type { Logger } from 'pino';
import type { DecisionSeen, FrameSeen } from '../publish/bus.js';
import type { Match } from '../shared/messages.js';
import { moduleLogger } from '../shared/logger.js';

const SIDE = 96;
/** Room around the face box, as a share of its size. */
const MARGIN = 0.25;

export const THUMBNAILS_DIR = 'event-thumbnails';

/** The face a decision is about: the named person's, or an unknown one; the largest when several. */
export function faceOf(matches: readonly Match[], d: DecisionSeen['decision']): Match | undefined {
  const wanted = matches.filter((m) => (d.kind === 'recognized' ? m.label === d.name : m.label === null));
  return wanted.reduce<Match | undefined>(
    (a, b) => (!a || b.face.box.width * b.face.box.height > a.face.box.width * a.face.box.height ? b : a),
    undefined,
  );
}

export class EventThumbnails {
  private readonly log: Logger = moduleLogger('web');
  /** Event seq → the person it names (null: unknown). Oldest first. */
  private readonly people = new Map<number, string | null>();
  private last: FrameSeen | undefined;
  private warned = false;

  constructor(
    private readonly dir: string,
    private readonly keep: number,
  ) {}

  static dirIn(stateDir: string): string {
    return path.join(path.resolve(stateDir), THUMBNAILS_DIR);
  }

  start(): void {
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  stop(): void {
    this.people.clear();
    this.last = undefined;
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Keeps a reference to the latest frame (no copy, no work): a decision is cut from it. */
  frame(f: FrameSeen): void {
    this.last = f;
  }

  private file(seq: number): string {
    return path.join(this.dir, `${seq}.jpg`);
  }

  has(seq: number): boolean {
    return this.people.has(seq);
  }

  read(seq: number): Buffer | undefined {
    if (!this.people.has(seq)) return undefined;
    try {
      return readFileSync(this.file(seq));
    } catch {
      return undefined;
    }
  }

  /** Cuts and stores the face of a decision; false when its frame is gone or shows no such face. */
  async decision(d: DecisionSeen): Promise<boolean> {
    const f = this.last;
    if (!f || f.frame.id !== d.decision.frameId) return false;
    const m = faceOf(f.matches, d.decision);
    if (!m) return false;
    try {
      const img = sharp(f.frame.image);
      const meta = await img.metadata();
      const W = meta.width ?? 0;
      const H = meta.height ?? 0;
      const b = m.face.box;
      const side = Math.max(b.width, b.height) * (1 + 2 * MARGIN);
      const left = Math.max(0, Math.round(b.x + b.width / 2 - side / 2));
      const top = Math.max(0, Math.round(b.y + b.height / 2 - side / 2));
      const width = Math.min(W - left, Math.round(side));
      const height = Math.min(H - top, Math.round(side));
      if (width < 1 || height < 1) return false;
      const jpeg = await img
        .extract({ left, top, width, height })
        .resize(SIDE, SIDE, { fit: 'cover' })
        .jpeg({ quality: 80 })
        .toBuffer();
      writeFileSync(this.file(d.event.seq), jpeg, { mode: 0o600 });
    } catch (err) {
      if (!this.warned) this.log.warn({ err: (err as Error).message }, 'cannot store an event thumbnail (logged once)');
      this.warned = true;
      return false;
    }
    this.people.set(d.event.seq, d.decision.kind === 'recognized' ? d.decision.name : null);
    for (const seq of this.people.keys()) {
      if (this.people.size <= this.keep) break;
      this.drop(seq);
    }
    return true;
  }

  private drop(seq: number): void {
    this.people.delete(seq);
    try {
      unlinkSync(this.file(seq));
    } catch {
      // already gone
    }
  }

  /** Erases the pictures of every person `enrolled` says no longer is (removed here or from the CLI). */
  forgetRemoved(enrolled: (name: string) => boolean): void {
    for (const [seq, person] of [...this.people]) if (person !== null && !enrolled(person)) this.drop(seq);
  }
}
