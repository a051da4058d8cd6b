/**
 * A bundle of a real trained model (ORL people, the project's training fixture): packed
 * with real face crops as references, verified, installed and self-tested through the
 * device's recognition code, then a restart during probation returns to the old model.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { requireShared, sharedPaths } from '../support/shared.js';
import { trainedModelDir } from '../support/fixtures.js';
import { generateKeyPair, loadPrivateKey, loadPublicKey } from '../../src/update/keys.js';
import { createBundle, verifyBundleBytes } from '../../src/update/bundle.js';
import { DeviceModelRunner } from '../../src/update/selftest.js';
import { ModelStore } from '../../src/update/store.js';
import { verifyModelDir } from '../../src/model/dir/directory.js';
import { writeTinyModelDir } from './helpers.js';

test('a trained ORL model goes through bundle, verify, install with self-test, and probation rollback', async (t) => {
  if (!requireShared(t)) return;
  const model = await trainedModelDir();
  if (!existsSync(path.join(model, 'model.onnx'))) {
    t.skip('the training fixture has no model.onnx yet (exporter missing)');
    return;
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'facegate-trained-'));
  try {
    const manifest = await verifyModelDir(model);
    const runner = new DeviceModelRunner();
    const k = await generateKeyPair(path.join(dir, 'keys'));
    const people = manifest.classes;
    const refs = people.map((p) => path.join(sharedPaths.orl, 'validation', p, '9.png'));
    const { bytes, manifest: bm } = await createBundle({
      modelDir: model,
      runner,
      key: await loadPrivateKey(k.privateKeyFile),
      references: refs,
    });
    assert.deepEqual(bm.labels, people);
    const pub = await loadPublicKey(k.publicKeyFile);
    verifyBundleBytes(bytes, [pub]);

    const fallback = await writeTinyModelDir(path.join(dir, 'old'), { version: '1.0', seed: 1, int8: true });
    const mk = (): ModelStore =>
      new ModelStore({
        dir: path.join(dir, 'store'),
        fallbackDir: fallback,
        keys: [pub],
        runner,
        probationMinutes: 10,
        log: pino({ level: 'silent' }),
      });
    const store = mk();
    await store.recover();
    const r = await store.install(bytes, { kioskId: 'door-1' });
    assert.equal(r.installed.version, manifest.version);

    // The recorded answers are about real people: the nearest person is right for most
    // validation crops (named, or refused by the calibrated threshold: training's business).
    const answers = await runner.answer(
      r.installed.dir,
      manifest,
      'model.onnx',
      await Promise.all(
        refs.map(async (f) =>
          (await import('../../src/shared/image.js')).decodeRgb(f, {
            width: manifest.input.width,
            height: manifest.input.height,
          }),
        ),
      ),
    );
    const named = answers.filter((a, i) => a.label === people[i] || a.label === `refused:${people[i] ?? ''}`).length;
    assert.ok(
      named >= people.length - 1,
      `named ${named} of ${people.length}: ${answers.map((a) => a.label).join(', ')}`,
    );

    const back = await mk().recover();
    assert.equal(back.active.version, '1.0');
    assert.equal(back.state.state, `rolled back: restarted during the probation of ${manifest.version}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
