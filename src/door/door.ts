/**
 * The ONE owner of the door outputs: the GPIO relay, the MQTT command to an external door
 * controller and the signed HTTP webhook, plus the optional door contact. `open()` fires
 * every enabled output once for pulseMs; while the door is released a second open() does
 * nothing (one opening at a time). The lock state (locked / unlocked, contact open / closed,
 * alarm) is what Home Assistant's door binary sensors show.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { moduleLogger } from '../shared/logger.js';
import type { MqttPort } from '../publish/mqtt.js';
import { assertTopicName, type DoorStatePayload } from '../publish/topics.js';
import type { DoorConfig } from './config.js';
import { GpioInput, GpioRelay } from './gpio.js';
import { WebhookOutput } from './webhook.js';
import { ContactMonitor, type ContactAlarm } from './contact.js';

export interface OpenRequest {
  /** Access-log sequence number of the grant. */
  readonly seq: number;
  readonly person: string | null;
}

export interface DoorOutputsOptions {
  readonly door: string;
  readonly kiosk: string;
  /** Called whenever the door state changes (publish it). */
  readonly onState?: (s: DoorStatePayload) => void;
  /** Called when the door contact raises an alarm. */
  readonly onAlarm?: (alarm: ContactAlarm) => void;
}

export class DoorOutputs {
  private readonly log: Logger = moduleLogger('door');
  private relay: GpioRelay | undefined;
  private webhook: WebhookOutput | undefined;
  private contactInput: GpioInput | undefined;
  private contact: ContactMonitor | undefined;
  private releasedUntil = 0;
  private lockTimer: NodeJS.Timeout | undefined;
  private offTimer: NodeJS.Timeout | undefined;
  private pendingSends = new Set<Promise<unknown>>();
  private stopped = false;
  /** How many times the door was opened since start (metrics, tests). */
  openings = 0;

  constructor(
    private readonly cfg: DoorConfig,
    private readonly mqtt: MqttPort | undefined,
    private readonly o: DoorOutputsOptions,
  ) {}

  /** Names of the enabled outputs, for logs and the admin page. */
  get outputs(): string[] {
    return [
      ...(this.cfg.relay.enabled ? ['relay'] : []),
      ...(this.cfg.mqtt.enabled ? ['mqtt'] : []),
      ...(this.cfg.webhook.enabled ? ['webhook'] : []),
    ];
  }

  get released(): boolean {
    return Date.now() < this.releasedUntil || this.relay?.state === 'on';
  }

  get alarm(): ContactAlarm | null {
    return this.contact?.alarm ?? null;
  }

  state(): DoorStatePayload {
    const open = this.contact?.open;
    return {
      door: this.o.door,
      lock: this.released ? 'unlocked' : 'locked',
      contact: open === undefined || open === null ? null : open ? 'open' : 'closed',
      alarm: this.alarm,
    };
  }

  private changed(): void {
    this.o.onState?.(this.state());
  }

  async start(): Promise<void> {
    const c = this.cfg;
    if (c.mqtt.enabled) {
      assertTopicName(c.mqtt.topic, 'door.mqtt.topic');
      if (!this.mqtt) throw new Error('door.mqtt needs the MQTT connection');
    }
    if (c.webhook.enabled) {
      const w = new WebhookOutput(c.webhook);
      await w.start();
      this.webhook = w;
    }
    if (c.relay.enabled) {
      const r = new GpioRelay(c.relay, c.pulseMs);
      r.onChange(() => this.changed());
      await r.start();
      this.relay = r;
    }
    if (c.contact.type !== 'none') {
      this.contact = new ContactMonitor(
        { heldOpenMs: c.contact.heldOpenSeconds * 1000, graceMs: c.contact.graceMs },
        (s) => {
          if (s.alarm) this.o.onAlarm?.(s.alarm);
          this.changed();
        },
      );
      const onLevel = (open: boolean): void => this.contact?.contact(open);
      if (c.contact.type === 'gpio') {
        const g = c.contact.gpio;
        const input = new GpioInput(g, (active) => onLevel(active === g.openWhenActive));
        await input.start();
        this.contactInput = input;
      } else {
        const m = c.contact.mqtt;
        assertTopicName(m.topic, 'door.contact.mqtt.topic');
        if (!this.mqtt) throw new Error('door.contact.type "mqtt" needs the MQTT connection');
        await this.mqtt.subscribeAbsolute(m.topic, (_t, payload) => {
          const text = payload.toString('utf8').trim();
          if (text === m.openPayload) onLevel(true);
          else if (text === m.closedPayload) onLevel(false);
          else this.log.warn({ payload: text.slice(0, 40) }, 'door contact: payload is neither open nor closed');
        });
      }
    }
    this.log.info({ door: this.o.door, outputs: this.outputs, contact: c.contact.type }, 'door outputs ready');
  }

  /** Releases the door for pulseMs on every enabled output. False when it is released already. */
  open(req: OpenRequest): boolean {
    if (this.stopped || this.released) return false;
    const now = Date.now();
    const pulseMs = this.cfg.pulseMs;
    this.releasedUntil = now + pulseMs;
    this.contact?.released(this.releasedUntil);
    this.openings++;
    this.relay?.pulse();
    const c = this.cfg;
    if (c.mqtt.enabled && this.mqtt) {
      const mqtt = this.mqtt;
      // QoS 1, never retained: a retained "open" would open the door again for every new subscriber.
      this.track(mqtt.publishAbsolute(c.mqtt.topic, c.mqtt.payload, { qos: 1, retain: false }), 'mqtt command');
      if (c.mqtt.offPayload) {
        this.offTimer = setTimeout(() => {
          this.track(mqtt.publishAbsolute(c.mqtt.topic, c.mqtt.offPayload, { qos: 1, retain: false }), 'mqtt off');
        }, pulseMs);
      }
    }
    if (this.webhook) {
      this.track(
        this.webhook.send({
          id: randomUUID(),
          action: 'open',
          door: this.o.door,
          kiosk: this.o.kiosk,
          person: req.person,
          seq: req.seq,
          pulseMs,
          time: new Date(now).toISOString(),
        }),
        'webhook',
      );
    }
    clearTimeout(this.lockTimer);
    this.lockTimer = setTimeout(() => this.changed(), pulseMs + 5);
    this.lockTimer.unref();
    this.changed();
    this.log.info({ door: this.o.door, seq: req.seq, person: req.person, pulseMs }, 'door opened');
    return true;
  }

  private track(p: Promise<unknown>, what: string): void {
    const q = p.catch((err: Error) => this.log.error({ err: err.message, output: what }, 'door output failed'));
    this.pendingSends.add(q);
    void q.finally(() => this.pendingSends.delete(q));
  }

  /** The pid of the process holding the relay on (tests). */
  get relayHolderPid(): number | undefined {
    return this.relay?.holderPid;
  }

  /** Ends a pulse in progress (relay off, "off" payload sent), then stops the inputs. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.lockTimer);
    const wasReleased = Date.now() < this.releasedUntil;
    if (this.offTimer && wasReleased && this.cfg.mqtt.offPayload && this.mqtt) {
      clearTimeout(this.offTimer);
      this.track(
        this.mqtt.publishAbsolute(this.cfg.mqtt.topic, this.cfg.mqtt.offPayload, { qos: 1, retain: false }),
        'mqtt off',
      );
    }
    this.releasedUntil = 0;
    await this.relay?.stop();
    this.contact?.stop();
    await this.contactInput?.stop();
    await Promise.race([Promise.all(this.pendingSends), new Promise((r) => setTimeout(r, 2000))]);
  }
}
