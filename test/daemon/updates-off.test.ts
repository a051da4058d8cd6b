/**
 * Model updates are optional: a trusted key file that is missing or a models directory
 * that cannot be used turns them off (health says why) and the kiosk recognises on with
 * model.dir, against a real mosquitto.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Daemon } from '../../src/daemon/daemon.js';
import { startMosquitto, type Mosquitto } from '../support/mosquitto.js';
import { ScriptSource, ScriptRecogniser, EachFrameDecider, testConfig } from '../support/daemon-fakes.js';
import type { Frame } from '../../src/shared/messages.js';

class CountingRecogniser extends ScriptRecogniser {
  calls = 0;
  override process(frame: Frame): ReturnType<ScriptRecogniser['process']> {
    this.calls++;
    return super.process(frame);
  }
}

const tmp = mkdtempSync(path.join(tmpdir(), 'facegate-updates-off-'));
let broker: Mosquitto;
before(async () => {
  broker = await startMosquitto();
});
after(async () => {
  await broker.stop();
  rmSync(tmp, { recursive: true, force: true });
});

async function runWith(name: string, updates: Record<string, unknown>): Promise<Record<string, unknown>> {
  const rec = new CountingRecogniser();
  const daemon = new Daemon(
    testConfig({ url: broker.url, stateDir: path.join(tmp, name, 'state'), kioskId: name, extra: { updates } }),
    {
      loadPipeline: () => Promise.resolve(rec),
      createDecider: () => new EachFrameDecider(),
      createSource: () => new ScriptSource(Array<string>(100_000).fill('none'), 5),
      version: '9.9.9',
    },
  );
  try {
    await daemon.start();
    // Frames keep being recognised after the start (bounded: the test fails instead of hanging).
    const seen = rec.calls;
    const deadline = Date.now() + 20_000;
    while (rec.calls <= seen + 3) {
      if (Date.now() > deadline) throw new Error('no frames recognised after the start');
      await new Promise((r) => setTimeout(r, 20));
    }
    return daemon.health();
  } finally {
    await daemon.stop('test');
  }
}

test('a missing public key file turns updates off; the kiosk runs on', async () => {
  const h = await runWith('nokey', {
    enabled: true,
    publicKeys: [path.join(tmp, 'missing.pub')],
    modelsDir: path.join(tmp, 'nokey', 'store'),
  });
  assert.match(String(h.updates), /^off: .*missing\.pub/);
  assert.equal(h.model, '20260101.000000', 'model.dir runs');
});

test('a models directory under a regular file turns updates off; the kiosk runs on', async () => {
  const file = path.join(tmp, 'a-file');
  writeFileSync(file, 'not a folder');
  writeFileSync(path.join(tmp, 'key.pub'), '');
  const h = await runWith('notdir', {
    enabled: true,
    publicKeys: [path.join(tmp, 'key.pub')],
    modelsDir: path.join(file, 'store'),
  });
  assert.match(String(h.updates), /^off: .*updates\.modelsDir/);
  assert.equal(h.model, '20260101.000000', 'model.dir runs');
});
