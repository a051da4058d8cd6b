/**
 * Events kept until the broker acknowledged them. Every event is written here before it
 * is sent, so neither a broker outage nor a crash or `kill -9` of the daemon loses one.
 *
 * The events live in the kiosk database (part `events`): table `event_outbox` holds the
 * pending events in sequence order, `event_sequence` the last sequence number given out,
 * so sequences stay monotonic across restarts even when the outbox is empty. Adding an
 * event, advancing the sequence and dropping the oldest beyond `maxEvents` is one
 * transaction (committed with fsync), so a power cut leaves the state before the event
 * or after it, and the table never holds more than `maxEvents` rows.
 *
 * An install from before the database kept `outbox.jsonl` and `sequence` in state.dir;
 * they are imported at the first start (lines that are not events are skipped and
 * counted) and removed once the import committed.
 *
 * When the database cannot be written (disk full), the outbox degrades instead of
 * stopping the kiosk: events are kept in memory (still bounded), sent when the broker is
 * there, counted in `writeFailures`, and written as soon as a write succeeds again.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { KioskDb, Migration } from '../state/db.js';
import type { EventPayload } from './topics.js';
import { crashPoint } from '../update/hooks.js';

export interface OutboxEntry {
  readonly payload: EventPayload;
  /** Sent later than decided (broker unreachable, or loaded after a restart). */
  delayed: boolean;
  /** Written to the database (false while the disk refuses writes). */
  stored: boolean;
}

export const EVENTS_PART = 'events';
export const LEGACY_OUTBOX_FILE = 'outbox.jsonl';
export const LEGACY_SEQUENCE_FILE = 'sequence';

export const eventMigrations: readonly Migration[] = [
  {
    version: 1,
    description: 'event outbox and sequence',
    up: (db) => {
      db.exec(`
        CREATE TABLE event_outbox (seq INTEGER PRIMARY KEY, payload TEXT NOT NULL);
        CREATE TABLE event_sequence (id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL);
        INSERT INTO event_sequence (id, last) VALUES (1, 0);
        CREATE TABLE event_imports (file TEXT PRIMARY KEY, at TEXT NOT NULL, events INTEGER NOT NULL, skipped INTEGER NOT NULL);
      `);
    },
  },
];

/** Whether a parsed record is an event payload (the fields the outbox and the wire rely on). */
export function isEventPayload(v: unknown): v is EventPayload {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const e = v as Record<string, unknown>;
  return (
    Number.isSafeInteger(e.seq) &&
    (e.seq as number) > 0 &&
    typeof e.id === 'string' &&
    (e.kind === 'recognized' || e.kind === 'unknown') &&
    (e.name === null || typeof e.name === 'string') &&
    typeof e.time === 'string' &&
    typeof e.score === 'number'
  );
}

/** Reads the outbox log of an install from before the database; anything else is skipped and counted. */
export function readLegacyOutbox(text: string): { pending: EventPayload[]; skipped: number } {
  const pending = new Map<number, EventPayload>();
  let skipped = 0;
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch {
      skipped++; // a torn last line after a power cut
      continue;
    }
    const r = typeof rec === 'object' && rec !== null ? (rec as Record<string, unknown>) : {};
    if ('add' in r && isEventPayload(r.add)) pending.set(r.add.seq, r.add);
    else if ('ack' in r && Number.isSafeInteger(r.ack)) pending.delete(r.ack as number);
    else skipped++;
  }
  return { pending: [...pending.values()].sort((a, b) => a.seq - b.seq), skipped };
}

export class Outbox {
  private entries: OutboxEntry[] = [];
  private migrated = false;
  private lastSeq = 0;
  /** Events dropped since start because the outbox was full. */
  dropped = 0;
  /** Stored records skipped at load because they are not events (counted, then removed). */
  badRecords = 0;
  /** Writes the database refused since start (disk full, read-only); the events stay in memory. */
  writeFailures = 0;
  /** The last write failure, while the outbox runs from memory; null once writes succeed again. */
  degraded: string | null = null;
  /** Events imported from an outbox.jsonl of an older install at this start. */
  imported = 0;

  constructor(
    private readonly db: KioskDb,
    private readonly stateDir: string,
    private readonly maxEvents: number,
    /** Called for each refused write; `first` when the outbox just turned to memory. */
    private readonly onWriteFailure: (err: Error, first: boolean) => void = () => undefined,
  ) {}

  /**
   * Creates the tables, imports an older install's files, loads pending events (all
   * marked delayed) and the last sequence number. Never throws for a disk that refuses
   * writes: what was read is kept in memory.
   */
  load(): void {
    if (!this.ready()) {
      // Not even the tables can be written: run from memory, importing nothing yet.
      const legacy = this.readLegacy(false);
      if (legacy) {
        this.badRecords += legacy.skipped;
        this.lastSeq = legacy.seq;
        for (const p of legacy.pending) this.entries.push({ payload: p, delayed: true, stored: false });
      }
      this.trim();
      return;
    }
    const legacy = this.readLegacy(true);
    if (legacy) {
      const { pending, seq, skipped } = legacy;
      this.badRecords += skipped;
      this.lastSeq = Math.max(this.lastSeq, seq);
      const ok = this.write(() => {
        const insert = this.db.db.prepare('INSERT OR IGNORE INTO event_outbox (seq, payload) VALUES (?, ?)');
        for (const p of pending) insert.run(p.seq, JSON.stringify(p));
        this.db.db.prepare('UPDATE event_sequence SET last = MAX(last, ?) WHERE id = 1').run(seq);
        this.db.db
          .prepare('INSERT INTO event_imports (file, at, events, skipped) VALUES (?, ?, ?, ?)')
          .run(LEGACY_OUTBOX_FILE, new Date().toISOString(), pending.length, skipped);
        crashPoint('outbox-import-written');
      });
      if (ok) {
        this.imported = pending.length;
        this.removeLegacy();
      } else {
        // Not imported: the files stay for the next start; run on what they hold.
        for (const p of pending) this.entries.push({ payload: p, delayed: true, stored: false });
      }
    }

    const seqRow = this.db.db.prepare('SELECT last FROM event_sequence WHERE id = 1').get() as
      { last: number } | undefined;
    this.lastSeq = Math.max(this.lastSeq, seqRow?.last ?? 0);
    const bad: number[] = [];
    const stored = new Set(this.entries.map((e) => e.payload.seq));
    for (const row of this.db.db.prepare('SELECT seq, payload FROM event_outbox ORDER BY seq').all() as {
      seq: number;
      payload: string;
    }[]) {
      let p: unknown;
      try {
        p = JSON.parse(row.payload);
      } catch {
        p = undefined;
      }
      if (!isEventPayload(p) || p.seq !== row.seq) {
        bad.push(row.seq);
        continue;
      }
      if (!stored.has(p.seq)) this.entries.push({ payload: p, delayed: true, stored: true });
    }
    this.badRecords += bad.length;
    if (bad.length) {
      this.write(() => {
        const del = this.db.db.prepare('DELETE FROM event_outbox WHERE seq = ?');
        for (const s of bad) del.run(s);
      });
    }
    this.entries.sort((a, b) => a.payload.seq - b.payload.seq);
    for (const e of this.entries) this.lastSeq = Math.max(this.lastSeq, e.payload.seq);
    this.trim();
  }

  /** Creates the tables when missing; false (counted, reported) when the database refuses. */
  private ready(): boolean {
    if (this.migrated) return true;
    try {
      this.db.migrate(EVENTS_PART, eventMigrations);
      this.migrated = true;
    } catch (err) {
      const first = this.degraded === null;
      this.writeFailures++;
      this.degraded = (err as Error).message;
      this.onWriteFailure(err as Error, first);
    }
    return this.migrated;
  }

  private readLegacy(checkImported: boolean): { pending: EventPayload[]; seq: number; skipped: number } | null {
    const outboxFile = path.join(this.stateDir, LEGACY_OUTBOX_FILE);
    const seqFile = path.join(this.stateDir, LEGACY_SEQUENCE_FILE);
    if (!existsSync(outboxFile) && !existsSync(seqFile)) return null;
    const done =
      checkImported && this.db.db.prepare('SELECT 1 FROM event_imports WHERE file = ?').get(LEGACY_OUTBOX_FILE);
    if (done) {
      // Imported before a crash kept the files from being removed.
      this.removeLegacy();
      return null;
    }
    let seq = 0;
    let skipped = 0;
    if (existsSync(seqFile)) {
      const n = Number(readFileSync(seqFile, 'utf8').trim());
      if (Number.isSafeInteger(n) && n > 0) seq = n;
      else skipped++;
    }
    let pending: EventPayload[] = [];
    if (existsSync(outboxFile)) {
      const r = readLegacyOutbox(readFileSync(outboxFile, 'utf8'));
      pending = r.pending;
      skipped += r.skipped;
    }
    for (const p of pending) seq = Math.max(seq, p.seq);
    return { pending, seq, skipped };
  }

  private removeLegacy(): void {
    for (const f of [LEGACY_OUTBOX_FILE, `${LEGACY_OUTBOX_FILE}.tmp`, LEGACY_SEQUENCE_FILE])
      rmSync(path.join(this.stateDir, f), { force: true });
  }

  /** Runs a write transaction; a refused write (disk full…) is counted and reported, not thrown. */
  private write(fn: () => void): boolean {
    if (!this.ready()) return false;
    try {
      this.db.transaction(fn);
      this.degraded = null;
      return true;
    } catch (err) {
      const first = this.degraded === null;
      this.writeFailures++;
      this.degraded = (err as Error).message;
      this.onWriteFailure(err as Error, first);
      return false;
    }
  }

  get size(): number {
    return this.entries.length;
  }

  /** The next sequence number (recorded with the event in `add`). */
  nextSeq(): number {
    return ++this.lastSeq;
  }

  /** Keeps at most maxEvents in memory; returns how many of the oldest were dropped. */
  private trim(): number {
    let n = 0;
    while (this.entries.length > this.maxEvents) {
      this.entries.shift();
      n++;
    }
    this.dropped += n;
    return n;
  }

  /**
   * Records an event, together with the sequence and the dropping of the oldest beyond
   * maxEvents, in one transaction. Returns how many were dropped. A refused write keeps
   * the event in memory (see `degraded`).
   */
  add(payload: EventPayload, delayed: boolean): number {
    this.lastSeq = Math.max(this.lastSeq, payload.seq);
    this.entries.push({ payload, delayed, stored: false });
    const dropped = this.trim();
    const oldest = this.entries[0]?.payload.seq ?? payload.seq;
    const unstored = this.entries.filter((e) => !e.stored);
    const ok = this.write(() => {
      const insert = this.db.db.prepare('INSERT OR REPLACE INTO event_outbox (seq, payload) VALUES (?, ?)');
      for (const e of unstored) insert.run(e.payload.seq, JSON.stringify(e.payload));
      crashPoint('outbox-add-written');
      this.db.db.prepare('UPDATE event_sequence SET last = MAX(last, ?) WHERE id = 1').run(this.lastSeq);
      this.db.db.prepare('DELETE FROM event_outbox WHERE seq < ?').run(oldest);
    });
    if (ok) for (const e of unstored) e.stored = true;
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
    const [e] = this.entries.splice(i, 1);
    // A refused delete only means the event is sent again after a restart (at least once).
    if (e?.stored)
      this.write(() => {
        this.db.db.prepare('DELETE FROM event_outbox WHERE seq = ?').run(seq);
        crashPoint('outbox-ack-written');
      });
  }
}
