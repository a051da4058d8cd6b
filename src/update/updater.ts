/**
 * ModelUpdater: the kiosk side of remote model updates. Receives offers and chunks over
 * MQTT, reassembles the bundle in a temp file with per-chunk and whole-file hash checks,
 * hands it to the ModelStore (verify, self-test, atomic swap), asks the model host to
 * switch the running pipeline, keeps the probation timer, and publishes the outcome
 * retained on `<base>/<kiosk>/model`.
 *
 * Constructor only assigns; `recover()` runs before the pipeline loads (it decides which
 * model directory to load), `start()` subscribes, `stop()` undoes it.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { moduleLogger } from '../shared/logger.js';
import { checkPolicy, verifySignature } from './bundle.js';
import type { UpdatesConfig } from './config.js';
import { UpdateRejected } from './errors.js';
import { loadPublicKeys, type PublicKey } from './keys.js';
import { sha256Async } from '../model/dir/hash.js';
import { DeviceModelRunner, type ModelRunner } from './selftest.js';
import { ModelStore, type ActiveModel, type UpdateState } from './store.js';
import { UPDATE_TOPICS, fleetTopic, type ModelPrecisionPayload, type ModelStatePayload } from '../publish/topics.js';
import type { MessageHandler, MqttPort } from '../publish/mqtt.js';
import { decodeChunk, parseOffer, type Offer } from './transfer.js';
import { UpdateHistory } from './history.js';
import type { KioskDb } from '../state/db.js';

/** What the updater needs from the MQTT connection. */
export type UpdateMqttPort = Pick<MqttPort, 'publishRelative' | 'subscribe' | 'subscribeAbsolute'>;

/** What the updater needs from whoever runs recognition. */
export interface ModelSwitch {
  /**
   * Loads the model in `model.dir` and switches recognition to it; the old pipeline
   * keeps serving frames until the new one is ready. Throws (and keeps the old one)
   * when the model cannot be loaded, or (intent 'install') when the host refuses it, such as a
   * descriptor change the gallery cannot follow: the updater then rolls back with the reason.
   */
  activate(model: ActiveModel, intent?: 'install' | 'rollback'): Promise<void>;
  /** Which file of the running model runs, when the host knows (published on the model topic). */
  readonly precision?: ModelPrecisionPayload | undefined;
}

export interface ModelUpdaterOptions {
  readonly config: UpdatesConfig;
  readonly kioskId: string;
  readonly baseTopic: string;
  /** The configured model.dir, run while nothing is installed. */
  readonly fallbackDir: string;
  readonly mqtt: UpdateMqttPort;
  readonly host: ModelSwitch;
  /** The kiosk database: the history of bundles installed, rolled back and refused lives there. */
  readonly db: KioskDb;
  readonly runner?: ModelRunner;
  readonly log?: Logger;
  /** For HTTPS URL offers; the global fetch by default. */
  readonly fetch?: typeof fetch;
  /** Milliseconds since the epoch (tests pin it); Date.now by default. */
  readonly now?: () => number;
}

interface Transfer {
  readonly offer: Offer;
  readonly file: string;
  readonly fh: FileHandle;
  readonly received: Set<number>;
  timer: NodeJS.Timeout | undefined;
  /** Asks for the missing chunks when none has come for a while (see requestIntervalMs). */
  requestTimer: NodeJS.Timeout | undefined;
  /** The missing chunks listed in the state being published (null: not asking). */
  missing: readonly number[] | null;
}

/** Most chunk indexes one resend request lists; the next request lists the rest. */
export const MAX_MISSING_LISTED = 1000;

/**
 * How long a transfer waits without a new good chunk before it asks for the missing ones
 * (again at this interval until updates.transferTimeoutMs ends it): a quarter of the
 * timeout, at most 5 s.
 */
export function requestIntervalMs(transferTimeoutMs: number): number {
  return Math.min(5_000, Math.max(1, Math.floor(transferTimeoutMs / 4)));
}

/** An offer is a signed manifest and up to MAX_CHUNKS hashes: far below this. */
export const MAX_OFFER_BYTES = 8 * 1024 * 1024;
const CHUNK_HEADER_BYTES = 20;
/** The largest chunk an offer may announce (transfer.ts's chunkSize limit). */
const MAX_CHUNK_BYTES = 64 * 1024 * 1024;
/** Messages waiting for the serial update queue; beyond this a flood is dropped. */
export const MAX_QUEUED_MESSAGES = 2000;
/** Longest rejection reason kept, published and logged (an offer can name 20,000 unknown keys). */
export const MAX_REASON_CHARS = 300;
/**
 * Rejections recorded (state write, retained publish, log line): a burst of this many,
 * then one per REJECTION_REFILL_MS. Anyone on the broker can send garbage; beyond this it
 * is only counted, so a flood costs no disk writes.
 */
export const REJECTION_BURST = 20;
export const REJECTION_REFILL_MS = 3_000;

export class ModelUpdater {
  private readonly log: Logger;
  private store: ModelStore | undefined;
  private keys: PublicKey[] = [];
  private running: ActiveModel | undefined;
  private transfer: Transfer | undefined;
  private work: Promise<void> = Promise.resolve();
  private probationTimer: NodeJS.Timeout | undefined;
  private onProbation: string | undefined;
  private started = false;
  private lastState: UpdateState | undefined;
  private readonly completed = new Set<string>();
  /** The one download by URL in progress: it runs beside the serial queue, and stop() aborts it. */
  private download:
    { readonly version: string; readonly abort: AbortController; readonly done: Promise<void> } | undefined;
  private readonly history: UpdateHistory;

  constructor(private readonly o: ModelUpdaterOptions) {
    this.log = o.log ?? moduleLogger('update');
    this.history = new UpdateHistory(o.db);
  }

  /** Update messages dropped unread (retained, oversized, chunks of no transfer). */
  ignoredMessages = 0;
  private queued = 0;
  private queuedBytes = 0;
  /** Rejections not recorded because they came faster than the rate limit allows. */
  unrecordedRejections = 0;
  /** Writes of the update state caused by rejections (for the attack bench). */
  rejectionWrites = 0;
  private rejectionTokens = REJECTION_BURST;
  private rejectionRefilledAt: number | undefined;

  private ignored(): void {
    this.ignoredMessages++;
  }

  /** The version recognition runs now (for event payloads). */
  get runningVersion(): string | undefined {
    return this.running?.version;
  }

  /** The version installed by this process whose probation has not passed yet (undefined when none). */
  get probationVersion(): string | undefined {
    return this.onProbation;
  }

  /**
   * Call before loading the pipeline: cleans up after a crash, rolls back a swap whose
   * probation did not pass, verifies the model, and returns the one to load.
   */
  async recover(): Promise<ActiveModel> {
    this.keys = await loadPublicKeys(this.o.config.publicKeys);
    this.store = new ModelStore({
      dir: path.resolve(this.o.config.modelsDir),
      fallbackDir: path.resolve(this.o.fallbackDir),
      keys: this.keys,
      runner: this.o.runner ?? new DeviceModelRunner(),
      probationMinutes: this.o.config.probationMinutes,
      log: this.log,
    });
    this.history.open();
    const { active, state } = await this.store.recover();
    // A swap undone at start because the kiosk restarted during its probation: never again.
    const undone = /^rolled back: restarted during the probation of /.test(state.state ?? '');
    if (undone && state.offered) this.history.refuseVersion(state.offered, state.state ?? 'rolled back');
    this.running = active;
    this.lastState = state;
    this.log.info(
      { version: active.version, source: active.source, keys: this.keys.map((k) => k.id) },
      'model store ready',
    );
    return active;
  }

  async start(): Promise<void> {
    if (!this.store) await this.recover();
    this.started = true;
    // Retained offers and chunks are ignored: a message stored on the broker would replay
    // itself at every reconnect. Oversized payloads are dropped before they are parsed or queued.
    const onOffer: MessageHandler = (_t, payload, meta) => {
      if (!this.started) return;
      // An empty payload is also what the MQTT packet size guard leaves of an oversized message.
      if (meta.retained || payload.length === 0 || payload.length > MAX_OFFER_BYTES) return this.ignored();
      this.enqueueBounded(payload.length, () => this.handleOffer(payload));
    };
    const onChunk: MessageHandler = (_t, payload, meta) => {
      if (!this.started) return;
      const max = (this.transfer?.offer.chunkSize ?? MAX_CHUNK_BYTES) + CHUNK_HEADER_BYTES;
      if (meta.retained || payload.length > max) return this.ignored();
      this.enqueueBounded(payload.length, () => this.handleChunk(payload));
    };
    await this.o.mqtt.subscribe(UPDATE_TOPICS.offer, onOffer);
    await this.o.mqtt.subscribe(UPDATE_TOPICS.chunk, onChunk);
    await this.o.mqtt.subscribeAbsolute(fleetTopic(this.o.baseTopic, UPDATE_TOPICS.offer), onOffer);
    await this.o.mqtt.subscribeAbsolute(fleetTopic(this.o.baseTopic, UPDATE_TOPICS.chunk), onChunk);
    await this.publishState();
  }

  async stop(): Promise<void> {
    this.started = false;
    if (this.probationTimer) clearTimeout(this.probationTimer);
    this.probationTimer = undefined;
    this.onProbation = undefined;
    // A slow or silent server must not hold up the shutdown.
    const d = this.download;
    d?.abort.abort(new Error('the kiosk is stopping'));
    await d?.done;
    await this.work;
    await this.dropTransfer();
  }

  /** Resolves when every message received so far has been handled (tests, shutdown). */
  async idle(): Promise<void> {
    let w: Promise<void>;
    let d: Promise<void> | undefined;
    do {
      w = this.work;
      d = this.download?.done;
      await d;
      await w;
    } while (w !== this.work || d !== this.download?.done);
  }

  /** The host reports the new model misbehaving during probation: return to the previous one. */
  async reportFailure(reason: string): Promise<boolean> {
    let done = false;
    await this.enqueueAndWait(async () => {
      done = await this.rollback(reason);
    });
    return done;
  }

  /** Queues a received message unless the queue holds too much already (a flood is dropped, not buffered). */
  private enqueueBounded(bytes: number, fn: () => Promise<void>): void {
    if (this.queued >= MAX_QUEUED_MESSAGES || this.queuedBytes + bytes > this.o.config.maxBundleBytes + MAX_OFFER_BYTES)
      return this.ignored();
    this.queued++;
    this.queuedBytes += bytes;
    this.enqueue(async () => {
      this.queued--;
      this.queuedBytes -= bytes;
      await fn();
    });
  }

  /**
   * Each step first yields to the event loop: otherwise a burst of messages whose handling
   * needs no I/O (garbage offers, chunks of refused offers) runs back to back as one long
   * microtask chain, and recognition, on the same thread, waits for all of it.
   */
  private enqueue(fn: () => Promise<void>): void {
    this.work = this.work
      .then(yieldToLoop)
      .then(fn)
      .catch((err: unknown) => {
        this.log.error({ err: (err as Error).message }, 'update step failed');
      });
  }

  private async enqueueAndWait(fn: () => Promise<void>): Promise<void> {
    this.enqueue(fn);
    await this.idle();
  }

  private get s(): ModelStore {
    if (!this.store) throw new Error('ModelUpdater: recover() first');
    return this.store;
  }

  // ---------- offers and chunks ----------

  private async handleOffer(payload: Buffer): Promise<void> {
    if (!this.started) return;
    let offer: Offer | undefined;
    try {
      offer = parseOffer(payload);
      if (
        this.transfer?.offer.transferId === offer.transferId ||
        this.completed.has(offer.transferId) ||
        this.history.usedTransfer(offer.transferId)
      )
        return; // QoS 1 redelivery, or a replay of a transfer seen before
      if (this.transfer)
        throw new UpdateRejected(`busy: receiving ${this.transfer.offer.version}`, 'Offer again when it is done');
      const m = offer.manifest;
      // The signed manifest decides before any byte is transferred.
      verifySignature(m, offer.signatures, this.keys);
      checkPolicy(m, {
        kioskId: this.o.kioskId,
        runningVersion: this.running?.version ?? null,
        allowForced: this.o.config.allowForced,
      });
      // What this kiosk installed, rolled back and refused before (replays, forced bundles used).
      this.history.check(m, this.running?.version ?? null);
      if (offer.size > this.o.config.maxBundleBytes) {
        throw new UpdateRejected(
          `bundle of ${offer.size} bytes exceeds updates.maxBundleBytes (${this.o.config.maxBundleBytes})`,
        );
      }
      const signedBytes = Object.values(m.files).reduce((a, f) => a + f.bytes, 0);
      if (signedBytes > offer.size) throw new UpdateRejected('malformed offer: size smaller than the signed files');
      this.log.info(
        { version: m.version, size: offer.size, chunks: offer.chunks, url: offer.url !== null },
        'update offered',
      );
      if (offer.url !== null) this.checkUrl(offer.url);
      this.history.useTransfer(offer.transferId);
      if (offer.url !== null) {
        this.startDownload(offer);
        return;
      }
      await this.beginTransfer(offer);
    } catch (err) {
      await this.reject(offer?.version ?? null, err);
    }
  }

  private async beginTransfer(offer: Offer): Promise<void> {
    const dir = path.join(this.s.dir, 'transfers');
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, `${offer.transferId}-${randomBytes(4).toString('hex')}.part`);
    const fh = await open(file, 'wx', 0o600);
    this.transfer = { offer, file, fh, received: new Set(), timer: undefined, requestTimer: undefined, missing: null };
    this.armTimeout();
    await this.publishState();
  }

  private armTimeout(): void {
    const t = this.transfer;
    if (!t) return;
    if (t.timer) clearTimeout(t.timer);
    t.timer = setTimeout(() => {
      this.enqueue(async () => {
        if (this.transfer !== t) return;
        const reason = `truncated transfer: ${t.received.size} of ${t.offer.chunks ?? 0} chunks received, none for ${this.o.config.transferTimeoutMs} ms`;
        await this.dropTransfer();
        await this.reject(t.offer.version, new UpdateRejected(reason));
      });
    }, this.o.config.transferTimeoutMs);
    t.timer.unref();
    this.armRequest(t);
  }

  /**
   * A chunk the kiosk dropped (its queue was full during a flood, the broker dropped it, or
   * it failed its hash) is asked for again: when no good chunk has come for a while, the
   * retained model state lists the missing indexes and the publisher resends them.
   */
  private armRequest(t: Transfer): void {
    if (t.requestTimer) clearTimeout(t.requestTimer);
    t.requestTimer = setTimeout(() => {
      this.enqueue(async () => {
        if (this.transfer !== t) return;
        const missing: number[] = [];
        for (let i = 0; i < (t.offer.chunks ?? 0) && missing.length < MAX_MISSING_LISTED; i++)
          if (!t.received.has(i)) missing.push(i);
        if (missing.length === 0) return;
        this.log.info({ version: t.offer.version, missing: missing.length }, 'asking for missing chunks');
        t.missing = missing;
        await this.publishState();
        t.missing = null;
        this.armRequest(t);
      });
    }, requestIntervalMs(this.o.config.transferTimeoutMs));
    t.requestTimer.unref();
  }

  private async handleChunk(payload: Buffer): Promise<void> {
    const c = decodeChunk(payload);
    const t = this.transfer;
    if (!c || !t || c.transferId !== t.offer.transferId) return; // not ours, or an offer we refused
    const { chunks, chunkSize, chunkSha256 } = t.offer;
    if (chunks === null || chunkSize === null || chunkSha256 === null) return;
    if (c.index >= chunks || t.received.has(c.index)) return;
    const expectedLen = c.index === chunks - 1 ? t.offer.size - chunkSize * (chunks - 1) : chunkSize;
    if (c.data.length !== expectedLen || (await sha256Async(c.data)) !== chunkSha256[c.index]) {
      // Anyone on the broker can send a chunk with the visible transfer id: a bad one is
      // dropped (the good one may still come), never allowed to abort the transfer.
      this.ignored();
      this.log.debug({ index: c.index }, 'dropped a chunk that does not match its hash');
      return;
    }
    await t.fh.write(c.data, 0, c.data.length, c.index * chunkSize);
    t.received.add(c.index);
    this.armTimeout();
    if (t.received.size < chunks) return;
    await t.fh.sync();
    const bytes = await readFile(t.file);
    await this.dropTransfer();
    this.completed.add(t.offer.transferId);
    if (bytes.length !== t.offer.size || (await sha256Async(bytes)) !== t.offer.sha256) {
      await this.reject(
        t.offer.version,
        new UpdateRejected('corrupt transfer: the reassembled bundle does not match the offered sha256'),
      );
      return;
    }
    await this.install(t.offer, bytes);
  }

  /** Only URLs under a configured prefix are fetched; none by default. */
  private checkUrl(url: string): void {
    const allowed = this.o.config.allowedUrlPrefixes;
    if (allowed.length === 0)
      throw new UpdateRejected(
        'offers by URL are off',
        'List the HTTPS prefixes the kiosk may download from in updates.allowedUrlPrefixes',
      );
    if (!allowed.some((p) => url.startsWith(p)))
      throw new UpdateRejected(
        'offer URL is not under updates.allowedUrlPrefixes',
        'Offer the bundle from an allowed prefix, or add the prefix to updates.allowedUrlPrefixes',
      );
  }

  /**
   * Downloads beside the serial queue, so a slow server holds up neither other offers nor
   * the shutdown; the install itself is queued like any other. One download at a time.
   */
  private startDownload(offer: Offer): void {
    if (this.download)
      throw new UpdateRejected(`busy: downloading ${this.download.version}`, 'Offer again when it is done');
    const abort = new AbortController();
    const done = this.fetchBundle(offer, abort.signal).then(
      (bytes) => {
        if (!this.started) return;
        this.completed.add(offer.transferId);
        this.enqueue(() => this.install(offer, bytes));
      },
      (err: unknown) => {
        if (!this.started) return; // cancelled by stop()
        this.enqueue(() => this.reject(offer.version, err));
      },
    );
    const entry = { version: offer.version, abort, done };
    this.download = entry;
    void done.finally(() => {
      if (this.download === entry) this.download = undefined;
    });
  }

  private async fetchBundle(offer: Offer, stop: AbortSignal): Promise<Buffer> {
    const url = offer.url as string;
    const fetchImpl = this.o.fetch ?? fetch;
    let bytes: Buffer;
    try {
      const res = await fetchImpl(url, {
        signal: AbortSignal.any([stop, AbortSignal.timeout(this.o.config.downloadTimeoutMs)]),
        redirect: 'error',
      });
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      const parts: Buffer[] = [];
      let total = 0;
      for await (const part of res.body as AsyncIterable<Uint8Array>) {
        total += part.length;
        if (total > offer.size) throw new UpdateRejected(`download larger than the offered ${offer.size} bytes`);
        parts.push(Buffer.from(part));
      }
      bytes = Buffer.concat(parts);
    } catch (err) {
      if (err instanceof UpdateRejected) throw err;
      throw new UpdateRejected(`download failed: ${(err as Error).message}`, undefined, { cause: err });
    }
    // The length the server sent is not published: only that it differs from the offer.
    if (bytes.length !== offer.size)
      throw new UpdateRejected(`truncated download: fewer bytes than the offered ${offer.size}`);
    if ((await sha256Async(bytes)) !== offer.sha256)
      throw new UpdateRejected('corrupt download: sha256 differs from the offer');
    return bytes;
  }

  private async dropTransfer(): Promise<void> {
    const t = this.transfer;
    if (!t) return;
    this.transfer = undefined;
    if (t.timer) clearTimeout(t.timer);
    if (t.requestTimer) clearTimeout(t.requestTimer);
    await t.fh.close().catch(() => undefined);
    await rm(t.file, { force: true });
  }

  // ---------- install, probation, rollback ----------

  private async install(offer: Offer, bytes: Buffer): Promise<void> {
    let result: Awaited<ReturnType<ModelStore['install']>>;
    try {
      this.history.check(offer.manifest, this.running?.version ?? null);
      this.history.attempt(offer.manifest);
      result = await this.s.install(bytes, {
        kioskId: this.o.kioskId,
        runningVersion: this.running?.version ?? null,
        allowForced: this.o.config.allowForced,
      });
      // The signed bytes must be the ones offered (a mix of offers must not slip through).
      if (result.manifest.version !== offer.manifest.version) throw new UpdateRejected('bundle differs from the offer');
    } catch (err) {
      // A signed bundle whose model fails its self-test fails it every time: never again.
      if (err instanceof UpdateRejected && err.reason.startsWith('model failed its self-test'))
        this.history.refuse(offer.manifest, `rejected (${err.reason})`);
      await this.reject(offer.version, err);
      return;
    }
    this.history.installed(result.manifest);
    try {
      await this.o.host.activate(result.installed, 'install');
    } catch (err) {
      this.log.error(
        { version: result.installed.version, err: (err as Error).message },
        'new model failed to start; rolling back',
      );
      await this.rollback(`model failed to start: ${(err as Error).message}`, false);
      return;
    }
    this.running = result.installed;
    this.lastState = await this.s.readState();
    this.log.info(
      { version: result.installed.version, previous: result.previous.version },
      'model installed; probation started',
    );
    this.armProbation(result.installed.version);
    await this.publishState();
  }

  private armProbation(version: string): void {
    if (this.probationTimer) clearTimeout(this.probationTimer);
    this.onProbation = version;
    this.probationTimer = setTimeout(() => {
      this.enqueue(async () => {
        if (this.onProbation === version) this.onProbation = undefined;
        if (await this.s.passProbation(version)) {
          this.log.info({ version }, 'probation passed');
          this.lastState = await this.s.readState();
          await this.publishState();
        }
      });
    }, this.o.config.probationMinutes * 60_000);
    this.probationTimer.unref();
  }

  private async rollback(reason: string, reactivate = true): Promise<boolean> {
    if (this.probationTimer) clearTimeout(this.probationTimer);
    this.probationTimer = undefined;
    this.onProbation = undefined;
    const r = await this.s.rollback(reason);
    if (!r) return false;
    if (r.state.offered) this.history.refuseVersion(r.state.offered, `rolled back (${reason})`);
    if (reactivate) {
      try {
        await this.o.host.activate(r.active, 'rollback');
      } catch (err) {
        this.log.fatal(
          { err: (err as Error).message, version: r.active.version },
          'previous model does not start either',
        );
      }
    }
    this.running = r.active;
    this.lastState = r.state;
    this.log.warn({ version: r.active.version, reason }, 'rolled back');
    await this.publishState();
    return true;
  }

  private async reject(version: string | null, err: unknown): Promise<void> {
    const raw = err instanceof UpdateRejected ? err.reason : `internal error: ${(err as Error).message}`;
    const reason = cap(raw, MAX_REASON_CHARS);
    const v = version === null ? null : cap(version, 64);
    if (!this.takeRejectionToken()) {
      this.unrecordedRejections++;
      this.log.debug({ version: v, reason }, 'update rejected (not recorded: too many rejections)');
      return;
    }
    this.log.warn({ version: v, reason, unrecorded: this.unrecordedRejections }, 'update rejected');
    this.rejectionWrites++;
    this.lastState = await this.s.recordRejected(v, reason);
    await this.publishState();
  }

  /** Token bucket: REJECTION_BURST at once, refilled one per REJECTION_REFILL_MS. */
  private takeRejectionToken(): boolean {
    const now = (this.o.now ?? Date.now)();
    const last = this.rejectionRefilledAt ?? now;
    const refill = Math.floor((now - last) / REJECTION_REFILL_MS);
    if (refill > 0 || this.rejectionRefilledAt === undefined) {
      this.rejectionTokens = Math.min(REJECTION_BURST, this.rejectionTokens + refill);
      this.rejectionRefilledAt = last + refill * REJECTION_REFILL_MS;
    }
    if (this.rejectionTokens <= 0) return false;
    this.rejectionTokens--;
    return true;
  }

  /** The payload of the retained `<base>/<kiosk>/model` topic. */
  modelState(): ModelStatePayload {
    const s = this.lastState;
    const t = this.transfer;
    return {
      kiosk: this.o.kioskId,
      version: this.running?.version ?? 'unknown',
      previous: s?.previous ?? null,
      state: s?.state ?? null,
      offered: s?.offered ?? null,
      at: s?.at ?? null,
      probationUntil: s?.probationUntil ?? null,
      transfer: t
        ? {
            version: t.offer.version,
            transferId: t.offer.transferId,
            received: t.received.size,
            chunks: t.offer.chunks ?? 0,
            missing: t.missing,
          }
        : null,
      precision: this.o.host.precision ?? null,
    };
  }

  private async publishState(): Promise<void> {
    try {
      await this.o.mqtt.publishRelative(UPDATE_TOPICS.model, JSON.stringify(this.modelState()), {
        qos: 1,
        retain: true,
      });
    } catch (err) {
      // The broker may be away; the retained state is published again on the next change.
      this.log.warn({ err: (err as Error).message }, 'cannot publish model state');
    }
  }
}

function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function cap(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
