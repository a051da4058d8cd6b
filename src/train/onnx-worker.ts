/**
 * The worker thread behind the ONNX feature extractor (onnx-features.ts): holds the
 * backbone graph's onnxruntime session and, per request, augments the images (when asked)
 * and runs them through it in batches. onnxruntime-node runs a session on the calling
 * thread, so on the main thread extraction and augmentation would wait for the head's
 * TF.js steps and the other way round; here the next epoch's features are computed while
 * the head trains on this epoch's.
 *
 * Protocol (structured clone): workerData `{ onnx, featureSize, batchSize }`; the worker
 * posts `{ ready: true }` or `{ error }` once, then answers each
 * `{ id, images, augment?: { seeds, config } }` with `{ id, features }` (transferred) or
 * `{ id, error }`; `{ cancel: id }` drops a request between batches (answered with
 * `{ id, error: 'cancelled' }`).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { OUTPUT_NAMES, PIXELS_INPUT } from '../model/export/index.js';
import { OnnxModel } from '../runtime/ort.js';
import type { RgbImage } from '../shared/image.js';
import { augment, type AugmentConfig } from './augment.js';
import { INPUT_SIZE } from './backbone.js';
import { packPixels } from './features.js';
import { mulberry32 } from './rng.js';

export interface WorkerInit {
  readonly onnx: Uint8Array;
  readonly featureSize: number;
  readonly batchSize: number;
}

export interface WorkerRequest {
  readonly id: number;
  readonly images: readonly RgbImage[];
  /** Image i is augmented with `augment(image, mulberry32(seeds[i]), config)` first. */
  readonly augment?: { readonly seeds: readonly number[]; readonly config: AugmentConfig };
}

export type WorkerReply =
  | { readonly ready: true }
  | { readonly id?: number; readonly error: string }
  | { readonly id: number; readonly features: Float32Array };

const port = parentPort;
if (!port) throw new Error('onnx-worker.js runs as a worker thread (see onnx-features.ts)');
const init = workerData as WorkerInit;
const cancelled = new Set<number>();
const queue: WorkerRequest[] = [];
let busy = false;

async function extract(model: OnnxModel, r: WorkerRequest): Promise<Float32Array | null> {
  const size = init.featureSize;
  const out = new Float32Array(r.images.length * size);
  for (let i = 0; i < r.images.length; i += init.batchSize) {
    // A cancel message is read between batches (model.run yields to the event loop).
    if (cancelled.delete(r.id)) return null;
    let batch = r.images.slice(i, i + init.batchSize);
    const a = r.augment;
    if (a) batch = batch.map((img, k) => augment(img, mulberry32(a.seeds[i + k] ?? 0), a.config).image);
    const result = await model.run(
      { [PIXELS_INPUT]: { data: packPixels(batch), dims: [batch.length, INPUT_SIZE, INPUT_SIZE, 3] } },
      [OUTPUT_NAMES.features],
    );
    const f = result[OUTPUT_NAMES.features];
    if (!f || !(f.data instanceof Float32Array) || f.data.length !== batch.length * size)
      throw new Error(`the backbone graph returned no [${batch.length}, ${size}] float features`);
    out.set(f.data, i * size);
  }
  return out;
}

async function main(): Promise<void> {
  let model: OnnxModel;
  try {
    model = await OnnxModel.load(init.onnx);
  } catch (err) {
    port?.postMessage({ error: (err as Error).message } satisfies WorkerReply);
    return;
  }
  const drain = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    for (let r = queue.shift(); r; r = queue.shift()) {
      try {
        const features = await extract(model, r);
        if (features) port?.postMessage({ id: r.id, features } satisfies WorkerReply, [features.buffer as ArrayBuffer]);
        else port?.postMessage({ id: r.id, error: 'cancelled' } satisfies WorkerReply);
      } catch (err) {
        port?.postMessage({ id: r.id, error: (err as Error).message } satisfies WorkerReply);
      }
    }
    busy = false;
  };
  port?.on('message', (m: WorkerRequest | { cancel: number }) => {
    if ('cancel' in m) {
      const i = queue.findIndex((r) => r.id === m.cancel);
      if (i >= 0) {
        queue.splice(i, 1);
        port.postMessage({ id: m.cancel, error: 'cancelled' } satisfies WorkerReply);
      } else if (busy) cancelled.add(m.cancel);
      return;
    }
    queue.push(m);
    void drain();
  });
  port?.postMessage({ ready: true } satisfies WorkerReply);
}

await main();
