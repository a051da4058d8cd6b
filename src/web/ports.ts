/**
 * What the web app reads from the rest of the daemon. The people API works over the
 * gallery's `GalleryService` (src/gallery/service.ts, owned by the gallery); the door
 * state over whatever the door part exposes. Both are optional: the pages say so when a
 * part is not running.
 *
 * The gallery types below mirror the agreed interface of src/gallery/service.ts so the
 * web app builds before the gallery lands; once it does, these lines become
 * `export type { GalleryService, PersonRecord, ... } from '../gallery/service.js'`.
 */
import type { Registry } from 'prom-client';
import type { DaemonBus } from '../publish/bus.js';
import type { Config } from '../config/schema.js';
import type { UpdateRecord } from '../update/history.js';

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
export type RefusalCode =
  'no-face' | 'several-faces' | 'too-small' | 'blurred' | 'turned' | 'too-dark' | 'too-few' | 'duplicate' | 'bad-image';
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
  enrolFromCamera(
    name: string,
    o?: EnrolOptions & { frames?: number; timeoutMs?: number },
    onProgress?: (p: EnrolProgress) => void,
  ): Promise<EnrolResult>;
  update(
    id: string,
    patch: { name?: string; groups?: string[]; validFrom?: string | null; validUntil?: string | null },
  ): PersonRecord;
  remove(id: string): void;
  exportPerson(id: string): unknown;
  thumbnail(id: string): Buffer | undefined;
}

/** The door as the screen shows it; the door part provides it. */
export interface DoorView {
  /** 'open' | 'closed' | 'locked' | …: shown as given; null when unknown. */
  state(): { readonly state: string; readonly since: string | null } | null;
}

export interface WebHealth {
  readonly ready: boolean;
  readonly camera: string;
  readonly model: string | null | undefined;
  readonly broker: string;
  readonly pendingEvents: number;
  readonly [key: string]: unknown;
}

/** Everything the web app is given by the composition root. */
export interface WebDeps {
  readonly config: Config;
  readonly bus: DaemonBus;
  readonly registry: Registry;
  readonly health: () => WebHealth;
  /** The running gallery, when the gallery part runs. */
  readonly gallery: () => GalleryService | undefined;
  /** The door, when the door part runs. */
  readonly door: () => DoorView | undefined;
  /** The model bundles this kiosk was offered (installed, rolled back, refused), when updates are enabled. */
  readonly updates?: () => readonly UpdateRecord[];
  /** Where /sys/class/thermal lives (tests point it elsewhere). */
  readonly thermalDir?: string;
}
