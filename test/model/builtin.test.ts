/** The built-in models: prepared once (idempotent, verified by sha256), loaded as ONNX, refused with the command when stale. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { builtinModelPath, builtinDir, builtinRecordPath } from '../../src/model/builtin.js';
import { prepareBuiltinModels } from '../../src/model/export/builtin.js';
import { OnnxModel } from '../../src/runtime/ort.js';

test('prepare converts once, then keeps verified files; the device path loads faceres [N, 1024] and dlib [N, 128] `features`, and the face mesh', async () => {
  const cacheDir = await mkdtemp(path.join(tmpdir(), 'facegate-builtin-'));
  try {
    await assert.rejects(builtinModelPath('faceres', { cacheDir }), /facegate models prepare --cache-dir/);
    const first = await prepareBuiltinModels({ cacheDir });
    assert.deepEqual(
      first.map((m) => [m.name, m.status]),
      [
        ['blazeface', 'prepared'],
        ['faceres', 'prepared'],
        ['dlib', 'prepared'],
        ['facemesh', 'prepared'],
      ],
    );
    const file = await builtinModelPath('faceres', { cacheDir });
    const before = (await stat(file)).mtimeMs;
    const second = await prepareBuiltinModels({ cacheDir });
    assert.deepEqual(
      second.map((m) => m.status),
      ['ready', 'ready', 'ready', 'ready'],
    );
    assert.equal((await stat(file)).mtimeMs, before, 'a verified file is not written again');

    const model = await OnnxModel.load(file);
    try {
      model.assertSignature({
        inputs: [{ name: 'pixels', dtype: 'uint8', shape: [null, 224, 224, 3] }],
        outputs: [{ name: 'features', dtype: 'float32', shape: [null, 1024] }],
      });
    } finally {
      await model.release();
    }
    const dlib = await OnnxModel.load(await builtinModelPath('dlib', { cacheDir }));
    try {
      dlib.assertSignature({
        inputs: [{ name: 'pixels', dtype: 'uint8', shape: [null, 150, 150, 3] }],
        outputs: [{ name: 'features', dtype: 'float32', shape: [null, 128] }],
      });
    } finally {
      await dlib.release();
    }
    // The face mesh loads through its own check (192×192 float input, 468 × 3 points out).
    const { FaceMesh } = await import('../../src/detect/mesh.js');
    await (await FaceMesh.load(await builtinModelPath('facemesh', { cacheDir }))).close();

    // A damaged file is refused with the command, and prepare mends it.
    const bytes = await readFile(file);
    bytes.writeUInt8((bytes.at(-1) as number) ^ 0xff, bytes.length - 1);
    await writeFile(file, bytes);
    await assert.rejects(builtinModelPath('faceres', { cacheDir }), (err: Error) => {
      assert.match(err.message, /does not match its record/);
      assert.match(err.message, /facegate models prepare/);
      return true;
    });
    const mended = await prepareBuiltinModels({ cacheDir, names: ['faceres'] });
    assert.equal(mended[0]?.status, 'prepared');
    assert.equal(await builtinModelPath('faceres', { cacheDir }), file);

    // A record from another recipe is stale.
    const rec = builtinRecordPath('blazeface', builtinDir(cacheDir));
    const r = JSON.parse(await readFile(rec, 'utf8')) as { recipe: number };
    await writeFile(rec, JSON.stringify({ ...r, recipe: r.recipe + 100 }));
    await assert.rejects(builtinModelPath('blazeface', { cacheDir }), /another version of facegate/);
  } finally {
    await rm(cacheDir, { recursive: true, force: true });
  }
});
