/**
 * Turns decisions into `events` messages and delivers them in order, exactly as decided:
 * each event goes to the outbox in the kiosk database first, then one at a time to the broker (QoS 1);
 * it leaves the outbox when the broker acknowledged it. While the broker is unreachable
 * events pile up on disk (bounded) and are sent in order, marked `delayed`, when it returns.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Decision } from '../shared/messages.js';
import { moduleLogger } from '../shared/logger.js';
import type { EventPayload } from './topics.js';
import { Outbox } from './outbox.js';
import type { KioskDb } from '../state/db.js';

/** The part of the MQTT connection the event publisher needs (a fake in unit tests). */
export interface EventSink {
  readonly connected: boolean;
  publish(topic: 'events', payload: EventPayload): Promise<void>;
  onConnect(listener: () => void): void;
}

export interface EventPublisherOptions {
  /** The kiosk database (the daemon's one instance). */
  db: KioskDb;
  /** Where an install from before the database kept outbox.jsonl and sequence (imported once). */
  stateDir: string;
  maxEvents: number;
  kiosk: string;
  camera: string;
  /** Called once an event was acknowledged, with ms from frame capture and from publish() to acknowledgement (NaN for events from before a restart). */
  onDelivered?: (payload: EventPayload, latency: { fromFrameMs: number; fromDecisionMs: number }) => void;
  /** Called when events had to be dropped because the outbox was full. */
  onDropped?: (count: number) => void;
  /** Called when the database refused a write (the events stay in memory meanwhile). */
  onWriteFailure?: () => void;
}

export class EventPublisher {
  private readonly outbox: Outbox;
  private readonly log: Logger;
  private pumping = false;
  private stopped = false;
  private idle: Promise<void> = Promise.resolve();
  private wake: (() => void) | undefined;
  /** Frame time and decision time by seq, for latency metrics. */
  private readonly decidedAt = new Map<number, { frame: number; decided: number }>();

  constructor(
    private readonly sink: EventSink,
    private readonly opts: EventPublisherOptions,
  ) {
    this.log = moduleLogger('events');
    this.outbox = new Outbox(opts.db, opts.stateDir, opts.maxEvents, (err, first) => {
      // Logged when the outbox turns to memory, not for every event while it stays there.
      if (first)
        this.log.error(
          { err: err.message },
          'cannot write events to the kiosk database (disk full?); keeping them in memory until writes succeed',
        );
      opts.onWriteFailure?.();
    });
  }

  /** Why events are kept in memory only (the database refuses writes); null when all is stored. */
  get degraded(): string | null {
    return this.outbox.degraded;
  }

  get pending(): number {
    return this.outbox.size;
  }
  /** Stored records skipped at start because they are not events. */
  get badRecords(): number {
    return this.outbox.badRecords;
  }
  get dropped(): number {
    return this.outbox.dropped;
  }

  start(): Promise<void> {
    this.outbox.load();
    if (this.outbox.imported)
      this.log.info(
        { events: this.outbox.imported },
        'imported the outbox of an older install into the kiosk database',
      );
    if (this.outbox.badRecords)
      this.log.warn({ records: this.outbox.badRecords }, 'skipped stored outbox records that are not events');
    if (this.outbox.size)
      this.log.info({ pending: this.outbox.size }, 'events from before the restart wait for the broker');
    if (this.outbox.dropped) this.opts.onDropped?.(this.outbox.dropped);
    this.sink.onConnect(() => this.kick());
    this.kick();
    return Promise.resolve();
  }

  /** Records a decision durably and queues it for the broker. Returns the payload. */
  publish(decision: Decision, modelVersion: string): EventPayload {
    // Delayed: it cannot go out now, or it queues behind events held back by an outage.
    const delayed = !this.sink.connected || this.outbox.backlogDelayed;
    const payload: EventPayload = {
      id: randomUUID(),
      seq: this.outbox.nextSeq(),
      kind: decision.kind,
      name: decision.name,
      score: Math.round(decision.score * 10000) / 10000,
      time: new Date(decision.timestamp).toISOString(),
      modelVersion,
      kiosk: this.opts.kiosk,
      camera: this.opts.camera,
      trackId: decision.trackId,
      frameId: decision.frameId,
      delayed: false,
    };
    const dropped = this.outbox.add(payload, delayed);
    if (dropped) {
      this.log.warn({ dropped, max: this.opts.maxEvents }, 'outbox full: dropped the oldest events');
      this.opts.onDropped?.(dropped);
      const oldest = this.outbox.peek()?.payload.seq ?? Infinity;
      for (const seq of this.decidedAt.keys()) if (seq < oldest) this.decidedAt.delete(seq);
    }
    this.decidedAt.set(payload.seq, { frame: decision.timestamp, decided: Date.now() });
    this.kick();
    return payload;
  }

  private kick(): void {
    if (this.wake) {
      const w = this.wake;
      this.wake = undefined;
      w();
    }
    if (this.pumping || this.stopped) return;
    this.pumping = true;
    this.idle = this.pump().finally(() => {
      this.pumping = false;
    });
  }

  /** Sends the outbox head, one at a time, so order on the wire is the order of decisions. */
  private async pump(): Promise<void> {
    for (;;) {
      if (this.stopped) return;
      const head = this.outbox.peek();
      if (!head) return;
      if (!this.sink.connected) {
        this.outbox.markAllDelayed();
        return; // onConnect kicks again
      }
      const payload: EventPayload = { ...head.payload, delayed: head.delayed };
      try {
        // mqtt.js keeps an unacknowledged QoS 1 message across a reconnect and resends it.
        await this.sink.publish('events', payload);
      } catch (err) {
        if (this.stopped) return;
        this.log.warn({ err: (err as Error).message, seq: payload.seq }, 'event not acknowledged; will retry');
        this.outbox.markAllDelayed();
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          setTimeout(resolve, 1000).unref();
        });
        continue;
      }
      this.outbox.ack(payload.seq);
      const decided = this.decidedAt.get(payload.seq);
      this.decidedAt.delete(payload.seq);
      const now = Date.now();
      this.opts.onDelivered?.(payload, {
        fromFrameMs: decided ? now - decided.frame : NaN,
        fromDecisionMs: decided ? now - decided.decided : NaN,
      });
    }
  }

  /** Waits (up to `ms`) for the outbox to drain, then stops sending; what is left stays in the database. */
  async stop(ms = 2000): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.outbox.size > 0 && this.sink.connected && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    this.stopped = true;
    this.kick();
    await Promise.race([this.idle, new Promise((r) => setTimeout(r, 100))]);
  }
}
