/**
 * The kiosk's one embedded database: `<state.dir>/kiosk.db` (SQLite through better-sqlite3).
 * This module owns the file: it opens it (WAL journal, synchronous=FULL so a committed
 * transaction survives a power cut, foreign keys on), checks it, and runs the schema
 * migrations. It knows no tables itself.
 *
 * Each part that keeps state (the event outbox, the update history, the face gallery, the
 * access log) declares its own tables as numbered migrations under its own name and calls
 * `migrate(part, migrations)` when it starts. A migration and the version it records are one
 * transaction, so a crash leaves the old schema or the new one. A database written by a newer
 * facegate (a part at a version this build does not know) is refused instead of guessed at.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { FacegateError } from '../shared/errors.js';

export type SqliteDb = Database.Database;

/** One schema step of one part: `version` counts from 1 without gaps. */
export interface Migration {
  readonly version: number;
  readonly description: string;
  up(db: SqliteDb): void;
}

/** The kiosk database cannot be opened, is damaged, or is newer than this build. */
export class KioskDbError extends FacegateError {}

export const KIOSK_DB_FILE = 'kiosk.db';

/** Where the kiosk database of a state folder lives. */
export function kioskDbPath(stateDir: string): string {
  return path.join(stateDir, KIOSK_DB_FILE);
}

export interface OpenOptions {
  /** Open without creating or changing anything (`facegate log`, `enrol list` next to a running daemon). */
  readonly readonly?: boolean;
}

export class KioskDb {
  private constructor(
    readonly file: string,
    readonly db: SqliteDb,
  ) {}

  /** Opens (creating when missing) and checks the database; `:memory:` for tests. */
  static open(file: string, o: OpenOptions = {}): KioskDb {
    if (file !== ':memory:' && !o.readonly) {
      try {
        mkdirSync(path.dirname(file), { recursive: true });
      } catch (err) {
        throw new KioskDbError(
          `cannot create the folder of the kiosk database ${file}: ${(err as Error).message}. Set state.dir to a writable folder.`,
          { cause: err },
        );
      }
    }
    let db: SqliteDb;
    try {
      db = new Database(file, { readonly: o.readonly ?? false, fileMustExist: o.readonly ?? false });
    } catch (err) {
      throw new KioskDbError(
        `cannot open the kiosk database ${file}: ${(err as Error).message}. ${
          o.readonly ? 'Has the kiosk run here yet (facegate run)?' : 'Check that state.dir is writable.'
        }`,
        { cause: err },
      );
    }
    try {
      db.pragma('busy_timeout = 5000');
      if (!o.readonly) {
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = FULL');
      }
      db.pragma('foreign_keys = ON');
      const check = db.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw new Error(String(check));
      if (!o.readonly)
        db.exec(
          'CREATE TABLE IF NOT EXISTS schema_versions (part TEXT PRIMARY KEY, version INTEGER NOT NULL, updated_at TEXT NOT NULL)',
        );
    } catch (err) {
      db.close();
      throw new KioskDbError(
        `the kiosk database ${file} is damaged (${(err as Error).message}). Stop the kiosk, move the file away (it is rebuilt empty at the next start; people and the access log in it are lost unless restored from a backup).`,
        { cause: err },
      );
    }
    return new KioskDb(file, db);
  }

  /** The schema version a part has reached (0 = none of its tables yet). */
  version(part: string): number {
    const exists = this.db
      .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_versions'")
      .get();
    if (!exists) return 0;
    const row = this.db.prepare('SELECT version FROM schema_versions WHERE part = ?').get(part) as
      { version: number } | undefined;
    return row?.version ?? 0;
  }

  /** Runs the migrations of `part` that are not applied yet, each in its own transaction. */
  migrate(part: string, migrations: readonly Migration[]): void {
    migrations.forEach((m, i) => {
      if (m.version !== i + 1)
        throw new Error(`migrations of ${part} must be numbered 1, 2, 3…; found ${m.version} at position ${i + 1}`);
    });
    const current = this.version(part);
    if (current > migrations.length)
      throw new KioskDbError(
        `the kiosk database ${this.file} holds ${part} at schema version ${current}, newer than this facegate knows (${migrations.length}). Run the facegate that wrote it, or restore a backup made before the upgrade.`,
      );
    for (const m of migrations.slice(current)) {
      this.db.transaction(() => {
        m.up(this.db);
        this.db
          .prepare(
            'INSERT INTO schema_versions (part, version, updated_at) VALUES (?, ?, ?) ON CONFLICT(part) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at',
          )
          .run(part, m.version, new Date().toISOString());
      })();
    }
  }

  /** Runs `fn` in one transaction: all of its writes land, or none. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
