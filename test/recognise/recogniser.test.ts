/**
 * Which model file runs: `choosePrecision` on manifests, and `Recogniser.load` picking
 * fp32 for a model directory whose int8 check missed 99 % (precision auto, the default),
 * and `auto` by measured speed among the files that passed (an injected timer).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { manifestSchema, type Manifest } from '../../src/model/manifest.js';
import {
  Recogniser,
  choosePrecision,
  fasterPrecision,
  timePrecisions,
  type ModelTimer,
} from '../../src/recognise/recogniser.js';
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
      // int8 timed as the faster file, so that only the accuracy gate decides here
      const timer: ModelTimer = (file) => Promise.resolve(file.endsWith('model.int8.onnx') ? 1 : 2);
      const r = await Recogniser.load({ modelDir: dir, threads: 1, timer });
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

/** A timer that reports fixed times per file and records which files it was asked about. */
function fakeTimer(ms: { int8: number; fp32: number }): ModelTimer & { files: string[] } {
  const files: string[] = [];
  const timer = (file: string): Promise<number> => {
    files.push(path.basename(file));
    return Promise.resolve(file.endsWith('model.int8.onnx') ? ms.int8 : ms.fp32);
  };
  return Object.assign(timer, { files });
}

test('precision auto runs the faster file: fp32 when int8 times slower, int8 when it times faster', async () => {
  const m = manifest(['model.onnx', 'model.int8.onnx'], { top1Agreement: 1 });
  const slowInt8 = fakeTimer({ int8: 9.5, fp32: 6.25 });
  assert.deepEqual(await timePrecisions(m, '/models/x', 'auto', slowInt8), {
    asked: 'auto',
    running: 'fp32',
    reason: 'fp32 ran faster here (6.25 ms against int8 9.50 ms a face)',
    int8Ms: 9.5,
    fp32Ms: 6.25,
  });
  assert.deepEqual(slowInt8.files.sort(), ['model.int8.onnx', 'model.onnx'], 'both files timed');
  const fastInt8 = await timePrecisions(m, '/models/x', 'auto', fakeTimer({ int8: 3, fp32: 7 }));
  assert.equal(fastInt8.running, 'int8');
  assert.deepEqual([fastInt8.int8Ms, fastInt8.fp32Ms], [3, 7]);
  assert.equal(fasterPrecision({ int8Ms: 4, fp32Ms: 4 }), 'int8', 'a tie keeps int8');
});

test('precision auto never times a file that failed the accuracy gate; a file asked for by name is not timed', async () => {
  const failed = fakeTimer({ int8: 1, fp32: 100 });
  const r = await timePrecisions(
    manifest(['model.onnx', 'model.int8.onnx'], { top1Agreement: 0.9 }),
    '/m',
    'auto',
    failed,
  );
  assert.equal(r.running, 'fp32', 'int8 failed the gate: fp32 although int8 would be faster');
  assert.match(r.reason ?? '', /90\.00 %/);
  assert.deepEqual([r.int8Ms, r.fp32Ms, failed.files.length], [null, null, 0]);
  const byName = fakeTimer({ int8: 100, fp32: 1 });
  const asked = await timePrecisions(
    manifest(['model.onnx', 'model.int8.onnx'], { top1Agreement: 1 }),
    '/m',
    'int8',
    byName,
  );
  assert.deepEqual(asked, { asked: 'int8', running: 'int8', reason: null, int8Ms: null, fp32Ms: null });
  assert.equal(byName.files.length, 0);
});

test('Recogniser.load with precision auto and an injected timer runs the faster file and reports both timings', async (t) => {
  if (!requireShared(t)) return;
  const dir = await trainedModelDir({ backbone: 'mobilenet_v1' });
  for (const [ms, want] of [
    [{ int8: 8, fp32: 5 }, 'fp32'],
    [{ int8: 2, fp32: 5 }, 'int8'],
  ] as const) {
    const r = await Recogniser.load({ modelDir: dir, threads: 1, timer: fakeTimer(ms) });
    try {
      assert.equal(r.precision, want);
      assert.deepEqual([r.precisionReport.int8Ms, r.precisionReport.fp32Ms], [ms.int8, ms.fp32]);
    } finally {
      await r.close();
    }
  }
});
