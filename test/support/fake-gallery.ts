/**
 * An in-memory GalleryService for the web app's own tests (test/web/server.test.ts): the
 * HTTP API's answers, refusals and checks without loading any model. It does no face
 * analysis (enrolling from photos records the photos' count; it has no camera to enrol
 * from). The browser tests run the real gallery (src/gallery) on real faces instead.
 */
import { FacegateError } from '../../src/shared/errors.js';
import type { EnrolOptions, EnrolResult, GalleryService, PersonRecord, RefusalCode } from '../../src/web/ports.js';

export class FakeRefusal extends FacegateError {
  constructor(
    readonly code: RefusalCode,
    message: string,
  ) {
    super(message);
  }
}

interface Entry {
  record: PersonRecord;
}

export class FakeGallery implements GalleryService {
  private readonly people = new Map<string, Entry>();
  private next = 1;

  /** Enrols `name` (test set-up). */
  seed(name: string, groups: string[] = []): PersonRecord {
    return this.add(name, { groups }, 3);
  }

  private add(name: string, o: EnrolOptions, templates: number): PersonRecord {
    if ([...this.people.values()].some((e) => e.record.name === name))
      throw new FakeRefusal('duplicate', `${name} is already enrolled; choose another name or update that person`);
    const now = new Date().toISOString();
    const record: PersonRecord = {
      id: `p${this.next++}`,
      name,
      groups: o.groups ?? [],
      validFrom: o.validFrom ?? null,
      validUntil: o.validUntil ?? null,
      templates,
      createdAt: now,
      updatedAt: now,
    };
    this.people.set(record.id, { record });
    return record;
  }

  list(): PersonRecord[] {
    return [...this.people.values()].map((e) => e.record);
  }

  get(idOrName: string): PersonRecord | undefined {
    return (
      this.people.get(idOrName)?.record ?? [...this.people.values()].find((e) => e.record.name === idOrName)?.record
    );
  }

  enrolPhotos(name: string, photos: readonly Buffer[], o: EnrolOptions = {}): Promise<EnrolResult> {
    if (photos.length < 2) return Promise.reject(new FakeRefusal('too-few', 'give at least 2 photos of the face'));
    return Promise.resolve({ person: this.add(name, o, photos.length), accepted: photos.length, rejected: [] });
  }

  enrolFromCamera(): Promise<EnrolResult> {
    return Promise.reject(
      new FakeRefusal('no-face', 'this fake gallery has no camera: the browser tests enrol from one'),
    );
  }

  update(
    id: string,
    patch: { name?: string; groups?: string[]; validFrom?: string | null; validUntil?: string | null },
  ): PersonRecord {
    const e = this.people.get(id);
    if (!e) throw new FacegateError(`no person ${id}`);
    e.record = {
      ...e.record,
      ...(patch.name !== undefined ? { name: patch.name } : {}),
      ...(patch.groups !== undefined ? { groups: patch.groups } : {}),
      ...(patch.validFrom !== undefined ? { validFrom: patch.validFrom } : {}),
      ...(patch.validUntil !== undefined ? { validUntil: patch.validUntil } : {}),
      updatedAt: new Date().toISOString(),
    };
    return e.record;
  }

  remove(id: string): void {
    if (!this.people.delete(id)) throw new FacegateError(`no person ${id}`);
  }

  exportPerson(id: string): unknown {
    const e = this.people.get(id);
    return e ? { person: e.record } : undefined;
  }

  thumbnail(): Buffer | undefined {
    return undefined;
  }
}
