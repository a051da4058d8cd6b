/**
 * The ONE module that builds MQTT topics, and the typed payload of each topic.
 * Everything else publishes to topics relative to `<baseTopic>/<kioskId>`; this module
 * adds the prefix and refuses wildcards, empty levels and absolute paths.
 */
import type { DecisionKind } from '../shared/messages.js';

/** `<base>/<kiosk>/status`, retained: "online" after connecting; the last will is "offline". */
export type StatusPayload = 'online' | 'offline';

/** `<base>/<kiosk>/events`, QoS 1, never retained: one message per decision. */
/** What the published gallery threshold is compared with. */
export type GalleryScore = 'cosine' | 'margin';

export interface EventPayload {
  /** Unique id (UUID v4): subscribers drop duplicates (QoS 1 is at-least-once). */
  readonly id: string;
  /** Monotonic per kiosk, across restarts. */
  readonly seq: number;
  readonly kind: DecisionKind;
  /** Person's name for `recognized`; null for `unknown`. */
  readonly name: string | null;
  /** Mean similarity over the agreeing frames (cosine, -1..1). */
  readonly score: number;
  /** When the decision was taken (ISO 8601). */
  readonly time: string;
  readonly modelVersion: string;
  readonly kiosk: string;
  readonly camera: string;
  readonly trackId: number;
  readonly frameId: number;
  /** True when the event waited (broker unreachable, or across a restart) before it was sent. */
  readonly delayed: boolean;
}

/** `<base>/<kiosk>/state`, retained, every few seconds: what the HA sensors read. */
export interface StatePayload {
  readonly lastPerson: string | null;
  readonly lastEventTime: string | null;
  /** Frames per second processed over the last interval. */
  readonly fps: number;
  readonly modelVersion: string;
  /** Whether the camera is delivering frames. */
  readonly camera: 'ok' | 'failed' | 'starting' | 'ended';
  /** Events waiting on disk for the broker. */
  readonly pendingEvents: number;
  /**
   * People enrolled in the gallery, the match threshold in use for that many, and the score it
   * is compared with: `cosine` (the best person's) or `margin` (gallery.norm margin: that cosine
   * plus its weighted lead over the runner-up); `shift`: how much of the threshold is
   * gallery.adapt's raise for the enrolled people's own cross scores (0: none). Null without a
   * gallery.
   */
  readonly gallery: {
    readonly people: number;
    readonly threshold: number;
    readonly score: GalleryScore;
    readonly shift: number;
  } | null;
  readonly uptimeSeconds: number;
}

/**
 * `<base>/<kiosk>/access`, QoS 1, never retained: one message per access decision (door
 * access, src/access). `seq` is the access log's sequence number: monotonic per kiosk,
 * across restarts. Subscribers act on nothing here: the kiosk opens its own door.
 */
export interface AccessPayload {
  readonly seq: number;
  /** When the decision was taken (ISO 8601). */
  readonly time: string;
  readonly kiosk: string;
  readonly door: string;
  readonly result: 'granted' | 'denied';
  /** Why it was denied (null when granted): unknown, not allowed now, expired, low confidence, several faces, spoof suspected, door forced, door held. */
  readonly reason: string | null;
  /** A sentence for people (which rule granted, what refused). */
  readonly detail: string;
  /** face (a recognition), remote (a signed unlock command), contact (a door-contact alarm). */
  readonly source: 'face' | 'remote' | 'contact';
  readonly personId: string | null;
  readonly personName: string | null;
  readonly score: number | null;
  readonly margin: number | null;
  readonly modelVersion: string | null;
  /** id of the `events` message this decision answers (face source). */
  readonly eventId: string | null;
  /** Who asked for a remote unlock. */
  readonly requestedBy: string | null;
  /** Whether the door outputs fired. */
  readonly opened: boolean;
}

/** `<base>/<kiosk>/door`, retained: the door's state (Home Assistant's door binary sensors read it). */
export interface DoorStatePayload {
  readonly door: string;
  /** unlocked while the door is released (relay on / pulse running). */
  readonly lock: 'locked' | 'unlocked';
  /** From the door contact; null without one. */
  readonly contact: 'open' | 'closed' | null;
  readonly alarm: 'door forced' | 'door held' | null;
}

/** `<base>/<kiosk>/door/unlock`: signed remote unlock commands in (src/door/remote.ts); nothing else opens the door. */
export const DOOR_UNLOCK_TOPIC = 'door/unlock';

/**
 * Relative topic → payload type. Parts that need their own topics add an entry here
 * (for example the model updater's `model/...` topics).
 */
export interface TopicPayloads {
  status: StatusPayload;
  events: EventPayload;
  state: StatePayload;
  access: AccessPayload;
  door: DoorStatePayload;
}
export type RelativeTopic = Extract<keyof TopicPayloads, string>;

/** Publish options per topic: events are QoS 1 and never retained; status and state are retained. */
export const TOPIC_OPTIONS: { readonly [K in RelativeTopic]: { readonly qos: 0 | 1; readonly retain: boolean } } = {
  status: { qos: 1, retain: true },
  events: { qos: 1, retain: false },
  state: { qos: 0, retain: true },
  access: { qos: 1, retain: false },
  door: { qos: 1, retain: true },
};

export class TopicError extends Error {}

/** Throws unless `t` is a usable topic name (no wildcards, no empty level, no leading/trailing slash). */
export function assertTopicName(t: string, what = 'topic'): void {
  if (t.length === 0) throw new TopicError(`${what} is empty`);
  if (/[+#]/.test(t)) throw new TopicError(`${what} "${t}" contains a wildcard (+ or #); publish to a concrete topic`);
  if (t.startsWith('/') || t.endsWith('/') || t.includes('//'))
    throw new TopicError(`${what} "${t}" has an empty level`);
  if (t.includes('\u0000')) throw new TopicError(`${what} contains a NUL character`);
}

export class Topics {
  /** `<base>/<kiosk>`. */
  readonly root: string;

  constructor(
    readonly baseTopic: string,
    readonly kioskId: string,
    readonly haPrefix = 'homeassistant',
  ) {
    assertTopicName(baseTopic, 'mqtt.baseTopic');
    if (kioskId.includes('/')) throw new TopicError(`mqtt.kioskId "${kioskId}" must be one topic level (no /)`);
    assertTopicName(kioskId, 'mqtt.kioskId');
    assertTopicName(haPrefix, 'mqtt.homeAssistant.prefix');
    this.root = `${baseTopic}/${kioskId}`;
  }

  /** The full topic for a topic relative to `<base>/<kiosk>`. */
  full(relative: string): string {
    assertTopicName(relative, 'relative topic');
    return `${this.root}/${relative}`;
  }

  /** Inverse of full(): the relative topic, or null when `topic` is not under the root. */
  relative(topic: string): string | null {
    return topic.startsWith(`${this.root}/`) ? topic.slice(this.root.length + 1) : null;
  }

  get status(): string {
    return this.full('status');
  }
  get events(): string {
    return this.full('events');
  }
  get state(): string {
    return this.full('state');
  }
  get access(): string {
    return this.full('access');
  }
  get door(): string {
    return this.full('door');
  }

  /** Home Assistant's birth topic: "online" when HA (re)starts. */
  get haStatus(): string {
    return `${this.haPrefix}/status`;
  }

  /** Unique id of this kiosk as a Home Assistant device. */
  get haNodeId(): string {
    return `facegate_${this.kioskId.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  }

  /** `<prefix>/<component>/<node>/<object>/config` (HA MQTT discovery; `lock` only to clear the old door entity). */
  haConfig(component: 'event' | 'sensor' | 'binary_sensor' | 'lock', objectId: string): string {
    const t = `${this.haPrefix}/${component}/${this.haNodeId}/${objectId}/config`;
    assertTopicName(t);
    return t;
  }
}

/** Serialises a payload for the wire: status as plain text (HA availability), the rest as JSON. */
export function encodePayload<T extends RelativeTopic>(topic: T, payload: TopicPayloads[T]): string {
  return typeof payload === 'string' && topic === 'status' ? payload : JSON.stringify(payload);
}

/**
 * Model updates (src/update), relative to `<base>/<kiosk>`: `model` (retained JSON state,
 * ModelStatePayload below), `update/offer` (JSON offer in) and
 * `update/chunk` (binary chunks in). The same two inbound topics exist fleet-wide under
 * `<base>/fleet/`, so "fleet" cannot be a kiosk id.
 */
export const UPDATE_TOPICS = {
  model: 'model',
  offer: 'update/offer',
  chunk: 'update/chunk',
  people: 'update/people',
  /** Retained JSON result of the last people bundle (PeopleStatePayload). */
  peopleState: 'people',
  /** Unsigned, advisory: a person removed at this kiosk (PeopleRemovedPayload). */
  peopleRemoved: 'people/removed',
} as const;
export const FLEET_LEVEL = 'fleet';

/** `<base>/fleet/<relative>`: what every kiosk subscribes to for fleet-wide offers. */
export function fleetTopic(baseTopic: string, relative: string): string {
  const t = `${baseTopic}/${FLEET_LEVEL}/${relative}`;
  assertTopicName(t);
  return t;
}

/** `<base>/<kiosk>/<relative>` for tools that address many kiosks (facegate publish-model). */
export function kioskTopic(baseTopic: string, kioskId: string, relative: string): string {
  if (kioskId.includes('/')) throw new TopicError(`kiosk id "${kioskId}" must be one topic level (no /)`);
  const t = `${baseTopic}/${kioskId}/${relative}`;
  assertTopicName(t);
  return t;
}

/** Retained on `<base>/<kiosk>/model`. */
export interface ModelStatePayload {
  readonly kiosk: string;
  /** Version the kiosk runs now. */
  readonly version: string;
  /** Version kept for rollback (null: none). */
  readonly previous: string | null;
  /** `installed`, `rejected: <reason>`, `rolled back: <reason>`, or null before any update. */
  readonly state: string | null;
  /** Version the last update was about. */
  readonly offered: string | null;
  /** Time of the last update state (ISO 8601). */
  readonly at: string | null;
  /** While a new model is on probation: when it ends (ISO 8601). */
  readonly probationUntil: string | null;
  /**
   * A transfer in progress: version, chunks received of chunks expected. `missing` is null
   * while chunks arrive; when none has come for a while, it lists (up to MAX_MISSING_LISTED)
   * the indexes still missing, and the publisher resends them.
   */
  readonly transfer: {
    readonly version: string;
    readonly transferId: string;
    readonly received: number;
    readonly chunks: number;
    readonly missing: readonly number[] | null;
  } | null;
  /** Which model file runs (null before a model is loaded). */
  readonly precision: ModelPrecisionPayload | null;
}

/**
 * Retained on `<base>/<kiosk>/people`, QoS 1: what became of the last signed people bundle
 * the kiosk received (as `model` says for model bundles).
 */
export interface PeopleStatePayload {
  readonly kiosk: string;
  /** `installed` or `rejected: <reason>`. */
  readonly state: string;
  /** SHA-256 of the bundle as received (hex): `sha256sum` of the file the operator sent. */
  readonly sha256: string;
  /** When the bundle was signed (its version); null when it could not be read or verified. */
  readonly createdAt: string | null;
  /** When the kiosk decided (ISO 8601). */
  readonly at: string;
  /** People enrolled or updated; null when rejected. */
  readonly put: number | null;
  /** People erased; null when rejected. */
  readonly removed: number | null;
  /** People of the bundle not brought back (removed by an earlier bundle); null when rejected. */
  readonly skipped: number | null;
  /** People whose templates this kiosk computed from the bundle's face crops (another descriptor); null when rejected. */
  readonly fromCrops: number | null;
}

/**
 * `<base>/<kiosk>/people/removed`, QoS 1, never retained, unsigned and advisory: someone was
 * removed at this kiosk (`facegate enrol remove`, the admin page). Only the id: the kiosk has
 * erased the rest. Operators' tooling turns it into a signed fleet removal.
 */
export interface PeopleRemovedPayload {
  readonly kiosk: string;
  /** The person's id (the same on every kiosk a people bundle enrolled them on). */
  readonly id: string;
  /** When the daemon saw the removal (ISO 8601). */
  readonly at: string;
  /** Always false: a kiosk holds no signing key; this is a notice, not a command. */
  readonly signed: false;
}

/** Which file of the model directory runs, why, and what each cost when `auto` timed them at load. */
export interface ModelPrecisionPayload {
  /** model.precision as configured: auto, int8 or fp32. */
  readonly asked: 'auto' | 'int8' | 'fp32';
  readonly running: 'int8' | 'fp32';
  /** Why not the other file; null when asked for by name. */
  readonly reason: string | null;
  /** Median ms a face, timed at load (null when not timed). */
  readonly int8Ms: number | null;
  readonly fp32Ms: number | null;
}
