/** Prometheus metrics of the daemon (prom-client), on a registry of its own. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ModelPrecisionPayload } from '../publish/topics.js';

// Seconds; from ~1 ms (a QoS 1 round trip on loopback) to 10 s (an event that waited).
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class Metrics {
  readonly registry = new Registry();
  readonly framesIn = new Counter({
    name: 'facegate_frames_in_total',
    help: 'frames delivered by the camera',
    registers: [this.registry],
  });
  readonly framesDropped = new Counter({
    name: 'facegate_frames_dropped_total',
    help: 'frames dropped because recognition was behind (oldest first)',
    registers: [this.registry],
  });
  readonly framesProcessed = new Counter({
    name: 'facegate_frames_processed_total',
    help: 'frames that went through recognition',
    registers: [this.registry],
  });
  readonly frameErrors = new Counter({
    name: 'facegate_frame_errors_total',
    help: 'frames whose processing failed, by stage',
    labelNames: ['stage'] as const,
    registers: [this.registry],
  });
  readonly skipped = new Counter({
    name: 'facegate_skipped_total',
    help: 'frames that could not be decoded (reason="unreadable") and faces too small or too blurred to recognise',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly faces = new Counter({
    name: 'facegate_faces_total',
    help: 'faces matched (named or refused)',
    registers: [this.registry],
  });
  readonly decisions = new Counter({
    name: 'facegate_decisions_total',
    help: 'decisions by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly eventsDelivered = new Counter({
    name: 'facegate_events_delivered_total',
    help: 'events acknowledged by the broker',
    registers: [this.registry],
  });
  readonly eventsDropped = new Counter({
    name: 'facegate_events_dropped_total',
    help: 'events dropped because the outbox was full',
    registers: [this.registry],
  });
  readonly stateWriteFailures = new Counter({
    name: 'facegate_state_write_failures_total',
    help: 'writes the kiosk database refused (disk full, read-only); events are kept in memory meanwhile',
    registers: [this.registry],
  });
  readonly outboxBadRecords = new Counter({
    name: 'facegate_outbox_bad_records_total',
    help: 'stored outbox records skipped at start because they are not events',
    registers: [this.registry],
  });
  readonly cameraReopens = new Counter({
    name: 'facegate_camera_reopens_total',
    help: 'camera reopen attempts',
    registers: [this.registry],
  });
  readonly stageSeconds = new Histogram({
    name: 'facegate_stage_seconds',
    help: 'latency per stage: queue (wait for recognition), recognise (detect + embed + match), decide, publish (decision to broker acknowledgement), frame_to_event (capture to broker acknowledgement)',
    labelNames: ['stage'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly brokerConnected = new Gauge({
    name: 'facegate_broker_connected',
    help: '1 when connected to the MQTT broker',
    registers: [this.registry],
  });
  readonly cameraUp = new Gauge({
    name: 'facegate_camera_up',
    help: '1 when the camera delivers frames',
    registers: [this.registry],
  });
  readonly modelLoaded = new Gauge({
    name: 'facegate_model_info',
    help: 'the model running (value 1), by version',
    labelNames: ['version'] as const,
    registers: [this.registry],
  });
  readonly outboxPending = new Gauge({
    name: 'facegate_outbox_pending',
    help: 'events waiting in the outbox for the broker',
    registers: [this.registry],
  });
  readonly queueLength = new Gauge({
    name: 'facegate_frame_queue_length',
    help: 'frames waiting for recognition',
    registers: [this.registry],
  });
  readonly fps = new Gauge({
    name: 'facegate_fps',
    help: 'frames processed per second over the last interval',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'facegate_' });
  }

  readonly modelPrecision = new Gauge({
    name: 'facegate_model_precision_info',
    help: 'which model file runs (value 1): running int8 or fp32, asked auto / int8 / fp32 (model.precision)',
    labelNames: ['running', 'asked'] as const,
    registers: [this.registry],
  });
  readonly modelRunSeconds = new Gauge({
    name: 'facegate_model_run_seconds',
    help: 'median seconds a face of each model file, timed at load by precision auto (absent when not timed)',
    labelNames: ['file'] as const,
    registers: [this.registry],
  });

  setModel(version: string, precision?: ModelPrecisionPayload): void {
    this.modelLoaded.reset();
    this.modelLoaded.set({ version }, 1);
    this.modelPrecision.reset();
    this.modelRunSeconds.reset();
    if (!precision) return;
    this.modelPrecision.set({ running: precision.running, asked: precision.asked }, 1);
    if (precision.int8Ms !== null) this.modelRunSeconds.set({ file: 'int8' }, precision.int8Ms / 1000);
    if (precision.fp32Ms !== null) this.modelRunSeconds.set({ file: 'fp32' }, precision.fp32Ms / 1000);
  }
}
