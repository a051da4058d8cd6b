/**
 * A model that keeps failing during its probation is rolled back while the daemon runs:
 * the ProbationGuard's counting on a fake updater, then the whole daemon (real updater,
 * real store, real mosquitto, a signed bundle of tiny real ONNX models) with a
 * recogniser stand-in that throws on every face once the new model is installed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connectAsync } from 'mqtt';
import { Daemon } from '../../src/daemon/daemon.js';
import { PROBATION_FAILURE_LIMIT, ProbationGuard, type ProbationPort } from '../../src/daemon/probation.js';
import type { FramePipeline } from '../../src/daemon/worker.js';
import { readManifest } from '../../src/model/manifest.js';
import type { EventPayload, ModelStatePayload } from '../../src/publish/topics.js';
import type { Frame, Match } from '../../src/shared/messages.js';
import { createBundle } from '../../src/update/bundle.js';
import { generateKeyPair, loadPrivateKey } from '../../src/update/keys.js';
import { publishModel } from '../../src/update/publisher.js';
import { DeviceModelRunner } from '../../src/update/selftest.js';
import { startMosquitto, type Mosquitto } from '../support/mosquitto.js';
import { EachFrameDecider, ScriptRecogniser, ScriptSource, testConfig } from '../support/daemon-fakes.js';
import { writeTinyModelDir } from '../update/helpers.js';

const match = {
  face: { frameId: 1, box: { x: 0, y: 0, width: 10, height: 10 }, score: 1, keypoints: [] },
  label: 'a',
  candidate: 'a',
  similarity: 0.9,
  probability: 0.9,
  margin: 0.5,
} as Match;

class FakeUpdater implements ProbationPort {
  probationVersion: string | undefined = '2.0';
  reasons: string[] = [];
  reportFailure(reason: string): Promise<boolean> {
    this.reasons.push(reason);
    this.probationVersion = undefined;
    return Promise.resolve(true);
  }
}

test('ProbationGuard reports a model on probation after the limit of failed frames, once', async () => {
  const u = new FakeUpdater();
  const g = new ProbationGuard(u);
  const fail = (v = '2.0'): void => g.frame({ modelVersion: v, matches: [], error: new Error('bad output shape') });
  for (let i = 0; i < PROBATION_FAILURE_LIMIT - 1; i++) fail();
  g.frame({ modelVersion: '2.0', matches: [], error: null }); // no face: the model did not run, the count stands
  for (let i = 0; i < 5; i++) fail('1.0'); // frames of the old model, still finishing: not the model on probation
  assert.deepEqual(u.reasons, []);
  fail();
  fail(); // a rollback is under way: not reported again
  await g.idle();
  assert.deepEqual(u.reasons, [
    `recognition failed on ${PROBATION_FAILURE_LIMIT} frames in a row during probation (bad output shape)`,
  ]);
});

test('ProbationGuard: a recognised face resets the count; nothing is reported outside probation', async () => {
  const u = new FakeUpdater();
  const g = new ProbationGuard(u, 3);
  const fail = (): void => g.frame({ modelVersion: '2.0', matches: [], error: new Error('x') });
  fail();
  fail();
  g.frame({ modelVersion: '2.0', matches: [match], error: null });
  fail();
  fail();
  assert.deepEqual(u.reasons, []);
  u.probationVersion = undefined; // probation passed
  fail();
  fail();
  fail();
  await g.idle();
  assert.deepEqual(u.reasons, []);
});

/** Version 2.0 loads but throws on every frame with a face. */
class BrokenRecogniser implements FramePipeline {
  closed = false;
  constructor(readonly modelVersion: string) {}
  process(frame: Frame): Promise<readonly Match[]> {
    if (!frame.image.toString('utf8').startsWith('event:')) return Promise.resolve([]);
    return Promise.reject(new Error('onnxruntime: unexpected output shape'));
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

async function until(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('daemon: a new model whose recognition keeps failing during probation is rolled back, and recognition resumes on the old one', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'facegate-probation-'));
  let broker: Mosquitto | undefined;
  let daemon: Daemon | undefined;
  const sub = { close: (): Promise<void> => Promise.resolve() };
  try {
    broker = await startMosquitto();
    const keys = await generateKeyPair(path.join(dir, 'keys'));
    const fallback = await writeTinyModelDir(path.join(dir, 'm1'), { version: '1.0', seed: 1, int8: true });
    const m2 = await writeTinyModelDir(path.join(dir, 'm2'), { version: '2.0', seed: 2, int8: true });
    const bundle = (
      await createBundle({
        modelDir: m2,
        runner: new DeviceModelRunner(),
        key: await loadPrivateKey(keys.privateKeyFile),
      })
    ).bytes;

    const loaded: FramePipeline[] = [];
    const cfg = testConfig({
      url: broker.url,
      stateDir: path.join(dir, 'state'),
      kioskId: 'kp',
      extra: {
        model: { dir: fallback },
        updates: {
          enabled: true,
          publicKeys: [keys.publicKeyFile],
          modelsDir: path.join(dir, 'store'),
          probationMinutes: 10,
        },
        mqtt: {
          url: broker.url,
          kioskId: 'kp',
          reconnectMs: 100,
          connectTimeoutMs: 2000,
          homeAssistant: { enabled: false },
        },
      },
    });
    daemon = new Daemon(cfg, {
      loadPipeline: (modelDir) => {
        const v = readManifest(modelDir).version;
        const rec = v === '2.0' ? new BrokenRecogniser(v) : new ScriptRecogniser(v);
        loaded.push(rec);
        return Promise.resolve(rec);
      },
      createDecider: () => new EachFrameDecider(),
      createSource: () => new ScriptSource(['event:alice', 'none'], 20, true),
    });

    const client = await connectAsync(broker.url, { clientId: 'probation-observer' });
    sub.close = () => client.endAsync();
    const states: ModelStatePayload[] = [];
    const events: EventPayload[] = [];
    client.on('message', (topic, payload) => {
      if (topic === 'facegate/kp/model') states.push(JSON.parse(payload.toString()) as ModelStatePayload);
      if (topic === 'facegate/kp/events') events.push(JSON.parse(payload.toString()) as EventPayload);
    });
    await client.subscribeAsync(['facegate/kp/model', 'facegate/kp/events'], { qos: 1 });

    await daemon.start();
    await until('events from 1.0', () => events.some((e) => e.modelVersion === '1.0'));
    await publishModel({
      brokerUrl: broker.url,
      baseTopic: 'facegate',
      kiosks: ['kp'],
      fleet: false,
      bundle,
      chunkSize: 16 * 1024,
      waitMs: 0,
    });
    await until('installed 2.0', () => states.some((s) => s.state === 'installed' && s.version === '2.0'));
    await until('rolled back', () => states.some((s) => s.state?.startsWith('rolled back:') === true));
    const rolled = states.find((s) => s.state?.startsWith('rolled back:') === true) as ModelStatePayload;
    assert.equal(
      rolled.state,
      `rolled back: recognition failed on ${PROBATION_FAILURE_LIMIT} frames in a row during probation (onnxruntime: unexpected output shape)`,
    );
    assert.equal(rolled.version, '1.0');
    assert.equal(rolled.offered, '2.0');
    assert.equal(rolled.probationUntil, null);

    // Recognition carries on with the previous model, hot-swapped back in.
    const at = Date.parse(rolled.at ?? '');
    await until('events from 1.0 after the rollback', () =>
      events.some((e) => e.modelVersion === '1.0' && Date.parse(e.time) > at),
    );
    assert.ok(
      events.every((e) => e.modelVersion !== '2.0'),
      'the broken model decided nothing',
    );
    assert.equal(daemon.health().model, '1.0');
    assert.deepEqual(
      loaded.map((r) => r.modelVersion),
      ['1.0', '2.0', '1.0'],
    );
    assert.ok((loaded[1] as BrokenRecogniser).closed, 'the failed model was closed');
    const metrics = await (await fetch(`${daemon.httpAddress ?? ''}/metrics`)).text();
    assert.match(metrics, /facegate_model_info\{version="1.0"\} 1/);
  } finally {
    await daemon?.stop();
    await sub.close();
    await broker?.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
