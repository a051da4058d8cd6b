/**
 * Recognise: the model directory's int8 model describes face crops; each description is
 * matched against the per-person references of the manifest's `recognition` section.
 */
import { access } from 'node:fs/promises';
import path from 'node:path';
import { OnnxModel, type TensorSpec } from '../runtime/ort.js';
import { ModelError } from '../shared/errors.js';
import { rgbBatch, type RgbImage } from '../shared/image.js';
import type { Face, Match } from '../shared/messages.js';
import {
  INT8_MIN_AGREEMENT,
  MODEL_FP32_FILE,
  MODEL_INT8_FILE,
  int8Check,
  readManifest,
  type Int8Check,
  type Manifest,
  type Precision,
  type PrecisionChoice,
  type RecognitionSection,
} from '../model/manifest.js';
import { moduleLogger } from '../shared/logger.js';
import { centre, nearestReference } from './similarity.js';

/** Name of the pooled backbone descriptor output (the model directory contract). */
export const FEATURES_OUTPUT = 'features';

const log = moduleLogger('recognise');

export type { Precision, PrecisionChoice } from '../model/manifest.js';

export interface RecogniserOptions {
  readonly modelDir: string;
  readonly threads?: number;
  /**
   * auto (default): among the files that pass the accuracy gate (choosePrecision), the one
   * that runs faster here (timePrecisions); int8 / fp32: that file.
   */
  readonly precision?: PrecisionChoice;
  /** How `auto` times a model file (tests inject one); onnxruntime runs on a blank batch by default. */
  readonly timer?: ModelTimer;
}

/**
 * Times one model file: median milliseconds a run at batch 1. The default loads it with
 * onnxruntime, runs it `warmup` + `runs` times on a blank crop (stopping early past
 * `budgetMs`) and releases it.
 */
export type ModelTimer = (file: string, o: { readonly threads?: number; readonly runs: number }) => Promise<number>;

/** How `auto` timed the two files: a few runs each, within a time budget, so that loading stays bounded. */
export const PRECISION_TIMING = { warmup: 2, runs: 7, budgetMs: 3000 } as const;

/** Which file runs, why, and (for `auto` with both files eligible) what each cost here. */
export interface PrecisionReport {
  readonly asked: PrecisionChoice;
  readonly running: Precision;
  /** Why not the other file (null when asked for by name). */
  readonly reason: string | null;
  /** Median ms a run at batch 1, measured at load; null when not timed. */
  readonly int8Ms: number | null;
  readonly fp32Ms: number | null;
}

/**
 * Pure: the faster of two files that both passed the accuracy gate. A tie goes to int8
 * (smaller, and the file the accuracy gate was set for).
 */
export function fasterPrecision(t: { readonly int8Ms: number; readonly fp32Ms: number }): Precision {
  return t.fp32Ms < t.int8Ms ? 'fp32' : 'int8';
}

/**
 * `auto` by speed: the accuracy gate first (choosePrecision); when both files pass it,
 * time both with `timer` and run the faster. Files that failed the gate are never timed.
 */
export async function timePrecisions(
  manifest: Manifest,
  modelDir: string,
  asked: PrecisionChoice,
  timer: ModelTimer,
  threads?: number,
): Promise<PrecisionReport> {
  const gate = choosePrecision(manifest, asked);
  const untimed = { asked, running: gate.precision, reason: gate.reason ?? null, int8Ms: null, fp32Ms: null };
  if (asked !== 'auto' || gate.precision !== 'int8') return untimed;
  const runs = PRECISION_TIMING.runs;
  const int8Ms = await timer(path.join(modelDir, MODEL_INT8_FILE), { threads, runs });
  const fp32Ms = await timer(path.join(modelDir, MODEL_FP32_FILE), { threads, runs });
  const running = fasterPrecision({ int8Ms, fp32Ms });
  const other = running === 'int8' ? 'fp32' : 'int8';
  const reason = `${running} ran faster here (${running === 'int8' ? int8Ms.toFixed(2) : fp32Ms.toFixed(2)} ms against ${other} ${other === 'int8' ? int8Ms.toFixed(2) : fp32Ms.toFixed(2)} ms a face)`;
  return { asked, running, reason, int8Ms, fp32Ms };
}

/** The default ModelTimer: onnxruntime on an all-grey crop of the model's input size. */
export function onnxTimer(input: { name: string; height: number; width: number }): ModelTimer {
  return async (file, o) => {
    const model = await OnnxModel.load(file, { threads: o.threads });
    try {
      const feed = {
        [input.name]: {
          data: new Uint8Array(input.height * input.width * 3).fill(128),
          dims: [1, input.height, input.width, 3],
        },
      };
      for (let i = 0; i < PRECISION_TIMING.warmup; i++) await model.run(feed);
      const times: number[] = [];
      const start = performance.now();
      while (times.length < o.runs && (times.length === 0 || performance.now() - start < PRECISION_TIMING.budgetMs)) {
        const t0 = performance.now();
        await model.run(feed);
        times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      return times[Math.floor(times.length / 2)] ?? Infinity;
    } finally {
      await model.release();
    }
  };
}

/**
 * The accuracy gate of `precision: auto`: why model.int8.onnx must not run, or undefined
 * when its recorded check passed: top-1 agreement with fp32 and, when recorded, the share
 * of images the stranger refusal (on `features`) decides as with fp32, each at least
 * INT8_MIN_AGREEMENT.
 */
export function int8AccuracyGate(check: Int8Check | undefined): string | undefined {
  const top1 = check?.top1Agreement;
  const decisions = check?.features?.decisionAgreement;
  if (top1 === undefined && decisions === undefined)
    return `the manifest records no check of ${MODEL_INT8_FILE} against fp32 (quantise again with facegate quantize)`;
  if (top1 !== undefined && top1 < INT8_MIN_AGREEMENT)
    return `${MODEL_INT8_FILE} agreed with fp32 on only ${(top1 * 100).toFixed(2)} % of its check images (< ${INT8_MIN_AGREEMENT * 100} %)`;
  if (decisions !== undefined && decisions < INT8_MIN_AGREEMENT)
    return `${MODEL_INT8_FILE} refused or named strangers as fp32 does on only ${(decisions * 100).toFixed(2)} % of its check images (< ${INT8_MIN_AGREEMENT * 100} %)`;
  return undefined;
}

/**
 * Which model file runs. int8 and fp32 are taken as asked. `auto` runs the int8 model
 * only when the directory has one and its recorded check passes the accuracy gate;
 * otherwise fp32, with the reason (for the log).
 */
export function choosePrecision(manifest: Manifest, asked: PrecisionChoice): { precision: Precision; reason?: string } {
  if (asked !== 'auto') return { precision: asked };
  if (!manifest.files[MODEL_INT8_FILE]) return { precision: 'fp32', reason: `the model has no ${MODEL_INT8_FILE}` };
  const reason = int8AccuracyGate(int8Check(manifest));
  return reason === undefined ? { precision: 'int8' } : { precision: 'fp32', reason };
}

/** The manifest's refusal settings, or an error saying how to get them. */
export function requireRecognition(manifest: Manifest, modelDir: string): RecognitionSection {
  if (!manifest.recognition) {
    throw new ModelError(
      `model ${modelDir} (version ${manifest.version}) has no recognition section (references and thresholds for refusing strangers). Train it again with facegate train, which calibrates them.`,
    );
  }
  const missing = manifest.classes.filter((c) => !manifest.recognition?.references[c]);
  if (missing.length)
    throw new ModelError(`model ${modelDir}: recognition references missing for ${missing.join(', ')}; train again.`);
  return manifest.recognition;
}

/** What the model says about one crop. */
export interface Description {
  readonly probabilities: Float32Array;
  /** The output the references were built from (`recognition.source`). */
  readonly vector: Float32Array;
}

export class Recogniser {
  private readonly references: ReadonlyMap<string, Float32Array>;
  private readonly mean: Float32Array | null;

  private constructor(
    private readonly model: OnnxModel,
    readonly manifest: Manifest,
    readonly recognition: RecognitionSection,
    /** Which file runs and why, with the load-time timings of `auto`. */
    readonly precisionReport: PrecisionReport,
    private readonly outputNames: { probabilities: string; vector: string },
  ) {
    this.references = new Map(Object.entries(recognition.references).map(([k, v]) => [k, Float32Array.from(v)]));
    this.mean = recognition.mean ? Float32Array.from(recognition.mean) : null;
  }

  static async load(opts: RecogniserOptions): Promise<Recogniser> {
    const manifest = readManifest(opts.modelDir);
    const recognition = requireRecognition(manifest, opts.modelDir);
    const asked = opts.precision ?? 'auto';
    const gateFailed = asked === 'auto' && choosePrecision(manifest, asked).precision === 'fp32';
    const report = await timePrecisions(
      manifest,
      opts.modelDir,
      asked,
      opts.timer ?? onnxTimer(manifest.input),
      opts.threads,
    );
    const { running: precision } = report;
    const logged = { model: opts.modelDir, version: manifest.version, int8Ms: report.int8Ms, fp32Ms: report.fp32Ms };
    if (gateFailed) log.warn(logged, `running the fp32 model: ${report.reason ?? ''}`);
    else if (report.reason) log.info(logged, `running the ${precision} model: ${report.reason}`);
    const file = path.join(opts.modelDir, precision === 'int8' ? MODEL_INT8_FILE : MODEL_FP32_FILE);
    try {
      await access(file);
    } catch {
      throw new ModelError(
        `model ${opts.modelDir} has no ${path.basename(file)}` +
          (precision === 'int8'
            ? ': quantise it (facegate quantize --model DIR) or use the fp32 model (--precision fp32).'
            : '.'),
      );
    }
    const model = await OnnxModel.load(file, { threads: opts.threads });
    const vectorName = recognition.source === 'features' ? FEATURES_OUTPUT : manifest.outputs.embedding;
    const vectorSize =
      recognition.source === 'features' ? manifest.backbone.featureSize : manifest.outputs.embeddingSize;
    const { input } = manifest;
    const inputs: TensorSpec[] = [{ name: input.name, dtype: 'uint8', shape: [null, input.height, input.width, 3] }];
    const outputs: TensorSpec[] = [
      { name: manifest.outputs.probabilities, dtype: 'float32', shape: [null, manifest.classes.length] },
      { name: vectorName, dtype: 'float32', shape: [null, vectorSize] },
    ];
    try {
      model.assertSignature({ inputs, outputs });
    } catch (err) {
      await model.release();
      throw err;
    }
    return new Recogniser(model, manifest, recognition, report, {
      probabilities: manifest.outputs.probabilities,
      vector: vectorName,
    });
  }

  get precision(): Precision {
    return this.precisionReport.running;
  }

  get inputSize(): { width: number; height: number } {
    return { width: this.manifest.input.width, height: this.manifest.input.height };
  }

  /** Runs the model on crops already at the input size (one batch). */
  async describe(crops: readonly RgbImage[]): Promise<Description[]> {
    if (crops.length === 0) return [];
    const { width: W, height: H } = this.inputSize;
    const out = await this.model.run({ [this.manifest.input.name]: rgbBatch(crops, W, H, 'model') }, [
      this.outputNames.probabilities,
      this.outputNames.vector,
    ]);
    const probs = out[this.outputNames.probabilities];
    const vecs = out[this.outputNames.vector];
    if (!probs || !vecs)
      throw new ModelError(
        `model ${this.model.source} did not return ${this.outputNames.probabilities} and ${this.outputNames.vector}`,
      );
    const nc = this.manifest.classes.length;
    const nv = vecs.data.length / crops.length;
    // Views into the output tensors (no copies): each run returns fresh buffers.
    return crops.map((_, i) => ({
      probabilities: (probs.data as Float32Array).subarray(i * nc, (i + 1) * nc),
      vector: (vecs.data as Float32Array).subarray(i * nv, (i + 1) * nv),
    }));
  }

  /** Scores one description; `label` is null unless similarity and margin both pass. */
  match(face: Face, d: Description): Match {
    return matchDescription(face, d, this.manifest.classes, this.references, this.mean, this.recognition);
  }

  async close(): Promise<void> {
    await this.model.release();
  }
}

/**
 * Pure matching rule: nearest reference by cosine (mean subtracted); the softmax probability
 * of that person and its margin over the best other class. Named only when
 * similarity ≥ threshold and margin ≥ minMargin (a head that disagrees with the references
 * gives a negative margin, so it refuses).
 */
export function matchDescription(
  face: Face,
  d: Description,
  classes: readonly string[],
  references: ReadonlyMap<string, Float32Array>,
  mean: Float32Array | null,
  settings: { readonly threshold: number; readonly minMargin: number },
): Match {
  return { face, ...scoreDescription(d, classes, references, mean, settings) };
}

/** matchDescription without the face: the decision and the figures it was taken on. */
export function scoreDescription(
  d: Description,
  classes: readonly string[],
  references: ReadonlyMap<string, Float32Array>,
  mean: Float32Array | null,
  settings: { readonly threshold: number; readonly minMargin: number },
): Omit<Match, 'face'> {
  const n = nearestReference(centre(d.vector, mean), references);
  const idx = classes.indexOf(n.label);
  const probability = idx >= 0 ? (d.probabilities[idx] ?? 0) : 0;
  let other = 0;
  d.probabilities.forEach((p, i) => {
    if (i !== idx && p > other) other = p;
  });
  const margin = probability - other;
  const accepted = n.similarity >= settings.threshold && margin >= settings.minMargin;
  return { label: accepted ? n.label : null, candidate: n.label, similarity: n.similarity, probability, margin };
}

/**
 * The kiosk's decision on one image of a model directory whose references are built from
 * `features` (the same rule as `matchDescription`): the person named, or null when the
 * similarity is below the threshold or the softmax margin below `minMargin`. The
 * quantiser compares it between fp32 and int8.
 */
export function kioskDecision(
  recognition: Pick<RecognitionSection, 'mean' | 'references' | 'threshold' | 'minMargin'>,
  classes: readonly string[],
): (features: Float32Array, probabilities: Float32Array) => string | null {
  const mean = recognition.mean ? Float32Array.from(recognition.mean) : null;
  const refs = new Map(Object.entries(recognition.references).map(([k, v]) => [k, Float32Array.from(v)]));
  return (vector, probabilities) => scoreDescription({ vector, probabilities }, classes, refs, mean, recognition).label;
}
