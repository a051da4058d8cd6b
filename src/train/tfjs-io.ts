/**
 * TF.js model artifacts on disk without `@tensorflow/tfjs-node` (no `file://` handler,
 * FACTS.md): read model.json + shards into `tf.io.ModelArtifacts` for `tf.io.fromMemory`,
 * and save through `tf.io.withSaveHandler` as `model.json` + `weights.bin`.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ModelError } from '../shared/errors.js';

interface ModelJson {
  modelTopology?: unknown;
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  signature?: unknown;
  userDefinedMetadata?: Record<string, object>;
  weightsManifest?: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
}

/** Reads a TF.js model.json and its weight shards (in manifest order) from disk. */
export async function readArtifacts(modelJsonPath: string): Promise<tf.io.ModelArtifacts> {
  let json: ModelJson;
  try {
    json = JSON.parse(await readFile(modelJsonPath, 'utf8')) as ModelJson;
  } catch (err) {
    throw new ModelError(
      `cannot read TF.js model ${modelJsonPath}: ${(err as Error).message}. Pass the path of a TF.js model.json (or its folder).`,
      { cause: err },
    );
  }
  if (!json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new ModelError(`${modelJsonPath} is not a TF.js model.json (no modelTopology / weightsManifest)`);
  }
  const dir = path.dirname(modelJsonPath);
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Uint8Array[] = [];
  for (const group of json.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) {
      try {
        buffers.push(await readFile(path.join(dir, p)));
      } catch (err) {
        throw new ModelError(
          `weight file ${p} of ${modelJsonPath} is missing or unreadable: copy the whole model folder`,
          { cause: err },
        );
      }
    }
  }
  const total = buffers.reduce((n, b) => n + b.byteLength, 0);
  const all = new Uint8Array(total);
  let off = 0;
  for (const b of buffers) {
    all.set(b, off);
    off += b.byteLength;
  }
  return {
    modelTopology: json.modelTopology as tf.io.ModelArtifacts['modelTopology'],
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy ?? null,
    signature: json.signature as tf.io.ModelArtifacts['signature'],
    userDefinedMetadata: json.userDefinedMetadata,
    weightSpecs: specs,
    weightData: all.buffer,
  };
}

/** Joins `weightData` (which may be an array of buffers) into one ArrayBuffer. */
export function joinWeightData(data: tf.io.WeightData | undefined): ArrayBuffer {
  if (!data) return new ArrayBuffer(0);
  return Array.isArray(data) ? tf.io.CompositeArrayBuffer.join(data) : data;
}

/** Serialises a LayersModel to artifacts in memory. */
export async function modelToArtifacts(model: tf.LayersModel): Promise<tf.io.ModelArtifacts> {
  let saved: tf.io.ModelArtifacts | null = null;
  await model.save(
    tf.io.withSaveHandler((a) => {
      saved = a;
      return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } });
    }),
  );
  if (!saved) throw new Error('TF.js save handler was not called');
  return saved;
}

/** Writes artifacts as `dir/model.json` + `dir/weights.bin`. */
export async function writeArtifacts(dir: string, a: tf.io.ModelArtifacts): Promise<void> {
  await mkdir(dir, { recursive: true });
  const weights = new Uint8Array(joinWeightData(a.weightData));
  const json = {
    format: a.format ?? 'layers-model',
    generatedBy: a.generatedBy,
    convertedBy: a.convertedBy ?? null,
    modelTopology: a.modelTopology,
    ...(a.trainingConfig ? { trainingConfig: a.trainingConfig } : {}),
    weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs ?? [] }],
  };
  await writeFile(path.join(dir, 'weights.bin'), weights);
  await writeFile(path.join(dir, 'model.json'), JSON.stringify(json));
}

/** Saves a LayersModel to `dir` (model.json + weights.bin). */
export async function saveLayersModel(model: tf.LayersModel, dir: string): Promise<void> {
  await writeArtifacts(dir, await modelToArtifacts(model));
}

/** Loads a LayersModel saved by {@link saveLayersModel} (or any TF.js layers model.json). */
export async function loadLayersModel(modelJsonPath: string): Promise<tf.LayersModel> {
  return tf.loadLayersModel(tf.io.fromMemory(await readArtifacts(modelJsonPath)));
}
