/**
 * The camera part of the daemon: opens the configured source, turns its images into
 * `Frame`s in the bounded queue, and reopens a source that fails, disappears or stalls,
 * with exponential backoff, without a restart of the daemon.
 */
import type { Logger } from 'pino';
import type { CameraConfig } from '../config/schema.js';
import type { Frame } from '../shared/messages.js';
import { moduleLogger } from '../shared/logger.js';
import { CameraError, type CameraSource, type FrameSink } from './source.js';
import { DirectorySource } from './directory.js';
import { FfmpegSource } from './ffmpeg.js';
import { WebcamSource } from './webcam.js';
import type { FrameQueue } from './queue.js';

export type CameraState = 'starting' | 'ok' | 'failed' | 'ended';

/** Builds the source for `camera.type`. */
export function createSource(cfg: CameraConfig): CameraSource {
  switch (cfg.type) {
    case 'directory':
      return new DirectorySource(cfg.directory.path, cfg.fps, cfg.directory.loop);
    case 'ffmpeg':
      return new FfmpegSource({ ...cfg.ffmpeg, fps: cfg.fps, width: cfg.width, height: cfg.height });
    case 'webcam':
      return new WebcamSource({ ...cfg.webcam, fps: cfg.fps, width: cfg.width, height: cfg.height });
  }
}

/** Delay before reopen attempt `attempt` (1-based): initial × factor^(attempt-1), capped. */
export function backoffDelay(
  attempt: number,
  r: { initialDelayMs: number; maxDelayMs: number; factor: number },
): number {
  return Math.min(r.maxDelayMs, r.initialDelayMs * r.factor ** Math.max(0, attempt - 1));
}

export interface CameraHooks {
  /** Each frame the source delivers (before it is queued). */
  onFrame?: () => void;
  onState?: (state: CameraState) => void;
  onReopen?: (attempt: number, reason: string) => void;
  onEnd?: () => void;
}

export interface CameraOptions {
  name: string;
  reopen: CameraConfig['reopen'];
  /** How long start() waits for the first frame. */
  startTimeoutMs: number;
}

export class Camera {
  private source: CameraSource | undefined;
  private readonly log: Logger = moduleLogger('camera');
  private nextId = 1;
  private stopped = false;
  private attempt = 0;
  private reopenTimer: NodeJS.Timeout | undefined;
  private stallTimer: NodeJS.Timeout | undefined;
  private lastFrameAt = 0;
  private generation = 0;
  private _state: CameraState = 'starting';
  /** Frames delivered by the source. */
  framesIn = 0;

  constructor(
    private readonly factory: () => CameraSource,
    private readonly queue: FrameQueue,
    private readonly opts: CameraOptions,
    private readonly hooks: CameraHooks = {},
  ) {}

  get state(): CameraState {
    return this._state;
  }

  private setState(s: CameraState): void {
    if (s === this._state) return;
    this._state = s;
    this.hooks.onState?.(s);
  }

  /** Opens the source and waits for its first frame; throws a CameraError a user can act on. */
  async start(): Promise<void> {
    this.stopped = false;
    const source = this.factory();
    let firstFrame: () => void = () => undefined;
    let failed: (err: Error) => void = () => undefined;
    const first = new Promise<void>((resolve, reject) => {
      firstFrame = resolve;
      failed = reject;
    });
    const timer = setTimeout(
      () => failed(new CameraError(`no frame within ${this.opts.startTimeoutMs} ms`)),
      this.opts.startTimeoutMs,
    );
    try {
      await this.open(source, { onFirstFrame: () => firstFrame(), onEarlyError: (err) => failed(err) });
      await first;
    } catch (err) {
      await source.close().catch(() => undefined);
      this.source = undefined;
      this.setState('failed');
      throw new CameraError(
        `camera "${this.opts.name}" (${source.description}) failed at start: ${(err as Error).message}`,
      );
    } finally {
      clearTimeout(timer);
    }
    this.armStallCheck();
  }

  private async open(
    source: CameraSource,
    early?: { onFirstFrame: () => void; onEarlyError: (err: Error) => void },
  ): Promise<void> {
    const gen = ++this.generation;
    this.source = source;
    let gotFrame = false;
    const sink: FrameSink = {
      frame: (image) => {
        if (gen !== this.generation || this.stopped) return;
        this.lastFrameAt = Date.now();
        this.framesIn++;
        this.hooks.onFrame?.();
        const frame: Frame = { id: this.nextId++, timestamp: this.lastFrameAt, source: this.opts.name, image };
        this.queue.push(frame);
        if (!gotFrame) {
          gotFrame = true;
          if (this.attempt > 0)
            this.log.info({ camera: this.opts.name, attempts: this.attempt }, 'camera delivers frames again');
          this.attempt = 0;
          this.setState('ok');
          early?.onFirstFrame();
        }
      },
      error: (err) => {
        if (gen !== this.generation || this.stopped) return;
        if (early && !gotFrame) {
          early.onEarlyError(err);
          return;
        }
        this.fail(err.message);
      },
      end: () => {
        if (gen !== this.generation || this.stopped) return;
        if (early && !gotFrame) {
          early.onEarlyError(new CameraError('the source ended before its first frame'));
          return;
        }
        this.log.info({ camera: this.opts.name }, 'camera source ended (no more images)');
        this.setState('ended');
        this.clearStallCheck();
        this.queue.close();
        this.hooks.onEnd?.();
      },
    };
    this.lastFrameAt = Date.now();
    await source.open(sink);
  }

  /** The source failed while running: close it and reopen with backoff. */
  private fail(reason: string): void {
    if (this.stopped || this.reopenTimer) return;
    this.lastProblem = reason;
    this.generation++; // ignore anything the failed source still sends
    this.setState('failed');
    this.attempt++;
    const delay = backoffDelay(this.attempt, this.opts.reopen);
    this.log.warn(
      { camera: this.opts.name, reason, attempt: this.attempt, delayMs: delay },
      'camera failed; reopening',
    );
    this.hooks.onReopen?.(this.attempt, reason);
    const old = this.source;
    this.source = undefined;
    void old?.close().catch(() => undefined);
    this.reopenTimer = setTimeout(() => {
      this.reopenTimer = undefined;
      if (this.stopped) return;
      const source = this.factory();
      this.open(source).catch((err: Error) => this.fail(err.message));
    }, delay);
  }

  private armStallCheck(): void {
    const limit = this.opts.reopen.stallTimeoutMs;
    if (limit <= 0) return;
    this.stallTimer = setInterval(
      () => {
        const watching =
          this._state === 'ok' || (this._state === 'failed' && this.source !== undefined && !this.reopenTimer);
        if (watching && Date.now() - this.lastFrameAt > limit) this.fail(`no frame for ${limit} ms`);
      },
      Math.max(50, Math.min(1000, limit / 4)),
    );
  }

  /** Why the camera is not delivering (the last failure), for health and state; null while it delivers. */
  get problem(): string | null {
    return this._state === 'ok' ? null : this.lastProblem;
  }
  private lastProblem: string | null = null;

  /**
   * Starts like start(), but a camera that is missing or fails at start does not stop the
   * caller: it is retried with the reopen backoff until it delivers (the daemon stays up and
   * says what is wrong). Resolves once the first attempt has either delivered or failed.
   */
  async startOrRetry(): Promise<void> {
    try {
      await this.start();
    } catch (err) {
      this.lastProblem = (err as Error).message;
      this.fail(this.lastProblem);
      this.armStallCheck();
    }
  }

  private clearStallCheck(): void {
    if (this.stallTimer) clearInterval(this.stallTimer);
    this.stallTimer = undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.clearStallCheck();
    if (this.reopenTimer) clearTimeout(this.reopenTimer);
    this.reopenTimer = undefined;
    const s = this.source;
    this.source = undefined;
    await s?.close();
    this.queue.close();
  }
}
