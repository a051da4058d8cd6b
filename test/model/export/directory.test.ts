/**
 * `facegate export --model DIR` and `--tfjs`: re-exporting a trained model directory
 * (manifest checks, hashes, metadata) and the CLI's errors, end to end.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { reexportModelDir } from '../../../src/model/export/directory.js';
import { manifestSchema, type Manifest } from '../../../src/model/manifest.js';
import { decodeModel, metadataOf } from '../../../src/model/onnx/builder.js';
import { OnnxModel } from '../../../src/runtime/ort.js';
import { ModelError } from '../../../src/shared/errors.js';
import { projectRoot, requireShared, sharedPaths } from '../../support/shared.js';
import { tf, useBackend } from './tfjs-reference.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'facegate-export-dir-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const cli = path.join(projectRoot, 'dist', 'src', 'cli.js');

const classes = ['ada', 'grace', 'linus'];

/** Writes a TF.js LayersModel as model.json + weights.bin, as `facegate train` does. */
async function saveLayers(model: tf.LayersModel, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler((a) => {
      const data = Array.isArray(a.weightData) ? tf.io.CompositeArrayBuffer.join(a.weightData) : a.weightData;
      writeFileSync(path.join(dir, 'weights.bin'), Buffer.from(data ?? new ArrayBuffer(0)));
      writeFileSync(
        path.join(dir, 'model.json'),
        JSON.stringify({
          format: 'layers-model',
          modelTopology: a.modelTopology,
          weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }],
        }),
      );
      return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } });
    }),
  );
}

/** A small trained-looking model directory on the MobileNet 0.25 backbone. */
async function makeModelDir(name: string, overrides: Partial<Manifest> = {}): Promise<string> {
  const dir = path.join(tmp, name);
  const head = tf.sequential();
  head.add(tf.layers.dense({ inputShape: [256], units: 32, activation: 'relu' }));
  head.add(tf.layers.dense({ units: 16, activation: 'relu', name: 'embedding' }));
  head.add(tf.layers.dense({ units: classes.length, activation: 'softmax', name: 'probabilities' }));
  await saveLayers(head, path.join(dir, 'head'));
  writeFileSync(path.join(dir, 'labels.json'), JSON.stringify(classes));
  const manifest = manifestSchema.parse({
    format: 'facegate-model',
    formatVersion: 1,
    version: '20260102.030405',
    createdAt: '2026-01-02T03:04:05Z',
    backbone: {
      name: 'mobilenet_v1',
      alpha: 0.25,
      source: sharedPaths.mobilenet025,
      featureNode: 'conv_pw_13_relu',
      featureSize: 256,
    },
    input: { height: 224, width: 224, preprocessing: { scale: 1 / 127.5, offset: -1 } },
    outputs: { embeddingSize: 16 },
    classes,
    files: {},
    ...overrides,
  });
  writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
  return dir;
}

function runCli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], {
    encoding: 'utf8',
    env: { ...process.env, FACEGATE_LOG_LEVEL: 'silent' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('facegate export --model DIR', () => {
  before(async () => {
    await useBackend('cpu');
  });

  test('rebuilds model.onnx, records its hash in the manifest and puts the labels in its metadata', async (t) => {
    if (!requireShared(t)) return;
    const dir = await makeModelDir('ok');
    const result = reexportModelDir(dir);
    const bytes = readFileSync(path.join(dir, 'model.onnx'));
    const manifest = manifestSchema.parse(JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')));
    assert.deepEqual(manifest.files['model.onnx'], {
      sha256: createHash('sha256').update(bytes).digest('hex'),
      bytes: bytes.length,
    });
    assert.equal(result.changed, true);
    const meta = metadataOf(decodeModel(bytes));
    assert.deepEqual(JSON.parse(meta.labels ?? '[]'), classes);
    assert.equal(meta.version, '20260102.030405');
    assert.equal(meta.backbone, 'mobilenet_v1');
    assert.equal(meta.backbone_alpha, '0.25');
    const model = await OnnxModel.load(path.join(dir, 'model.onnx'));
    model.assertSignature({
      inputs: [{ name: 'pixels', dtype: 'uint8', shape: [null, 224, 224, 3] }],
      outputs: [
        { name: 'probabilities', dtype: 'float32', shape: [null, 3] },
        { name: 'embedding', dtype: 'float32', shape: [null, 16] },
        { name: 'features', dtype: 'float32', shape: [null, 256] },
      ],
    });
    await model.release();
    // The same inputs give the same bytes: a second export reports no change.
    assert.equal(reexportModelDir(dir).changed, false);
  });

  test('the CLI prints what it wrote and the graph signature', async (t) => {
    if (!requireShared(t)) return;
    const dir = await makeModelDir('cli');
    const r = runCli(['export', '--model', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /wrote .*model\.onnx/);
    assert.match(r.stdout, /inputs: pixels uint8\[N,224,224,3\]/);
    assert.match(
      r.stdout,
      /outputs: probabilities float32\[N,3\], embedding float32\[N,16\], features float32\[N,256\]/,
    );
  });

  test('a manifest that does not match the head is refused, naming the mismatch', async (t) => {
    if (!requireShared(t)) return;
    const dir = await makeModelDir('mismatch', { classes: ['a', 'b'] });
    assert.throws(
      () => reexportModelDir(dir),
      (err: unknown) => err instanceof ModelError && /head has 3 outputs, manifest lists 2 classes/.test(err.message),
    );
    assert.equal(existsSync(path.join(dir, 'model.onnx')), false, 'nothing written');
  });

  test('a missing head weight file is a clear error in the CLI (non-zero exit)', async (t) => {
    if (!requireShared(t)) return;
    const dir = await makeModelDir('nohead');
    unlinkSync(path.join(dir, 'head', 'weights.bin'));
    const r = runCli(['export', '--model', dir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /weight shard .*weights\.bin is missing/);
  });

  test('a directory without a manifest is not a model directory', () => {
    const r = runCli(['export', '--model', tmp]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not a model directory: manifest\.json is missing/);
  });
});

describe('facegate export --tfjs', () => {
  test('converts a bundled human model by name, with chosen outputs', () => {
    const out = path.join(tmp, 'liveness.onnx');
    const r = runCli(['export', '--tfjs', 'human:liveness', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /inputs: conv2d_1_input float32\[N,32,32,3\]/);
    assert.ok(existsSync(out));
  });

  test('a corrupt model.json fails with a clear message and writes nothing', () => {
    const bad = path.join(tmp, 'bad', 'model.json');
    mkdirSync(path.dirname(bad), { recursive: true });
    writeFileSync(bad, '{"modelTopology": {"node": [');
    const out = path.join(tmp, 'bad.onnx');
    const r = runCli(['export', '--tfjs', bad, '--out', out]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not valid JSON.*truncated or corrupt/);
    assert.equal(existsSync(out), false);
  });

  test('usage errors say what to pass', () => {
    assert.match(runCli(['export']).stderr, /pass either --model DIR .* or --tfjs MODEL_JSON --out FILE\.onnx/);
    assert.match(runCli(['export', '--tfjs', 'human:liveness']).stderr, /--tfjs needs --out FILE\.onnx/);
  });
});
