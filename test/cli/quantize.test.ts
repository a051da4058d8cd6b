/**
 * `facegate quantize` as a user runs it: a model directory with a manifest, a folder
 * tree of calibration images with a corrupt one in it, and the ways it must fail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { manifestSchema, type Manifest } from '../../src/model/manifest.js';
import { mobileNetGraph } from '../support/mobilenet-graph.js';
import { projectRoot, requireShared, sharedPaths } from '../support/shared.js';

const cli = path.join(projectRoot, 'dist', 'src', 'cli.js');
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function facegate(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], {
    encoding: 'utf8',
    env: { ...process.env, FACEGATE_LOG_LEVEL: 'warn' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function setup(): { root: string; modelDir: string; model: string; calibration: string } {
  const root = mkdtempSync(path.join(tmpdir(), 'facegate-quantize-cli-'));
  const modelDir = path.join(root, 'models', '20260101.120000');
  mkdirSync(modelDir, { recursive: true });
  const bytes = mobileNetGraph({ alpha: 0.25, blocks: 3, head: [32, 16], classes: 2 });
  const model = path.join(modelDir, 'model.onnx');
  writeFileSync(model, bytes);
  const manifest: Manifest = manifestSchema.parse({
    format: 'facegate-model',
    formatVersion: 1,
    version: '20260101.120000',
    createdAt: '2026-01-01T12:00:00Z',
    backbone: { name: 'mobilenet_v1', alpha: 0.25, source: 'test', featureNode: 'conv_pw_13_relu', featureSize: 32 },
    input: { height: 224, width: 224, preprocessing: { scale: 2 / 255, offset: -1 } },
    outputs: { embeddingSize: 16 },
    classes: ['s1', 's2'],
    files: { 'model.onnx': { sha256: sha(bytes), bytes: bytes.length } },
  });
  writeFileSync(path.join(modelDir, 'manifest.json'), JSON.stringify(manifest, null, 2));
  // calibration tree: two people's folders, nested, plus a corrupt file
  const calibration = path.join(root, 'faces');
  for (const person of ['s1', 's2']) {
    const dir = path.join(calibration, person, 'session');
    mkdirSync(dir, { recursive: true });
    for (const i of [1, 2, 3])
      copyFileSync(path.join(sharedPaths.orl, 'train', person, `${i}.png`), path.join(dir, `${i}.png`));
  }
  writeFileSync(path.join(calibration, 's2', 'broken.png'), Buffer.from('\x89PNG\r\n\x1a\nthis is not really a png'));
  writeFileSync(path.join(calibration, 'notes.txt'), 'not an image');
  return { root, modelDir, model, calibration };
}

test('facegate quantize writes model.int8.onnx beside the model and records it in the manifest', (t) => {
  if (!requireShared(t)) return;
  const { root, modelDir, model, calibration } = setup();
  try {
    const r = facegate('quantize', '--model', model, '--calibration', calibration, '--samples', '7');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /calibrating on 6 of 7 images .*1 unreadable skipped/);
    assert.match(r.stdout, /model\.int8\.onnx/);
    assert.match(r.stdout, /float: softmax \(Softmax\)/);
    const int8 = readFileSync(path.join(modelDir, 'model.int8.onnx'));
    const manifest = manifestSchema.parse(JSON.parse(readFileSync(path.join(modelDir, 'manifest.json'), 'utf8')));
    assert.deepEqual(manifest.files['model.int8.onnx'], { sha256: sha(int8), bytes: int8.length });
    assert.ok(manifest.files['model.onnx'], 'the fp32 entry is kept');
    const q = manifest.quantization ?? {};
    assert.equal(q.method, 'minmax');
    assert.equal(q.samples, 6);
    assert.equal(q.skippedImages, 1);
    assert.ok((q.biasCorrected as number) > 0, 'bias correction on by default');
    const rounding = q.rounding as { method: string; optimised: number };
    assert.equal(rounding.method, 'gptq', 'GPTQ rounding by default');
    assert.ok(rounding.optimised > 0);
    assert.match(r.stdout, /weights rounded by gptq \(\d+ nodes/);
    assert.equal(q.file, 'model.int8.onnx');
    assert.ok(Array.isArray(q.floatNodes));
    // every image was used for calibration, so the check ran on those
    assert.match(r.stdout, /int8 vs fp32 on 6 calibration images: top-1 agreement/);
    assert.equal((q.check as { images: number }).images, 6);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('facegate quantize --out elsewhere leaves the manifest alone; --method percentile, --no-bias-correction, --rounding nearest', (t) => {
  if (!requireShared(t)) return;
  const { root, modelDir, model, calibration } = setup();
  try {
    const before = readFileSync(path.join(modelDir, 'manifest.json'), 'utf8');
    const out = path.join(root, 'elsewhere', 'q.onnx');
    const r = facegate(
      'quantize',
      '--model',
      model,
      '--calibration',
      calibration,
      '--samples',
      '3',
      '--method',
      'percentile',
      '--out',
      out,
      '--no-bias-correction',
      '--rounding',
      'nearest',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(out));
    assert.equal(readFileSync(path.join(modelDir, 'manifest.json'), 'utf8'), before);
    assert.match(r.stdout, /int8 vs fp32 on 3 held-out images/);
    assert.match(r.stdout, /, 0 biases corrected, weights rounded by nearest\n/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('facegate quantize fails clearly on a truncated model, a manifest mismatch, bad flags and an empty folder', (t) => {
  if (!requireShared(t)) return;
  const { root, model, calibration } = setup();
  try {
    const bytes = readFileSync(model);
    // changed after the manifest was written
    writeFileSync(model, bytes.subarray(0, bytes.length - 10));
    let r = facegate('quantize', '--model', model, '--calibration', calibration);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /does not match .*manifest\.json/);
    // truncated, outside a model directory
    const loose = path.join(root, 'loose.onnx');
    writeFileSync(loose, bytes.subarray(0, Math.floor(bytes.length / 3)));
    r = facegate('quantize', '--model', loose, '--calibration', calibration);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^facegate: cannot read ONNX .*(corrupt|truncated)/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace for a user error');
    r = facegate('quantize', '--model', path.join(root, 'missing.onnx'), '--calibration', calibration);
    assert.match(r.stderr, /does not exist/);
    writeFileSync(loose, bytes);
    r = facegate('quantize', '--model', loose, '--calibration', calibration, '--samples', '0');
    assert.match(r.stderr, /--samples must be a positive integer/);
    r = facegate('quantize', '--model', loose, '--calibration', calibration, '--method', 'kl');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /minmax, percentile, entropy/);
    r = facegate('quantize', '--model', loose, '--calibration', calibration, '--rounding', 'adaround');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /gptq, nearest/);
    const empty = path.join(root, 'empty');
    mkdirSync(empty);
    r = facegate('quantize', '--model', loose, '--calibration', empty);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no images/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
