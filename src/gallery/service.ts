/**
 * The one GalleryService: every enrolment path (CLI, kiosk camera, HTTP API of the web app)
 * goes through it, so every photo passes the same checks and every removal erases the same
 * things. It also answers the recognition side: the search index for the current gallery,
 * rebuilt when the gallery changed (in this process or another), with the threshold for
 * its size.
 */
import path from 'node:path';
import sharp from 'sharp';
import type { Logger } from 'pino';
import type { BlazeFaceDetector } from '../detect/blazeface.js';
import { decodeRgb, type RgbImage } from '../shared/image.js';
import type { Face } from '../shared/messages.js';
import { moduleLogger } from '../shared/logger.js';
import { alignFace } from '../detect/align.js';
import { assessFace, EnrolmentRefused, type RefusalCode } from './checks.js';
import type { GalleryConfig } from './config.js';
import { CrossScoreCache, type AdaptiveShift } from './adapt.js';
import { cropFor, type FaceDescriptor } from './descriptor.js';
import {
  aggregateThreshold,
  buildIndex,
  decisionScore,
  galleryDecision,
  search,
  type GalleryDecision,
  type GalleryIndex,
  type ImpostorTail,
  type MarginCalibration,
} from './match.js';
import { GalleryError, type GalleryStore, type NewTemplate, type StoredPerson, type StoredTemplate } from './store.js';

export { EnrolmentRefused, type RefusalCode } from './checks.js';
export { GalleryError } from './store.js';

export interface PersonRecord {
  readonly id: string;
  readonly name: string;
  readonly groups: readonly string[];
  readonly validFrom: string | null;
  readonly validUntil: string | null;
  readonly templates: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface EnrolOptions {
  groups?: string[];
  validFrom?: string | null;
  validUntil?: string | null;
  force?: boolean;
}

export interface EnrolResult {
  person: PersonRecord;
  accepted: number;
  rejected: { index: number; code: RefusalCode; message: string }[];
}

export interface EnrolProgress {
  good: number;
  needed: number;
  hint: string | null;
}

export interface GalleryService {
  list(): PersonRecord[];
  get(idOrName: string): PersonRecord | undefined;
  enrolPhotos(name: string, photos: readonly Buffer[], o?: EnrolOptions): Promise<EnrolResult>;
  /** Takes N good frames from the kiosk's own camera; progress carries guidance for the screen. */
  enrolFromCamera(
    name: string,
    o?: EnrolOptions & { frames?: number; timeoutMs?: number },
    onProgress?: (p: EnrolProgress) => void,
  ): Promise<EnrolResult>;
  update(
    id: string,
    patch: { name?: string; groups?: string[]; validFrom?: string | null; validUntil?: string | null },
  ): PersonRecord;
  /** Erases templates, crops, thumbnails everywhere. */
  remove(id: string): void;
  /** Everything stored about the person (JSON). */
  exportPerson(id: string): unknown;
  /** Small JPEG of an enrolment crop, when crops are kept. */
  thumbnail(id: string): Buffer | undefined;
}

/** The gallery as recognition searches it: rebuilt only when the stored gallery changed. */
export interface GallerySnapshot {
  readonly version: number;
  readonly index: GalleryIndex;
  readonly people: number;
  /** Score a face needs to be named, for this gallery size (decisionScore of its search result). */
  readonly threshold: number;
  /** Score a track's pooled (mean) descriptor needs (aggregateThreshold); absent where the descriptor has no aggregate tail. */
  readonly aggregateThreshold?: number;
  /** gallery.norm margin in force at this size: the weight of the lead over the runner-up; null: the best cosine is compared. */
  readonly weight: number | null;
  /** gallery.adapt: how much `threshold` and `aggregateThreshold` were raised for this gallery's own cross scores (0: not at all). */
  readonly shift: number;
  readonly names: ReadonlyMap<string, string>;
}

/** Where frames for enrolment at the kiosk come from: returns a function that unsubscribes. */
export type FrameFeed = (onImage: (image: Buffer) => void) => () => void;

export interface GalleryDeps {
  readonly store: GalleryStore;
  readonly descriptor: FaceDescriptor;
  readonly detector: BlazeFaceDetector;
  readonly config: GalleryConfig;
  /** The kiosk camera's frames (enrolFromCamera); absent where there is no camera. */
  readonly frames?: FrameFeed;
}

/** Side of the kept enrolment crop, as a multiple of the face box (room to cut again for another alignment). */
const KEPT_MARGIN = 2;
const KEPT_MAX_SIDE = 320;
const THUMB_SIDE = 96;

export class FaceGallery implements GalleryService {
  private readonly log: Logger = moduleLogger('gallery');
  /** The search index per descriptor id (the running model's, and the next one's while a model switch loads). */
  private readonly cached = new Map<string, GallerySnapshot>();
  /** gallery.adapt's cross scores per descriptor id, updated for the people who changed (CrossScoreCache). */
  private readonly crossScores = new Map<string, CrossScoreCache>();
  /** The store version each descriptor's templates were last completed at (refresh). */
  private readonly completedAt = new Map<string, number>();
  /** The descriptor enrolment uses: the running model's (useDescriptor). */
  private descriptor: FaceDescriptor;

  constructor(private readonly deps: GalleryDeps) {
    this.descriptor = deps.descriptor;
  }

  get descriptorId(): string {
    return this.descriptor.id;
  }

  /** Enrol with this descriptor from now on (the model that recognises switched to it). */
  useDescriptor(d: FaceDescriptor): void {
    if (d.id !== this.descriptor.id) this.log.info({ descriptor: d.id }, 'gallery descriptor switched');
    this.descriptor = d;
    // The other descriptors' search indexes and cross scores go (a rollback rebuilds them).
    for (const id of this.cached.keys()) if (id !== d.id) this.cached.delete(id);
    for (const id of this.crossScores.keys()) if (id !== d.id) this.crossScores.delete(id);
  }

  /** The descriptor ids whose search index or cross scores are held in memory. */
  heldDescriptors(): string[] {
    return [...new Set([...this.cached.keys(), ...this.crossScores.keys()])].sort();
  }

  private record(p: StoredPerson): PersonRecord {
    return { ...p, templates: this.deps.store.templateCount(p.id, this.descriptor.id) };
  }

  list(): PersonRecord[] {
    return this.deps.store.people().map((p) => this.record(p));
  }

  get(idOrName: string): PersonRecord | undefined {
    const p = this.deps.store.person(idOrName);
    return p ? this.record(p) : undefined;
  }

  /** The door's view of a person (PersonDirectory). */
  lookup(nameOrId: string): Pick<PersonRecord, 'id' | 'name' | 'groups' | 'validFrom' | 'validUntil'> | undefined {
    const p = this.deps.store.person(nameOrId);
    return p
      ? { id: p.id, name: p.name, groups: p.groups, validFrom: p.validFrom, validUntil: p.validUntil }
      : undefined;
  }

  /**
   * The decision for a gallery of `people` with the configured target: the threshold from the
   * descriptor's impostor tail, or from its margin calibration (gallery.norm margin) where that
   * covers the size (default: enrolment's descriptor).
   */
  decisionFor(
    people: number,
    tail: ImpostorTail = this.descriptor.impostorTail,
    margin: MarginCalibration | null = this.descriptor.margin ?? null,
  ): GalleryDecision {
    return galleryDecision(people, { targetFar: this.deps.config.targetFar, tail, margin });
  }

  /**
   * The search index of the current gallery for a descriptor (default: enrolment's), scored by
   * its rule, with the threshold from its impostor tail; one cheap query when nothing changed.
   */
  snapshot(
    d: Pick<FaceDescriptor, 'id' | 'impostorTail' | 'aggregateTail' | 'poolQuantiles' | 'rule' | 'margin'> = this
      .descriptor,
  ): GallerySnapshot {
    const { id: descriptorId, impostorTail: tail } = d;
    const version = this.deps.store.version();
    const hit = this.cached.get(descriptorId);
    if (hit?.version === version) return hit;
    const people = this.deps.store.people();
    const byPerson = new Map<string, Float32Array[]>();
    for (const t of this.deps.store.templates()) {
      if (t.descriptor !== descriptorId) continue;
      const list = byPerson.get(t.personId) ?? [];
      list.push(t.vector);
      byPerson.set(t.personId, list);
    }
    const entries = people
      .filter((p) => byPerson.has(p.id))
      .map((p) => ({ personId: p.id, templates: byPerson.get(p.id) ?? [] }));
    const index = buildIndex(entries, { rule: d.rule });
    // gallery.adapt: the enrolled people are each other's strangers (src/gallery/adapt.ts).
    let adapted: AdaptiveShift | null = null;
    if (this.deps.config.adapt && d.poolQuantiles) {
      const cross = this.crossScores.get(descriptorId) ?? new CrossScoreCache();
      this.crossScores.set(descriptorId, cross);
      adapted = cross.update(entries, d.poolQuantiles, { rule: d.rule }, index);
    }
    const shift = adapted?.shift ?? 0;
    const decision = this.decisionFor(entries.length, tail, d.margin ?? null);
    const snap: GallerySnapshot = {
      version,
      index,
      people: entries.length,
      threshold: decision.threshold + shift,
      weight: decision.weight,
      shift,
      ...(d.aggregateTail
        ? {
            aggregateThreshold: aggregateThreshold(entries.length, d.aggregateTail, this.deps.config.targetFar) + shift,
          }
        : {}),
      names: new Map(people.map((p) => [p.id, p.name])),
    };
    if (shift !== (hit?.shift ?? 0))
      this.log.info(
        {
          shift: Number(shift.toFixed(4)),
          tailShare: adapted?.level ?? null,
          crossScores: adapted?.scores ?? 0,
          threshold: Number(snap.threshold.toFixed(4)),
        },
        shift > 0
          ? "gallery threshold raised: the enrolled people's faces score higher against each other than the strangers the threshold was fitted on (gallery.adapt)"
          : 'gallery threshold no longer raised (gallery.adapt)',
      );
    this.cached.set(descriptorId, snap);
    this.log.info(
      {
        people: snap.people,
        threshold: Number(snap.threshold.toFixed(4)),
        shift: Number(snap.shift.toFixed(4)),
        norm: snap.weight === null ? 'none' : 'margin',
        version,
      },
      'gallery loaded',
    );
    return snap;
  }

  /** Faces in an encoded image, decoded; a refusal for an image that cannot be read. */
  private async facesOf(image: Buffer): Promise<{ img: RgbImage; faces: Face[] } | EnrolmentRefused> {
    let img: RgbImage;
    try {
      img = await decodeRgb(image);
    } catch (err) {
      return new EnrolmentRefused(
        'bad-image',
        `cannot read the image (${(err as Error).message}): use a JPEG or PNG photo`,
      );
    }
    return { img, faces: await this.deps.detector.detect(img) };
  }

  private async keptCrop(img: RgbImage, face: Face): Promise<Buffer> {
    const side = Math.min(KEPT_MAX_SIDE, Math.round(Math.max(face.box.width, face.box.height) * KEPT_MARGIN));
    const wide = alignFace(img, face.box, face.keypoints, side, { margin: KEPT_MARGIN, rotate: false });
    return sharp(wide.data, { raw: { width: side, height: side, channels: 3 } })
      .png()
      .toBuffer();
  }

  private async thumbnailOf(crop: RgbImage): Promise<Buffer> {
    return sharp(crop.data, { raw: { width: crop.width, height: crop.height, channels: 3 } })
      .resize(THUMB_SIDE, THUMB_SIDE)
      .jpeg({ quality: 80 })
      .toBuffer();
  }

  async enrolPhotos(name: string, photos: readonly Buffer[], o: EnrolOptions = {}): Promise<EnrolResult> {
    const accepted: { img: RgbImage; face: Face; crop: RgbImage; quality: Record<string, number>; source: string }[] =
      [];
    const rejected: EnrolResult['rejected'] = [];
    for (const [index, photo] of photos.entries()) {
      const r = await this.facesOf(photo);
      const v =
        r instanceof EnrolmentRefused ? r : assessFace(r.img, r.faces, this.deps.config.checks, this.cropSpec());
      if (v instanceof EnrolmentRefused) rejected.push({ index, code: v.code, message: v.message });
      else if (!(r instanceof EnrolmentRefused))
        accepted.push({
          img: r.img,
          face: v.face,
          crop: v.crop,
          quality: { ...v.quality },
          source: `photo ${index + 1}`,
        });
    }
    return this.commit(name, accepted, rejected, o);
  }

  private cropSpec(): { settings: FaceDescriptor['crop']; size: number } {
    return { settings: this.descriptor.crop, size: this.descriptor.inputSize };
  }

  private async commit(
    name: string,
    accepted: { img: RgbImage; face: Face; crop: RgbImage; quality: Record<string, number>; source: string }[],
    rejected: EnrolResult['rejected'],
    o: EnrolOptions,
  ): Promise<EnrolResult> {
    const { store, config } = this.deps;
    const descriptor = this.descriptor;
    const trimmed = name.trim();
    if (!trimmed) throw new GalleryError('a person needs a name: give a non-empty NAME');
    const existing = store.person(trimmed);
    const have = existing ? store.templates(existing.id).filter((t) => t.descriptor === descriptor.id).length : 0;
    if (accepted.length + have < config.minPhotos) {
      const why = rejected.map((r) => `  photo ${r.index + 1}: ${r.message}`).join('\n');
      throw new EnrolmentRefused(
        'too-few',
        `${accepted.length} good photo${accepted.length === 1 ? '' : 's'} of ${trimmed}${have ? ` (+${have} enrolled)` : ''}, ${config.minPhotos} needed: add more photos of the face, front-on, lit, sharp${why ? `\n${why}` : ''}`,
      );
    }
    const vectors = await descriptor.describe(accepted.map((a) => a.crop));
    // Duplicate: does this face already belong to someone else?
    if (!o.force) {
      const others = this.snapshotExcluding(existing?.id);
      if (others.people > 0) {
        for (const v of vectors) {
          const hit = search(others.index, v);
          const { best } = hit;
          const score = decisionScore(hit, others.weight);
          if (best && score >= others.threshold) {
            const who = others.names.get(best.personId) ?? best.personId;
            throw new EnrolmentRefused(
              'duplicate',
              `this face already matches ${who} (score ${score.toFixed(3)} ≥ threshold ${others.threshold.toFixed(3)}): if ${trimmed} is ${who}, add the photos to ${who}; if they are different people, enrol again with --force (force: true)`,
            );
          }
        }
      }
    }
    const keep = config.keepCrops;
    const templates: NewTemplate[] = [];
    for (const [i, a] of accepted.entries()) {
      templates.push({
        vector: vectors[i] as Float32Array,
        source: a.source,
        quality: a.quality,
        ...(keep ? { crop: await this.keptCrop(a.img, a.face) } : {}),
      });
    }
    const thumb = keep && !existing && accepted[0] ? await this.thumbnailOf(accepted[0].crop) : undefined;
    const person = store.addTemplates(
      trimmed,
      descriptor.id,
      templates,
      { groups: o.groups ?? [], validFrom: o.validFrom ?? null, validUntil: o.validUntil ?? null },
      thumb,
    );
    this.log.info({ person: person.id, accepted: accepted.length, rejected: rejected.length }, 'person enrolled');
    return { person: this.record(person), accepted: accepted.length, rejected };
  }

  private snapshotExcluding(personId: string | undefined): GallerySnapshot {
    const all = this.snapshot();
    if (!personId) return all;
    const entries: { personId: string; templates: Float32Array[] }[] = [];
    const byPerson = new Map<string, Float32Array[]>();
    for (const t of this.deps.store.templates())
      if (t.descriptor === this.descriptor.id && t.personId !== personId)
        byPerson.set(t.personId, [...(byPerson.get(t.personId) ?? []), t.vector]);
    for (const [id, templates] of byPerson) entries.push({ personId: id, templates });
    const decision = this.decisionFor(entries.length);
    return {
      ...all,
      index: buildIndex(entries, { rule: this.descriptor.rule }),
      people: entries.length,
      weight: decision.weight,
      // the whole gallery's shift: one person fewer does not make the camera's cross scores lower
      threshold: decision.threshold + all.shift,
    };
  }

  async enrolFromCamera(
    name: string,
    o: EnrolOptions & { frames?: number; timeoutMs?: number } = {},
    onProgress?: (p: EnrolProgress) => void,
  ): Promise<EnrolResult> {
    const feed = this.deps.frames;
    if (!feed)
      throw new GalleryError(
        'no camera to enrol from: configure camera (camera.type and its settings) and start the kiosk, or enrol from photos (facegate enrol add NAME PHOTOS…)',
      );
    const needed = o.frames ?? this.deps.config.cameraFrames;
    const timeoutMs = o.timeoutMs ?? this.deps.config.cameraTimeoutMs;
    const accepted: Parameters<FaceGallery['commit']>[1] = [];
    const hints = new Map<RefusalCode, number>();
    let busy = false;
    await new Promise<void>((resolve, reject) => {
      let unsubscribe: () => void = () => undefined;
      const timer = setTimeout(() => {
        unsubscribe();
        const common = [...hints.entries()].sort((a, b) => b[1] - a[1])[0];
        reject(
          new EnrolmentRefused(
            'too-few',
            `only ${accepted.length} of ${needed} good frames in ${Math.round(timeoutMs / 1000)} s${common ? ` (most frames: ${common[0]})` : ''}: stand alone in front of the camera, face it, in good light, and try again`,
          ),
        );
      }, timeoutMs);
      unsubscribe = feed((image) => {
        if (busy) return; // one frame at a time; the camera keeps running
        busy = true;
        void (async () => {
          try {
            const r = await this.facesOf(image);
            const v =
              r instanceof EnrolmentRefused ? r : assessFace(r.img, r.faces, this.deps.config.checks, this.cropSpec());
            if (v instanceof EnrolmentRefused) {
              hints.set(v.code, (hints.get(v.code) ?? 0) + 1);
              onProgress?.({ good: accepted.length, needed, hint: v.message });
            } else if (!(r instanceof EnrolmentRefused) && accepted.length < needed) {
              accepted.push({ img: r.img, face: v.face, crop: v.crop, quality: { ...v.quality }, source: 'camera' });
              onProgress?.({ good: accepted.length, needed, hint: null });
              if (accepted.length >= needed) {
                clearTimeout(timer);
                unsubscribe();
                resolve();
              }
            }
          } catch (err) {
            clearTimeout(timer);
            unsubscribe();
            reject(err instanceof Error ? err : new Error(String(err)));
          } finally {
            busy = false;
          }
        })();
      });
    });
    return this.commit(name, accepted, [], o);
  }

  update(
    id: string,
    patch: { name?: string; groups?: string[]; validFrom?: string | null; validUntil?: string | null },
  ): PersonRecord {
    return this.record(this.deps.store.update(id, patch));
  }

  remove(id: string): void {
    const p = this.deps.store.person(id);
    if (!p) throw new GalleryError(`nobody enrolled as ${id}: see facegate enrol list`);
    this.deps.store.remove(p.id);
    this.log.info({ person: p.id }, 'person removed');
  }

  exportPerson(id: string): unknown {
    const { store } = this.deps;
    const p = store.person(id);
    if (!p) throw new GalleryError(`nobody enrolled as ${id}: see facegate enrol list`);
    return {
      person: p,
      templates: store.templates(p.id).map((t) => ({
        id: t.id,
        descriptor: t.descriptor,
        source: t.source,
        quality: t.quality,
        createdAt: t.createdAt,
        vector: Array.from(t.vector),
        crop: t.cropFile
          ? { file: store.cropPath(p.id, t.cropFile), pngBase64: store.readCrop(p.id, t.cropFile).toString('base64') }
          : null,
      })),
      files: store.files(p.id).map((f) => path.join(store.personDir(p.id), f)),
    };
  }

  thumbnail(id: string): Buffer | undefined {
    const p = this.deps.store.person(id);
    return p ? this.deps.store.thumbnail(p.id) : undefined;
  }

  /**
   * Makes the gallery searchable with descriptor `d` (a model switch): every kept enrolment
   * crop without a template of `d` is described by `d` and added, in one transaction. The
   * templates of other descriptors stay (a rollback finds them).
   *
   * strict (a model update): refuses, before computing anything, when someone enrolled would
   * not be recognised any more under `d` (their crops were not kept), or when a kept crop
   * shows no face; the GalleryError says who and what to do. Not strict (start, rollback,
   * people enrolled by another process): computes what it can and logs who is left out.
   */
  async prepareDescriptor(d: FaceDescriptor, o: { strict?: boolean } = {}): Promise<{ recomputed: number }> {
    const { store } = this.deps;
    const all = store.templates();
    const covered = new Set<string>(); // person ids with a template of d
    const done = new Set<string>(); // person/crop pairs with a template of d
    for (const t of all)
      if (t.descriptor === d.id) {
        covered.add(t.personId);
        if (t.cropFile) done.add(`${t.personId}/${t.cropFile}`);
      }
    const todo = new Map<string, StoredTemplate>();
    for (const t of all)
      if (t.cropFile && !done.has(`${t.personId}/${t.cropFile}`)) todo.set(`${t.personId}/${t.cropFile}`, t);
    const reachable = new Set([...covered, ...[...todo.values()].map((t) => t.personId)]);
    const lost = store.people().filter((p) => !reachable.has(p.id) && all.some((t) => t.personId === p.id));
    // Strict refuses what the switch would lose: people recognised now (templates of the running descriptor).
    const losing = o.strict
      ? lost.filter((p) => all.some((t) => t.personId === p.id && t.descriptor === this.descriptor.id))
      : lost;
    if (losing.length) {
      const names = losing.map((p) => p.name).join(', ');
      const msg = `${losing.length} enrolled ${losing.length === 1 ? 'person has' : 'people have'} no face template for descriptor ${d.id} and no kept enrolment crops to compute one from (gallery.keepCrops was false when they were enrolled): ${names}. Keep the current model, or remove and enrol them again`;
      if (o.strict) throw new GalleryError(msg);
      this.log.error({ descriptor: d.id, people: losing.length }, msg);
    }
    const derived: { from: StoredTemplate; vector: Float32Array }[] = [];
    for (const t of todo.values()) {
      const file = t.cropFile as string;
      const v = await this.describeKeptCrop(store.readCrop(t.personId, file), d);
      if (!v) {
        const msg = `the kept enrolment crop ${file} (template ${t.id}) shows no face to the detector: remove and enrol that person again`;
        if (o.strict) throw new GalleryError(msg);
        this.log.error({ person: t.personId }, msg);
        continue;
      }
      derived.push({ from: t, vector: v });
    }
    store.addDerived(d.id, derived);
    this.completedAt.set(d.id, store.version());
    if (derived.length)
      this.log.info({ recomputed: derived.length, descriptor: d.id }, 'face templates computed for the descriptor');
    return { recomputed: derived.length };
  }

  /** The template of descriptor `d` for a kept enrolment crop (encoded): its largest face, aligned for `d`; undefined when it shows none. */
  private async describeKeptCrop(encoded: Buffer, d: FaceDescriptor): Promise<Float32Array | undefined> {
    const img = await decodeRgb(encoded);
    const faces = await this.deps.detector.detect(img);
    const face = faces.reduce<Face | undefined>((a, b) => (!a || b.box.width > a.box.width ? b : a), undefined);
    if (!face) return undefined;
    const [v] = await d.describe([cropFor(d, img, face)]);
    return v;
  }

  /**
   * Templates of the enrolment descriptor for kept enrolment crops another kiosk sent (a people
   * bundle of another descriptor), by the same path as a model change; GalleryError naming the
   * crop when one shows no face.
   */
  async describeCrops(crops: readonly Buffer[]): Promise<Float32Array[]> {
    const d = this.descriptor;
    const out: Float32Array[] = [];
    for (const [i, c] of crops.entries()) {
      let v: Float32Array | undefined;
      try {
        v = await this.describeKeptCrop(c, d);
      } catch (err) {
        throw new GalleryError(`crop ${i + 1} cannot be read: ${(err as Error).message}`);
      }
      if (!v) throw new GalleryError(`crop ${i + 1} shows no face to this kiosk's detector`);
      out.push(v);
    }
    return out;
  }

  /**
   * Before a frame is searched: when the gallery changed since `d`'s templates were last
   * completed (someone enrolled by a process running another descriptor, the CLI), computes
   * the missing ones from kept crops. One query when nothing changed.
   */
  async refresh(d: FaceDescriptor): Promise<void> {
    const version = this.deps.store.version();
    if (this.completedAt.get(d.id) === version) return;
    try {
      await this.prepareDescriptor(d);
    } catch (err) {
      // A crop removed meanwhile by another process, say: tried again at the next change.
      this.completedAt.set(d.id, version);
      this.log.warn({ descriptor: d.id, err: (err as Error).message }, 'cannot complete the face templates');
    }
  }
}
