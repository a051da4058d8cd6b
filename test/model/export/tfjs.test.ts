/**
 * The TF.js artifacts reader: dequantisation against TF.js's own decoder, and clear
 * errors for truncated, corrupt or missing files.
 */
import assert from 'node:assert/strict';
import {
  copyFileSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
  appendFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { decodeWeights, humanModelJson, readTfjsModel } from '../../../src/model/export/index.js';
import { ModelError } from '../../../src/shared/errors.js';
import { maxAbsDiff, randomTensorData, tf } from './tfjs-reference.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'facegate-export-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A copy of a human model (json + bin) in its own folder, to damage. */
function copyModel(name: string): string {
  const dir = mkdtempSync(path.join(tmp, `${name}-`));
  const json = humanModelJson(name);
  copyFileSync(json, path.join(dir, 'model.json'));
  copyFileSync(json.replace(/\.json$/, '.bin'), path.join(dir, `${name}.bin`));
  return path.join(dir, 'model.json');
}

function expectModelError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ModelError, `expected a ModelError, got ${String(err)}`);
    assert.match(err.message, pattern);
    return true;
  });
}

describe('readTfjsModel', () => {
  test('float16-quantised weights (faceres) decode exactly as TF.js decodes them', () => {
    const file = humanModelJson('faceres');
    const ours = readTfjsModel(file);
    const j = JSON.parse(readFileSync(file, 'utf8')) as {
      weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
    };
    assert.ok(
      j.weightsManifest.some((g) => g.weights.some((w) => w.quantization?.dtype === 'float16')),
      'fixture has float16 weights',
    );
    const bytes = readFileSync(file.replace(/\.json$/, '.bin'));
    const theirs = tf.io.decodeWeights(
      bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
      j.weightsManifest.flatMap((g) => g.weights),
    );
    assert.equal(ours.kind, 'graph');
    assert.equal(ours.weights.size, Object.keys(theirs).length);
    for (const [name, t] of Object.entries(theirs)) {
      const w = ours.weights.get(name);
      assert.ok(w, `weight ${name}`);
      assert.deepEqual([...w.shape], t.shape);
      assert.equal(maxAbsDiff(w.data, t.dataSync()), 0, name);
      t.dispose();
    }
  });

  test('uint8 and uint16 affine-quantised weights decode as TF.js decodes them', () => {
    const specs: tf.io.WeightsManifestEntry[] = [
      { name: 'a', shape: [3, 5], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.013, min: -1.2 } },
      { name: 'b', shape: [7], dtype: 'float32', quantization: { dtype: 'uint16', scale: 0.0007, min: -3 } },
      { name: 'c', shape: [4], dtype: 'float32' },
      { name: 'd', shape: [2], dtype: 'int32' },
    ];
    const a = Uint8Array.from(randomTensorData(1, [15], 1), (v) => Math.round((v + 1) * 127));
    const b = Uint16Array.from(randomTensorData(2, [7], 1), (v) => Math.round((v + 1) * 30000));
    const c = randomTensorData(3, [4]);
    const d = Int32Array.of(-7, 123456);
    const buf = Buffer.concat(
      [a, Buffer.from(b.buffer), Buffer.from(c.buffer), Buffer.from(d.buffer)].map((x) => Buffer.from(x)),
    );
    const ours = decodeWeights(buf, specs);
    const theirs = tf.io.decodeWeights(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength), specs);
    for (const s of specs) {
      const w = ours.get(s.name);
      const t = theirs[s.name];
      assert.ok(w && t);
      assert.ok(maxAbsDiff(w.data, t.dataSync()) <= 1e-6, s.name);
    }
    assert.equal(ours.get('d')?.dtype, 'int32');
  });

  test('a truncated model.json is a ModelError that names the file', () => {
    const file = copyModel('liveness');
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, text.slice(0, Math.floor(text.length / 2)));
    expectModelError(() => readTfjsModel(file), /model\.json is not valid JSON.*truncated or corrupt/s);
  });

  test('a model.json that is JSON but not a TF.js model says what is wrong', () => {
    const file = copyModel('liveness');
    writeFileSync(file, JSON.stringify({ format: 'graph-model', weightsManifest: 'x' }));
    expectModelError(() => readTfjsModel(file), /not a TF\.js model\.json[\s\S]*modelTopology/);
  });

  test('a missing weight shard is a ModelError that names it', () => {
    const file = copyModel('liveness');
    unlinkSync(path.join(path.dirname(file), 'liveness.bin'));
    expectModelError(() => readTfjsModel(file), /weight shard .*liveness\.bin is missing/);
  });

  test('a truncated weight shard is a ModelError with the sizes', () => {
    const file = copyModel('antispoof');
    const bin = path.join(path.dirname(file), 'antispoof.bin');
    truncateSync(bin, 1000);
    expectModelError(() => readTfjsModel(file), /truncated: the manifest needs \d+ bytes, found 1000/);
  });

  test('a weight shard with extra bytes is refused too', () => {
    const file = copyModel('liveness');
    appendFileSync(path.join(path.dirname(file), 'liveness.bin'), Buffer.alloc(4));
    expectModelError(() => readTfjsModel(file), /too long/);
  });

  test('a model folder can be given instead of its model.json', () => {
    const file = copyModel('liveness');
    assert.equal(readTfjsModel(path.dirname(file)).source, file);
  });

  test('a missing model.json says so', () => {
    expectModelError(() => readTfjsModel(path.join(tmp, 'nowhere', 'model.json')), /TF\.js model file .* is missing/);
  });
});
