/**
 * ONNX feature extractor: the backbone-only graph from the exporter (input `pixels`
 * uint8 NHWC, output `features`), run by onnxruntime (FACTS.md: ~10 ms an image for
 * MobileNet 1.0 against ~125 ms for TF.js wasm) in a worker thread (onnx-worker.ts), which
 * also augments the images it is asked to augment: training asks for the next epoch's
 * features while the head trains on this epoch's.
 */
import { Worker } from 'node:worker_threads';
import { exportModel, OUTPUT_NAMES, PIXELS_INPUT } from '../model/export/index.js';
import { readTfjsModel } from '../model/export/tfjs.js';
import { OnnxModel } from '../runtime/ort.js';
import { ModelError } from '../shared/errors.js';
import { INPUT_SIZE, type BackboneSpec } from './backbone.js';
import type { FeatureExtractor } from './features.js';
import type { WorkerInit, WorkerReply, WorkerRequest } from './onnx-worker.js';

/** Backbone-only ONNX bytes for a backbone. */
export function backboneOnnx(spec: BackboneSpec): Uint8Array {
  return exportModel({
    backbone: {
      name: spec.name,
      artifacts: readTfjsModel(spec.modelJsonPath),
      ...(spec.alpha !== undefined ? { alpha: spec.alpha } : {}),
    },
    preprocessing: spec.preprocessing,
  });
}

export async function onnxExtractor(spec: BackboneSpec, batchSize = 16): Promise<FeatureExtractor> {
  const onnx = backboneOnnx(spec);
  // The signature is checked here, where a wrong graph is reported as a ModelError.
  const model = await OnnxModel.load(onnx);
  try {
    model.assertSignature({
      inputs: [{ name: PIXELS_INPUT, dtype: 'uint8', shape: [null, INPUT_SIZE, INPUT_SIZE, 3] }],
      outputs: [{ name: OUTPUT_NAMES.features, dtype: 'float32', shape: [null, spec.featureSize] }],
    });
  } finally {
    await model.release();
  }
  const worker = new Worker(new URL('./onnx-worker.js', import.meta.url), {
    workerData: { onnx, featureSize: spec.featureSize, batchSize } satisfies WorkerInit,
  });
  const pending = new Map<number, { resolve: (f: Float32Array) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let failure: Error | null = null;
  const fail = (err: Error): void => {
    failure = err;
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  await new Promise<void>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', (m: WorkerReply) => {
      worker.off('error', reject);
      if ('error' in m) reject(new ModelError(`the backbone graph did not load in the worker: ${m.error}`));
      else resolve();
    });
  });
  worker.on('message', (m: WorkerReply) => {
    if (!('id' in m) || m.id === undefined) return;
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if ('features' in m) p.resolve(m.features);
    else p.reject(m.error === 'cancelled' ? new Error('extraction cancelled') : new ModelError(m.error));
  });
  worker.on('error', (err) => fail(err));
  worker.on('exit', (code) => fail(new Error(`the feature worker exited (code ${code})`)));
  // Idle between requests without keeping the process alive.
  worker.unref();

  const request = (r: Omit<WorkerRequest, 'id'>, signal?: AbortSignal): Promise<Float32Array> => {
    if (failure) return Promise.reject(failure);
    const id = nextId++;
    const result = new Promise<Float32Array>((resolve, reject) => pending.set(id, { resolve, reject }));
    signal?.addEventListener('abort', () => worker.postMessage({ cancel: id }), { once: true });
    worker.ref();
    worker.postMessage({ id, ...r } satisfies WorkerRequest);
    return result.finally(() => {
      if (pending.size === 0) worker.unref();
    });
  };
  return {
    kind: 'onnx',
    spec,
    background: true,
    extract: (images) => request({ images }),
    extractAugmented: (images, seeds, config, signal) => request({ images, augment: { seeds, config } }, signal),
    async dispose() {
      await worker.terminate();
    },
  };
}
