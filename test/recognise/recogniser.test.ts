/**
 * Which model file runs: `choosePrecision` on manifests, and `Recogniser.load` picking
 * fp32 for a model directory whose int8 check missed 99 % (precision auto, the default).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { manifestSchema, type Manifest } from '../../src/model/manifest.js';
import { Recogniser, choosePrecision } from '../../src/recognise/recogniser.js';
import { trainedModelDir } from '../support/fixtures.js';
import { requireShared } from '../support/shared.js';

const entry = { sha256: 'a'.repeat(64), bytes: 1 };

function manifest(files: string[], quantization?: Record<string, unknown>): Manifest {
  return manifestSchema.parse({
    format: 'facegate-model',
    formatVersion: 1,
    version: '1',
    createdAt: '2026-01-01T00:00:00Z',
    backbone: { name: 'mobilenet_v1', alpha: 0.25, source: 'test', featureNode: 'conv_pw_13_relu', featureSize: 8 },
    input: { height: 224, width: 224, preprocessing: { scale: 2 / 255, offset: -1 } },
    outputs: { embeddingSize: 4 },
    classes: ['a', 'b'],
    files: Object.fromEntries(files.map((f) => [f, entry])),
    ...(quantization ? { quantization } : {}),
  });
}

test('choosePrecision: auto runs int8 only when its recorded check reached 99 %; int8 / fp32 as asked', () => {
  const both = ['model.onnx', 'model.int8.onnx'];
  assert.deepEqual(
    choosePrecision(manifest(both, { top1Agreement: 1 }), 'auto'),
    { precision: 'int8' },
    'facegate train figure',
  );
  assert.deepEqual(
    choosePrecision(manifest(both, { check: { top1Agreement: 0.99 } }), 'auto'),
    { precision: 'int8' },
    'facegate quantize check, at the target',
  );
  const low = choosePrecision(manifest(both, { top1Agreement: 0.975 }), 'auto');
  assert.equal(low.precision, 'fp32');
  assert.match(low.reason ?? '', /97\.50 % .*< 99 %/);
  // the quantize check wins over a training figure left beside it
  assert.equal(
    choosePrecision(manifest(both, { top1Agreement: 1, check: { top1Agreement: 0.9 } }), 'auto').precision,
    'fp32',
  );
  assert.match(choosePrecision(manifest(both, { method: 'minmax' }), 'auto').reason ?? '', /records no check/);
  assert.match(choosePrecision(manifest(['model.onnx']), 'auto').reason ?? '', /no model\.int8\.onnx/);
  assert.deepEqual(choosePrecision(manifest(both, { top1Agreement: 0.5 }), 'int8'), { precision: 'int8' });
  assert.deepEqual(choosePrecision(manifest(both, { top1Agreement: 1 }), 'fp32'), { precision: 'fp32' });
});

test('Recogniser.load with precision auto runs model.onnx when the int8 check missed 99 %, model.int8.onnx when it passed', async (t) => {
  if (!requireShared(t)) return;
  const root = await mkdtemp(path.join(tmpdir(), 'facegate-precision-'));
  try {
    const dir = path.join(root, 'model');
    await cp(await trainedModelDir({ backbone: 'mobilenet_v1' }), dir, { recursive: true });
    const file = path.join(dir, 'manifest.json');
    const m = JSON.parse(await readFile(file, 'utf8')) as { quantization: Record<string, unknown> };
    for (const [agreement, want] of [
      [0.975, 'fp32'],
      [1, 'int8'],
    ] as const) {
      await writeFile(file, JSON.stringify({ ...m, quantization: { ...m.quantization, top1Agreement: agreement } }));
      const r = await Recogniser.load({ modelDir: dir, threads: 1 });
      try {
        assert.equal(r.precision, want, `agreement ${agreement}`);
      } finally {
        await r.close();
      }
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
