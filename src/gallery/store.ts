/**
 * The gallery's storage: people and their face templates in the kiosk database (part
 * `gallery`), enrolment crops and thumbnails as files (0600) under `<state.dir>/gallery/<id>/`.
 *
 * Every write bumps a version row, so a reader in any process notices a change with one
 * cheap query per frame (`version()`). Removal is meant to leave nothing: the connection
 * runs with `secure_delete` (freed pages are zeroed), the write-ahead log is checkpointed
 * and truncated after a removal, and the person's folder is deleted.
 */
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { KioskDb, Migration } from '../state/db.js';
import { FacegateError } from '../shared/errors.js';

export const GALLERY_PART = 'gallery';

export const galleryMigrations: readonly Migration[] = [
  {
    version: 1,
    description: 'people, face templates, change counter',
    up(db) {
      db.exec(`
        CREATE TABLE gallery_people (
          id TEXT PRIMARY KEY,
          name TEXT NOT NULL UNIQUE COLLATE NOCASE,
          groups TEXT NOT NULL DEFAULT '[]',
          valid_from TEXT,
          valid_until TEXT,
          created_at TEXT NOT NULL,
          updated_at TEXT NOT NULL
        );
        CREATE TABLE gallery_templates (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          person_id TEXT NOT NULL REFERENCES gallery_people(id) ON DELETE CASCADE,
          descriptor TEXT NOT NULL,
          vector BLOB NOT NULL,
          crop_file TEXT,
          source TEXT NOT NULL,
          quality TEXT NOT NULL DEFAULT '{}',
          created_at TEXT NOT NULL
        );
        CREATE INDEX gallery_templates_person ON gallery_templates(person_id);
        CREATE TABLE gallery_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO gallery_meta (key, value) VALUES ('version', '0');
      `);
    },
  },
  {
    version: 2,
    description: 'removal notices waiting for the broker',
    up(db) {
      db.exec(`
        CREATE TABLE gallery_removal_notices (
          person_id TEXT PRIMARY KEY,
          removed_at TEXT NOT NULL
        );
      `);
    },
  },
];

/** A removal made at this kiosk whose notice the broker has not acknowledged yet. */
export interface PendingRemovalNotice {
  readonly personId: string;
  readonly removedAt: string;
}

/** A person as stored. */
export interface StoredPerson {
  readonly id: string;
  readonly name: string;
  readonly groups: readonly string[];
  readonly validFrom: string | null;
  readonly validUntil: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface StoredTemplate {
  readonly id: number;
  readonly personId: string;
  readonly descriptor: string;
  readonly vector: Float32Array;
  /** File name of the enrolment crop in the person's folder; null when crops are not kept. */
  readonly cropFile: string | null;
  /** Where the photo came from (file name, `camera`, `upload`). */
  readonly source: string;
  readonly quality: Readonly<Record<string, number>>;
  readonly createdAt: string;
}

export interface NewTemplate {
  readonly vector: Float32Array;
  readonly source: string;
  readonly quality: Readonly<Record<string, number>>;
  /** Encoded enrolment crop (PNG) to keep, when crops are kept. */
  readonly crop?: Buffer;
}

/** A name or change the gallery cannot take (the message says what to do). */
export class GalleryError extends FacegateError {}

interface PersonRow {
  id: string;
  name: string;
  groups: string;
  valid_from: string | null;
  valid_until: string | null;
  created_at: string;
  updated_at: string;
}
interface TemplateRow {
  id: number;
  person_id: string;
  descriptor: string;
  vector: Buffer;
  crop_file: string | null;
  source: string;
  quality: string;
  created_at: string;
}

const toPerson = (r: PersonRow): StoredPerson => ({
  id: r.id,
  name: r.name,
  groups: JSON.parse(r.groups) as string[],
  validFrom: r.valid_from,
  validUntil: r.valid_until,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

function toVector(b: Buffer): Float32Array {
  // Copy: the row's buffer may not be aligned for a Float32Array view.
  const out = new Float32Array(b.length / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}

const toTemplate = (r: TemplateRow): StoredTemplate => ({
  id: r.id,
  personId: r.person_id,
  descriptor: r.descriptor,
  vector: toVector(r.vector),
  cropFile: r.crop_file,
  source: r.source,
  quality: JSON.parse(r.quality) as Record<string, number>,
  createdAt: r.created_at,
});

export const THUMBNAIL_FILE = 'thumbnail.jpg';

export class GalleryStore {
  constructor(
    private readonly kdb: KioskDb,
    /** `<state.dir>/gallery`: one folder per person for crops and the thumbnail. */
    readonly filesDir: string,
  ) {}

  /** Creates the tables (idempotent) and sets the connection up for erasing. */
  open(): void {
    this.kdb.migrate(GALLERY_PART, galleryMigrations);
    // Freed pages are overwritten with zeros: a removed person's rows do not linger in the file.
    this.kdb.db.pragma('secure_delete = ON');
  }

  private get db(): KioskDb['db'] {
    return this.kdb.db;
  }

  /** Changes with every write by any process (people, templates). */
  version(): number {
    const r = this.db.prepare("SELECT value FROM gallery_meta WHERE key = 'version'").get() as
      { value: string } | undefined;
    return Number(r?.value ?? 0);
  }

  private bump(): void {
    this.db.prepare("UPDATE gallery_meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'version'").run();
  }

  people(): StoredPerson[] {
    return (this.db.prepare('SELECT * FROM gallery_people ORDER BY name').all() as PersonRow[]).map(toPerson);
  }

  person(idOrName: string): StoredPerson | undefined {
    const r = this.db
      .prepare('SELECT * FROM gallery_people WHERE id = ? OR name = ? COLLATE NOCASE')
      .get(idOrName, idOrName) as PersonRow | undefined;
    return r ? toPerson(r) : undefined;
  }

  templates(personId?: string): StoredTemplate[] {
    const rows = (
      personId
        ? this.db.prepare('SELECT * FROM gallery_templates WHERE person_id = ? ORDER BY id').all(personId)
        : this.db.prepare('SELECT * FROM gallery_templates ORDER BY id').all()
    ) as TemplateRow[];
    return rows.map(toTemplate);
  }

  /** Templates of the person made by `descriptor`. */
  templateCount(personId: string, descriptor: string): number {
    return (
      this.db
        .prepare('SELECT COUNT(*) AS n FROM gallery_templates WHERE person_id = ? AND descriptor = ?')
        .get(personId, descriptor) as { n: number }
    ).n;
  }

  /** Descriptor ids in use, with their template counts. */
  descriptors(): { descriptor: string; templates: number; withoutCrop: number }[] {
    return this.db
      .prepare(
        'SELECT descriptor, COUNT(*) AS templates, SUM(crop_file IS NULL) AS withoutCrop FROM gallery_templates GROUP BY descriptor',
      )
      .all() as { descriptor: string; templates: number; withoutCrop: number }[];
  }

  personDir(id: string): string {
    if (!/^[0-9a-f-]{36}$/.test(id)) throw new GalleryError(`not a person id: ${id}`);
    return path.join(this.filesDir, id);
  }

  private writePrivate(file: string, data: Buffer): void {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    chmodSync(this.filesDir, 0o700);
    chmodSync(path.dirname(file), 0o700);
    writeFileSync(file, data, { mode: 0o600 });
    chmodSync(file, 0o600);
  }

  /**
   * Adds templates to the person `name` (created when new) in one transaction; the crop files
   * are written first and removed again when the transaction fails.
   */
  addTemplates(
    name: string,
    descriptor: string,
    templates: readonly NewTemplate[],
    meta: { groups?: readonly string[]; validFrom?: string | null; validUntil?: string | null } = {},
    thumbnail?: Buffer,
  ): StoredPerson {
    const trimmed = name.trim();
    if (!trimmed) throw new GalleryError('a person needs a name: give a non-empty NAME');
    const existing = this.person(trimmed);
    const id = existing?.id ?? randomUUID();
    const dir = this.personDir(id);
    const written: string[] = [];
    const cropNames = templates.map((t) => {
      if (!t.crop) return null;
      const file = `crop-${randomUUID()}.png`;
      this.writePrivate(path.join(dir, file), t.crop);
      written.push(path.join(dir, file));
      return file;
    });
    try {
      this.kdb.transaction(() => {
        const now = new Date().toISOString();
        if (!existing) {
          this.db
            .prepare(
              'INSERT INTO gallery_people (id, name, groups, valid_from, valid_until, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
            )
            .run(
              id,
              trimmed,
              JSON.stringify(meta.groups ?? []),
              meta.validFrom ?? null,
              meta.validUntil ?? null,
              now,
              now,
            );
        } else {
          this.db.prepare('UPDATE gallery_people SET updated_at = ? WHERE id = ?').run(now, id);
        }
        const ins = this.db.prepare(
          'INSERT INTO gallery_templates (person_id, descriptor, vector, crop_file, source, quality, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
        );
        templates.forEach((t, i) =>
          ins.run(
            id,
            descriptor,
            Buffer.from(t.vector.buffer, t.vector.byteOffset, t.vector.byteLength),
            cropNames[i] ?? null,
            t.source,
            JSON.stringify(t.quality),
            now,
          ),
        );
        this.bump();
      });
    } catch (err) {
      for (const f of written) rmSync(f, { force: true });
      throw err;
    }
    if (thumbnail) this.writePrivate(path.join(dir, THUMBNAIL_FILE), thumbnail);
    return this.person(id) as StoredPerson;
  }

  update(
    id: string,
    patch: { name?: string; groups?: readonly string[]; validFrom?: string | null; validUntil?: string | null },
  ): StoredPerson {
    const p = this.person(id);
    if (!p || p.id !== id) throw new GalleryError(`no person with id ${id}: see facegate enrol list`);
    const name = patch.name?.trim() ?? p.name;
    if (!name) throw new GalleryError('a person needs a name: give a non-empty name');
    const clash = this.person(name);
    if (clash && clash.id !== id)
      throw new GalleryError(`${name} is already enrolled (id ${clash.id}): choose another name`);
    this.kdb.transaction(() => {
      this.db
        .prepare(
          'UPDATE gallery_people SET name = ?, groups = ?, valid_from = ?, valid_until = ?, updated_at = ? WHERE id = ?',
        )
        .run(
          name,
          JSON.stringify(patch.groups ?? p.groups),
          patch.validFrom === undefined ? p.validFrom : patch.validFrom,
          patch.validUntil === undefined ? p.validUntil : patch.validUntil,
          new Date().toISOString(),
          id,
        );
      this.bump();
    });
    return this.person(id) as StoredPerson;
  }

  /**
   * Adds templates of another descriptor computed from kept crops (same crop file, source and
   * quality as the template they were derived from), in one transaction. The templates of the
   * previous descriptor stay: a rollback to the previous model finds them again.
   */
  addDerived(descriptor: string, derived: readonly { from: StoredTemplate; vector: Float32Array }[]): void {
    if (derived.length === 0) return;
    this.kdb.transaction(() => {
      // Only for people still enrolled: another process may have removed one meanwhile.
      const ins = this.db.prepare(
        'INSERT INTO gallery_templates (person_id, descriptor, vector, crop_file, source, quality, created_at) SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM gallery_people WHERE id = ?)',
      );
      const now = new Date().toISOString();
      for (const { from, vector: v } of derived)
        ins.run(
          from.personId,
          descriptor,
          Buffer.from(v.buffer, v.byteOffset, v.byteLength),
          from.cropFile,
          from.source,
          JSON.stringify(from.quality),
          now,
          from.personId,
        );
      this.bump();
    });
  }

  /**
   * Applies a people bundle in one transaction (with `alsoInTransaction`, the history record):
   * people removed (rows; their folders and the write-ahead log after the commit), people put
   * with the id the bundle gives them and their bundle templates replaced by `vectors` of
   * `descriptor` (with `crops`, one kept crop file per vector, written first and removed again
   * when the transaction fails). A name held by someone else of this kiosk is refused
   * (GalleryError), nothing applied.
   */
  applyBundle(
    descriptor: string,
    people: readonly (Omit<StoredPerson, 'createdAt' | 'updatedAt'> & {
      vectors: readonly Float32Array[];
      crops?: readonly Buffer[];
    })[],
    removeIds: readonly string[],
    alsoInTransaction: () => void,
  ): { put: number; removed: string[] } {
    for (const p of people) this.personDir(p.id); // ids are uuids (paths are built from them)
    for (const id of removeIds) this.personDir(id);
    const written: string[] = [];
    const cropNames = people.map((p) =>
      p.vectors.map((_, i) => {
        const crop = p.crops?.[i];
        if (!crop) return null;
        const file = `crop-${randomUUID()}.png`;
        this.writePrivate(path.join(this.personDir(p.id), file), crop);
        written.push(path.join(this.personDir(p.id), file));
        return file;
      }),
    );
    const removed: string[] = [];
    /** Crop files of replaced bundle templates: deleted after the commit. */
    const stale: string[] = [];
    try {
      this.kdb.transaction(() => {
        const now = new Date().toISOString();
        for (const id of removeIds) {
          if (!this.person(id) || this.person(id)?.id !== id) continue;
          this.db.prepare('DELETE FROM gallery_templates WHERE person_id = ?').run(id);
          this.db.prepare('DELETE FROM gallery_people WHERE id = ?').run(id);
          removed.push(id);
        }
        const ins = this.db.prepare(
          "INSERT INTO gallery_templates (person_id, descriptor, vector, crop_file, source, quality, created_at) VALUES (?, ?, ?, ?, 'bundle', '{}', ?)",
        );
        people.forEach((p, pi) => {
          const clash = this.person(p.name);
          if (clash && clash.id !== p.id)
            throw new GalleryError(
              `the bundle enrols ${p.name} (id ${p.id}) but this kiosk has another ${clash.name} (id ${clash.id}): rename or remove one of them (facegate enrol remove)`,
            );
          this.db
            .prepare(
              `INSERT INTO gallery_people (id, name, groups, valid_from, valid_until, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT(id) DO UPDATE SET name = excluded.name, groups = excluded.groups, valid_from = excluded.valid_from,
             valid_until = excluded.valid_until, updated_at = excluded.updated_at`,
            )
            .run(p.id, p.name, JSON.stringify(p.groups), p.validFrom, p.validUntil, now, now);
          // The bundle replaces what an earlier bundle gave this person: its templates of every
          // descriptor (those derived from its crops too) and its crop files.
          const old = this.db
            .prepare("SELECT DISTINCT crop_file FROM gallery_templates WHERE person_id = ? AND source = 'bundle'")
            .all(p.id) as { crop_file: string | null }[];
          this.db.prepare("DELETE FROM gallery_templates WHERE person_id = ? AND source = 'bundle'").run(p.id);
          for (const o of old) if (o.crop_file) stale.push(this.cropPath(p.id, o.crop_file));
          p.vectors.forEach((v, i) =>
            ins.run(
              p.id,
              descriptor,
              Buffer.from(v.buffer, v.byteOffset, v.byteLength),
              cropNames[pi]?.[i] ?? null,
              now,
            ),
          );
        });
        // The fleet decided about these people: a notice of an earlier removal here is moot.
        const moot = this.db.prepare('DELETE FROM gallery_removal_notices WHERE person_id = ?');
        for (const id of [...removeIds, ...people.map((p) => p.id)]) moot.run(id);
        alsoInTransaction();
        this.bump();
      });
    } catch (err) {
      for (const f of written) rmSync(f, { force: true });
      throw err;
    }
    for (const f of stale) rmSync(f, { force: true });
    for (const id of removed) rmSync(this.personDir(id), { recursive: true, force: true });
    if (removed.length) this.checkpoint();
    return { put: people.length, removed };
  }

  /**
   * Erases the person: rows (zeroed by secure_delete), the write-ahead log, the crop and
   * thumbnail files. In the same transaction the id (a random uuid, nothing else of the
   * person) is queued as a removal notice for the operator: the daemon announces it, now or
   * at its next start, and then forgets it (`noticeSent`).
   */
  remove(id: string): void {
    const p = this.person(id);
    if (!p || p.id !== id) throw new GalleryError(`no person with id ${id}: see facegate enrol list`);
    this.kdb.transaction(() => {
      this.db.prepare('DELETE FROM gallery_templates WHERE person_id = ?').run(id);
      this.db.prepare('DELETE FROM gallery_people WHERE id = ?').run(id);
      this.db
        .prepare('INSERT OR REPLACE INTO gallery_removal_notices (person_id, removed_at) VALUES (?, ?)')
        .run(id, new Date().toISOString());
      this.bump();
    });
    rmSync(this.personDir(id), { recursive: true, force: true });
    this.checkpoint();
  }

  /** Removals made at this kiosk that the broker has not acknowledged yet, oldest first. */
  pendingNotices(): PendingRemovalNotice[] {
    return (
      this.db
        .prepare('SELECT person_id, removed_at FROM gallery_removal_notices ORDER BY removed_at, person_id')
        .all() as { person_id: string; removed_at: string }[]
    ).map((r) => ({ personId: r.person_id, removedAt: r.removed_at }));
  }

  /** The broker acknowledged the notice: the id leaves the kiosk (row zeroed, write-ahead log truncated). */
  noticeSent(personId: string): void {
    const r = this.db.prepare('DELETE FROM gallery_removal_notices WHERE person_id = ?').run(personId);
    if (r.changes) this.checkpoint();
  }

  /** Copies the write-ahead log into the database and truncates it, so old page images leave the disk. */
  private checkpoint(): void {
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }

  cropPath(personId: string, file: string): string {
    return path.join(this.personDir(personId), path.basename(file));
  }

  readCrop(personId: string, file: string): Buffer {
    return readFileSync(this.cropPath(personId, file));
  }

  thumbnail(personId: string): Buffer | undefined {
    const f = path.join(this.personDir(personId), THUMBNAIL_FILE);
    return existsSync(f) ? readFileSync(f) : undefined;
  }

  /** Files kept for a person (names in their folder). */
  files(personId: string): string[] {
    const dir = this.personDir(personId);
    return existsSync(dir) ? readdirSync(dir).sort() : [];
  }
}
