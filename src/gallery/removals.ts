/**
 * Removal notices: a kiosk's own `facegate enrol remove` (or the admin page's) erases the
 * person on this kiosk only. A kiosk holds no update signing key, so it cannot sign a fleet
 * removal; instead the daemon publishes an unsigned, advisory notice on
 * `<base>/<kiosk>/people/removed` (QoS 1, never retained) with the person's id, and the
 * operator, on a workstation that holds the key, turns it into a signed removal
 * (`facegate enrol export-bundle --remove ID`). Kiosks never act on a notice.
 *
 * The daemon notices a removal by comparing the ids enrolled before and after each change of
 * the gallery (its version row): whichever process removed the person. Ids a people bundle
 * removed (the update history remembers them) are not announced: the fleet knows. Nothing is
 * written to disk: a removal made while the daemon is stopped is not announced (the kiosk
 * keeps nothing of a removed person, not even the id, to announce later).
 */
import type { Logger } from 'pino';
import { moduleLogger } from '../shared/logger.js';
import type { KioskDb } from '../state/db.js';
import type { MqttPort } from '../publish/mqtt.js';
import { UPDATE_TOPICS, type PeopleRemovedPayload } from '../publish/topics.js';
import { PeopleHistory } from '../update/history.js';
import type { GalleryStore } from './store.js';

export interface RemovalNoticesOptions {
  readonly mqtt: Pick<MqttPort, 'publishRelative'>;
  readonly kioskId: string;
  readonly store: GalleryStore;
  readonly db: KioskDb;
  /** How often the gallery's version is read (one small query). */
  readonly intervalMs?: number;
  readonly now?: () => Date;
}

export class RemovalNotices {
  private readonly log: Logger = moduleLogger('gallery');
  private ids = new Set<string>();
  private version = -1;
  private timer: NodeJS.Timeout | undefined;
  private history: PeopleHistory | undefined;
  /** Notices handed to the connection (sent now, or when the broker is back). */
  sent = 0;

  constructor(private readonly o: RemovalNoticesOptions) {}

  start(): Promise<void> {
    this.history = new PeopleHistory(this.o.db);
    this.history.open();
    this.version = this.o.store.version();
    this.ids = new Set(this.o.store.people().map((p) => p.id));
    this.timer = setInterval(() => this.check(), this.o.intervalMs ?? 1000);
    this.timer.unref();
    return Promise.resolve();
  }

  /** Compares the people enrolled now with those before the last change; announces who went. Returns the ids announced. */
  check(): string[] {
    const version = this.o.store.version();
    if (version === this.version) return [];
    this.version = version;
    const now = new Set(this.o.store.people().map((p) => p.id));
    const gone = [...this.ids].filter((id) => !now.has(id) && !this.history?.removed(id));
    this.ids = now;
    for (const id of gone) {
      const payload: PeopleRemovedPayload = {
        kiosk: this.o.kioskId,
        id,
        at: (this.o.now?.() ?? new Date()).toISOString(),
        signed: false,
      };
      this.sent++;
      this.o.mqtt
        .publishRelative(UPDATE_TOPICS.peopleRemoved, JSON.stringify(payload), { qos: 1, retain: false })
        .catch((err: Error) => this.log.warn({ person: id, err: err.message }, 'cannot publish the removal notice'));
      this.log.info(
        { person: id },
        'person removed here: notice published for the operator (facegate enrol export-bundle --remove ID removes them from the fleet)',
      );
    }
    return gone;
  }

  stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    return Promise.resolve();
  }
}
