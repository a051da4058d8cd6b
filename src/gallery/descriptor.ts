/**
 * The face descriptor of the gallery: a model that turns an aligned face crop into a vector
 * whose cosine similarity says "same person". Templates are stored with the id of the
 * descriptor that made them, so a different descriptor (another model, another alignment)
 * is noticed instead of compared across.
 *
 * Two descriptors are built in, chosen by `gallery.descriptor`: `dlib` (dlib's ResNet, 128-d,
 * weights from `@vladmandic/face-api`) and `faceres` (from `@vladmandic/human`, 1024-d). Both
 * ship in npm packages (nothing downloads) and are converted to ONNX at install time by
 * `facegate models prepare`, as the detector is. Each brings its own crop (the alignment it
 * was trained on) and the impostor tail its threshold is read from.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { faceTransform, warpAffine, type FaceAlignment } from '../detect/align.js';
import { builtinModelPath, builtinSourceDigest } from '../model/builtin.js';
import { cropSchema } from '../model/manifest.js';
import { OnnxModel } from '../runtime/ort.js';
import { ConfigError, ModelError } from '../shared/errors.js';
import { rgbBatch, type RgbImage } from '../shared/image.js';
import type { Face } from '../shared/messages.js';
import {
  DEFAULT_DESCRIPTOR,
  DEFAULT_FLIP,
  DEFAULT_LANDMARKS,
  DEFAULT_NORM,
  DEFAULT_RULE,
  MARGIN_TARGET_FAR,
  uncalibratedMargin,
  variantName,
  type BuiltinDescriptorName,
  type GalleryLandmarks,
  type GalleryNorm,
} from './config.js';
import {
  BUILTIN_AGGREGATE_TAILS,
  BUILTIN_IMPOSTOR_TAILS,
  BUILTIN_MARGIN_CALIBRATIONS,
  BUILTIN_POOL_QUANTILES,
  DLIB_MESH_AGGREGATE_TAILS,
  DLIB_MESH_IMPOSTOR_TAILS,
  DLIB_MESH_MARGIN_CALIBRATIONS,
  DLIB_MESH_POOL_QUANTILES,
  tailFor,
  type ImpostorTail,
  type MarginCalibration,
  type ImpostorTails,
  type ScoringRule,
  type ScoringVariant,
} from './match.js';
import type { PoolQuantiles } from './adapt.js';

/** Bump when the way enrolment and recognition cut faces for the descriptor changes. */
export const ALIGNMENT_VERSION = 1;

/** How faceres's crops are cut (and a model directory's descriptor's): the manifest defaults (box, margin 1.3, eyes levelled). */
export const DESCRIPTOR_CROP: FaceAlignment = cropSchema.parse({});

export const DESCRIPTOR_INPUT = 224;

/** What each built-in descriptor needs: its model, input side, crop and impostor tails (one per scoring variant fitted). */
export interface BuiltinDescriptorSpec {
  readonly inputSize: number;
  readonly crop: FaceAlignment;
  readonly impostorTails: ImpostorTails;
  /** Tails of pooled probes (a track's mean descriptor), for the variants that pool. */
  readonly aggregateTails?: ImpostorTails;
  /** The impostor pool's quantiles (gallery.adapt), by variantName. */
  readonly poolQuantiles?: Readonly<Partial<Record<string, PoolQuantiles>>>;
  /** Margin calibrations (gallery.norm margin), by variantName. */
  readonly marginCalibrations: Readonly<Partial<Record<string, MarginCalibration>>>;
}

/**
 * The margin calibration gallery.norm asks for with this spec and variant: none → null; auto →
 * the fitted one or null; margin → the fitted one, or a ConfigError naming what can run. (A
 * calibration fitted for another targetFar is not used: galleryDecision in match.ts.)
 */
export function marginFor(
  norm: GalleryNorm,
  spec: Pick<BuiltinDescriptorSpec, 'marginCalibrations'>,
  variant: ScoringVariant,
  descriptor: string,
): MarginCalibration | null {
  if (norm === 'none') return null;
  const fitted = spec.marginCalibrations[variantName(variant)] ?? null;
  if (norm === 'margin' && !fitted)
    throw new ConfigError(
      uncalibratedMargin(Object.keys(spec.marginCalibrations), {
        ...variant,
        descriptor,
        targetFar: MARGIN_TARGET_FAR,
      }) ?? '',
    );
  return fitted;
}

export const BUILTIN_DESCRIPTORS: Readonly<Record<BuiltinDescriptorName, BuiltinDescriptorSpec>> = {
  // dlib's face chip: the four keypoints put where dlib's own alignment puts them (150×150).
  dlib: {
    inputSize: 150,
    crop: { method: 'landmarks', template: 'dlib', zoom: 1, margin: 1.3, rotate: true },
    impostorTails: BUILTIN_IMPOSTOR_TAILS.dlib,
    aggregateTails: BUILTIN_AGGREGATE_TAILS.dlib,
    poolQuantiles: BUILTIN_POOL_QUANTILES.dlib,
    marginCalibrations: BUILTIN_MARGIN_CALIBRATIONS.dlib,
  },
  faceres: {
    inputSize: DESCRIPTOR_INPUT,
    crop: DESCRIPTOR_CROP,
    impostorTails: BUILTIN_IMPOSTOR_TAILS.faceres,
    aggregateTails: BUILTIN_AGGREGATE_TAILS.faceres,
    poolQuantiles: BUILTIN_POOL_QUANTILES.faceres,
    marginCalibrations: BUILTIN_MARGIN_CALIBRATIONS.faceres,
  },
};

/**
 * dlib with gallery.landmarks mesh: the same model on dlib's own face chip, cut from the face
 * mesh's dense landmarks (meshChipTransform in src/detect/align.ts; the keypoint chip where a
 * face has none), with its own tails. Its id differs from the keypoint chip's, so templates are
 * recomputed from the kept enrolment crops when the setting changes.
 */
export const DLIB_MESH_DESCRIPTOR: BuiltinDescriptorSpec = {
  inputSize: 150,
  crop: { method: 'mesh', template: 'dlib', zoom: 1, margin: 1.3, rotate: true },
  impostorTails: DLIB_MESH_IMPOSTOR_TAILS,
  aggregateTails: DLIB_MESH_AGGREGATE_TAILS,
  poolQuantiles: DLIB_MESH_POOL_QUANTILES,
  marginCalibrations: DLIB_MESH_MARGIN_CALIBRATIONS,
};

/** The spec of a built-in descriptor with gallery.landmarks (mesh: dlib only; ConfigError otherwise). */
export function builtinSpec(
  name: BuiltinDescriptorName,
  landmarks: GalleryLandmarks = DEFAULT_LANDMARKS,
): BuiltinDescriptorSpec {
  if (landmarks === 'keypoints') return BUILTIN_DESCRIPTORS[name];
  if (name !== 'dlib')
    throw new ConfigError(
      `gallery.landmarks mesh aligns the dlib descriptor's crop only, not ${name}'s: set gallery.descriptor to dlib or gallery.landmarks to keypoints`,
    );
  return DLIB_MESH_DESCRIPTOR;
}

/** The built-in descriptor's input and output names (its signature in src/model/builtin.ts). */
const PIXELS_INPUT = 'pixels';
const FEATURES_OUTPUT = 'features';

/** What the gallery needs from a descriptor model. */
export interface FaceDescriptor {
  /** Names the descriptor and the alignment: templates are comparable only under the same id. */
  readonly id: string;
  readonly size: number;
  readonly crop: FaceAlignment;
  readonly inputSize: number;
  /** Test-time flip: each vector is the mean of the crop's and its mirror's (part of the id). */
  readonly flip: boolean;
  /** How the gallery scores a person's templates for this descriptor. */
  readonly rule: ScoringRule;
  /** The upper tail of its impostor scores under this flip and rule: the gallery threshold is read from it. */
  readonly impostorTail: ImpostorTail;
  /** The tail of a track's pooled (mean) descriptor under this flip and rule; absent where none is fitted (no pooling then). */
  readonly aggregateTail?: ImpostorTail;
  /** The impostor pool's quantiles under this flip and rule (gallery.adapt); absent where none were measured (no adapting then). */
  readonly poolQuantiles?: PoolQuantiles;
  /** gallery.norm margin: the margin score's calibration (absent or null: the best cosine is compared). */
  readonly margin?: MarginCalibration | null;
  /** One L2-normalised vector per crop (crops are inputSize × inputSize). */
  describe(crops: readonly RgbImage[]): Promise<Float32Array[]>;
  close(): Promise<void>;
}

/** The id of a descriptor: its source hash, the alignment it expects, and `+flip` when it averages crop and mirror. */
export function descriptorId(name: string, sourceHash: string, crop: FaceAlignment, flip = false): string {
  const how =
    crop.method === 'mesh'
      ? 'mesh68'
      : crop.method === 'landmarks'
        ? `l${crop.zoom}${crop.template && crop.template !== 'arcface' ? `-${crop.template}` : ''}`
        : `m${crop.margin}${crop.rotate ? 'r' : ''}`;
  return `${name}:${sourceHash}/align${ALIGNMENT_VERSION}:${how}${flip ? '+flip' : ''}`;
}

/** The left–right mirror of an RGB image. */
export function mirror(img: RgbImage): RgbImage {
  const { width: W, height: H, data } = img;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < H; y++) {
    const row = y * W * 3;
    for (let x = 0; x < W; x++) {
      const s = row + x * 3;
      const d = row + (W - 1 - x) * 3;
      out[d] = data[s]!;
      out[d + 1] = data[s + 1]!;
      out[d + 2] = data[s + 2]!;
    }
  }
  return { data: out, width: W, height: H };
}

/** The face crop a descriptor takes (its own alignment and input size). */
export function cropFor(d: Pick<FaceDescriptor, 'crop' | 'inputSize'>, img: RgbImage, face: Face): RgbImage {
  const S = d.inputSize;
  return warpAffine(img, faceTransform(face.box, face.keypoints, S, d.crop, face.landmarks), S, S);
}

/**
 * A built-in descriptor's ONNX bytes and id, as `facegate models prepare` converted it: uint8
 * `pixels` [N, S, S, 3] → `features` (dlib: 150 → 128-d; faceres: 224 → 1024-d, backbone only).
 * The ONE place the built-in descriptors come from.
 */
export async function builtinDescriptorOnnx(
  name: BuiltinDescriptorName,
  cacheDir?: string,
  flip = false,
  landmarks: GalleryLandmarks = DEFAULT_LANDMARKS,
): Promise<{ bytes: Uint8Array; id: string }> {
  const file = await builtinModelPath(name, cacheDir ? { cacheDir } : {});
  // The mesh chip also depends on the face mesh's weights: another facemesh is another descriptor.
  const source =
    builtinSourceDigest(name).slice(0, 16) +
    (landmarks === 'mesh' ? `+facemesh-${builtinSourceDigest('facemesh').slice(0, 16)}` : '');
  const id = descriptorId(name, source, builtinSpec(name, landmarks).crop, flip);
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

/** The kiosk's default scoring variant (gallery.flip, gallery.rule). */
export const DEFAULT_VARIANT: ScoringVariant = { flip: DEFAULT_FLIP, rule: DEFAULT_RULE };

/** A descriptor run by onnxruntime from a backbone-only graph (`pixels` → `features`). */
export class OnnxDescriptor implements FaceDescriptor {
  readonly crop: FaceAlignment;
  readonly inputSize: number;
  readonly flip: boolean;
  readonly rule: ScoringRule;
  readonly impostorTail: ImpostorTail;
  readonly aggregateTail?: ImpostorTail;
  readonly poolQuantiles?: PoolQuantiles;
  readonly margin: MarginCalibration | null;

  private constructor(
    private readonly model: OnnxModel,
    readonly id: string,
    readonly size: number,
    spec: BuiltinDescriptorSpec,
    variant: ScoringVariant,
    impostorTail: ImpostorTail,
    margin: MarginCalibration | null,
  ) {
    this.crop = spec.crop;
    this.inputSize = spec.inputSize;
    this.flip = variant.flip;
    this.rule = variant.rule;
    this.impostorTail = impostorTail;
    const pooled = spec.aggregateTails?.[variantName(variant)];
    if (pooled) this.aggregateTail = pooled;
    const quantiles = spec.poolQuantiles?.[variantName(variant)];
    if (quantiles) this.poolQuantiles = quantiles;
    this.margin = margin;
  }

  /**
   * `spec`: crop, input side and impostor tails (default faceres's, which a model directory's
   * descriptor shares); `variant`: flip and rule, refused (ConfigError naming the fitted ones)
   * where the spec has no tail for it; `norm` margin likewise where the spec has no margin
   * calibration for the variant. `id` must say `+flip` when variant.flip does.
   */
  static async load(
    onnx: Uint8Array | string,
    id: string,
    threads?: number,
    spec: BuiltinDescriptorSpec = BUILTIN_DESCRIPTORS.faceres,
    variant: ScoringVariant = DEFAULT_VARIANT,
    norm: GalleryNorm = DEFAULT_NORM,
  ): Promise<OnnxDescriptor> {
    const name = id.split(':')[0] ?? id;
    const tail = tailFor(spec.impostorTails, variant, name);
    const margin = marginFor(norm, spec, variant, name);
    const model = await OnnxModel.load(onnx, { threads });
    const input = model.signature().inputs.find((i) => i.name === PIXELS_INPUT);
    const out = model.signature().outputs.find((o) => o.name === FEATURES_OUTPUT);
    const size = out?.shape[1];
    const S = spec.inputSize;
    const side = (d: number | string | null | undefined): boolean => typeof d !== 'number' || d === S;
    if (typeof size !== 'number' || !input || !side(input.shape[1]) || !side(input.shape[2])) {
      await model.release();
      throw new ModelError(
        `descriptor ${model.source} needs a uint8 "${PIXELS_INPUT}" [N, ${S}, ${S}, 3] input and an [N, D] "${FEATURES_OUTPUT}" output`,
      );
    }
    return new OnnxDescriptor(model, id, size, spec, variant, tail, margin);
  }

  /** With flip, the crops and their mirrors in one batch, each pair's unit vectors averaged: the one place flip happens, for enrolment and recognition alike. */
  async describe(crops: readonly RgbImage[]): Promise<Float32Array[]> {
    if (crops.length === 0) return [];
    const S = this.inputSize;
    const batch = this.flip ? [...crops, ...crops.map(mirror)] : crops;
    const r = await this.model.run({ [PIXELS_INPUT]: rgbBatch(batch, S, S, 'descriptor') }, [FEATURES_OUTPUT]);
    const f = r[FEATURES_OUTPUT];
    if (!f || !(f.data instanceof Float32Array) || f.data.length !== batch.length * this.size)
      throw new ModelError(`descriptor ${this.model.source} returned no [${batch.length}, ${this.size}] features`);
    const data = f.data;
    const D = this.size;
    const unit = (i: number): Float32Array => l2normalise(data.subarray(i * D, (i + 1) * D));
    if (!this.flip) return crops.map((_, i) => unit(i));
    return crops.map((_, i) => {
      const a = unit(i);
      const b = unit(i + crops.length);
      for (let j = 0; j < D; j++) a[j] = a[j]! + b[j]!;
      return l2normalise(a);
    });
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

/**
 * The descriptor of a model directory, or undefined when it brings none (the built-in one is
 * used). It shares faceres's impostor tails, so `variant` must be one fitted for faceres.
 */
export async function loadModelDirDescriptor(
  modelDir: string,
  threads?: number,
  variant: ScoringVariant = DEFAULT_VARIANT,
  norm: GalleryNorm = DEFAULT_NORM,
): Promise<FaceDescriptor | undefined> {
  const file = path.join(modelDir, MODEL_DESCRIPTOR_FILE);
  if (!existsSync(file)) return undefined;
  const bytes = new Uint8Array(await readFile(file));
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  const id = descriptorId('model', hash, DESCRIPTOR_CROP, variant.flip);
  return OnnxDescriptor.load(bytes, id, threads, BUILTIN_DESCRIPTORS.faceres, variant, norm);
}

/** A built-in descriptor (`gallery.descriptor`, default dlib, aligned by `gallery.landmarks`) with its scoring variant (`gallery.flip`, `gallery.rule`), ready to run. */
export async function loadBuiltinDescriptor(
  o: {
    name?: BuiltinDescriptorName;
    cacheDir?: string;
    threads?: number;
    flip?: boolean;
    rule?: ScoringRule;
    norm?: GalleryNorm;
    landmarks?: GalleryLandmarks;
  } = {},
): Promise<FaceDescriptor> {
  const name = o.name ?? DEFAULT_DESCRIPTOR;
  const variant: ScoringVariant = { flip: o.flip ?? DEFAULT_FLIP, rule: o.rule ?? DEFAULT_RULE };
  const spec = builtinSpec(name, o.landmarks);
  const { bytes, id } = await builtinDescriptorOnnx(name, o.cacheDir || undefined, variant.flip, o.landmarks);
  return OnnxDescriptor.load(bytes, id, o.threads, spec, variant, o.norm);
}
