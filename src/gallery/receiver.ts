/**
 * The kiosk side of people bundles over the update channel: signed people bundles arrive on
 * `<base>/<kiosk>/update/people` and `<base>/fleet/update/people` (QoS 1, not retained) and
 * are installed into the gallery one at a time (src/gallery/bundle.ts decides what is
 * refused). Retained and oversized messages are dropped unread: a bundle stored on the broker
 * would replay itself at every reconnect.
 *
 * What became of each bundle is published retained on `<base>/<kiosk>/people` (QoS 1), as
 * the model updater publishes its `model` state: `installed` or `rejected: <reason>`, with
 * the bundle's SHA-256 and signing time, so an operator (publish-bundle waits for it) sees
 * every kiosk's answer.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { FacegateError } from '../shared/errors.js';
import { moduleLogger } from '../shared/logger.js';
import type { KioskDb } from '../state/db.js';
import type { MessageHandler, MqttPort } from '../publish/mqtt.js';
import { connectOperator } from '../publish/operator.js';
import { FLEET_LEVEL, UPDATE_TOPICS, fleetTopic, kioskTopic, type PeopleStatePayload } from '../publish/topics.js';
import type { PublicKey } from '../update/keys.js';
import { MAX_REASON_CHARS, REJECTION_BURST, REJECTION_REFILL_MS } from '../update/updater.js';
import type { IClientOptions } from 'mqtt';
import { installPeopleBundle, type PeopleInstallResult } from './bundle.js';
import type { FaceGallery } from './service.js';
import type { GalleryStore } from './store.js';

/** A people bundle is templates and names (and, with crops, small PNGs): this bounds what is read. */
export const MAX_PEOPLE_BUNDLE_BYTES = 32 * 1024 * 1024;

export interface PeopleReceiverOptions {
  readonly mqtt: Pick<MqttPort, 'subscribe' | 'subscribeAbsolute' | 'publishRelative' | 'onConnect'>;
  readonly baseTopic: string;
  readonly kioskId: string;
  readonly keys: readonly PublicKey[];
  readonly gallery: Pick<FaceGallery, 'descriptorId' | 'describeCrops'>;
  readonly store: GalleryStore;
  readonly db: KioskDb;
  /** gallery.keepCrops: keep the face crops a bundle brings. */
  readonly keepCrops: boolean;
  /** Each bundle's outcome (tests; the log and the `people` topic have it too). */
  readonly onResult?: (r: PeopleInstallResult | Error) => void;
  readonly now?: () => Date;
}

export class PeopleBundleReceiver {
  private readonly log: Logger = moduleLogger('gallery');
  private work: Promise<void> = Promise.resolve();
  private started = false;
  private last: PeopleStatePayload | undefined;
  private rejectionTokens = REJECTION_BURST;
  private refillTimer: NodeJS.Timeout | undefined;
  /** Bundles refused beyond the rejection budget: counted, not published or logged one by one. */
  unrecorded = 0;

  constructor(private readonly o: PeopleReceiverOptions) {}

  async start(): Promise<void> {
    this.started = true;
    const onBundle: MessageHandler = (_t, payload, meta) => {
      if (!this.started || meta.retained || payload.length > MAX_PEOPLE_BUNDLE_BYTES) return;
      this.work = this.work.then(() => this.install(payload));
    };
    // After a reconnect the broker may have lost the retained state (no persistence): say it again.
    this.o.mqtt.onConnect(() => {
      if (this.started && this.last) void this.publish(this.last);
    });
    this.refillTimer = setInterval(() => {
      this.rejectionTokens = Math.min(REJECTION_BURST, this.rejectionTokens + 1);
    }, REJECTION_REFILL_MS);
    this.refillTimer.unref();
    await this.o.mqtt.subscribe(UPDATE_TOPICS.people, onBundle);
    await this.o.mqtt.subscribeAbsolute(fleetTopic(this.o.baseTopic, UPDATE_TOPICS.people), onBundle);
  }

  private async install(payload: Buffer): Promise<void> {
    const sha256 = createHash('sha256').update(payload).digest('hex');
    let createdAt: string | null = null;
    let outcome: PeopleInstallResult | Error;
    try {
      outcome = await installPeopleBundle(payload, {
        store: this.o.store,
        db: this.o.db,
        keys: this.o.keys,
        kioskId: this.o.kioskId,
        descriptor: this.o.gallery.descriptorId,
        keepCrops: this.o.keepCrops,
        describeCrops: (crops) => this.o.gallery.describeCrops(crops),
        verified: (m) => (createdAt = m.createdAt),
      });
      this.log.info({ ...outcome, sha256 }, 'people bundle installed');
    } catch (err) {
      outcome = err instanceof Error ? err : new Error(String(err));
    }
    const at = (this.o.now?.() ?? new Date()).toISOString();
    if (outcome instanceof Error) {
      if (this.rejectionTokens <= 0) {
        this.unrecorded++;
        this.o.onResult?.(outcome);
        return;
      }
      this.rejectionTokens--;
      const reason = cap(outcome.message, MAX_REASON_CHARS);
      this.log.warn({ err: reason, sha256 }, 'people bundle refused');
      this.last = {
        kiosk: this.o.kioskId,
        state: `rejected: ${reason}`,
        sha256,
        createdAt,
        at,
        put: null,
        removed: null,
        skipped: null,
        fromCrops: null,
      };
    } else {
      this.last = {
        kiosk: this.o.kioskId,
        state: 'installed',
        sha256,
        createdAt,
        at,
        put: outcome.put,
        removed: outcome.removed,
        skipped: outcome.skipped.length,
        fromCrops: outcome.fromCrops,
      };
    }
    await this.publish(this.last);
    this.o.onResult?.(outcome);
  }

  private async publish(state: PeopleStatePayload): Promise<void> {
    try {
      await this.o.mqtt.publishRelative(UPDATE_TOPICS.peopleState, JSON.stringify(state), { qos: 1, retain: true });
    } catch (err) {
      // The broker may be away: the state is published again on the next connect.
      this.log.warn({ err: (err as Error).message }, 'cannot publish the people bundle state');
    }
  }

  /** The last retained `people` payload (undefined before the first bundle since start). */
  get state(): PeopleStatePayload | undefined {
    return this.last;
  }

  /** Resolves when every bundle received so far is handled. */
  idle(): Promise<void> {
    return this.work;
  }

  async stop(): Promise<void> {
    this.started = false;
    if (this.refillTimer) clearInterval(this.refillTimer);
    await this.work;
  }
}

function cap(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

export interface PublishPeopleOptions {
  readonly brokerUrl: string;
  readonly baseTopic: string;
  readonly kiosks: readonly string[];
  readonly fleet: boolean;
  readonly bundle: Buffer;
  /** Credentials and TLS (src/publish/operator.ts). */
  readonly clientOptions?: IClientOptions;
  /** Wait this long for the kiosks' answers on their `people` topic; 0: do not wait. */
  readonly waitMs?: number;
  readonly onVerdict?: (kiosk: string, state: PeopleStatePayload) => void;
}

/**
 * Sends a signed people bundle to kiosks (`kiosks`) or the whole fleet, at QoS 1, not
 * retained, and (waitMs) collects each kiosk's answer: its `people` state naming this
 * bundle's SHA-256.
 */
export async function publishPeopleBundle(
  o: PublishPeopleOptions,
): Promise<{ topics: string[]; verdicts: ReadonlyMap<string, PeopleStatePayload> }> {
  if (o.fleet === o.kiosks.length > 0) throw new FacegateError('give --kiosk ID (one or more) or --fleet, not both');
  if (o.kiosks.includes(FLEET_LEVEL))
    throw new FacegateError(`"${FLEET_LEVEL}" is the fleet topic level, not a kiosk id`);
  const topics = o.fleet
    ? [fleetTopic(o.baseTopic, UPDATE_TOPICS.people)]
    : o.kiosks.map((k) => kioskTopic(o.baseTopic, k, UPDATE_TOPICS.people));
  const sha256 = createHash('sha256').update(o.bundle).digest('hex');
  const verdicts = new Map<string, PeopleStatePayload>();
  const client = await connectOperator(o.brokerUrl, o.clientOptions);
  try {
    const waitMs = o.waitMs ?? 0;
    let allIn: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (allIn = resolve));
    if (waitMs > 0) {
      const suffix = `/${UPDATE_TOPICS.peopleState}`;
      client.on('message', (topic, payload, packet) => {
        if (packet.retain || !topic.endsWith(suffix)) return; // retained: an earlier bundle's answer
        let s: PeopleStatePayload;
        try {
          s = JSON.parse(payload.toString('utf8')) as PeopleStatePayload;
        } catch {
          return;
        }
        if (s.sha256 !== sha256) return;
        const kiosk = topic.slice(o.baseTopic.length + 1, -suffix.length);
        if (!o.fleet && !o.kiosks.includes(kiosk)) return;
        verdicts.set(kiosk, s);
        o.onVerdict?.(kiosk, s);
        if (!o.fleet && o.kiosks.every((k) => verdicts.has(k))) allIn();
      });
      const subs = o.fleet
        ? [`${o.baseTopic}/+/${UPDATE_TOPICS.peopleState}`]
        : o.kiosks.map((k) => kioskTopic(o.baseTopic, k, UPDATE_TOPICS.peopleState));
      await client.subscribeAsync(subs, { qos: 1 });
    }
    for (const t of topics) await client.publishAsync(t, o.bundle, { qos: 1, retain: false });
    if (waitMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([done, new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)))]);
      if (timer) clearTimeout(timer);
    }
  } finally {
    await client.endAsync();
  }
  return { topics, verdicts };
}
