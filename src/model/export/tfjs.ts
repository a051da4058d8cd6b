/**
 * Reads TensorFlow.js model artifacts (model.json + binary weight shards) without
 * TensorFlow.js, so that the device can convert models too. Quantised weights
 * (uint8 / uint16 affine, float16) are dequantised to float32 here.
 *
 * Format: https://www.tensorflow.org/js/guide/save_load and tfjs-core's
 * `io/types.ts` (WeightsManifestEntry) and `io/io_utils.ts` (decodeWeights).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ModelError, UnsupportedError } from '../../shared/errors.js';
import { formatIssues } from '../../shared/validation.js';

/** A named constant tensor: float32 for weights, int32 for shapes and indices. */
export interface Weight {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: 'float32' | 'int32';
  readonly data: Float32Array | Int32Array;
}

/** What a TF.js model.json holds, parsed, with its weights dequantised. */
export interface TfjsArtifacts {
  /** 'layers': a Keras-style LayersModel topology; 'graph': a GraphModel GraphDef. */
  readonly kind: 'layers' | 'graph';
  /** The raw `modelTopology` object (validated further by the converters). */
  readonly topology: unknown;
  readonly weights: ReadonlyMap<string, Weight>;
  /** The model's signature / user metadata when present (GraphModels name their outputs there). */
  readonly signature?: unknown;
  /** Where the model came from (a path, or '<memory>'), for error messages. */
  readonly source: string;
}

const quantizationSchema = z
  .object({
    dtype: z.enum(['uint8', 'uint16', 'float16']),
    scale: z.number().optional(),
    min: z.number().optional(),
    original_dtype: z.string().optional(),
  })
  .loose();

export const weightSpecSchema = z
  .object({
    name: z.string(),
    shape: z.array(z.number().int().nonnegative()),
    dtype: z.string(),
    quantization: quantizationSchema.optional(),
    group: z.string().optional(),
  })
  .loose();
export type WeightSpec = z.infer<typeof weightSpecSchema>;

const modelJsonSchema = z
  .object({
    format: z.string().optional(),
    modelTopology: z.record(z.string(), z.unknown()),
    weightsManifest: z
      .array(
        z
          .object({
            paths: z.array(z.string().min(1)),
            weights: z.array(weightSpecSchema),
          })
          .loose(),
      )
      .default([]),
    signature: z.unknown().optional(),
    userDefinedMetadata: z.record(z.string(), z.unknown()).optional(),
  })
  .loose();

/** IEEE 754 half → float (subnormals, infinities and NaN included). */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 0x1f) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

function bytesPerElement(spec: WeightSpec): number {
  if (spec.quantization) return spec.quantization.dtype === 'uint8' ? 1 : 2;
  switch (spec.dtype) {
    case 'float32':
    case 'int32':
      return 4;
    case 'bool':
      return 1;
    default:
      throw new UnsupportedError(
        `weight ${spec.name} has dtype ${spec.dtype}; supported: float32, int32, bool (and uint8/uint16/float16 quantised float32)`,
      );
  }
}

/**
 * Decodes a flat weight buffer following `specs` (the concatenation of all groups'
 * shards, in manifest order). Each spec's bytes are read from `offset` on.
 */
export function decodeWeights(
  buffer: Uint8Array,
  weightSpecs: readonly unknown[],
  source = '<memory>',
): Map<string, Weight> {
  const parsed = z.array(weightSpecSchema).safeParse(weightSpecs);
  if (!parsed.success)
    throw new ModelError(`${source}: invalid weights manifest:\n${formatIssues(parsed.error.issues)}`);
  const specs = parsed.data;
  const out = new Map<string, Weight>();
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  let offset = 0;
  for (const spec of specs) {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const nbytes = size * bytesPerElement(spec);
    if (offset + nbytes > buffer.byteLength) {
      throw new ModelError(
        `weights of ${source} are truncated: ${spec.name} needs bytes ${offset}..${offset + nbytes} but the shards hold ${buffer.byteLength}. ` +
          'Copy the weight files (*.bin / group*-shard*) again.',
      );
    }
    const q = spec.quantization;
    const wantFloat = q ? (q.original_dtype ?? 'float32') === 'float32' : spec.dtype === 'float32';
    let data: Float32Array | Int32Array;
    if (q) {
      const values = new Float32Array(size);
      if (q.dtype === 'float16') {
        for (let i = 0; i < size; i++) values[i] = halfToFloat(view.getUint16(offset + 2 * i, true));
      } else {
        if (q.scale === undefined || q.min === undefined) {
          throw new ModelError(
            `weight ${spec.name} in ${source} is ${q.dtype}-quantised but has no scale/min: the model.json is corrupt`,
          );
        }
        for (let i = 0; i < size; i++) {
          const v = q.dtype === 'uint8' ? view.getUint8(offset + i) : view.getUint16(offset + 2 * i, true);
          values[i] = v * q.scale + q.min;
        }
      }
      data = wantFloat ? values : Int32Array.from(values, Math.round);
    } else if (spec.dtype === 'float32') {
      data = new Float32Array(size);
      for (let i = 0; i < size; i++) data[i] = view.getFloat32(offset + 4 * i, true);
    } else if (spec.dtype === 'int32') {
      data = new Int32Array(size);
      for (let i = 0; i < size; i++) data[i] = view.getInt32(offset + 4 * i, true);
    } else {
      data = new Int32Array(size);
      for (let i = 0; i < size; i++) data[i] = view.getUint8(offset + i);
    }
    out.set(spec.name, {
      name: spec.name,
      shape: [...spec.shape],
      dtype: data instanceof Float32Array ? 'float32' : 'int32',
      data,
    });
    offset += nbytes;
  }
  if (offset !== buffer.byteLength) {
    throw new ModelError(
      `weights of ${source} do not match its manifest: the manifest describes ${offset} bytes, the shards hold ${buffer.byteLength}. ` +
        'The model.json and weight files come from different models, or a file is damaged.',
    );
  }
  return out;
}

function kindOf(topology: Record<string, unknown>, format: string | undefined, source: string): 'layers' | 'graph' {
  if (format === 'graph-model' || Array.isArray(topology.node)) return 'graph';
  if (format === 'layers-model' || 'class_name' in topology || 'model_config' in topology || 'config' in topology)
    return 'layers';
  throw new ModelError(
    `${source}: modelTopology is neither a LayersModel (class_name/config) nor a GraphModel (node list)`,
  );
}

/**
 * Builds artifacts from what TF.js hands a save handler (`tf.io.withSaveHandler`):
 * the topology, the weight specs and the concatenated weight data.
 */
export function artifactsFromMemory(
  input: {
    modelTopology: unknown;
    weightSpecs?: readonly unknown[];
    weightData?: ArrayBuffer | readonly ArrayBuffer[] | Uint8Array;
    format?: string;
    signature?: unknown;
    userDefinedMetadata?: Record<string, unknown>;
  },
  source = '<memory>',
): TfjsArtifacts {
  const topology = z.record(z.string(), z.unknown()).safeParse(input.modelTopology);
  if (!topology.success) throw new ModelError(`${source}: modelTopology must be an object`);
  const parts =
    input.weightData === undefined
      ? []
      : input.weightData instanceof Uint8Array
        ? [input.weightData]
        : Array.isArray(input.weightData)
          ? (input.weightData as readonly ArrayBuffer[]).map((b) => new Uint8Array(b))
          : [new Uint8Array(input.weightData as ArrayBuffer)];
  const buffer = Buffer.concat(parts);
  return {
    kind: kindOf(topology.data, input.format, source),
    topology: topology.data,
    weights: decodeWeights(buffer, input.weightSpecs ?? [], source),
    signature: input.signature ?? input.userDefinedMetadata?.signature,
    source,
  };
}

function readOrFail(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ModelError(
      code === 'ENOENT'
        ? `${what} ${file} is missing. Copy the whole model folder (model.json and every weight file it lists).`
        : `cannot read ${what} ${file}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/**
 * Reads a TF.js model.json and its weight shards from disk. A missing file, a
 * truncated or corrupt model.json, or shards that do not add up to what the manifest
 * describes, give a ModelError that names the file.
 */
export function readTfjsModel(modelJsonPath: string): TfjsArtifacts {
  // A model folder works too: its model.json is meant.
  if (existsSync(modelJsonPath) && statSync(modelJsonPath).isDirectory())
    modelJsonPath = path.join(modelJsonPath, 'model.json');
  const text = readOrFail(modelJsonPath, 'TF.js model file').toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ModelError(
      `${modelJsonPath} is not valid JSON (${(err as Error).message}); the file is truncated or corrupt. Copy it again.`,
      { cause: err },
    );
  }
  const parsed = modelJsonSchema.safeParse(json);
  if (!parsed.success) {
    throw new ModelError(`${modelJsonPath} is not a TF.js model.json:\n${formatIssues(parsed.error.issues)}`);
  }
  const dir = path.dirname(modelJsonPath);
  const specs: WeightSpec[] = [];
  const buffers: Buffer[] = [];
  for (const group of parsed.data.weightsManifest) {
    const groupBuffers = group.paths.map((p) => readOrFail(path.join(dir, p), 'weight shard'));
    const have = groupBuffers.reduce((a, b) => a + b.byteLength, 0);
    const need = group.weights.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1) * bytesPerElement(s), 0);
    if (have !== need) {
      const sizes = group.paths.map((p, i) => `${p}: ${groupBuffers[i]?.byteLength ?? 0} bytes`).join(', ');
      throw new ModelError(
        `weight shard${group.paths.length > 1 ? 's' : ''} of ${modelJsonPath} ${have < need ? 'truncated' : 'too long'}: ` +
          `the manifest needs ${need} bytes, found ${have} (${sizes}). Copy the model's weight files again.`,
      );
    }
    specs.push(...group.weights);
    buffers.push(...groupBuffers);
  }
  return {
    ...artifactsFromMemory(
      {
        modelTopology: parsed.data.modelTopology,
        weightSpecs: specs,
        weightData: Buffer.concat(buffers),
        ...(parsed.data.format ? { format: parsed.data.format } : {}),
        signature: parsed.data.signature,
        ...(parsed.data.userDefinedMetadata ? { userDefinedMetadata: parsed.data.userDefinedMetadata } : {}),
      },
      modelJsonPath,
    ),
    source: modelJsonPath,
  };
}
