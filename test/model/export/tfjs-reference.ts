/**
 * TF.js as the golden reference for the exporter tests: artifacts of models built in
 * the test, TF.js models loaded from disk the way TF.js itself reads them, and a seeded
 * random source so fixtures are the same on every run.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { artifactsFromMemory, type TfjsArtifacts } from '../../../src/model/export/index.js';
import { OnnxModel, type TensorData } from '../../../src/runtime/ort.js';
import { mulberry32 } from '../../../src/train/rng.js';

/** tfjs cpu (exact, slow) or wasm (fast, for the real models). */
export async function useBackend(name: 'cpu' | 'wasm'): Promise<void> {
  if (name === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const dist = path.dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json'));
    wasm.setWasmPaths(path.join(dist, 'dist') + path.sep);
  }
  if (!(await tf.setBackend(name))) throw new Error(`TF.js backend ${name} did not start`);
  await tf.ready();
}

/** The artifacts TF.js would save for `model`, through our reader (no files). */
export async function layersArtifacts(model: tf.LayersModel, source = '<test model>'): Promise<TfjsArtifacts> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler((a) => {
      saved = a;
      return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } });
    }),
  );
  if (!saved) throw new Error('TF.js saved nothing');
  const data = saved.weightData;
  return artifactsFromMemory(
    {
      modelTopology: saved.modelTopology,
      weightSpecs: saved.weightSpecs ?? [],
      ...(data ? { weightData: Array.isArray(data) ? tf.io.CompositeArrayBuffer.join(data) : data } : {}),
      format: 'layers-model',
    },
    source,
  );
}

/** Reads a model.json + shards from disk as TF.js's own IOHandler (TF.js dequantises itself). */
export function diskHandler(modelJson: string): tf.io.IOHandler {
  const j = JSON.parse(readFileSync(modelJson, 'utf8')) as {
    modelTopology: object;
    format?: string;
    weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
  };
  const specs = j.weightsManifest.flatMap((g) => g.weights);
  const bytes = Buffer.concat(
    j.weightsManifest.flatMap((g) => g.paths.map((p) => readFileSync(path.join(path.dirname(modelJson), p)))),
  );
  const weightData = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  return tf.io.fromMemory({
    modelTopology: j.modelTopology,
    weightSpecs: specs,
    weightData,
    ...(j.format ? { format: j.format } : {}),
  });
}

export function randomTensorData(seed: number, dims: readonly number[], scale = 1): Float32Array {
  const r = mulberry32(seed);
  const n = dims.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

/** Sets every weight of `model` to seeded random values (variances kept positive). */
export function randomiseWeights(model: tf.LayersModel, seed: number, scale = 0.5): void {
  let s = seed;
  for (const layer of model.layers) {
    const ws = layer.getWeights();
    if (ws.length === 0) continue;
    layer.setWeights(
      layer.weights.map((w, i) => {
        const shape = ws[i]?.shape ?? w.shape;
        const data = randomTensorData(s++, shape as number[], scale);
        if (w.name.includes('moving_variance'))
          for (let k = 0; k < data.length; k++) data[k] = Math.abs(data[k] ?? 0) + 0.1;
        return tf.tensor(data, shape as number[]);
      }),
    );
  }
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
  return m;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] ?? 0));
  return m;
}

/** Runs ONNX bytes on one input; returns the named outputs. */
export async function runOnnx(
  bytes: Uint8Array,
  feeds: Record<string, TensorData>,
): Promise<Record<string, TensorData>> {
  const model = await OnnxModel.load(bytes);
  try {
    return await model.run(feeds);
  } finally {
    await model.release();
  }
}

export { tf };
