/**
 * Recognise: the model directory's int8 model describes face crops; each description is
 * matched against the per-person references of the manifest's `recognition` section.
 */
import { access } from 'node:fs/promises';
import path from 'node:path';
import { OnnxModel, type TensorSpec } from '../runtime/ort.js';
import { ModelError } from '../shared/errors.js';
import type { RgbImage } from '../shared/image.js';
import type { Face, Match } from '../shared/messages.js';
import {
  INT8_MIN_AGREEMENT,
  MODEL_FP32_FILE,
  MODEL_INT8_FILE,
  int8Agreement,
  readManifest,
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
  /** auto (default): int8 when its recorded check passed, else fp32 (choosePrecision). */
  readonly precision?: PrecisionChoice;
}

/**
 * Which model file runs. int8 and fp32 are taken as asked. `auto` runs the int8 model
 * only when the directory has one and the manifest records its check against fp32 at
 * ≥ INT8_MIN_AGREEMENT top-1 agreement; otherwise fp32, with the reason (for the log).
 */
export function choosePrecision(manifest: Manifest, asked: PrecisionChoice): { precision: Precision; reason?: string } {
  if (asked !== 'auto') return { precision: asked };
  if (!manifest.files[MODEL_INT8_FILE]) return { precision: 'fp32', reason: `the model has no ${MODEL_INT8_FILE}` };
  const agreement = int8Agreement(manifest);
  if (agreement === undefined)
    return {
      precision: 'fp32',
      reason: `the manifest records no check of ${MODEL_INT8_FILE} against fp32 (quantise again with facegate quantize)`,
    };
  if (agreement < INT8_MIN_AGREEMENT) {
    return {
      precision: 'fp32',
      reason: `${MODEL_INT8_FILE} agreed with fp32 on only ${(agreement * 100).toFixed(2)} % of its check images (< ${INT8_MIN_AGREEMENT * 100} %)`,
    };
  }
  return { precision: 'int8' };
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
    readonly precision: Precision,
    private readonly outputNames: { probabilities: string; vector: string },
  ) {
    this.references = new Map(Object.entries(recognition.references).map(([k, v]) => [k, Float32Array.from(v)]));
    this.mean = recognition.mean ? Float32Array.from(recognition.mean) : null;
  }

  static async load(opts: RecogniserOptions): Promise<Recogniser> {
    const manifest = readManifest(opts.modelDir);
    const recognition = requireRecognition(manifest, opts.modelDir);
    const { precision, reason } = choosePrecision(manifest, opts.precision ?? 'auto');
    if (reason) log.warn({ model: opts.modelDir, version: manifest.version }, `running the fp32 model: ${reason}`);
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
    return new Recogniser(model, manifest, recognition, precision, {
      probabilities: manifest.outputs.probabilities,
      vector: vectorName,
    });
  }

  get inputSize(): { width: number; height: number } {
    return { width: this.manifest.input.width, height: this.manifest.input.height };
  }

  /** Runs the model on crops already at the input size (one batch). */
  async describe(crops: readonly RgbImage[]): Promise<Description[]> {
    if (crops.length === 0) return [];
    const { width: W, height: H } = this.inputSize;
    const px = W * H * 3;
    const batch = new Uint8Array(px * crops.length);
    crops.forEach((c, i) => {
      if (c.width !== W || c.height !== H)
        throw new RangeError(`crop is ${c.width}×${c.height}, model wants ${W}×${H}`);
      batch.set(c.data, i * px);
    });
    const out = await this.model.run({ [this.manifest.input.name]: { data: batch, dims: [crops.length, H, W, 3] } }, [
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
  const n = nearestReference(centre(d.vector, mean), references);
  const idx = classes.indexOf(n.label);
  const probability = idx >= 0 ? (d.probabilities[idx] ?? 0) : 0;
  let other = 0;
  d.probabilities.forEach((p, i) => {
    if (i !== idx && p > other) other = p;
  });
  const margin = probability - other;
  const accepted = n.similarity >= settings.threshold && margin >= settings.minMargin;
  return { face, label: accepted ? n.label : null, candidate: n.label, similarity: n.similarity, probability, margin };
}
