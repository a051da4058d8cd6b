/**
 * The access log: every access decision of the kiosk, in the kiosk database (part
 * `access-log`). An entry is written before anything acts on it; its id is the sequence
 * number of the `access` MQTT message (AUTOINCREMENT: monotonic, never reused, also after
 * pruning). Entries not yet acknowledged by the broker are marked and re-sent in order.
 * Entries older than access.log.retentionDays are deleted. The same part keeps the nonces
 * of remote unlock commands (single use) and rules edited from the admin page.
 */
import type { KioskDb, Migration } from '../state/db.js';
import type { DenialReason } from './rules.js';

export const ACCESS_LOG_PART = 'access-log';

export const accessLogMigrations: readonly Migration[] = [
  {
    version: 1,
    description: 'access log, remote-unlock nonces, admin-edited rules',
    up(db) {
      db.exec(`
        CREATE TABLE access_log (
          seq INTEGER PRIMARY KEY AUTOINCREMENT,
          time TEXT NOT NULL,
          door TEXT NOT NULL,
          person_id TEXT,
          person_name TEXT,
          result TEXT NOT NULL CHECK (result IN ('granted', 'denied')),
          reason TEXT,
          detail TEXT NOT NULL,
          source TEXT NOT NULL,
          score REAL,
          margin REAL,
          model_version TEXT,
          event_id TEXT,
          requested_by TEXT,
          opened INTEGER NOT NULL DEFAULT 0,
          sent INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX access_log_time ON access_log (time);
        CREATE INDEX access_log_unsent ON access_log (sent) WHERE sent = 0;
        CREATE TABLE access_unlock_nonces (nonce TEXT PRIMARY KEY, expires_at TEXT NOT NULL, used_at TEXT NOT NULL);
        CREATE TABLE access_rules (id INTEGER PRIMARY KEY CHECK (id = 1), rules TEXT NOT NULL, updated_at TEXT NOT NULL, updated_by TEXT);
      `);
    },
  },
];

/** What caused an entry: a face decision, a remote unlock command, or the door contact. */
export type AccessSource = 'face' | 'remote' | 'contact';

export interface AccessEntryInput {
  readonly time: string;
  readonly door: string;
  readonly personId: string | null;
  readonly personName: string | null;
  readonly result: 'granted' | 'denied';
  readonly reason: DenialReason | null;
  readonly detail: string;
  readonly source: AccessSource;
  readonly score: number | null;
  readonly margin: number | null;
  readonly modelVersion: string | null;
  /** id of the `events` message of the decision (face source). */
  readonly eventId: string | null;
  /** Who asked (remote unlock). */
  readonly requestedBy: string | null;
}

export interface AccessEntry extends AccessEntryInput {
  readonly seq: number;
  /** Whether the door outputs were fired for it. */
  readonly opened: boolean;
}

interface Row {
  seq: number;
  time: string;
  door: string;
  person_id: string | null;
  person_name: string | null;
  result: 'granted' | 'denied';
  reason: DenialReason | null;
  detail: string;
  source: AccessSource;
  score: number | null;
  margin: number | null;
  model_version: string | null;
  event_id: string | null;
  requested_by: string | null;
  opened: number;
}

function fromRow(r: Row): AccessEntry {
  return {
    seq: r.seq,
    time: r.time,
    door: r.door,
    personId: r.person_id,
    personName: r.person_name,
    result: r.result,
    reason: r.reason,
    detail: r.detail,
    source: r.source,
    score: r.score,
    margin: r.margin,
    modelVersion: r.model_version,
    eventId: r.event_id,
    requestedBy: r.requested_by,
    opened: r.opened === 1,
  };
}

export interface LogQuery {
  /** ISO time: entries at or after it. */
  readonly since?: string;
  /** Person name or id. */
  readonly person?: string;
  readonly deniedOnly?: boolean;
  /** Newest first, at most this many (default: all, oldest first). */
  readonly last?: number;
}

export class AccessLog {
  constructor(private readonly kdb: KioskDb) {}

  /** Creates or upgrades the tables (not for read-only handles). */
  migrate(): void {
    this.kdb.migrate(ACCESS_LOG_PART, accessLogMigrations);
  }

  append(e: AccessEntryInput): AccessEntry {
    const info = this.kdb.db
      .prepare(
        `INSERT INTO access_log (time, door, person_id, person_name, result, reason, detail, source, score, margin, model_version, event_id, requested_by)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        e.time,
        e.door,
        e.personId,
        e.personName,
        e.result,
        e.reason,
        e.detail,
        e.source,
        e.score,
        e.margin,
        e.modelVersion,
        e.eventId,
        e.requestedBy,
      );
    return { ...e, seq: Number(info.lastInsertRowid), opened: false };
  }

  markOpened(seq: number): void {
    this.kdb.db.prepare('UPDATE access_log SET opened = 1 WHERE seq = ?').run(seq);
  }

  markSent(seq: number): void {
    this.kdb.db.prepare('UPDATE access_log SET sent = 1 WHERE seq = ?').run(seq);
  }

  /** Entries the broker has not acknowledged yet, oldest first. */
  unsent(limit = 100): AccessEntry[] {
    return (
      this.kdb.db.prepare('SELECT * FROM access_log WHERE sent = 0 ORDER BY seq LIMIT ?').all(limit) as Row[]
    ).map(fromRow);
  }

  query(q: LogQuery = {}): AccessEntry[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (q.since) {
      where.push('time >= ?');
      args.push(new Date(q.since).toISOString());
    }
    if (q.person) {
      where.push('(person_name = ? OR person_id = ?)');
      args.push(q.person, q.person);
    }
    if (q.deniedOnly) where.push("result = 'denied'");
    const w = where.length ? `WHERE ${where.join(' AND ')}` : '';
    if (q.last !== undefined) {
      args.push(q.last);
      return (this.kdb.db.prepare(`SELECT * FROM access_log ${w} ORDER BY seq DESC LIMIT ?`).all(...args) as Row[]).map(
        fromRow,
      );
    }
    return (this.kdb.db.prepare(`SELECT * FROM access_log ${w} ORDER BY seq`).all(...args) as Row[]).map(fromRow);
  }

  /** Deletes entries (and used nonces) older than `days` before `now`; returns how many entries went. */
  prune(days: number, now = Date.now()): number {
    const cutoff = new Date(now - days * 86_400_000).toISOString();
    return this.kdb.transaction(() => {
      const n = this.kdb.db.prepare('DELETE FROM access_log WHERE time < ?').run(cutoff).changes;
      this.kdb.db.prepare('DELETE FROM access_unlock_nonces WHERE expires_at < ?').run(new Date(now).toISOString());
      return n;
    });
  }

  /** Records a remote-unlock nonce; false when it was used before (a replay). */
  useNonce(nonce: string, expiresAt: string, now = Date.now()): boolean {
    const r = this.kdb.db
      .prepare('INSERT OR IGNORE INTO access_unlock_nonces (nonce, expires_at, used_at) VALUES (?, ?, ?)')
      .run(nonce, new Date(expiresAt).toISOString(), new Date(now).toISOString());
    return r.changes === 1;
  }

  /** Rules saved from the admin page (they replace access.rules), or null. */
  savedRules(): { rules: unknown; updatedAt: string; updatedBy: string | null } | null {
    const r = this.kdb.db.prepare('SELECT rules, updated_at, updated_by FROM access_rules WHERE id = 1').get() as
      { rules: string; updated_at: string; updated_by: string | null } | undefined;
    return r ? { rules: JSON.parse(r.rules) as unknown, updatedAt: r.updated_at, updatedBy: r.updated_by } : null;
  }

  saveRules(rules: unknown, by: string | null): void {
    this.kdb.db
      .prepare(
        'INSERT INTO access_rules (id, rules, updated_at, updated_by) VALUES (1, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET rules = excluded.rules, updated_at = excluded.updated_at, updated_by = excluded.updated_by',
      )
      .run(JSON.stringify(rules), new Date().toISOString(), by);
  }

  clearSavedRules(): void {
    this.kdb.db.prepare('DELETE FROM access_rules WHERE id = 1').run();
  }
}

export const CSV_COLUMNS = [
  'seq',
  'time',
  'door',
  'personId',
  'personName',
  'result',
  'reason',
  'detail',
  'source',
  'score',
  'margin',
  'modelVersion',
  'eventId',
  'requestedBy',
  'opened',
] as const;

function csvCell(v: string | number | boolean | null): string {
  if (v === null) return '';
  const s = String(v);
  // Quote when needed (RFC 4180); a leading = + - @ is prefixed so spreadsheets do not run it as a formula.
  const safe = /^[=+\-@]/.test(s) && typeof v === 'string' ? `'${s}` : s;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function toCsv(entries: readonly AccessEntry[]): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const e of entries) lines.push(CSV_COLUMNS.map((c) => csvCell(e[c])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}
