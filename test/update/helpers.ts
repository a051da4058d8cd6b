/**
 * Small real ONNX models for the update tests: uint8 pixels [b,224,224,3] → mean colour
 * → a seeded linear embedding → softmax over the classes. Different seeds give models
 * that disagree, so a swapped file fails the self-test; onnxruntime runs them for real.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GraphBuilder, attr, encodeModel } from '../../src/model/onnx/builder.js';
import {
  type Manifest,
  LABELS_FILE,
  MANIFEST_FILE,
  MODEL_FP32_FILE,
  MODEL_INT8_FILE,
} from '../../src/model/manifest.js';
import { sha256 } from '../../src/model/dir/hash.js';

export const SIZE = 224;
export const EMBED = 8;

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

export function tinyModel(seed: number, classes: number): Uint8Array {
  const r = rng(seed);
  const g = new GraphBuilder('tiny');
  g.input('pixels', 'uint8', ['batch', SIZE, SIZE, 3]);
  const f = g.op('Cast', ['pixels'], { to: attr.i(1) });
  const mean = g.op('ReduceMean', [f], { axes: attr.ints([1, 2]), keepdims: attr.i(0) });
  const scale = g.initializer('scale', [1], Float32Array.of(1 / 255));
  g.node('Mul', [mean, scale], ['features']);
  const we = g.initializer(
    'we',
    [3, EMBED],
    Float32Array.from({ length: 3 * EMBED }, () => r() * 4),
  );
  const be = g.initializer(
    'be',
    [EMBED],
    Float32Array.from({ length: EMBED }, () => r()),
  );
  const e = g.op('Add', [g.op('MatMul', ['features', we]), be]);
  g.node('Tanh', [e], ['embedding']);
  const wc = g.initializer(
    'wc',
    [EMBED, classes],
    Float32Array.from({ length: EMBED * classes }, () => r() * 8),
  );
  const logits = g.op('MatMul', ['embedding', wc]);
  g.node('Softmax', [logits], ['probabilities'], { axis: attr.i(-1) });
  g.output('probabilities', 'float32', ['batch', classes]);
  g.output('embedding', 'float32', ['batch', EMBED]);
  g.output('features', 'float32', ['batch', 3]);
  return encodeModel(g.build({ opset: 17 }));
}

export interface TinyModelOptions {
  readonly version: string;
  readonly seed: number;
  readonly classes?: number;
  /** Write this instead of the seeded model.onnx (a file that does not load, say). */
  readonly onnxBytes?: Uint8Array;
  /** Also write model.int8.onnx (the same graph with another seed offset). */
  readonly int8?: boolean;
  /** Add a recognition section (references, thresholds) so the device's Recogniser runs; default true. */
  readonly recognition?: boolean;
}

/** Writes a valid model directory (manifest with hashes) and returns its path. */
export async function writeTinyModelDir(dir: string, o: TinyModelOptions): Promise<string> {
  await mkdir(dir, { recursive: true });
  const n = o.classes ?? 4;
  const classes = Array.from({ length: n }, (_, i) => `person${i + 1}`);
  const files: Record<string, Uint8Array> = {
    [MODEL_FP32_FILE]: o.onnxBytes ?? tinyModel(o.seed, n),
    [LABELS_FILE]: Buffer.from(JSON.stringify(classes)),
  };
  if (o.int8) files[MODEL_INT8_FILE] = tinyModel(o.seed + 1000, n);
  for (const [name, data] of Object.entries(files)) await writeFile(path.join(dir, name), data);
  const manifest: Manifest = {
    format: 'facegate-model',
    formatVersion: 1,
    version: o.version,
    createdAt: new Date('2026-01-01T00:00:00Z').toISOString(),
    backbone: { name: 'mobilenet_v1', source: 'test', featureNode: 'features', featureSize: 3 },
    input: {
      name: 'pixels',
      dtype: 'uint8',
      layout: 'NHWC',
      height: SIZE,
      width: SIZE,
      channels: 3,
      preprocessing: { scale: 1 / 255, offset: 0 },
    },
    outputs: { probabilities: 'probabilities', embedding: 'embedding', embeddingSize: EMBED },
    classes,
    files: Object.fromEntries(Object.entries(files).map(([k, v]) => [k, { sha256: sha256(v), bytes: v.length }])),
  };
  if (o.recognition !== false) {
    const r = rng(o.seed + 7);
    const unit = (): number[] => {
      const v = Array.from({ length: EMBED }, () => r());
      const n = Math.hypot(...v);
      return v.map((x) => x / n);
    };
    manifest.recognition = {
      score: 'centroid-cosine',
      source: 'embedding',
      mean: null,
      references: Object.fromEntries(classes.map((c) => [c, unit()])),
      threshold: 0.2,
      minMargin: 0,
      targetFar: 0.01,
      crop: { margin: 1.3, rotate: true, method: 'box', zoom: 1 },
      calibration: { method: 'leave-one-person-out', impostorProbes: 0, genuineProbes: 0, far: 0, frr: 0 },
    };
  }
  await writeFile(path.join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2));
  return dir;
}
