/**
 * One kiosk per folder: an exclusive lock on the state folder (and the model store) held
 * for as long as the daemon runs. Two daemons on one state folder roll back each other's
 * installs, delete the model the other one serves and fight over one MQTT client id.
 *
 * The lock is an operating-system lock (fcntl, taken through SQLite's `BEGIN EXCLUSIVE`
 * on `<dir>/facegate.lock`), so it goes away with the process that holds it, even after
 * `kill -9` or a power cut: a stale lock of a dead process is simply taken over. Who holds
 * it (pid, since when) is written next to it in `facegate.lock.json`, for the message the
 * second start prints.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { FacegateError } from '../shared/errors.js';

export const LOCK_FILE = 'facegate.lock';
export const LOCK_INFO_FILE = 'facegate.lock.json';

/** Another process holds the folder; the message names it. */
export class FolderLockedError extends FacegateError {
  constructor(
    message: string,
    readonly holder: LockHolder | null,
  ) {
    super(message);
  }
}

export interface LockHolder {
  readonly pid: number;
  readonly since: string;
  readonly host: string;
}

function readHolder(dir: string): LockHolder | null {
  try {
    const raw = JSON.parse(readFileSync(path.join(dir, LOCK_INFO_FILE), 'utf8')) as Partial<LockHolder>;
    if (typeof raw.pid === 'number' && typeof raw.since === 'string')
      return { pid: raw.pid, since: raw.since, host: typeof raw.host === 'string' ? raw.host : '?' };
  } catch {
    /* missing or half-written: the holder is just starting */
  }
  return null;
}

export class FolderLock {
  private constructor(
    readonly dir: string,
    private readonly handle: Database.Database,
  ) {}

  /**
   * Takes the lock on `dir` (created when missing) or throws FolderLockedError naming the
   * process that holds it. `what` names the folder in messages ("state.dir").
   */
  static acquire(dir: string, what: string): FolderLock {
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw new FacegateError(
        `cannot create ${what} ${dir}: ${(err as Error).message}. Point ${what} at a writable folder.`,
        {
          cause: err,
        },
      );
    }
    let handle: Database.Database;
    try {
      handle = new Database(path.join(dir, LOCK_FILE));
      handle.pragma('busy_timeout = 0');
    } catch (err) {
      throw new FacegateError(
        `cannot lock ${what} ${dir}: ${(err as Error).message}. Point ${what} at a writable folder.`,
        {
          cause: err,
        },
      );
    }
    try {
      handle.exec('BEGIN EXCLUSIVE');
    } catch (err) {
      handle.close();
      if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
      const h = readHolder(dir);
      const who = h ? `facegate process ${h.pid} on ${h.host} (running since ${h.since})` : 'another facegate process';
      throw new FolderLockedError(
        `${what} ${dir} is in use by ${who}. Only one kiosk may run on it: stop that one first (systemctl stop facegate), or give this one its own ${what}.`,
        h,
      );
    }
    const holder: LockHolder = { pid: process.pid, since: new Date().toISOString(), host: hostname() };
    try {
      writeFileSync(path.join(dir, LOCK_INFO_FILE), `${JSON.stringify(holder)}\n`);
    } catch {
      /* the lock holds anyway; only the message for a second start is poorer */
    }
    return new FolderLock(dir, handle);
  }

  /** Who holds the lock now, as written by the holder (null when nobody said). */
  static holder(dir: string): LockHolder | null {
    return readHolder(dir);
  }

  release(): void {
    if (!this.handle.open) return;
    const h = readHolder(this.dir);
    if (h?.pid === process.pid) rmSync(path.join(this.dir, LOCK_INFO_FILE), { force: true });
    this.handle.close(); // closing ends the transaction and drops the OS lock
  }
}
