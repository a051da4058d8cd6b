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
import { Topics, type StatePayload } from '../publish/topics.js';
import { MqttConnection, buildClientOptions, safeUrl } from '../publish/mqtt.js';
import { EmbeddedBroker } from '../publish/broker.js';
import { EventPublisher } from '../publish/events.js';
import { HomeAssistantDiscovery } from '../publish/homeassistant.js';
import { Metrics } from './metrics.js';
import { WebApp } from '../web/server.js';
import type { DoorView, GalleryService, WebHealth } from '../web/ports.js';
import { SdNotify } from './sdnotify.js';
import { ModelHost, RecognitionWorker, hasModel, type DecisionMaker, type PipelineLoader } from './worker.js';
import { StateReporter } from './state.js';
import { ProbationGuard } from './probation.js';
import { DaemonBus } from '../publish/bus.js';
import type { OpenGallery } from '../gallery/open.js';
import type { FaceGallery } from '../gallery/service.js';
import type { ModelUpdater, UpdateMqttPort } from '../update/updater.js';
import { KioskDb, kioskDbPath } from '../state/db.js';
import { FolderLock, FolderLockedError } from '../state/lock.js';
import type { DoorService } from '../access/service.js';
import type { PersonDirectory } from '../access/rules.js';
import { setImagePixelLimit } from '../shared/image.js';
import { onFrameSkip } from '../shared/frame-skips.js';

export interface Part {
  readonly name: string;
  /** Optional parts that fail are logged and skipped; essential ones stop the start. */
  readonly optional?: boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Seams for tests and for parts wired in later (a fake model, a fake camera). */
export interface DaemonDeps {
  loadPipeline?: PipelineLoader;
  createDecider?: (cfg: Config['decide']) => DecisionMaker;
  createSource?: (cfg: Config['camera']) => CameraSource;
  env?: NodeJS.ProcessEnv;
  version?: string;
  /** Called when the daemon decides to stop on its own (camera ended). */
  onSelfStop?: (reason: string) => void;
  /** Who is who for door access (the gallery); without it a model's class names are persons with no groups. */
  personDirectory?: () => PersonDirectory | undefined;
  /** The gallery the web app's people API works on (tests: a fake; the daemon's own once the gallery part runs). */
  gallery?: GalleryService;
  /** The door state the kiosk screen shows (the door part's, once it runs). */
  door?: DoorView;
}

/**
 * Recognition through the gallery; the trained model of the directory, when there is one,
 * as a second opinion. Without a trained model the kiosk runs on the gallery alone.
 */
export async function defaultLoader(cfg: Config['model'], g: OpenGallery, log: Logger): Promise<PipelineLoader> {
  const { RecognitionPipeline } = await import('../recognise/pipeline.js');
  const { GalleryRecogniser } = await import('../gallery/recognise.js');
  const { loadModelDirDescriptor } = await import('../gallery/descriptor.js');
  return async (modelDir, intent) => {
    // A model directory may bring its own face descriptor; without one the built-in one runs.
    // It is scored as the built-in one is (gallery.flip, gallery.rule, gallery.norm), or refused where no tail
    // (or margin calibration) is fitted for that.
    const own = await loadModelDirDescriptor(
      modelDir,
      cfg.threads,
      { flip: g.descriptor.flip, rule: g.descriptor.rule },
      g.norm,
    );
    const descriptor = own ?? g.descriptor;
    let trained: Awaited<ReturnType<typeof RecognitionPipeline.load>> | undefined;
    try {
      // Templates for this descriptor are computed from the kept crops first; an update that
      // would lose enrolled people (crops not kept) is refused with the reason.
      await g.gallery.prepareDescriptor(descriptor, { strict: intent === 'install' });
      if (hasModel(modelDir)) trained = await loadTrained(modelDir);
    } catch (err) {
      await own?.close();
      throw err;
    }
    if (!trained)
      log.info(
        { modelDir: path.resolve(modelDir) },
        'no trained model: recognising the people enrolled in the gallery (facegate enrol) with the face descriptor alone',
      );
    g.gallery.useDescriptor(descriptor);
    return new GalleryRecogniser({
      gallery: g.gallery,
      descriptor,
      detector: g.detector,
      quality: { minFaceSize: cfg.minFaceSize, minSharpness: cfg.minSharpness },
      ...(trained ? { trained } : {}),
      ...(own ? { ownsDescriptor: true } : {}),
    });
  };

  function loadTrained(modelDir: string): ReturnType<typeof RecognitionPipeline.load> {
    return RecognitionPipeline.load({
      modelDir,
      threads: cfg.threads,
      precision: cfg.precision,
      minFaceSize: cfg.minFaceSize,
      minSharpness: cfg.minSharpness,
      minDetectionScore: cfg.minDetectionScore,
      maxFaces: cfg.maxFaces,
      detectorSize: cfg.detectorSize,
      ...(cfg.detectorCacheDir ? { detector: { cacheDir: cfg.detectorCacheDir } } : {}),
    });
  }
}

async function defaultDecider(cfg: Config['decide']): Promise<DecisionMaker> {
  const { Decider } = await import('../decide/decider.js');
  return new Decider(cfg);
}

/** This many undecodable frames in a row make health say the camera is not usable. */
const UNREADABLE_FRAMES_UNHEALTHY = 10;

export class Daemon {
  private readonly log: Logger = moduleLogger('daemon');
  readonly metrics = new Metrics();
  /** Frames and decisions, for the parts that watch them (screen, door access). */
  readonly bus = new DaemonBus();
  private readonly started: Part[] = [];
  private kioskDb: KioskDb | undefined;
  /** Door access (access.enabled): state, access log and rules for the web app. */
  door: DoorService | undefined;
  /** The model updater, when updates are on (its counters are read by the attack bench). */
  updater: ModelUpdater | undefined;
  private stopping: Promise<void> | undefined;
  // Parts, created in start() (they need the loaded model / resolved broker URL).
  private camera: Camera | undefined;
  private host: ModelHost | undefined;
  /** Frames in a row that did not decode, and whether the frame in recognition now did not. */
  private unreadableStreak = 0;
  private frameWasUnreadable = false;
  private stopSkips: (() => void) | undefined;
  /** Whether model updates run, and why not when they are configured but off. */
  private updatesStatus = 'disabled';
  private mqtt: MqttConnection | undefined;
  private events: EventPublisher | undefined;
  private http: WebApp | undefined;
  private reporter: StateReporter | undefined;
  private openGallery: OpenGallery | undefined;
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

  /**
   * The kiosk database, opened by the first part and closed by the last; parts that keep
   * state (events, update history, gallery, access log) migrate their own tables in it.
   */
  get db(): KioskDb {
    if (!this.kioskDb) throw new Error('the kiosk database is not open (the daemon is not started)');
    return this.kioskDb;
  }

  /** The running gallery (enrolment, people), for the web app and the door; undefined until started. */
  get gallery(): FaceGallery | undefined {
    return this.openGallery?.gallery;
  }

  get httpAddress(): string | undefined {
    return this.http?.address;
  }

  /** The web app while it runs (tests and the soak benchmark read its live stats). */
  get web(): WebApp | undefined {
    return this.http;
  }

  health(): WebHealth {
    const delivering = this.camera?.state ?? 'starting';
    // Frames arrive but none decodes: the camera is up, yet nothing can be recognised.
    const unreadable = delivering === 'ok' && this.unreadableStreak >= UNREADABLE_FRAMES_UNHEALTHY;
    const camera = unreadable ? 'unreadable' : delivering;
    const model = this.host?.loaded ?? false;
    const problem = unreadable
      ? `the last ${this.unreadableStreak} frames could not be decoded as images (counted in facegate_skipped_total{reason="unreadable"})`
      : this.camera?.problem;
    const snap = this.gallerySummary();
    return {
      ready: camera === 'ok' && model,
      camera,
      ...(unreadable && problem ? { cameraProblem: problem } : {}),
      ...(!unreadable && camera !== 'ok' && problem ? { cameraProblem: cameraHelp(problem) } : {}),
      ...(snap ? { gallery: snap } : {}),
      model: model ? this.host?.currentVersion : null,
      broker: this.mqtt?.connected ? 'connected' : 'disconnected',
      pendingEvents: this.events?.pending ?? 0,
      // Events kept in memory only while the database refuses writes (disk full).
      eventStore: this.events?.degraded ? `memory only: ${this.events.degraded}` : 'ok',
      updates: this.updatesStatus,
    };
  }

  /** People searched, the threshold in use for that many and the score it is for (null before the gallery starts). */
  private gallerySummary(): StatePayload['gallery'] {
    const g = this.openGallery?.gallery;
    if (!g) return null;
    try {
      const s = g.snapshot();
      return {
        people: s.people,
        threshold: Math.round(s.threshold * 10000) / 10000,
        score: s.weight === null ? 'cosine' : 'margin',
        shift: Math.round(s.shift * 10000) / 10000,
      };
    } catch {
      return null;
    }
  }

  private updatesOff(reason: string): void {
    this.updatesStatus = `off: ${reason}`;
    this.log.error(
      { err: reason },
      'model updates are off; recognition runs model.dir. Fix updates.publicKeys or updates.modelsDir and restart',
    );
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
    setImagePixelLimit(cfg.camera.maxImagePixels);
    this.stopSkips?.();
    this.stopSkips = onFrameSkip((reason) => {
      m.skipped.inc({ reason });
      if (reason === 'unreadable') this.frameWasUnreadable = true;
    });

    // 0. The state: one kiosk per state folder (and model store), then the one database.
    const stateDir = path.resolve(cfg.state.dir);
    const locks: FolderLock[] = [];
    let updatesProblem: string | undefined;
    await this.startPart({
      name: 'state',
      start: () => {
        try {
          locks.push(FolderLock.acquire(stateDir, 'state.dir'));
          if (cfg.updates.enabled) {
            const modelsDir = path.resolve(cfg.updates.modelsDir);
            try {
              if (modelsDir !== stateDir) locks.push(FolderLock.acquire(modelsDir, 'updates.modelsDir'));
            } catch (err) {
              // Another kiosk on the store stops this start; an unusable folder only turns updates off.
              if (err instanceof FolderLockedError) throw err;
              updatesProblem = (err as Error).message;
            }
          }
          this.kioskDb = KioskDb.open(kioskDbPath(stateDir));
        } catch (err) {
          for (const l of locks.splice(0).reverse()) l.release();
          throw err;
        }
        return Promise.resolve();
      },
      stop: () => {
        this.kioskDb?.close();
        this.kioskDb = undefined;
        for (const l of locks.splice(0).reverse()) l.release();
        return Promise.resolve();
      },
    });

    // 1. The gallery (people enrolled at the kiosk), then the model that recognises through it.
    const { openGallery } = await import('../gallery/open.js');
    await this.startPart({
      name: 'gallery',
      start: async () => {
        const g = await openGallery({
          db: this.db,
          config: cfg.gallery,
          stateDir: cfg.state.dir,
          threads: cfg.model.threads,
          minDetectionScore: cfg.model.minDetectionScore,
          detectorSize: cfg.model.detectorSize,
          ...(cfg.model.detectorCacheDir ? { detectorCacheDir: cfg.model.detectorCacheDir } : {}),
          frames: (onImage) => this.bus.on('frame', (f) => onImage(f.frame.image)),
        });
        // Templates for the model's descriptor are completed when the model loads (defaultLoader).
        this.openGallery = g;
      },
      stop: async () => {
        await this.openGallery?.close();
        this.openGallery = undefined;
      },
    });
    const gallery = this.openGallery;
    if (!gallery) throw new Error('the gallery did not start');
    const loader = this.deps.loadPipeline ?? (await defaultLoader(cfg.model, gallery, this.log));
    const host = new ModelHost(loader);
    this.host = host;
    host.onChange((v) => m.setModel(v, host.precision));
    let updater: Part | undefined;
    let probation: ProbationGuard | undefined;
    let initialModel: { dir: string } = { dir: cfg.model.dir };
    let u: ModelUpdater | undefined;
    if (updatesProblem !== undefined) this.updatesOff(updatesProblem);
    else if (cfg.updates.enabled) {
      const { ModelUpdater } = await import('../update/updater.js');
      // The updater is created before MQTT starts (it picks the model to load); it reaches MQTT through this seam.
      const mqttSeam: UpdateMqttPort = {
        publishRelative: (t, p, o) => this.requireMqtt().publishRelative(t, p, o),
        subscribe: (t, h) => this.requireMqtt().subscribe(t, h),
        subscribeAbsolute: (t, h) => this.requireMqtt().subscribeAbsolute(t, h),
      };
      u = new ModelUpdater({
        config: cfg.updates,
        kioskId: cfg.mqtt.kioskId,
        baseTopic: cfg.mqtt.baseTopic,
        fallbackDir: cfg.model.dir,
        mqtt: mqttSeam,
        host,
        db: this.db,
      });
      try {
        initialModel = await u.recover();
      } catch (err) {
        // Updates are optional: a missing key file or an unusable models directory turns
        // them off, recognition goes on with model.dir, and health says why.
        u = undefined;
        this.updatesOff((err as Error).message);
      }
    }
    if (u) {
      this.updatesStatus = 'on';
      this.updater = u;
      const running = u;
      const guard = new ProbationGuard(running);
      probation = guard;
      // A rollback the guard started finishes before the updater stops.
      updater = {
        name: 'model updates',
        optional: true,
        start: async () => {
          try {
            await running.start();
          } catch (err) {
            this.updatesStatus = `off: ${(err as Error).message}`;
            throw err;
          }
        },
        stop: async () => {
          await guard.idle();
          await running.stop();
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
    const mqtt = new MqttConnection(
      url,
      buildClientOptions(mqttCfg, topics),
      topics,
      (up) => m.brokerConnected.set(up ? 1 : 0),
      cfg.mqtt.maxPacketBytes,
    );
    this.mqtt = mqtt;
    await this.startPart({ name: 'mqtt', start: () => mqtt.start(), stop: () => mqtt.stop() });

    // 3. Events: outbox in the kiosk database, then MQTT.
    const events = new EventPublisher(mqtt, {
      db: this.db,
      stateDir,
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
      onWriteFailure: () => m.stateWriteFailures.inc(),
    });
    this.events = events;
    await this.startPart({
      name: 'events',
      start: async () => {
        await events.start();
        m.outboxBadRecords.inc(events.badRecords);
      },
      stop: () => events.stop(),
    });

    if (cfg.mqtt.homeAssistant.enabled) {
      const ha = new HomeAssistantDiscovery(mqtt, version, {
        door: cfg.access.enabled ? cfg.access.door : null,
        contact: cfg.door.contact.type !== 'none',
      });
      await this.startPart({
        name: 'home assistant discovery',
        optional: true,
        start: () => ha.start(),
        stop: () => ha.stop(),
      });
    }

    // Door access watches the bus from before the first frame. Optional: without it the kiosk still greets.
    if (cfg.access.enabled) {
      const { DoorAccess } = await import('../access/service.js');
      let access: InstanceType<typeof DoorAccess> | undefined;
      // The gallery knows each person's groups and validity; a test may name its own directory.
      const directory = this.deps.personDirectory ?? (() => this.gallery);
      await this.startPart({
        name: 'door access',
        optional: true,
        start: async () => {
          access = new DoorAccess({
            access: cfg.access,
            door: cfg.door,
            kiosk: cfg.mqtt.kioskId,
            db: this.db,
            mqtt,
            bus: this.bus,
            directory,
          });
          try {
            await access.start();
          } catch (err) {
            await access.stop().catch(() => undefined);
            throw err;
          }
          this.door = access;
        },
        stop: async () => {
          this.door = undefined;
          await access?.stop();
        },
      });
    }

    // 4. The web app: kiosk screen, admin page, health and metrics.
    if (cfg.http.enabled) {
      // The updater's history of bundles, read for the admin page (open() only migrates what the updater did already).
      const updateHistory = cfg.updates.enabled
        ? new (await import('../update/history.js')).UpdateHistory(this.db)
        : undefined;
      updateHistory?.open();
      const http = new WebApp({
        config: cfg,
        bus: this.bus,
        registry: m.registry,
        health: () => this.health(),
        // The one place the web app meets the gallery and the door parts.
        gallery: () => this.deps.gallery ?? this.gallery,
        door: () => this.deps.door ?? doorView(this.door),
        ...(updateHistory ? { updates: () => updateHistory.list() } : {}),
      });
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
        // A camera that sends only frames that do not decode is not healthy (see health()).
        this.unreadableStreak = this.frameWasUnreadable ? this.unreadableStreak + 1 : 0;
        this.frameWasUnreadable = false;
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
    // A missing camera does not stop the kiosk: it is retried with backoff, and health says why.
    await this.startPart({ name: 'camera', start: () => camera.startOrRetry(), stop: () => camera.stop() });

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
        gallery: this.gallerySummary(),
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
    if (cfg.updates.enabled) {
      // People bundles come over the same signed channel as models (src/gallery/bundle.ts).
      const { PeopleBundleReceiver } = await import('../gallery/receiver.js');
      const { loadPublicKeys } = await import('../update/keys.js');
      let people: InstanceType<typeof PeopleBundleReceiver> | undefined;
      await this.startPart({
        name: 'people bundles',
        optional: true,
        start: async () => {
          people = new PeopleBundleReceiver({
            mqtt,
            baseTopic: cfg.mqtt.baseTopic,
            kioskId: cfg.mqtt.kioskId,
            keys: await loadPublicKeys(cfg.updates.publicKeys),
            gallery: gallery.gallery,
            store: gallery.store,
            db: this.db,
            keepCrops: cfg.gallery.keepCrops,
          });
          await people.start();
        },
        stop: async () => {
          await people?.stop();
        },
      });
    }
    // A person removed at this kiosk: an unsigned notice for the operator, who signs the fleet
    // removal (and for any subscriber); queued by the removal, sent when the broker takes it.
    const { RemovalNotices } = await import('../gallery/removals.js');
    const notices = new RemovalNotices({ mqtt, kioskId: cfg.mqtt.kioskId, store: gallery.store });
    await this.startPart({
      name: 'removal notices',
      optional: true,
      start: () => notices.start(),
      stop: () => notices.stop(),
    });

    await this.sd.ready(`running: model ${host.currentVersion}, broker ${safeUrl(url)}`);
    const wd = this.sd.watchdogIntervalMs;
    this.sd.startWatchdog(() => worker.busyMs < (wd ?? 1000) * 2);
    this.log.info(
      { model: host.currentVersion, camera: cfg.camera.type, broker: safeUrl(url), http: this.http?.address },
      'facegate running',
    );
    process.stdout.write(
      startBanner({
        url,
        embedded: !cfg.mqtt.url,
        topicRoot: topics.root,
        health: this.http ? `${this.http.address}/healthz` : null,
        model: hasModel(initialModel.dir) ? host.currentVersion : null,
        camera: camera.state === 'ok' ? null : cameraHelp(camera.problem ?? 'no frame yet'),
        people: this.gallerySummary()?.people ?? 0,
      }),
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
      this.stopSkips?.();
      this.stopSkips = undefined;
      this.log.info('stopped');
    })();
    return this.stopping;
  }
}

/** What to configure when the camera does not deliver. */
export function cameraHelp(problem: string): string {
  return `camera missing: ${problem}. Configure camera.type (webcam, ffmpeg or directory) and its settings (camera.webcam.device, camera.ffmpeg.input, camera.directory.path) in a config file given to facegate run --config FILE; retrying with backoff meanwhile`;
}

/** The one screen printed when the daemon is up: where events go and how to enrol the first person. */
export function startBanner(o: {
  url: string;
  embedded: boolean;
  topicRoot: string;
  health: string | null;
  model: string | null;
  camera: string | null;
  people: number;
}): string {
  const u = new URL(o.url);
  const lines = [
    'facegate is running.',
    `  events:  mosquitto_sub -h ${u.hostname} -p ${u.port || 1883} -t '${o.topicRoot}/#' -v` +
      (o.embedded ? '   (embedded broker: no mqtt.url configured)' : ''),
    ...(o.health ? [`  health:  ${o.health}`] : []),
    `  model:   ${o.model ?? 'none trained: recognising enrolled people with the built-in face descriptor'}`,
    `  camera:  ${o.camera ?? 'delivering frames'}`,
    o.people === 0
      ? '  people:  nobody enrolled yet, everyone is "unknown". Enrol the first person:\n' +
        '             facegate enrol add NAME photo1.jpg photo2.jpg photo3.jpg\n' +
        '           or, in front of the kiosk camera: facegate enrol from-camera NAME   (docs/gallery.md)'
      : `  people:  ${o.people} enrolled (facegate enrol list)`,
  ];
  return `${lines.join('\n')}\n`;
}

/** The door as the kiosk screen shows it: an alarm first, then the contact, then the lock. */
function doorView(door: DoorService | undefined): DoorView | undefined {
  if (!door) return undefined;
  return {
    state: () => {
      const s = door.state();
      return { state: s.alarm ?? (s.contact === 'open' ? 'open' : s.lock), since: null };
    },
  };
}
