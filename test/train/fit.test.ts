import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { initBackend } from '../../src/train/backend.js';
import { loadTfjsBackbone, resolveBackbone } from '../../src/train/backbone.js';
import { cropPreparer, loadDataset } from '../../src/train/data.js';
import { tfjsExtractor } from '../../src/train/features.js';
import { evaluate, fitHead } from '../../src/train/fit.js';
import { buildHead } from '../../src/train/head.js';
import { onnxExtractor } from '../../src/train/onnx-features.js';
import { loadLayersModel } from '../../src/train/tfjs-io.js';
import { TUTORIAL_AUGMENTATION } from '../../src/train/augment.js';
import { requireShared, sharedPaths } from '../support/shared.js';

test('the backbone stays frozen: weights and BatchNorm statistics identical before and after training', async (t) => {
  if (!requireShared(t)) return;
  await initBackend();
  const spec = await resolveBackbone({ name: 'mobilenet_v1', weights: sharedPaths.mobilenet025 });
  const backbone = await loadTfjsBackbone(spec);
  const before = backbone.snapshot();
  assert.ok(
    [...before.keys()].some((k) => /moving_mean/.test(k)) && [...before.keys()].some((k) => /moving_variance/.test(k)),
    'the snapshot includes BatchNorm statistics',
  );
  const ds = await loadDataset({
    dir: sharedPaths.orl,
    preparer: cropPreparer(224),
    validationSplit: 0.2,
    seed: 1,
    classes: ['s1', 's2'],
  });
  const head = buildHead(spec.featureSize, 2, 1, 0.001);
  // The TF.js extractor is the path where the trap would bite (the backbone runs in TF.js every epoch, augmented).
  const r = await fitHead({
    head,
    extractor: tfjsExtractor(backbone),
    train: ds.train,
    validation: ds.validation,
    numClasses: 2,
    epochs: 2,
    batchSize: 9,
    patience: 3,
    seed: 1,
    augment: TUTORIAL_AUGMENTATION,
  });
  assert.equal(r.epochsRun, 2);
  const after = backbone.snapshot();
  assert.equal(after.size, before.size);
  for (const [name, w] of before) assert.deepEqual(after.get(name), w, `${name} changed`);
  // And they still equal the weights on disk.
  const fresh = await loadTfjsBackbone(spec);
  for (const [name, w] of fresh.snapshot()) assert.deepEqual(after.get(name), w, `${name} differs from the file`);
  fresh.dispose();
  backbone.dispose();
  head.dispose();
});

test('checkpoint keeps the best val_loss and early stopping restores it when val_loss rises', async (t) => {
  if (!requireShared(t)) return;
  await initBackend();
  const spec = await resolveBackbone({ name: 'mobilenet_v1', weights: sharedPaths.mobilenet025 });
  const ds = await loadDataset({
    dir: sharedPaths.orl,
    preparer: cropPreparer(224),
    validationSplit: 0.2,
    seed: 1,
    classes: ['s1', 's2', 's3'],
  });
  // Half the validation labels rotated (one of s1's two faces labelled s2, …): val_loss first
  // falls while the head learns, then rises as it grows confident on the mislabelled half,
  // so early stopping must fire and restore an earlier epoch.
  const validation = ds.validation.map((s, i) => ({
    image: s.image,
    label: i % 2 === 0 ? s.label : (s.label + 1) % 3,
  }));
  const extractor = await onnxExtractor(spec);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fg-ckpt-'));
  try {
    const head = buildHead(spec.featureSize, 3, 5, 0.00002);
    const saves: number[] = [];
    const r = await fitHead({
      head,
      extractor,
      train: ds.train,
      validation,
      numClasses: 3,
      epochs: 30,
      batchSize: 9,
      patience: 2,
      seed: 5,
      augment: null,
      checkpointDir: path.join(dir, 'checkpoint'),
      onEpochEnd: (l, improved) => {
        if (improved) saves.push(l.epoch);
      },
    });
    const losses = r.history.map((h) => h.val_loss);
    const best = losses.indexOf(Math.min(...losses)) + 1;
    t.diagnostic(`val_loss per epoch: ${losses.map((l) => l.toFixed(4)).join(', ')}`);
    assert.equal(r.bestEpoch, best);
    assert.ok(best > 1, 'val_loss fell at first (the head learns)');
    assert.ok(r.stoppedEarly, `early stopping fired (val_loss ${losses.map((l) => l.toFixed(3)).join(', ')})`);
    assert.equal(r.epochsRun, best + 2, 'stopped patience epochs after the best');
    assert.ok(
      (losses.at(-1) ?? 0) > (losses[best - 1] ?? 0),
      `val_loss rose after the best epoch: ${losses.join(', ')}`,
    );
    assert.equal(saves.at(-1), best, 'the last checkpoint is the best epoch');
    // The head now holds the best epoch's weights (restore_best_weights) …
    const valFeatures = await extractor.extract(validation.map((v) => v.image));
    const now = evaluate(
      head,
      valFeatures,
      validation.map((v) => v.label),
      spec.featureSize,
      3,
    );
    assert.ok(
      Math.abs(now.loss - (losses[best - 1] ?? Number.NaN)) < 1e-5,
      `restored val_loss ${now.loss} vs best ${losses[best - 1]}`,
    );
    // … and so does the checkpoint on disk.
    const ckpt = await loadLayersModel(path.join(dir, 'checkpoint', 'model.json'));
    const fromDisk = evaluate(
      ckpt,
      valFeatures,
      validation.map((v) => v.label),
      spec.featureSize,
      3,
    );
    assert.ok(Math.abs(fromDisk.loss - now.loss) < 1e-5);
    const a = head.getWeights().map((w) => Array.from(w.dataSync()));
    const b = ckpt.getWeights().map((w) => Array.from(w.dataSync()));
    assert.deepEqual(a, b);
    assert.ok(JSON.parse(await readFile(path.join(dir, 'checkpoint', 'model.json'), 'utf8')));
    ckpt.dispose();
    head.dispose();
  } finally {
    await extractor.dispose();
    await rm(dir, { recursive: true, force: true });
  }
});
