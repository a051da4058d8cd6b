/**
 * Events on disk until the broker acknowledged them. Every event is written here before
 * it is sent, so neither a broker outage nor a crash or `kill -9` of the daemon loses one.
 *
 * Format: an append-only JSON-lines log in `<state.dir>/outbox.jsonl`: `{"add":payload}`
 * when an event is decided, `{"ack":seq}` when the broker acknowledged it (or it was
 * dropped because the outbox was full). The log is compacted (rewritten through a
 * temporary file and an atomic rename) at start and whenever acks pile up. The last
 * sequence number lives in `<state.dir>/sequence` so sequences stay monotonic across
 * restarts even when the outbox is empty.
 */
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  openSync,
  closeSync,
  fsyncSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import type { EventPayload } from './topics.js';

export interface OutboxEntry {
  readonly payload: EventPayload;
  /** Sent later than decided (broker unreachable, or loaded after a restart). */
  delayed: boolean;
}

type Line = { add: EventPayload } | { ack: number };

export class Outbox {
  private entries: OutboxEntry[] = [];
  private acksSinceCompact = 0;
  private lastSeq = 0;
  /** Events dropped since start because the outbox was full. */
  dropped = 0;
  /** Corrupt lines skipped at load (a torn last line after a power cut). */
  corruptLines = 0;
  readonly file: string;
  private readonly seqFile: string;

  constructor(
    private readonly dir: string,
    private readonly maxEvents: number,
    private readonly fsync = true,
  ) {
    this.file = path.join(dir, 'outbox.jsonl');
    this.seqFile = path.join(dir, 'sequence');
  }

  /** Loads pending events (all marked delayed) and the last sequence number; compacts the log. */
  load(): void {
    mkdirSync(this.dir, { recursive: true });
    if (existsSync(this.seqFile)) {
      const n = Number(readFileSync(this.seqFile, 'utf8').trim());
      if (Number.isSafeInteger(n) && n > 0) this.lastSeq = n;
    }
    const pending = new Map<number, EventPayload>();
    if (existsSync(this.file)) {
      for (const text of readFileSync(this.file, 'utf8').split('\n')) {
        if (!text.trim()) continue;
        let line: Line;
        try {
          line = JSON.parse(text) as Line;
        } catch {
          this.corruptLines++;
          continue;
        }
        if ('add' in line && typeof line.add.seq === 'number') pending.set(line.add.seq, line.add);
        else if ('ack' in line) pending.delete(line.ack);
      }
    }
    this.entries = [...pending.values()].sort((a, b) => a.seq - b.seq).map((payload) => ({ payload, delayed: true }));
    for (const e of this.entries) this.lastSeq = Math.max(this.lastSeq, e.payload.seq);
    while (this.entries.length > this.maxEvents) {
      this.entries.shift();
      this.dropped++;
    }
    this.compact();
  }

  get size(): number {
    return this.entries.length;
  }

  /** The next sequence number, persisted before it is used. */
  nextSeq(): number {
    this.lastSeq++;
    writeFileSync(this.seqFile, `${this.lastSeq}\n`);
    return this.lastSeq;
  }

  /** Appends an event (durably); drops the oldest beyond maxEvents. Returns the entries dropped. */
  add(payload: EventPayload, delayed: boolean): number {
    this.append({ add: payload });
    this.entries.push({ payload, delayed });
    let dropped = 0;
    while (this.entries.length > this.maxEvents) {
      const old = this.entries.shift();
      if (old) this.append({ ack: old.payload.seq });
      dropped++;
    }
    this.dropped += dropped;
    this.acksSinceCompact += dropped;
    return dropped;
  }

  /** The oldest pending event, if any. */
  peek(): OutboxEntry | undefined {
    return this.entries[0];
  }

  /** Whether the newest pending event waits because of an outage (a new event queues behind it). */
  get backlogDelayed(): boolean {
    return this.entries[this.entries.length - 1]?.delayed ?? false;
  }

  /** Marks every pending event delayed (the broker went away). */
  markAllDelayed(): void {
    for (const e of this.entries) e.delayed = true;
  }

  /** Removes an acknowledged event. */
  ack(seq: number): void {
    const i = this.entries.findIndex((e) => e.payload.seq === seq);
    if (i < 0) return; // dropped meanwhile
    this.entries.splice(i, 1);
    this.append({ ack: seq });
    if (++this.acksSinceCompact >= 1000) this.compact();
  }

  private append(line: Line): void {
    appendFileSync(this.file, `${JSON.stringify(line)}\n`);
    if (this.fsync && 'add' in line) this.sync(this.file);
  }

  private sync(file: string): void {
    const fd = openSync(file, 'r+');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** Rewrites the log with only the pending events (temporary file + rename: never half-written). */
  compact(): void {
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, this.entries.map((e) => `${JSON.stringify({ add: e.payload })}\n`).join(''));
    if (this.fsync) this.sync(tmp);
    renameSync(tmp, this.file);
    this.acksSinceCompact = 0;
  }
}
