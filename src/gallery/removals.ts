/**
 * Removal notices: a kiosk's own `facegate enrol remove` (or the admin page's) erases the
 * person on this kiosk only. A kiosk holds no update signing key, so it cannot sign a fleet
 * removal; instead the daemon publishes an unsigned, advisory notice on
 * `<base>/<kiosk>/people/removed` (QoS 1, never retained) with the person's id, and the
 * operator, on a workstation that holds the key, turns it into a signed removal
 * (`facegate enrol export-bundle --remove ID`). Kiosks never act on a notice.
 *
 * The removal itself queues the notice (the id and the time, nothing else of the person) in
 * the kiosk database, in the transaction that erases the person, whichever process removed
 * them (GalleryStore.remove). The daemon sends what is queued, at its start and then every
 * `intervalMs`, and forgets each id once the broker acknowledged it; so a removal made while
 * the daemon was stopped, or while the broker was away, is announced when both are back, at
 * least once. Removals made by a signed people bundle are never queued: the fleet knows.
 */
import type { Logger } from 'pino';
import { moduleLogger } from '../shared/logger.js';
import type { MqttPort } from '../publish/mqtt.js';
import { UPDATE_TOPICS, type PeopleRemovedPayload } from '../publish/topics.js';
import type { GalleryStore } from './store.js';

export interface RemovalNoticesOptions {
  readonly mqtt: Pick<MqttPort, 'publishRelative'>;
  readonly kioskId: string;
  readonly store: Pick<GalleryStore, 'pendingNotices' | 'noticeSent'>;
  /** How often the queue is read (one small query). */
  readonly intervalMs?: number;
}

export class RemovalNotices {
  private readonly log: Logger = moduleLogger('gallery');
  private timer: NodeJS.Timeout | undefined;
  /** Ids handed to the connection and not acknowledged yet: not handed again meanwhile. */
  private readonly inFlight = new Set<string>();
  /** Notices the broker acknowledged. */
  sent = 0;

  constructor(private readonly o: RemovalNoticesOptions) {}

  start(): Promise<void> {
    this.check();
    this.timer = setInterval(() => this.check(), this.o.intervalMs ?? 1000);
    this.timer.unref();
    return Promise.resolve();
  }

  /** Hands every queued notice not already on its way to the connection. Returns the ids handed now. */
  check(): string[] {
    const handed: string[] = [];
    for (const n of this.o.store.pendingNotices()) {
      if (this.inFlight.has(n.personId)) continue;
      this.inFlight.add(n.personId);
      handed.push(n.personId);
      const payload: PeopleRemovedPayload = { kiosk: this.o.kioskId, id: n.personId, at: n.removedAt, signed: false };
      this.o.mqtt
        .publishRelative(UPDATE_TOPICS.peopleRemoved, JSON.stringify(payload), { qos: 1, retain: false })
        .then(
          () => {
            this.sent++;
            this.o.store.noticeSent(n.personId);
            this.log.info(
              { person: n.personId },
              'person removed here: notice published for the operator (facegate enrol export-bundle --remove ID removes them from the fleet)',
            );
          },
          (err: Error) =>
            this.log.warn({ person: n.personId, err: err.message }, 'cannot publish the removal notice: kept, retried'),
        )
        .catch((err: Error) =>
          // The database refused to forget the id: it is announced again later (at least once).
          this.log.warn({ person: n.personId, err: err.message }, 'removal notice sent but still queued'),
        )
        .finally(() => this.inFlight.delete(n.personId));
    }
    return handed;
  }

  stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    return Promise.resolve();
  }
}
