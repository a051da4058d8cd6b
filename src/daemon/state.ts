/** Publishes the retained `state` topic (HA sensors: last person, fps, model version) every few seconds. */
import type { MqttPort } from '../publish/mqtt.js';
import type { StatePayload } from '../publish/topics.js';

export interface StateSnapshot {
  lastPerson: string | null;
  lastEventTime: string | null;
  modelVersion: string;
  camera: StatePayload['camera'];
  pendingEvents: number;
  /** Frames processed since start (for fps). */
  processed: number;
  /** People in the gallery and the match threshold in use for that many. */
  gallery: StatePayload['gallery'];
}

export class StateReporter {
  private timer: NodeJS.Timeout | undefined;
  private last = { at: Date.now(), processed: 0 };
  private fps = 0;
  private readonly startedAt = Date.now();

  constructor(
    private readonly mqtt: MqttPort,
    private readonly snapshot: () => StateSnapshot,
    private readonly onFps: (fps: number) => void,
    private readonly intervalMs = 5000,
  ) {}

  start(): Promise<void> {
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
    this.mqtt.onConnect(() => this.kick());
    this.kick();
    return Promise.resolve();
  }

  private tick(): void {
    const now = Date.now();
    const s = this.snapshot();
    const dt = (now - this.last.at) / 1000;
    if (dt > 0) this.fps = Math.round(((s.processed - this.last.processed) / dt) * 10) / 10;
    this.last = { at: now, processed: s.processed };
    this.onFps(this.fps);
    this.kick();
  }

  /** Publishes the current state now (after an event, a camera change, a reconnect). */
  kick(): void {
    if (!this.mqtt.connected) return;
    const s = this.snapshot();
    const payload: StatePayload = {
      lastPerson: s.lastPerson,
      lastEventTime: s.lastEventTime,
      fps: this.fps,
      modelVersion: s.modelVersion,
      camera: s.camera,
      pendingEvents: s.pendingEvents,
      gallery: s.gallery,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
    };
    this.mqtt.publish('state', payload).catch(() => undefined);
  }

  stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    return Promise.resolve();
  }
}
