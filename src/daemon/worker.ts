/**
 * The recognition stage of the daemon: takes frames from the bounded queue, runs the
 * model (detect → recognise), feeds the decider, and hands decisions on. A frame that
 * fails is counted and skipped; each kind of failure is logged once.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Decision, Frame, Match } from '../shared/messages.js';
import { ModelError } from '../shared/errors.js';
import { MANIFEST_FILE } from '../model/manifest.js';
import { moduleLogger } from '../shared/logger.js';
import type { FrameQueue } from '../capture/queue.js';
import type { RecogniseOutcome } from './probation.js';
import type { ModelPrecisionPayload } from '../publish/topics.js';

/** What the daemon needs from a recognition model (RecognitionPipeline fits; tests use fakes). */
export interface FramePipeline {
  readonly modelVersion: string;
  /** Which model file runs and what `auto` measured (RecognitionPipeline has it; fakes may not). */
  readonly precision?: ModelPrecisionPayload;
  process(frame: Frame): Promise<readonly Match[]>;
  close(): Promise<void>;
}

/**
 * Why a model is loaded: at start, a model update's install, or the return to the previous
 * model. An install may be refused by the loader (it throws with the reason; the updater
 * rolls back); a start or a rollback loads what it can.
 */
export type LoadIntent = 'start' | 'install' | 'rollback';

export type PipelineLoader = (modelDir: string, intent?: LoadIntent) => Promise<FramePipeline>;

/** What the daemon needs from the decider (src/decide/decider.ts fits). */
export interface DecisionMaker {
  update(frameId: number, timestamp: number, matches: readonly Match[]): Decision[];
}

/** Whether a directory holds a trained model (its manifest). */
export function hasModel(dir: string): boolean {
  return existsSync(path.join(dir, MANIFEST_FILE));
}

/** Throws the one message a user needs when model.dir holds no model. */
export function assertModelDir(dir: string): void {
  if (existsSync(path.join(dir, MANIFEST_FILE))) return;
  throw new ModelError(
    `no model at ${path.resolve(dir)} (model.dir). Train one: facegate train --data DIR --out ${dir} ` +
      `(it writes model.onnx and model.int8.onnx), or set model.dir (FACEGATE__MODEL__DIR) to an existing model directory`,
  );
}

/**
 * Holds the running model and swaps it while the daemon runs (model updates): the new
 * model is loaded first, the old one keeps serving until then and is closed after its
 * last frame.
 */
export class ModelHost {
  private current: FramePipeline | undefined;
  private inflight: Promise<unknown> = Promise.resolve();
  private readonly log: Logger = moduleLogger('model');
  private readonly listeners: ((version: string) => void)[] = [];

  constructor(private readonly loader: PipelineLoader) {}

  get loaded(): boolean {
    return this.current !== undefined;
  }
  get currentVersion(): string {
    return this.current?.modelVersion ?? 'none';
  }
  get precision(): ModelPrecisionPayload | undefined {
    return this.current?.precision;
  }

  onChange(listener: (version: string) => void): void {
    this.listeners.push(listener);
  }

  /** Loads the model of `model.dir` (or what the updater chose) and makes it current. */
  async activate(model: { readonly dir: string }, intent: LoadIntent = 'start'): Promise<void> {
    const next = await this.loader(model.dir, intent);
    const old = this.current;
    this.current = next;
    if (old) {
      await this.inflight.catch(() => undefined);
      await old.close().catch((err: Error) => this.log.warn({ err: err.message }, 'closing the previous model failed'));
      this.log.info({ from: old.modelVersion, to: next.modelVersion }, 'model switched');
    }
    for (const l of this.listeners) l(next.modelVersion);
  }

  /** Runs the current model on a frame; returns the matches and the model version that made them. */
  async process(frame: Frame): Promise<{ matches: readonly Match[]; modelVersion: string }> {
    const rec = this.current;
    if (!rec) throw new ModelError('no model loaded');
    const p = rec.process(frame);
    this.inflight = p;
    return { matches: await p, modelVersion: rec.modelVersion };
  }

  async stop(): Promise<void> {
    const rec = this.current;
    this.current = undefined;
    await this.inflight.catch(() => undefined);
    await rec?.close();
  }
}

export interface WorkerHooks {
  onDecision(decision: Decision, modelVersion: string): void;
  onFrame?(
    frame: Frame,
    matches: readonly Match[],
    timings: { queueMs: number; recogniseMs: number; decideMs: number },
  ): void;
  onError?(stage: 'recognise' | 'decide', err: Error): void;
  /** After the recognition step of every frame, whether it succeeded or threw (probation watch). */
  onRecognise?(outcome: RecogniseOutcome): void;
}

export class RecognitionWorker {
  private loop: Promise<void> = Promise.resolve();
  private busySince: number | undefined;
  private readonly warned = new Set<string>();
  private readonly log: Logger = moduleLogger('recognition');
  processed = 0;

  constructor(
    private readonly queue: FrameQueue,
    private readonly host: ModelHost,
    private readonly decider: DecisionMaker,
    private readonly hooks: WorkerHooks,
  ) {}

  /** How long the frame in progress has been processing (0 when idle): the watchdog's measure. */
  get busyMs(): number {
    return this.busySince === undefined ? 0 : Date.now() - this.busySince;
  }

  start(): Promise<void> {
    this.loop = this.run();
    return Promise.resolve();
  }

  private async run(): Promise<void> {
    for (let frame = await this.queue.take(); frame; frame = await this.queue.take()) {
      const t0 = Date.now();
      this.busySince = t0;
      let matches: readonly Match[] = [];
      let version = this.host.currentVersion;
      let error: Error | null = null;
      try {
        const r = await this.host.process(frame);
        matches = r.matches;
        version = r.modelVersion;
      } catch (err) {
        error = err as Error;
        this.failed('recognise', error);
      }
      this.hooks.onRecognise?.({ modelVersion: version, matches, error });
      const t1 = Date.now();
      let decisions: Decision[] = [];
      try {
        decisions = this.decider.update(frame.id, frame.timestamp, matches);
      } catch (err) {
        this.failed('decide', err as Error);
      }
      const t2 = Date.now();
      this.busySince = undefined;
      this.processed++;
      this.hooks.onFrame?.(frame, matches, { queueMs: t0 - frame.timestamp, recogniseMs: t1 - t0, decideMs: t2 - t1 });
      for (const d of decisions) {
        try {
          this.hooks.onDecision(d, version);
        } catch (err) {
          // Writing the outbox failed (disk full?): nothing else can keep this event.
          this.log.error({ err: (err as Error).message, kind: d.kind }, 'could not record a decision');
        }
      }
    }
  }

  private failed(stage: 'recognise' | 'decide', err: Error): void {
    this.hooks.onError?.(stage, err);
    const kind = `${stage}:${err.name}:${err.message.slice(0, 80)}`;
    if (this.warned.has(kind)) {
      this.log.debug({ stage, err: err.message }, 'frame failed');
      return;
    }
    this.warned.add(kind);
    this.log.error(
      { stage, err: err.message },
      'frame failed; skipping it (logged once per kind, counted in facegate_frame_errors_total)',
    );
  }

  /** Finishes the frames already queued, then resolves (the camera, stopped first, sends no more). */
  async stop(): Promise<void> {
    this.queue.close();
    await this.loop;
  }
}
