/**
 * bench:train — ORL training time of facegate's design against the naive one, measured
 * in one run on this machine.
 *
 * - design: `train()` as shipped: the frozen backbone runs on onnxruntime once per
 *   (augmented) image and epoch; only the head trains in TF.js.
 * - naive: the tutorial's loop in TF.js: every step pushes its augmented batch through
 *   the TF.js backbone, then trains the head on it. Running it to the end would take
 *   long, so it is timed for a fixed number of steps and extrapolated to the epochs the
 *   design run took (the output says so).
 *
 * Usage: npm run bench:train [-- --backbone faceres] [--steps 6]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { augment, TUTORIAL_AUGMENTATION } from '../src/train/augment.js';
import { initBackend } from '../src/train/backend.js';
import { loadTfjsBackbone, resolveBackbone } from '../src/train/backbone.js';
import { cropPreparer, loadDataset } from '../src/train/data.js';
import { tfjsExtractor } from '../src/train/features.js';
import { oneHot } from '../src/train/fit.js';
import { buildHead } from '../src/train/head.js';
import { headStep } from '../src/train/head-step.js';
import { onnxExtractor } from '../src/train/onnx-features.js';
import { train } from '../src/train/index.js';
import { deriveSeed, mulberry32, permutation } from '../src/train/rng.js';

const ORL = path.resolve(process.cwd(), '..', 'shared', 'data', 'faces', 'orl');
const MOBILENET = path.resolve(process.cwd(), '..', 'shared', 'models', 'mobilenet_v1_0.25_224', 'model.json');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

function loadAverage(): string {
  return os
    .loadavg()
    .map((v) => v.toFixed(1))
    .join(' / ');
}

async function main(): Promise<void> {
  const backbone = arg('backbone', 'mobilenet_v1') as 'mobilenet_v1' | 'faceres';
  const steps = Number(arg('steps', '6'));
  const seed = Number(arg('seed', '1'));
  const backend = await initBackend();
  const weights = backbone === 'mobilenet_v1' ? MOBILENET : undefined;
  console.log(
    `bench:train on ORL (${ORL}), backbone ${backbone}, TF.js backend ${backend}, ${os.cpus().length} CPUs, load average ${loadAverage()}`,
  );

  // Design: the real command, end to end (data loading included), without export/quantise;
  // ORL images are face crops (--crops), as in every ORL figure we report.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fg-bench-'));
  let design;
  try {
    design = await train({
      data: ORL,
      out: path.join(dir, 'model'),
      backbone,
      ...(weights ? { weights } : {}),
      seed,
      crops: true,
      export: false,
      quantize: false,
      progress: false,
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const designEpoch = design.history.reduce((s, h) => s + h.seconds, 0) / design.history.length;

  // Naive: each step augments its batch, runs it through the TF.js backbone, trains the head.
  const spec = await resolveBackbone({ name: backbone, ...(weights ? { weights } : {}) });
  const ds = await loadDataset({ dir: ORL, preparer: cropPreparer(224), validationSplit: 0.2, seed });
  const tfb = await loadTfjsBackbone(spec);
  const extractor = tfjsExtractor(tfb, 9);
  const head = buildHead(spec.featureSize, ds.classes.length, seed, 0.001);
  const order = permutation(ds.train.length, mulberry32(deriveSeed(seed, 1)));
  const batchSize = 9;
  const stepsPerEpoch = Math.ceil(ds.train.length / batchSize);
  // one warm-up step (kernel compilation), not timed
  const phase = { augment: 0, backbone: 0, head: 0 };
  const step = async (b: number): Promise<void> => {
    const t0 = performance.now();
    const idx = order.slice((b % stepsPerEpoch) * batchSize, ((b % stepsPerEpoch) + 1) * batchSize);
    const images = idx.map(
      (j, k) =>
        augment(
          (ds.train[j] as { image: import('../src/shared/image.js').RgbImage }).image,
          mulberry32(deriveSeed(seed, b, k)),
          TUTORIAL_AUGMENTATION,
        ).image,
    );
    const t1 = performance.now();
    const f = await extractor.extract(images);
    const t2 = performance.now();
    const x = tf.tensor2d(f, [idx.length, spec.featureSize]);
    const y = oneHot(
      idx.map((j) => ds.train[j]?.label ?? 0),
      ds.classes.length,
    );
    await head.trainOnBatch(x, y);
    tf.dispose([x, y]);
    phase.augment += t1 - t0;
    phase.backbone += t2 - t1;
    phase.head += performance.now() - t2;
  };
  await step(0);
  phase.augment = phase.backbone = phase.head = 0;
  const t0 = performance.now();
  for (let s = 1; s <= steps; s++) await step(s);
  const perStep = (performance.now() - t0) / 1000 / steps;
  const valFeatT0 = performance.now();
  await extractor.extract(ds.validation.map((v) => v.image));
  const naiveVal = (performance.now() - valFeatT0) / 1000;
  const naiveEpoch = perStep * stepsPerEpoch + naiveVal;
  tfb.dispose();
  head.dispose();

  // The design's phases, one epoch of each after the run (as fitHead runs them, one after
  // the other): augmentation, extraction on onnxruntime, head steps.
  const onnx = await onnxExtractor(spec);
  await onnx.extract(ds.train.slice(0, 9).map((s) => s.image)); // warm-up
  const a0 = performance.now();
  const augmented = ds.train.map(
    (s, i) => augment(s.image, mulberry32(deriveSeed(seed, 0xa09, 1, i)), TUTORIAL_AUGMENTATION).image,
  );
  const designAugment = (performance.now() - a0) / 1000;
  const e0 = performance.now();
  const feats = await onnx.extract(augmented);
  const designExtract = (performance.now() - e0) / 1000;
  await onnx.dispose();
  const designHead = buildHead(spec.featureSize, ds.classes.length, seed, 0.001);
  const fast = headStep(designHead);
  const headBatch = (b: number): { x: tf.Tensor2D; y: tf.Tensor2D } => {
    const idx = order.slice(b * batchSize, (b + 1) * batchSize);
    const xb = new Float32Array(idx.length * spec.featureSize);
    idx.forEach((j, k) =>
      xb.set(feats.subarray(j * spec.featureSize, (j + 1) * spec.featureSize), k * spec.featureSize),
    );
    return {
      x: tf.tensor2d(xb, [idx.length, spec.featureSize]),
      y: oneHot(
        idx.map((j) => ds.train[j]?.label ?? 0),
        ds.classes.length,
      ),
    };
  };
  const warm = headBatch(0);
  await fast.step(warm.x, warm.y);
  tf.dispose([warm.x, warm.y]);
  const h0 = performance.now();
  for (let b = 0; b < stepsPerEpoch; b++) {
    const { x, y } = headBatch(b);
    await fast.step(x, y);
    tf.dispose([x, y]);
  }
  const designSteps = (performance.now() - h0) / 1000;
  fast.dispose();
  designHead.dispose();

  const rows = [
    ['', 'design (onnxruntime features, TF.js head)', 'naive (every step through TF.js backbone)'],
    [
      'seconds per epoch',
      designEpoch.toFixed(1),
      `${naiveEpoch.toFixed(1)} (measured ${steps} steps: ${perStep.toFixed(2)} s/step × ${stepsPerEpoch} steps + validation ${naiveVal.toFixed(1)} s)`,
    ],
    [
      `whole run (${design.epochsRun} epochs)`,
      design.seconds.toFixed(1),
      `${(naiveEpoch * design.epochsRun).toFixed(1)} (extrapolated)`,
    ],
  ];
  for (const r of rows) console.log(`${(r[0] ?? '').padEnd(26)}${(r[1] ?? '').padEnd(44)}${r[2] ?? ''}`);
  console.log(`ratio (naive / design) per epoch: ${(naiveEpoch / designEpoch).toFixed(1)}×`);
  const ms = (v: number): string => `${(v / steps).toFixed(0)} ms`;
  console.log(
    `phases, design (one epoch of each, after the run): augmentation ${designAugment.toFixed(2)} s, extraction ${designExtract.toFixed(2)} s, head steps ${designSteps.toFixed(2)} s (${((designSteps / stepsPerEpoch) * 1000).toFixed(0)} ms a step)`,
  );
  console.log(
    `phases, naive (per step): augmentation ${ms(phase.augment)}, TF.js backbone ${ms(phase.backbone)}, trainOnBatch ${ms(phase.head)}`,
  );
  console.log(
    `design result: val_accuracy ${design.valAccuracy.toFixed(4)}, best epoch ${design.bestEpoch} of ${design.epochsRun}, seed ${seed}`,
  );
  // The ratio of one run moves with the machine's load (the two paths react to it differently).
  console.log(`load average at the end: ${loadAverage()}`);
  console.log(
    'note: the naive figure is extrapolated from a fixed number of timed steps (after one warm-up step); both were measured in this run.',
  );
}

await main();
