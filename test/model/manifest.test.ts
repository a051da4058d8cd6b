/**
 * readManifest is the one reader of manifest.json: the recogniser (predict, eval, the
 * daemon) and the update store's model check give its errors, which say what to do.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MANIFEST_FILE, readManifest } from '../../src/model/manifest.js';
import { Recogniser } from '../../src/recognise/recogniser.js';
import { ModelError } from '../../src/shared/errors.js';
import { verifyModelDir } from '../../src/model/dir/directory.js';
import { writeTinyModelDir } from '../update/helpers.js';

test('readManifest: a valid manifest is read; missing, corrupt and invalid ones are ModelErrors saying what to do, from every reader', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'facegate-manifest-'));
  try {
    const good = await writeTinyModelDir(path.join(dir, 'good'), { version: '1.0', seed: 1 });
    assert.equal(readManifest(good).version, '1.0');
    assert.equal((await verifyModelDir(good)).version, '1.0');

    const empty = path.join(dir, 'empty');
    await mkdir(empty);
    const corrupt = path.join(dir, 'corrupt');
    await mkdir(corrupt);
    await writeFile(path.join(corrupt, MANIFEST_FILE), '{"format": "facegate-model", ');
    const invalid = path.join(dir, 'invalid');
    await mkdir(invalid);
    const m = JSON.parse(await readFile(path.join(good, MANIFEST_FILE), 'utf8')) as Record<string, unknown>;
    await writeFile(path.join(invalid, MANIFEST_FILE), JSON.stringify({ ...m, classes: ['only-one'] }));

    const cases: [string, RegExp][] = [
      [
        empty,
        /is not a model directory: manifest\.json is missing\. Train one with facegate train --out DIR, or give the right model directory\./,
      ],
      [corrupt, /manifest\.json is not valid JSON: .*Restore the model directory or train again\./],
      [
        invalid,
        /manifest\.json is not a valid model manifest \(restore the model directory or train again\):\nclasses: /,
      ],
    ];
    for (const [d, want] of cases) {
      const isIt = (e: unknown): boolean => e instanceof ModelError && want.test(e.message);
      assert.throws(() => readManifest(d), isIt, `readManifest ${d}`);
      await assert.rejects(verifyModelDir(d), isIt, `verifyModelDir ${d}`);
      await assert.rejects(Recogniser.load({ modelDir: d }), isIt, `Recogniser.load ${d}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
