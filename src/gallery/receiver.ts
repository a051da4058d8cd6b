/**
 * The kiosk side of people bundles over the update channel: signed people bundles arrive on
 * `<base>/<kiosk>/update/people` and `<base>/fleet/update/people` (QoS 1, not retained) and
 * are installed into the gallery one at a time (src/gallery/bundle.ts decides what is
 * refused). Retained and oversized messages are dropped unread: a bundle stored on the broker
 * would replay itself at every reconnect.
 */
import { connectAsync } from 'mqtt';
import type { Logger } from 'pino';
import { FacegateError } from '../shared/errors.js';
import { moduleLogger } from '../shared/logger.js';
import type { KioskDb } from '../state/db.js';
import type { MessageHandler, MqttPort } from '../publish/mqtt.js';
import { UPDATE_TOPICS, fleetTopic, kioskTopic } from '../publish/topics.js';
import type { PublicKey } from '../update/keys.js';
import { installPeopleBundle, type PeopleInstallResult } from './bundle.js';
import type { FaceGallery } from './service.js';
import type { GalleryStore } from './store.js';

/** A people bundle is templates and names: far below this even for thousands of people. */
export const MAX_PEOPLE_BUNDLE_BYTES = 32 * 1024 * 1024;

export interface PeopleReceiverOptions {
  readonly mqtt: Pick<MqttPort, 'subscribe' | 'subscribeAbsolute'>;
  readonly baseTopic: string;
  readonly kioskId: string;
  readonly keys: readonly PublicKey[];
  readonly gallery: FaceGallery;
  readonly store: GalleryStore;
  readonly db: KioskDb;
  /** Each bundle's outcome (tests; the log has it too). */
  readonly onResult?: (r: PeopleInstallResult | Error) => void;
}

export class PeopleBundleReceiver {
  private readonly log: Logger = moduleLogger('gallery');
  private work: Promise<void> = Promise.resolve();
  private started = false;

  constructor(private readonly o: PeopleReceiverOptions) {}

  async start(): Promise<void> {
    this.started = true;
    const onBundle: MessageHandler = (_t, payload, meta) => {
      if (!this.started || meta.retained || payload.length > MAX_PEOPLE_BUNDLE_BYTES) return;
      this.work = this.work.then(() => this.install(payload));
    };
    await this.o.mqtt.subscribe(UPDATE_TOPICS.people, onBundle);
    await this.o.mqtt.subscribeAbsolute(fleetTopic(this.o.baseTopic, UPDATE_TOPICS.people), onBundle);
  }

  private install(payload: Buffer): Promise<void> {
    let outcome: PeopleInstallResult | Error;
    try {
      outcome = installPeopleBundle(payload, {
        store: this.o.store,
        db: this.o.db,
        keys: this.o.keys,
        kioskId: this.o.kioskId,
        descriptor: this.o.gallery.descriptorId,
      });
      this.log.info({ ...outcome }, 'people bundle installed');
    } catch (err) {
      outcome = err instanceof Error ? err : new Error(String(err));
      this.log.warn({ err: outcome.message }, 'people bundle refused');
    }
    this.o.onResult?.(outcome);
    return Promise.resolve();
  }

  /** Resolves when every bundle received so far is handled. */
  idle(): Promise<void> {
    return this.work;
  }

  async stop(): Promise<void> {
    this.started = false;
    await this.work;
  }
}

/** Sends a signed people bundle to kiosks (`kiosks`) or the whole fleet, at QoS 1, not retained. */
export async function publishPeopleBundle(o: {
  brokerUrl: string;
  baseTopic: string;
  kiosks: readonly string[];
  fleet: boolean;
  bundle: Buffer;
}): Promise<string[]> {
  if (o.fleet === o.kiosks.length > 0) throw new FacegateError('give --kiosk ID (one or more) or --fleet, not both');
  const topics = o.fleet
    ? [fleetTopic(o.baseTopic, UPDATE_TOPICS.people)]
    : o.kiosks.map((k) => kioskTopic(o.baseTopic, k, UPDATE_TOPICS.people));
  const client = await connectAsync(o.brokerUrl, { reconnectPeriod: 0, connectTimeout: 10_000 });
  try {
    for (const t of topics) await client.publishAsync(t, o.bundle, { qos: 1, retain: false });
  } finally {
    await client.endAsync();
  }
  return topics;
}
