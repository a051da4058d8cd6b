/**
 * What the web app reads from the rest of the daemon. The people API works over the
 * gallery's `GalleryService` (src/gallery/service.ts, owned by the gallery); the door
 * state over whatever the door part exposes. Both are optional: the pages say so when a
 * part is not running.
 */
import type { Registry } from 'prom-client';
import type { DaemonBus } from '../publish/bus.js';
import type { Config } from '../config/schema.js';
import type { UpdateRecord } from '../update/history.js';
import type { GalleryService } from '../gallery/service.js';

export type {
  EnrolOptions,
  EnrolProgress,
  EnrolResult,
  GalleryService,
  PersonRecord,
  RefusalCode,
} from '../gallery/service.js';

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
