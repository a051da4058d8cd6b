import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { manifestSchema } from '../../src/model/manifest.js';
import { train } from '../../src/train/index.js';
import { OnnxModel } from '../../src/runtime/ort.js';
import { decodeRgb } from '../../src/shared/image.js';
import { FacegateError } from '../../src/shared/errors.js';
import { projectRoot, requireShared, sharedPaths } from '../support/shared.js';

const run = promisify(execFile);
const tmp: string[] = [];
after(async () => {
  for (const d of tmp) await rm(d, { recursive: true, force: true });
});
async function tmpDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'fg-train-'));
  tmp.push(d);
  return d;
}

test('facegate train --json prints one JSON object with the documented keys and writes the model directory', async (t) => {
  if (!requireShared(t)) return;
  const out = path.join(await tmpDir(), 'model');
  const { stdout } = await run(
    process.execPath,
    [
      path.join(projectRoot, 'dist/src/cli.js'),
      'train',
      '--data',
      sharedPaths.orl,
      '--out',
      out,
      '--weights',
      path.dirname(sharedPaths.mobilenet025),
      '--classes',
      's1,s2,s3',
      '--epochs',
      '3',
      '--seed',
      '11',
      '--crops',
      '--json',
    ],
    {
      cwd: projectRoot,
      env: Object.fromEntries(
        Object.entries(process.env).filter(([k]) => k !== 'FACEGATE_LOG_LEVEL' && k !== 'LOG_LEVEL'),
      ),
      maxBuffer: 1 << 24,
    },
  );
  const lines = stdout.trim().split('\n');
  assert.equal(lines.length, 1, `stdout holds only the JSON object:\n${stdout.slice(0, 2000)}`);
  const j = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
  for (const k of [
    'classes',
    'train_images',
    'validation_images',
    'skipped',
    'epochs_run',
    'best_epoch',
    'val_loss',
    'val_accuracy',
    'seconds',
    'backend',
  ]) {
    assert.ok(k in j, `key ${k}`);
  }
  assert.deepEqual(j.classes, ['s1', 's2', 's3']);
  assert.equal(j.train_images, 24);
  assert.equal(j.validation_images, 6);
  assert.deepEqual(j.skipped, []);
  assert.ok(typeof j.epochs_run === 'number' && j.epochs_run >= 1 && j.epochs_run <= 3);
  assert.ok(typeof j.best_epoch === 'number' && j.best_epoch >= 1 && j.best_epoch <= j.epochs_run);
  assert.ok(typeof j.val_accuracy === 'number' && j.val_accuracy >= 0 && j.val_accuracy <= 1);
  assert.ok(['tensorflow', 'wasm', 'cpu'].includes(j.backend as string));

  // The model directory: manifest valid, hashes right, labels, head, history, plot, ONNX files.
  const manifest = manifestSchema.parse(JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8')));
  assert.deepEqual(manifest.classes, ['s1', 's2', 's3']);
  assert.equal(manifest.backbone.alpha, 0.25);
  assert.equal(manifest.training?.seed, 11);
  for (const f of [
    'labels.json',
    'head/model.json',
    'head/weights.bin',
    'history.json',
    'history.png',
    'model.onnx',
    'model.int8.onnx',
    'checkpoint/model.json',
  ]) {
    const entry = manifest.files[f];
    assert.ok(entry, `manifest lists ${f}`);
    const bytes = await readFile(path.join(out, f));
    assert.equal(entry.bytes, bytes.byteLength);
    assert.equal(entry.sha256, createHash('sha256').update(bytes).digest('hex'));
  }
  assert.deepEqual(JSON.parse(await readFile(path.join(out, 'labels.json'), 'utf8')), ['s1', 's2', 's3']);
  const history = JSON.parse(await readFile(path.join(out, 'history.json'), 'utf8')) as {
    epochs: unknown[];
    bestEpoch: number;
  };
  assert.equal(history.epochs.length, j.epochs_run);
  const png = await sharp(path.join(out, 'history.png')).metadata();
  assert.equal(png.format, 'png');
  assert.ok((png.width ?? 0) > 400);

  // The exported graph classifies a validation face like the head did (outputs present, labels in metadata).
  const model = await OnnxModel.load(path.join(out, 'model.onnx'));
  assert.deepEqual([...model.outputNames].sort(), ['embedding', 'features', 'probabilities']);
  const img = await decodeRgb(path.join(sharedPaths.orl, 'validation', 's2', '9.png'), { width: 224, height: 224 });
  const r = await model.run({ pixels: { data: img.data, dims: [1, 224, 224, 3] } });
  assert.equal(r.probabilities?.dims[1], 3);
  assert.equal(r.embedding?.dims[1], 512);
  await model.release();
});

test('the same --seed gives the same numbers twice', async (t) => {
  if (!requireShared(t)) return;
  const base = await tmpDir();
  const opts = {
    data: sharedPaths.orl,
    weights: sharedPaths.mobilenet025,
    classes: ['s4', 's5', 's6'],
    epochs: 3,
    seed: 21,
    crops: true,
    export: false,
    quantize: false,
    progress: false,
  };
  const a = await train({ ...opts, out: path.join(base, 'a') });
  const b = await train({ ...opts, out: path.join(base, 'b') });
  assert.deepEqual(
    b.history.map((h) => [h.loss, h.accuracy, h.val_loss, h.val_accuracy]),
    a.history.map((h) => [h.loss, h.accuracy, h.val_loss, h.val_accuracy]),
  );
  assert.equal(b.valAccuracy, a.valAccuracy);
  assert.deepEqual(
    await readFile(path.join(base, 'b', 'head', 'weights.bin')),
    await readFile(path.join(base, 'a', 'head', 'weights.bin')),
  );
  const c = await train({ ...opts, seed: 22, out: path.join(base, 'c') });
  assert.notDeepEqual(
    c.history.map((h) => h.loss),
    a.history.map((h) => h.loss),
    'another seed, other numbers',
  );
});

test('a non-empty output directory is refused without --force', async (t) => {
  if (!requireShared(t)) return;
  const base = await tmpDir(); // holds nothing; its parent (the temp folder) is not empty
  await assert.rejects(
    train({
      data: sharedPaths.orl,
      out: path.dirname(base),
      weights: sharedPaths.mobilenet025,
      classes: ['s1', 's2'],
      progress: false,
    }),
    (e: Error) => e instanceof FacegateError && /--force/.test(e.message),
  );
});
