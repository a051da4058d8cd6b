/**
 * The kiosk's memory of every bundle it was offered to install, in the kiosk database
 * (part `updates`), so that a captured signed bundle cannot be replayed to undo what the
 * operator or the probation did:
 *
 * - the highest version ever installed: a bundle that is not forced must be newer than it
 *   (not only newer than the running one), so a rolled-back or downgraded-from version
 *   does not come back;
 * - every bundle rolled back or refused for what it is (failed self-test, failed to
 *   start), by the sha256 of its signed manifest: never installed again, however it is
 *   re-offered (new transfer id, other chunking, a URL);
 * - forced bundles are single-use, and never go below a version installed after they
 *   were signed (`createdAt`);
 * - transfer ids used (the last TRANSFER_IDS_KEPT), so a redelivered offer is recognised
 *   after a restart too.
 *
 * Writes are single transactions (committed with fsync): a power cut leaves the record
 * before or after. Model files stay in the model store (src/update/store.ts).
 */
import { createHash } from 'node:crypto';
import type { KioskDb, Migration } from '../state/db.js';
import type { BundleManifest } from './bundle.js';
import { canonicalBytes } from './canonical.js';
import { UpdateRejected } from './errors.js';
import { compareVersions } from './version.js';

export const UPDATES_PART = 'updates';
export const TRANSFER_IDS_KEPT = 1000;

export const updateMigrations: readonly Migration[] = [
  {
    version: 1,
    description: 'bundles seen, installed and refused; transfer ids used',
    up: (db) => {
      db.exec(`
        CREATE TABLE update_bundles (
          manifest_sha256 TEXT PRIMARY KEY,
          version TEXT NOT NULL,
          forced INTEGER NOT NULL,
          created_at TEXT NOT NULL,
          attempted_at TEXT NOT NULL,
          installed_at TEXT,
          refused_at TEXT,
          reason TEXT
        );
        CREATE TABLE update_transfers (transfer_id TEXT PRIMARY KEY, seen INTEGER NOT NULL);
      `);
    },
  },
  {
    version: 2,
    description: 'people bundles installed; people removed by a bundle (final)',
    up: (db) => {
      db.exec(`
        CREATE TABLE people_bundles (
          manifest_sha256 TEXT PRIMARY KEY,
          created_at TEXT NOT NULL,
          installed_at TEXT NOT NULL
        );
        CREATE TABLE people_removed (person_id TEXT PRIMARY KEY, removed_at TEXT NOT NULL);
      `);
    },
  },
];

/** The identity of a bundle: sha256 of its signed manifest (what the signature covers). */
export function manifestId(m: BundleManifest): string {
  return createHash('sha256').update(canonicalBytes(m)).digest('hex');
}

/** One bundle of the history, as the admin page shows it. */
export interface UpdateRecord {
  readonly version: string;
  readonly forced: boolean;
  /** When it was signed. */
  readonly createdAt: string;
  readonly attemptedAt: string;
  readonly installedAt: string | null;
  /** Rolled back or refused (never installed again), with why. */
  readonly refusedAt: string | null;
  readonly reason: string | null;
}

interface BundleRow {
  manifest_sha256: string;
  version: string;
  forced: number;
  created_at: string;
  attempted_at: string;
  installed_at: string | null;
  refused_at: string | null;
  reason: string | null;
}

export class UpdateHistory {
  private transferSeq = 0;

  constructor(
    private readonly db: KioskDb,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Creates the tables; call once before the rest. */
  open(): void {
    this.db.migrate(UPDATES_PART, updateMigrations);
    const row = this.db.db.prepare('SELECT MAX(seen) AS n FROM update_transfers').get() as { n: number | null };
    this.transferSeq = row.n ?? 0;
  }

  private row(id: string): BundleRow | undefined {
    return this.db.db.prepare('SELECT * FROM update_bundles WHERE manifest_sha256 = ?').get(id) as
      BundleRow | undefined;
  }

  /** The bundles this kiosk was offered, newest attempt first (the admin page shows them). */
  list(limit = 50): UpdateRecord[] {
    const rows = this.db.db
      .prepare('SELECT * FROM update_bundles ORDER BY attempted_at DESC, rowid DESC LIMIT ?')
      .all(limit) as BundleRow[];
    return rows.map((r) => ({
      version: r.version,
      forced: r.forced === 1,
      createdAt: r.created_at,
      attemptedAt: r.attempted_at,
      installedAt: r.installed_at,
      refusedAt: r.refused_at,
      reason: r.reason,
    }));
  }

  /** The highest version this kiosk ever installed from a bundle (null: none yet). */
  highestInstalled(): string | null {
    const rows = this.db.db.prepare('SELECT version FROM update_bundles WHERE installed_at IS NOT NULL').all() as {
      version: string;
    }[];
    let best: string | null = null;
    for (const r of rows) if (best === null || compareVersions(r.version, best) > 0) best = r.version;
    return best;
  }

  /**
   * Throws UpdateRejected when the history forbids this bundle: refused or rolled back
   * before, not newer than every version installed, a forced bundle used before or
   * signed before a newer version was installed, or the version running now.
   */
  check(m: BundleManifest, running: string | null): void {
    const id = manifestId(m);
    const seen = this.row(id);
    if (seen?.refused_at)
      throw new UpdateRejected(
        `bundle ${m.version} was ${seen.reason ?? 'refused'} on this kiosk at ${seen.refused_at}`,
        'Sign a new version with the fix',
      );
    if (running !== null && compareVersions(m.version, running) === 0)
      throw new UpdateRejected(`version ${m.version} is running already`);
    if (m.forced) {
      if (seen)
        throw new UpdateRejected(
          `forced bundle ${m.version} was used already (at ${seen.attempted_at}); a forced bundle installs once`,
          'Make a new forced bundle to go back again',
        );
      const later = (
        this.db.db.prepare('SELECT version, installed_at FROM update_bundles WHERE installed_at IS NOT NULL').all() as {
          version: string;
          installed_at: string;
        }[]
      ).find((r) => compareVersions(r.version, m.version) > 0 && r.installed_at > m.createdAt);
      if (later)
        throw new UpdateRejected(
          `forced bundle ${m.version} (signed ${m.createdAt}) is older than version ${later.version} installed after it was signed (${later.installed_at})`,
          'Make a new forced bundle to go back',
        );
      return;
    }
    const highest = this.highestInstalled();
    if (highest !== null && compareVersions(m.version, highest) <= 0)
      throw new UpdateRejected(
        `version ${m.version} is not newer than ${highest}, installed on this kiosk before`,
        'Make a new version, or a forced bundle (bundle create --force) to go back',
      );
  }

  /** Records that the kiosk starts installing this bundle (before the store writes anything). */
  attempt(m: BundleManifest): void {
    this.db.db
      .prepare(
        'INSERT OR IGNORE INTO update_bundles (manifest_sha256, version, forced, created_at, attempted_at) VALUES (?, ?, ?, ?, ?)',
      )
      .run(manifestId(m), m.version, m.forced ? 1 : 0, m.createdAt, this.now().toISOString());
  }

  /** Records the bundle as installed (the model store swapped to it). */
  installed(m: BundleManifest): void {
    this.db.transaction(() => {
      this.attempt(m);
      this.db.db
        .prepare('UPDATE update_bundles SET installed_at = ? WHERE manifest_sha256 = ?')
        .run(this.now().toISOString(), manifestId(m));
    });
  }

  /** Records the bundle as never to be installed again (rolled back, failed its self-test). */
  refuse(m: BundleManifest, reason: string): void {
    this.db.transaction(() => {
      this.attempt(m);
      this.refuseRow(manifestId(m), reason);
    });
  }

  /**
   * Refuses, by version, the bundles of that version this kiosk installed or attempted
   * (a rollback knows the version only). Returns how many.
   */
  refuseVersion(version: string, reason: string): number {
    return this.db.transaction(() => {
      const rows = this.db.db
        .prepare('SELECT manifest_sha256 FROM update_bundles WHERE version = ? AND refused_at IS NULL')
        .all(version) as { manifest_sha256: string }[];
      for (const r of rows) this.refuseRow(r.manifest_sha256, reason);
      return rows.length;
    });
  }

  private refuseRow(id: string, reason: string): void {
    this.db.db
      .prepare(
        'UPDATE update_bundles SET refused_at = COALESCE(refused_at, ?), reason = COALESCE(reason, ?) WHERE manifest_sha256 = ?',
      )
      .run(this.now().toISOString(), reason.slice(0, 200), id);
  }

  /** Whether a transfer id was used before (in this run or an earlier one). */
  usedTransfer(transferId: string): boolean {
    return this.db.db.prepare('SELECT 1 FROM update_transfers WHERE transfer_id = ?').get(transferId) !== undefined;
  }

  /** Records a transfer id; keeps the last TRANSFER_IDS_KEPT. */
  useTransfer(transferId: string): void {
    this.db.transaction(() => {
      this.db.db
        .prepare('INSERT OR IGNORE INTO update_transfers (transfer_id, seen) VALUES (?, ?)')
        .run(transferId, ++this.transferSeq);
      this.db.db.prepare('DELETE FROM update_transfers WHERE seen <= ?').run(this.transferSeq - TRANSFER_IDS_KEPT);
    });
  }
}

/**
 * The kiosk's memory of people bundles (src/gallery/bundle.ts): each must be signed after the
 * last one installed, so a captured older bundle cannot be replayed; and the ids a bundle
 * removed are kept (ids only, no name or face), so no later or replayed bundle brings
 * those people back.
 */
export class PeopleHistory {
  constructor(
    private readonly db: KioskDb,
    private readonly now: () => Date = () => new Date(),
  ) {}

  open(): void {
    this.db.migrate(UPDATES_PART, updateMigrations);
  }

  /** The signing time of the newest people bundle installed (null: none yet). */
  newestInstalled(): string | null {
    const r = this.db.db.prepare('SELECT MAX(created_at) AS t FROM people_bundles').get() as { t: string | null };
    return r.t;
  }

  /** Throws UpdateRejected for a bundle installed before, or signed before the newest one installed. */
  check(manifestSha256: string, createdAt: string): void {
    const seen = this.db.db
      .prepare('SELECT installed_at FROM people_bundles WHERE manifest_sha256 = ?')
      .get(manifestSha256) as { installed_at: string } | undefined;
    if (seen) throw new UpdateRejected(`people bundle of ${createdAt} was installed already (at ${seen.installed_at})`);
    const newest = this.newestInstalled();
    if (newest !== null && createdAt <= newest)
      throw new UpdateRejected(
        `people bundle of ${createdAt} is not newer than the people bundle of ${newest} installed before`,
        'Export a new bundle (facegate enrol export-bundle)',
      );
  }

  removed(personId: string): boolean {
    return this.db.db.prepare('SELECT 1 FROM people_removed WHERE person_id = ?').get(personId) !== undefined;
  }

  /** Records the bundle and the ids it removed; call inside the transaction that applies it. */
  record(manifestSha256: string, createdAt: string, removedIds: readonly string[]): void {
    const at = this.now().toISOString();
    this.db.db
      .prepare('INSERT INTO people_bundles (manifest_sha256, created_at, installed_at) VALUES (?, ?, ?)')
      .run(manifestSha256, createdAt, at);
    const ins = this.db.db.prepare('INSERT OR IGNORE INTO people_removed (person_id, removed_at) VALUES (?, ?)');
    for (const id of removedIds) ins.run(id, at);
  }
}
