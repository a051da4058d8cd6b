/**
 * The model directory's sections: model directories written by the two older quantisers
 * (fixtures written by hand as they wrote them) still load, their check is migrated into
 * the one shape, and `precision: auto` reads it, including the stranger decisions on `features`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { int8Check, manifestSchema, readManifest } from '../../../src/model/manifest.js';
import { migrateQuantization, meetsTarget } from '../../../src/model/dir/sections.js';
import { updateQuantization } from '../../../src/model/dir/directory.js';
import { digestBytes } from '../../../src/model/dir/hash.js';
import { choosePrecision } from '../../../src/recognise/recogniser.js';

const fixture = (name: string): string => path.join(process.cwd(), 'test', 'fixtures', 'manifests', name);

async function modelDirWith(manifestFile: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'facegate-sections-'));
  await writeFile(path.join(dir, 'manifest.json'), await readFile(fixture(manifestFile)));
  return dir;
}

test("a model directory from facegate train's old writer loads; its figures become the check", async () => {
  const dir = await modelDirWith('train-quantization.json');
  try {
    const m = readManifest(dir);
    assert.deepEqual(int8Check(m), {
      on: 'validation',
      images: 4,
      top1Agreement: 1,
      accuracyFp32: 1,
      accuracyInt8: 1,
      maxAbsDiffProbability: 0.004,
      minEmbeddingCosine: 0.998,
    });
    assert.equal(m.quantization?.method, 'minmax');
    assert.equal(m.training?.seed, 42);
    assert.deepEqual(choosePrecision(m, 'auto'), { precision: 'int8' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a model directory from facegate quantize's old writer loads; heldOut becomes `on`", async () => {
  const dir = await modelDirWith('quantize-quantization.json');
  try {
    const m = readManifest(dir);
    assert.deepEqual(int8Check(m), {
      on: 'held-out',
      images: 8,
      top1Agreement: 0.975,
      maxAbsDiffProbability: 0.03,
      minEmbeddingCosine: 0.99,
      meetsTarget: false,
    });
    assert.equal(m.quantization?.file, 'model.int8.onnx');
    const p = choosePrecision(m, 'auto');
    assert.equal(p.precision, 'fp32');
    assert.match(p.reason ?? '', /97\.50 %/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the migration keeps the more cautious of two figures and leaves the new shape alone', () => {
  assert.deepEqual(migrateQuantization({ top1Agreement: 1, minEmbeddingCosine: 0.9, check: { top1Agreement: 0.95 } }), {
    check: { top1Agreement: 0.95, minEmbeddingCosine: 0.9 },
  });
  const fresh = { method: 'minmax', check: { on: 'validation', images: 3, top1Agreement: 1 } };
  assert.deepEqual(migrateQuantization(fresh), fresh);
  assert.equal(migrateQuantization(null), null);
});

test('precision auto refuses int8 when the stranger decisions on features disagree, whatever top-1 says', async () => {
  const raw = JSON.parse(await readFile(fixture('train-quantization.json'), 'utf8')) as Record<string, unknown>;
  const check = {
    on: 'validation',
    images: 100,
    top1Agreement: 1,
    features: { minCosine: 0.9, meanCosine: 0.98, decisionAgreement: 0.97 },
  };
  const m = manifestSchema.parse({ ...raw, quantization: { method: 'minmax', check } });
  assert.equal(meetsTarget(check as never), false);
  const p = choosePrecision(m, 'auto');
  assert.equal(p.precision, 'fp32');
  assert.match(p.reason ?? '', /stranger|refused or named/);
  const ok = manifestSchema.parse({
    ...raw,
    quantization: { check: { ...check, features: { ...check.features, decisionAgreement: 1 } } },
  });
  assert.deepEqual(choosePrecision(ok, 'auto'), { precision: 'int8' });
});

test('updateQuantization records the int8 file and its section atomically, and the result reads back', async () => {
  const dir = await modelDirWith('quantize-quantization.json');
  try {
    const before = readManifest(dir);
    const bytes = new Uint8Array([1, 2, 3]);
    const file = path.join(dir, 'model.int8.onnx');
    await writeFile(file, bytes);
    await updateQuantization(dir, before, file, bytes, {
      method: 'minmax',
      check: { on: 'held-out', images: 2, top1Agreement: 1, meetsTarget: true },
    });
    const after = readManifest(dir);
    assert.deepEqual(after.files['model.int8.onnx'], digestBytes(bytes));
    assert.deepEqual(after.quantization, {
      method: 'minmax',
      file: 'model.int8.onnx',
      check: { on: 'held-out', images: 2, top1Agreement: 1, meetsTarget: true },
    });
    assert.deepEqual(after.recognition, before.recognition, 'other sections are kept');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
