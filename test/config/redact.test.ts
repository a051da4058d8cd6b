/**
 * Credentials in URLs are not repeated: `facegate config` prints mqtt.url without its
 * password, and publish-model's connect error names the broker without it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { redactUrl } from '../../src/shared/url.js';
import { publishModel } from '../../src/update/publisher.js';
import { createBundle } from '../../src/update/bundle.js';
import { generateKeyPair, loadPrivateKey } from '../../src/update/keys.js';
import { DeviceModelRunner } from '../../src/update/selftest.js';
import { freePort } from '../support/mosquitto.js';
import { writeTinyModelDir } from '../update/helpers.js';

const SECRET = 'hunter2-s3cret';

test('redactUrl hides a password and leaves other URLs alone', () => {
  assert.equal(redactUrl(`mqtts://door:${SECRET}@broker:8883`), 'mqtts://door:***@broker:8883');
  assert.equal(redactUrl('mqtt://broker:1883'), 'mqtt://broker:1883');
  assert.equal(redactUrl(''), '');
  assert.ok(!redactUrl(`not a url //u:${SECRET}@x`).includes(SECRET));
});

test('facegate config does not print a password inside mqtt.url', () => {
  const r = spawnSync(process.execPath, ['dist/src/cli.js', 'config'], {
    encoding: 'utf8',
    env: { ...process.env, FACEGATE__MQTT__URL: `mqtt://door:${SECRET}@broker.example:1883` },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(r.stdout.includes('mqtt://door:***@broker.example:1883'), 'the URL is still shown');
  assert.ok(!r.stdout.includes(SECRET) && !r.stderr.includes(SECRET), 'the password is not');
});

test("publish-model's connect error does not repeat the password", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'facegate-redact-'));
  try {
    const keys = await generateKeyPair(path.join(dir, 'keys'));
    const m = await writeTinyModelDir(path.join(dir, 'm'), { version: '2.0', seed: 2 });
    const b = await createBundle({
      modelDir: m,
      runner: new DeviceModelRunner(),
      key: await loadPrivateKey(keys.privateKeyFile),
    });
    const port = await freePort(); // nothing listens there
    await assert.rejects(
      publishModel({
        brokerUrl: `mqtt://door:${SECRET}@127.0.0.1:${port}`,
        baseTopic: 'facegate',
        kiosks: ['door-1'],
        fleet: false,
        bundle: b.bytes,
        url: null,
        waitMs: 0,
      }),
      (err: Error) => {
        assert.match(err.message, /cannot connect to mqtt:\/\/door:\*\*\*@127\.0\.0\.1/);
        assert.ok(!err.message.includes(SECRET));
        return true;
      },
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
