import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm, stat, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connectAsync } from 'mqtt';
import { startMosquitto } from '../support/mosquitto.js';
import { offerSchema } from '../../src/update/transfer.js';
import { writeTinyModelDir } from './helpers.js';

const run = promisify(execFile);
const cli = path.resolve('dist/src/cli.js');

async function facegate(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [cli, ...args], { encoding: 'utf8' });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('keygen, bundle create / sign / verify, publish-model from the command line', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'facegate-cli-'));
  const broker = await startMosquitto();
  try {
    const model = await writeTinyModelDir(path.join(dir, 'model'), { version: '5.0', seed: 5, int8: true });
    let r = await facegate(['keygen', '--out', path.join(dir, 'keys')]);
    assert.equal(r.code, 0, r.stderr);
    const priv = path.join(dir, 'keys', 'facegate-update.key');
    const pub = path.join(dir, 'keys', 'facegate-update.pub');
    assert.equal((await stat(priv)).mode & 0o777, 0o600);
    assert.doesNotMatch(r.stdout, /PRIVATE KEY/);
    assert.equal((await facegate(['keygen', '--out', path.join(dir, 'keys')])).code, 1);
    await facegate(['keygen', '--out', path.join(dir, 'other')]);

    const file = path.join(dir, 'm.fgb');
    const ref = path.resolve('..', 'shared', 'data', 'faces', 'orl', 'validation', 's1', '9.png');
    r = await facegate(['bundle', 'create', '--model', model, '--out', file, '--reference', ref]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /version 5\.0.*UNSIGNED/);

    r = await facegate(['bundle', 'verify', file, '--key', pub]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /unsigned bundle/);

    r = await facegate(['bundle', 'sign', file, '--key', priv]);
    assert.equal(r.code, 0, r.stderr);
    r = await facegate(['bundle', 'verify', file, '--key', pub]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /signed by [0-9a-f]{16}/);
    assert.match(r.stdout, /self-test passed: 1 reference images/);

    r = await facegate(['bundle', 'verify', file, '--key', path.join(dir, 'other', 'facegate-update.pub')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /signed by unknown key/);
    r = await facegate(['bundle', 'verify', file, '--key', pub, '--running', '5.0']);
    assert.match(r.stderr, /not newer than running 5\.0/);

    // publish-model: the offer and chunks reach the broker; nobody answers → exit 1.
    const sub = await connectAsync(broker.url, { clientId: 'watch' });
    try {
      const offers: unknown[] = [];
      let chunks = 0;
      sub.on('message', (topic, payload) => {
        if (topic === 'facegate/door-9/update/offer') offers.push(JSON.parse(payload.toString()));
        if (topic === 'facegate/door-9/update/chunk') chunks++;
      });
      await sub.subscribeAsync('facegate/door-9/update/#', { qos: 1 });
      r = await facegate([
        'publish-model',
        '--bundle',
        file,
        '--broker',
        broker.url,
        '--kiosk',
        'door-9',
        '--chunk-size',
        '8192',
        '--wait',
        '0.5',
      ]);
      assert.equal(r.code, 1);
      assert.match(r.stdout, /offered 5\.0 \(\d+ bytes, \d+ chunks\) to door-9/);
      assert.match(r.stdout, /1 kiosk\(s\) did not answer/);
      const size = (await readFile(file)).length;
      await new Promise((res) => setTimeout(res, 200));
      assert.equal(offers.length, 1);
      const offer = offerSchema.parse(offers[0]);
      assert.equal(offer.size, size);
      assert.equal(chunks, Math.ceil(size / 8192));
    } finally {
      await sub.endAsync();
    }
    r = await facegate(['publish-model', '--bundle', file, '--broker', broker.url]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--kiosk ID .* or --fleet/);
  } finally {
    await broker.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
