/**
 * The face descriptor of the gallery: a model that turns an aligned face crop into a vector
 * whose cosine similarity says "same person". Templates are stored with the id of the
 * descriptor that made them, so a different descriptor (another model, another alignment)
 * is noticed instead of compared across.
 *
 * The built-in descriptor is `faceres` from the installed `@vladmandic/human` (MIT, shipped
 * in the npm package, nothing downloads), converted to ONNX at install time by
 * `facegate models prepare`, as the detector is.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { builtinModelPath, humanSourceDigest } from '../model/builtin.js';
import { cropSchema, type CropSettings } from '../model/manifest.js';
import { OnnxModel } from '../runtime/ort.js';
import { ModelError } from '../shared/errors.js';
import { rgbBatch, type RgbImage } from '../shared/image.js';

/** Bump when the way enrolment and recognition cut faces for the descriptor changes. */
export const ALIGNMENT_VERSION = 1;

/** How the built-in descriptor's crops are cut: the manifest defaults (margin 1.3, eyes levelled). */
export const DESCRIPTOR_CROP: CropSettings = cropSchema.parse({});

export const DESCRIPTOR_INPUT = 224;

/** The built-in descriptor's input and output names (its signature in src/model/builtin.ts). */
const PIXELS_INPUT = 'pixels';
const FEATURES_OUTPUT = 'features';

/** What the gallery needs from a descriptor model. */
export interface FaceDescriptor {
  /** Names the descriptor and the alignment: templates are comparable only under the same id. */
  readonly id: string;
  readonly size: number;
  readonly crop: CropSettings;
  readonly inputSize: number;
  /** One L2-normalised vector per crop (crops are inputSize × inputSize). */
  describe(crops: readonly RgbImage[]): Promise<Float32Array[]>;
  close(): Promise<void>;
}

/** The id of a descriptor: its source hash and the alignment it expects. */
export function descriptorId(name: string, sourceHash: string, crop: CropSettings): string {
  return `${name}:${sourceHash}/align${ALIGNMENT_VERSION}:m${crop.margin}${crop.rotate ? 'r' : ''}`;
}

/**
 * The built-in descriptor's ONNX bytes and id: faceres from `@vladmandic/human`, backbone only
 * (uint8 `pixels` 224×224 NHWC → 1024-d `features`), as `facegate models prepare` converted it.
 * The ONE place the built-in descriptor comes from.
 */
export async function builtinDescriptorOnnx(cacheDir?: string): Promise<{ bytes: Uint8Array; id: string }> {
  const file = await builtinModelPath('faceres', cacheDir ? { cacheDir } : {});
  const id = descriptorId('faceres', humanSourceDigest('faceres').slice(0, 16), DESCRIPTOR_CROP);
  return { bytes: new Uint8Array(await readFile(file)), id };
}

export function l2normalise(v: Float32Array): Float32Array {
  let s = 0;
  for (const x of v) s += x * x;
  const n = Math.sqrt(s) || 1;
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = (v[i] ?? 0) / n;
  return out;
}

/** A descriptor run by onnxruntime from a backbone-only graph (`pixels` → `features`). */
export class OnnxDescriptor implements FaceDescriptor {
  readonly crop = DESCRIPTOR_CROP;
  readonly inputSize = DESCRIPTOR_INPUT;

  private constructor(
    private readonly model: OnnxModel,
    readonly id: string,
    readonly size: number,
  ) {}

  static async load(onnx: Uint8Array | string, id: string, threads?: number): Promise<OnnxDescriptor> {
    const model = await OnnxModel.load(onnx, { threads });
    const out = model.signature().outputs.find((o) => o.name === FEATURES_OUTPUT);
    const size = out?.shape[1];
    if (typeof size !== 'number') {
      await model.release();
      throw new ModelError(`descriptor ${model.source} has no [N, D] "${FEATURES_OUTPUT}" output`);
    }
    return new OnnxDescriptor(model, id, size);
  }

  async describe(crops: readonly RgbImage[]): Promise<Float32Array[]> {
    if (crops.length === 0) return [];
    const S = this.inputSize;
    const r = await this.model.run({ [PIXELS_INPUT]: rgbBatch(crops, S, S, 'descriptor') }, [FEATURES_OUTPUT]);
    const f = r[FEATURES_OUTPUT];
    if (!f || !(f.data instanceof Float32Array) || f.data.length !== crops.length * this.size)
      throw new ModelError(`descriptor ${this.model.source} returned no [${crops.length}, ${this.size}] features`);
    const data = f.data;
    return crops.map((_, i) => l2normalise(data.subarray(i * this.size, (i + 1) * this.size)));
  }

  close(): Promise<void> {
    return this.model.release();
  }
}

/**
 * A model directory may bring its own face descriptor: `descriptor.onnx`, a backbone-only graph
 * of the same signature as the built-in one (uint8 `pixels` 224×224 NHWC → `features`), listed
 * in the manifest like every file (so a signed bundle carries it). Its id is named after its
 * bytes: another file is another descriptor, and the gallery's templates are recomputed.
 */
export const MODEL_DESCRIPTOR_FILE = 'descriptor.onnx';

/** The descriptor of a model directory, or undefined when it brings none (the built-in one is used). */
export async function loadModelDirDescriptor(modelDir: string, threads?: number): Promise<FaceDescriptor | undefined> {
  const file = path.join(modelDir, MODEL_DESCRIPTOR_FILE);
  if (!existsSync(file)) return undefined;
  const bytes = new Uint8Array(await readFile(file));
  const id = descriptorId('model', createHash('sha256').update(bytes).digest('hex').slice(0, 16), DESCRIPTOR_CROP);
  return OnnxDescriptor.load(bytes, id, threads);
}

/** The built-in descriptor, ready to run. */
export async function loadBuiltinDescriptor(o: { cacheDir?: string; threads?: number } = {}): Promise<FaceDescriptor> {
  const { bytes, id } = await builtinDescriptorOnnx(o.cacheDir || undefined);
  return OnnxDescriptor.load(bytes, id, o.threads);
}
