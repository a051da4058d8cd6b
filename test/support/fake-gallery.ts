/**
 * An in-memory GalleryService for the web app's tests, until the gallery (src/gallery)
 * is on this branch. It names the trained model's classes: enrolling from the camera
 * binds the person to the model class seen in the next good frames (one face the model
 * accepts, not yet bound), and `relabel` wraps the real recogniser so a frame shows the
 * enrolled name, or unknown once the person is removed. Enrolling from photos records
 * the photos' count only (no face analysis: that is the gallery's job).
 */
import type { DaemonBus } from '../../src/publish/bus.js';
import type { FramePipeline, PipelineLoader } from '../../src/daemon/worker.js';
import type { Match } from '../../src/shared/messages.js';
import { FacegateError } from '../../src/shared/errors.js';
import type {
  EnrolOptions,
  EnrolProgress,
  EnrolResult,
  GalleryService,
  PersonRecord,
  RefusalCode,
} from '../../src/web/ports.js';

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
  /** The model class this person is (null: enrolled from photos only). */
  modelClass: string | null;
}

export class FakeGallery implements GalleryService {
  private readonly people = new Map<string, Entry>();
  private next = 1;
  /** The model's own matches of recent frames (before relabelling), by frame id. */
  private readonly raw = new Map<number, readonly Match[]>();
  bus: DaemonBus | undefined;

  /** Enrols `name` as the model class `modelClass` (test set-up). */
  seed(name: string, modelClass: string, groups: string[] = []): PersonRecord {
    return this.add(name, modelClass, { groups }, 3);
  }

  /** The enrolled name of a model class, if any. */
  nameOf(modelClass: string): string | undefined {
    for (const e of this.people.values()) if (e.modelClass === modelClass) return e.record.name;
    return undefined;
  }

  /** Wraps a recogniser loader: labels become enrolled names; classes nobody enrolled are unknown. */
  relabel(inner: PipelineLoader): PipelineLoader {
    return async (dir) => {
      const r = await inner(dir);
      const wrapped: FramePipeline = {
        get modelVersion() {
          return r.modelVersion;
        },
        process: async (frame) => {
          const matches = await r.process(frame);
          this.raw.set(frame.id, matches);
          if (this.raw.size > 20) this.raw.delete(this.raw.keys().next().value as number);
          return matches.map((m): Match => ({ ...m, label: m.label === null ? null : (this.nameOf(m.label) ?? null) }));
        },
        close: () => r.close(),
      };
      return wrapped;
    };
  }

  private add(name: string, modelClass: string | null, o: EnrolOptions, templates: number): PersonRecord {
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
    this.people.set(record.id, { record, modelClass });
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
    return Promise.resolve({ person: this.add(name, null, o, photos.length), accepted: photos.length, rejected: [] });
  }

  enrolFromCamera(
    name: string,
    o: EnrolOptions & { frames?: number; timeoutMs?: number } = {},
    onProgress?: (p: EnrolProgress) => void,
  ): Promise<EnrolResult> {
    const bus = this.bus;
    if (!bus) return Promise.reject(new Error('FakeGallery.bus is not set'));
    const needed = o.frames ?? 3;
    return new Promise((resolve, reject) => {
      let good = 0;
      let seen: string | null = null;
      onProgress?.({ good, needed, hint: 'look at the camera' });
      const timer = setTimeout(() => {
        off();
        reject(new FakeRefusal('no-face', 'no face seen in time; stand in front of the camera and try again'));
      }, o.timeoutMs ?? 30_000);
      // The model's own verdict: the bus carries relabelled matches, where a class nobody enrolled is unknown too.
      const off = bus.on('frame', ({ frame }) => {
        const matches = this.raw.get(frame.id) ?? [];
        const m = matches[0];
        if (matches.length !== 1 || !m || m.label === null || this.nameOf(m.label)) {
          onProgress?.({ good, needed, hint: matches.length > 1 ? 'only one person, please' : 'look at the camera' });
          return;
        }
        if (seen !== null && seen !== m.label) good = 0;
        seen = m.label;
        good++;
        onProgress?.({ good, needed, hint: good < needed ? 'hold still' : null });
        if (good < needed) return;
        off();
        clearTimeout(timer);
        try {
          resolve({ person: this.add(name, seen, o, good), accepted: good, rejected: [] });
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    });
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
    return e ? { person: e.record, modelClass: e.modelClass } : undefined;
  }

  thumbnail(): Buffer | undefined {
    return undefined;
  }
}
