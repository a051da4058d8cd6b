/**
 * The ONE composition root of `facegate run`: creates every part, wires them, starts
 * them in order and stops them in reverse. Constructors only assign; work happens in
 * start(). Essential parts that fail to start stop the start (after stopping what had
 * started); optional ones (Home Assistant discovery, state reports, model updates) are
 * logged by name and the daemon runs on.
 *
 *   camera → queue → recognition (model host → decider) → events (outbox → MQTT)
 *
 * With model updates, the updater swaps the model host's model (install, rollback), and
 * recognition errors on a model still on probation go back to the updater (ProbationGuard).
 */
import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { moduleLogger } from '../shared/logger.js';
import { Camera, createSource } from '../capture/camera.js';
import type { CameraSource } from '../capture/source.js';
import { FrameQueue } from '../capture/queue.js';
import { Topics } from '../publish/topics.js';
import { MqttConnection, buildClientOptions, safeUrl } from '../publish/mqtt.js';
import { EmbeddedBroker } from '../publish/broker.js';
import { EventPublisher } from '../publish/events.js';
import { HomeAssistantDiscovery } from '../publish/homeassistant.js';
import { Metrics } from './metrics.js';
import { HttpServer, type Health } from './http.js';
import { SdNotify } from './sdnotify.js';
import {
  ModelHost,
  RecognitionWorker,
  assertModelDir,
  type DecisionMaker,
  type RecogniserLoader,
} from './recognition.js';
import { StateReporter } from './state.js';
import { ProbationGuard } from './probation.js';
import { DaemonBus } from './bus.js';
import type { UpdateMqttPort } from '../update/updater.js';

export interface Part {
  readonly name: string;
  /** Optional parts that fail are logged and skipped; essential ones stop the start. */
  readonly optional?: boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Seams for tests and for parts wired in later (a fake model, a fake camera). */
export interface DaemonDeps {
  loadRecogniser?: RecogniserLoader;
  createDecider?: (cfg: Config['decide']) => DecisionMaker;
  createSource?: (cfg: Config['camera']) => CameraSource;
  env?: NodeJS.ProcessEnv;
  version?: string;
  /** Called when the daemon decides to stop on its own (camera ended). */
  onSelfStop?: (reason: string) => void;
}

async function defaultLoader(cfg: Config['model']): Promise<RecogniserLoader> {
  const { RecognitionPipeline } = await import('../recognise/pipeline.js');
  return (modelDir) => {
    assertModelDir(modelDir);
    return RecognitionPipeline.load({
      modelDir,
      threads: cfg.threads,
      precision: cfg.precision,
      minFaceSize: cfg.minFaceSize,
      minSharpness: cfg.minSharpness,
      minDetectionScore: cfg.minDetectionScore,
      maxFaces: cfg.maxFaces,
      ...(cfg.detectorCacheDir ? { detector: { cacheDir: cfg.detectorCacheDir } } : {}),
    });
  };
}

async function defaultDecider(cfg: Config['decide']): Promise<DecisionMaker> {
  const { Decider } = await import('../decide/decider.js');
  return new Decider(cfg);
}

export class Daemon {
  private readonly log: Logger = moduleLogger('daemon');
  readonly metrics = new Metrics();
  /** Frames and decisions, for the parts that watch them (screen, door access). */
  readonly bus = new DaemonBus();
  private readonly started: Part[] = [];
  private stopping: Promise<void> | undefined;
  // Parts, created in start() (they need the loaded model / resolved broker URL).
  private camera: Camera | undefined;
  private host: ModelHost | undefined;
  private mqtt: MqttConnection | undefined;
  private events: EventPublisher | undefined;
  private http: HttpServer | undefined;
  private reporter: StateReporter | undefined;
  private readonly sd: SdNotify;
  /** Where MQTT clients connect (the embedded broker's URL when none is configured). */
  brokerUrl = '';
  private lastPerson: string | null = null;
  private lastEventTime: string | null = null;

  constructor(
    private readonly cfg: Config,
    private readonly deps: DaemonDeps = {},
  ) {
    this.sd = new SdNotify(deps.env ?? process.env);
  }

  get httpAddress(): string | undefined {
    return this.http?.address;
  }

  health(): Health {
    const camera = this.camera?.state ?? 'starting';
    const model = this.host?.loaded ?? false;
    return {
      ready: camera === 'ok' && model,
      camera,
      model: model ? this.host?.currentVersion : null,
      broker: this.mqtt?.connected ? 'connected' : 'disconnected',
      pendingEvents: this.events?.pending ?? 0,
    };
  }

  private async startPart(part: Part): Promise<void> {
    try {
      await part.start();
      this.started.push(part);
      this.log.debug({ part: part.name }, 'started');
    } catch (err) {
      if (!part.optional) throw err;
      this.log.error(
        { part: part.name, err: (err as Error).message },
        'optional part failed to start; running without it',
      );
    }
  }

  /** Starts every part in order. On failure, stops what started and rethrows. */
  async start(): Promise<void> {
    try {
      await this.startParts();
    } catch (err) {
      await this.stop('start failed');
      throw err;
    }
  }

  private async startParts(): Promise<void> {
    const cfg = this.cfg;
    const m = this.metrics;
    const version = this.deps.version ?? '0.0.0';

    // 1. The model: fail fast with one message when there is none.
    const loader = this.deps.loadRecogniser ?? (await defaultLoader(cfg.model));
    const host = new ModelHost(loader);
    this.host = host;
    host.onChange((v) => m.setModel(v));
    let updater: Part | undefined;
    let probation: ProbationGuard | undefined;
    let initialModel: { dir: string } = { dir: cfg.model.dir };
    if (cfg.updates.enabled) {
      const { ModelUpdater } = await import('../update/updater.js');
      // The updater is created before MQTT starts (it picks the model to load); it reaches MQTT through this seam.
      const mqttSeam: UpdateMqttPort = {
        publishRelative: (t, p, o) => this.requireMqtt().publishRelative(t, p, o),
        subscribe: (t, h) => this.requireMqtt().subscribe(t, h),
        subscribeAbsolute: (t, h) => this.requireMqtt().subscribeAbsolute(t, h),
      };
      const u = new ModelUpdater({
        config: cfg.updates,
        kioskId: cfg.mqtt.kioskId,
        baseTopic: cfg.mqtt.baseTopic,
        fallbackDir: cfg.model.dir,
        mqtt: mqttSeam,
        host,
      });
      initialModel = await u.recover();
      const guard = new ProbationGuard(u);
      probation = guard;
      // A rollback the guard started finishes before the updater stops.
      updater = {
        name: 'model updates',
        optional: true,
        start: () => u.start(),
        stop: async () => {
          await guard.idle();
          await u.stop();
        },
      };
    }
    await this.startPart({ name: 'model', start: () => host.activate(initialModel), stop: () => host.stop() });

    // 2. MQTT: the configured broker, or an embedded one on loopback.
    let url = cfg.mqtt.url;
    if (!url) {
      const broker = new EmbeddedBroker(cfg.mqtt.embedded.host, cfg.mqtt.embedded.port);
      await this.startPart({ name: 'embedded broker', start: () => broker.start(), stop: () => broker.stop() });
      url = broker.url;
    }
    this.brokerUrl = url;
    const topics = new Topics(cfg.mqtt.baseTopic, cfg.mqtt.kioskId, cfg.mqtt.homeAssistant.prefix);
    // aedes speaks MQTT 3.1.1 only.
    const mqttCfg = cfg.mqtt.url ? cfg.mqtt : { ...cfg.mqtt, protocolVersion: 4 as const };
    const mqtt = new MqttConnection(url, buildClientOptions(mqttCfg, topics), topics, (up) =>
      m.brokerConnected.set(up ? 1 : 0),
    );
    this.mqtt = mqtt;
    await this.startPart({ name: 'mqtt', start: () => mqtt.start(), stop: () => mqtt.stop() });
    if (!cfg.mqtt.url) {
      const u = new URL(url);
      process.stdout.write(
        `facegate: no broker configured (mqtt.url), embedded MQTT broker on ${url}; subscribe with: mosquitto_sub -h ${u.hostname} -p ${u.port} -t '${topics.root}/#' -v\n`,
      );
    }

    // 3. Events: outbox on disk, then MQTT.
    const events = new EventPublisher(mqtt, {
      stateDir: path.resolve(cfg.state.dir),
      maxEvents: cfg.mqtt.outbox.maxEvents,
      kiosk: cfg.mqtt.kioskId,
      camera: cfg.camera.name,
      onDelivered: (_p, lat) => {
        m.eventsDelivered.inc();
        if (Number.isFinite(lat.fromFrameMs))
          m.stageSeconds.observe({ stage: 'frame_to_event' }, lat.fromFrameMs / 1000);
        if (Number.isFinite(lat.fromDecisionMs))
          m.stageSeconds.observe({ stage: 'publish' }, lat.fromDecisionMs / 1000);
        m.outboxPending.set(this.events?.pending ?? 0);
      },
      onDropped: (n) => m.eventsDropped.inc(n),
    });
    this.events = events;
    await this.startPart({ name: 'events', start: () => events.start(), stop: () => events.stop() });

    if (cfg.mqtt.homeAssistant.enabled) {
      const ha = new HomeAssistantDiscovery(mqtt, version);
      await this.startPart({
        name: 'home assistant discovery',
        optional: true,
        start: () => ha.start(),
        stop: () => ha.stop(),
      });
    }

    // 4. Health and metrics.
    if (cfg.http.enabled) {
      const http = new HttpServer(cfg.http.host, cfg.http.port, m.registry, () => this.health());
      this.http = http;
      await this.startPart({ name: 'http', start: () => http.start(), stop: () => http.stop() });
    }

    // 5. Recognition, then the camera that feeds it.
    const queue = new FrameQueue(cfg.camera.queueSize, () => m.framesDropped.inc());
    const decider = this.deps.createDecider ? this.deps.createDecider(cfg.decide) : await defaultDecider(cfg.decide);
    const worker = new RecognitionWorker(queue, host, decider, {
      onDecision: (d, modelVersion) => {
        m.decisions.inc({ kind: d.kind });
        const p = events.publish(d, modelVersion);
        m.outboxPending.set(events.pending);
        if (d.kind === 'recognized') this.lastPerson = d.name;
        this.lastEventTime = p.time;
        this.log.info({ kind: d.kind, name: d.name, seq: p.seq, score: p.score }, 'decision');
        this.reporter?.kick();
        this.bus.emit('decision', { decision: d, modelVersion, event: p });
      },
      onFrame: (frame, matches, t) => {
        this.bus.emit('frame', { frame, matches, modelVersion: host.currentVersion, timings: t });
        m.framesProcessed.inc();
        m.faces.inc(matches.length);
        m.queueLength.set(queue.length);
        m.stageSeconds.observe({ stage: 'queue' }, t.queueMs / 1000);
        m.stageSeconds.observe({ stage: 'recognise' }, t.recogniseMs / 1000);
        m.stageSeconds.observe({ stage: 'decide' }, t.decideMs / 1000);
      },
      onError: (stage) => m.frameErrors.inc({ stage }),
      onRecognise: (r) => probation?.frame(r),
    });
    await this.startPart({ name: 'recognition', start: () => worker.start(), stop: () => worker.stop() });

    const camera = new Camera(
      () => (this.deps.createSource ?? createSource)(cfg.camera),
      queue,
      {
        name: cfg.camera.name,
        reopen: cfg.camera.reopen,
        startTimeoutMs: Math.max(10000, cfg.camera.reopen.stallTimeoutMs),
      },
      {
        onFrame: () => m.framesIn.inc(),
        onState: (s) => {
          m.cameraUp.set(s === 'ok' ? 1 : 0);
          this.reporter?.kick();
        },
        onReopen: () => m.cameraReopens.inc(),
        onEnd: () => {
          if (cfg.daemon.exitWhenCameraEnds) this.deps.onSelfStop?.('the camera has no more images');
        },
      },
    );
    this.camera = camera;
    await this.startPart({ name: 'camera', start: () => camera.start(), stop: () => camera.stop() });

    // 6. State for Home Assistant sensors, model updates, systemd.
    const reporter = new StateReporter(
      mqtt,
      () => ({
        lastPerson: this.lastPerson,
        lastEventTime: this.lastEventTime,
        modelVersion: host.currentVersion,
        camera: camera.state,
        pendingEvents: events.pending,
        processed: worker.processed,
      }),
      (fps) => m.fps.set(fps),
    );
    this.reporter = reporter;
    await this.startPart({
      name: 'state reports',
      optional: true,
      start: () => reporter.start(),
      stop: () => reporter.stop(),
    });
    if (updater) await this.startPart(updater);

    await this.sd.ready(`running: model ${host.currentVersion}, broker ${safeUrl(url)}`);
    const wd = this.sd.watchdogIntervalMs;
    this.sd.startWatchdog(() => worker.busyMs < (wd ?? 1000) * 2);
    this.log.info(
      { model: host.currentVersion, camera: cfg.camera.type, broker: safeUrl(url), http: this.http?.address },
      'facegate running',
    );
  }

  private requireMqtt(): MqttConnection {
    if (!this.mqtt) throw new Error('mqtt is not started yet');
    return this.mqtt;
  }

  /** The one shutdown path: stops every started part in reverse order; idempotent. */
  stop(reason = 'stop requested'): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info({ reason }, 'stopping');
      await this.sd.stopping();
      while (this.started.length) {
        const part = this.started.pop() as Part;
        try {
          await part.stop();
        } catch (err) {
          this.log.error({ part: part.name, err: (err as Error).message }, 'part failed to stop cleanly');
        }
      }
      this.log.info('stopped');
    })();
    return this.stopping;
  }
}
