/**
 * A chunk that does not reach the kiosk is asked for again (real mosquitto): the kiosk,
 * when no good chunk has come for a while, lists the missing indexes in its retained
 * model state; `publishModel`, while it waits for verdicts, resends them. Without this a
 * chunk dropped by the kiosk's bounded queue during a flood (or by the broker) ended the
 * transfer as truncated.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { mqttSchema } from '../../src/config/schema.js';
import { MqttConnection, buildClientOptions } from '../../src/publish/mqtt.js';
import { Topics, type ModelStatePayload } from '../../src/publish/topics.js';
import { KioskDb } from '../../src/state/db.js';
import { createBundle } from '../../src/update/bundle.js';
import { updatesConfigSchema } from '../../src/update/config.js';
import { generateKeyPair, loadPrivateKey } from '../../src/update/keys.js';
import { publishModel } from '../../src/update/publisher.js';
import { DeviceModelRunner } from '../../src/update/selftest.js';
import { decodeChunk, makeOffer } from '../../src/update/transfer.js';
import { ModelUpdater, requestIntervalMs } from '../../src/update/updater.js';
import { startMosquitto, type Mosquitto } from '../support/mosquitto.js';
import { writeTinyModelDir } from './helpers.js';

const dir = mkdtempSync(path.join(tmpdir(), 'facegate-resend-'));
let broker: Mosquitto;
let bundle: Buffer;
let publicKeyFile = '';
const clients: MqttClient[] = [];

before(async () => {
  broker = await startMosquitto();
  const keys = await generateKeyPair(path.join(dir, 'keys'));
  publicKeyFile = keys.publicKeyFile;
  const m2 = await writeTinyModelDir(path.join(dir, 'm2'), { version: '2.0', seed: 2 });
  bundle = (
    await createBundle({
      modelDir: m2,
      runner: new DeviceModelRunner(),
      key: await loadPrivateKey(keys.privateKeyFile),
    })
  ).bytes;
});
after(async () => {
  for (const c of clients) await c.endAsync();
  await broker.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function client(id: string): Promise<MqttClient> {
  const c = await connectAsync(broker.url, { clientId: id, reconnectPeriod: 0 });
  clients.push(c);
  return c;
}

async function until(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a kiosk lists the chunks it misses on its model topic, and installs once they are resent', async () => {
  const kiosk = 'door-r1';
  const fallback = await writeTinyModelDir(path.join(dir, 'm1'), { version: '1.0', seed: 1 });
  const mqttCfg = mqttSchema.parse({ url: broker.url, kioskId: kiosk, reconnectMs: 200 });
  const topics = new Topics('facegate', kiosk);
  const conn = new MqttConnection(
    broker.url,
    buildClientOptions(mqttCfg, topics),
    topics,
    () => undefined,
    mqttCfg.maxPacketBytes,
  );
  await conn.start(5000);
  const transferTimeoutMs = 4000;
  const u = new ModelUpdater({
    config: updatesConfigSchema.parse({
      enabled: true,
      publicKeys: [publicKeyFile],
      modelsDir: path.join(dir, 'store-r1'),
      transferTimeoutMs,
    }),
    kioskId: kiosk,
    baseTopic: 'facegate',
    fallbackDir: fallback,
    mqtt: conn,
    host: { activate: () => Promise.resolve() },
    db: KioskDb.open(':memory:'),
    log: pino({ level: 'silent' }),
  });
  try {
    await u.recover();
    await u.start();
    const observer = await client('resend-observer');
    const states: ModelStatePayload[] = [];
    observer.on('message', (_t, p) => states.push(JSON.parse(p.toString()) as ModelStatePayload));
    await observer.subscribeAsync(`facegate/${kiosk}/model`, { qos: 1 });

    const { offer, chunks } = makeOffer(bundle, { chunkSize: 4096 });
    assert.ok(chunks.length > 4, `${chunks.length} chunks`);
    const pub = await client('resend-publisher');
    await pub.publishAsync(`facegate/${kiosk}/update/offer`, JSON.stringify(offer), { qos: 1 });
    // Chunks 1 and 3 never arrive.
    for (const [i, c] of chunks.entries())
      if (i !== 1 && i !== 3) await pub.publishAsync(`facegate/${kiosk}/update/chunk`, c, { qos: 1 });

    await until('a request for the missing chunks', () => states.some((s) => s.transfer?.missing != null));
    const ask = states.find((s) => s.transfer?.missing != null)?.transfer;
    assert.deepEqual(ask?.missing, [1, 3]);
    assert.equal(ask?.transferId, offer.transferId);
    assert.equal(ask?.received, chunks.length - 2);
    assert.ok(requestIntervalMs(transferTimeoutMs) < transferTimeoutMs, 'it asks before the transfer times out');

    for (const i of [1, 3]) await pub.publishAsync(`facegate/${kiosk}/update/chunk`, chunks[i] as Buffer, { qos: 1 });
    await until('the install', () => states.some((s) => s.state === 'installed'));
    assert.equal(u.runningVersion, '2.0');
    assert.ok(!states.some((s) => s.state?.startsWith('rejected') === true), 'no truncated transfer');
  } finally {
    await u.stop();
    await conn.stop();
  }
});

test('publishModel resends the chunks a kiosk asks for while it waits for the verdict', async () => {
  const kiosk = 'door-r2';
  // A kiosk played by hand: it receives everything, then says chunks 0 and 2 are missing.
  const fake = await client('resend-fake-kiosk');
  let offerId = '';
  const received: number[] = [];
  fake.on('message', (topic, payload) => {
    if (topic.endsWith('/update/offer'))
      offerId = (JSON.parse(payload.toString()) as { transferId: string }).transferId;
    else {
      const c = decodeChunk(payload);
      if (c && c.transferId === offerId) received.push(c.index);
    }
  });
  await fake.subscribeAsync(`facegate/${kiosk}/update/#`, { qos: 1 });
  const resent: [string, number][] = [];
  const run = publishModel({
    brokerUrl: broker.url,
    baseTopic: 'facegate',
    kiosks: [kiosk],
    fleet: false,
    bundle,
    chunkSize: 4096,
    waitMs: 20_000,
    onResend: (k, n) => resent.push([k, n]),
  });
  const { offer } = makeOffer(bundle, { chunkSize: 4096 });
  const total = offer.chunks ?? 0;
  await until('every chunk once', () => received.length === total);
  const state = (over: Partial<ModelStatePayload>): string =>
    JSON.stringify({
      kiosk,
      version: '1.0',
      previous: null,
      state: null,
      offered: null,
      at: null,
      probationUntil: null,
      transfer: null,
      precision: null,
      ...over,
    } satisfies ModelStatePayload);
  await fake.publishAsync(
    `facegate/${kiosk}/model`,
    state({ transfer: { version: '2.0', transferId: offerId, received: total - 2, chunks: total, missing: [0, 2] } }),
    { qos: 1, retain: true },
  );
  await until('chunks 0 and 2 again', () => received.length === total + 2);
  assert.deepEqual(received.slice(total), [0, 2]);
  // A request about another transfer is not answered.
  await fake.publishAsync(
    `facegate/${kiosk}/model`,
    state({
      transfer: { version: '2.0', transferId: '0123456789abcdef', received: 0, chunks: total, missing: [1] },
    }),
    { qos: 1, retain: true },
  );
  await fake.publishAsync(
    `facegate/${kiosk}/model`,
    state({ version: '2.0', state: 'installed', offered: '2.0', at: new Date().toISOString() }),
    { qos: 1, retain: true },
  );
  const r = await run;
  assert.equal(r.verdicts.get(kiosk)?.state, 'installed');
  assert.deepEqual(resent, [[kiosk, 2]]);
  assert.equal(received.length, total + 2, 'nothing else was resent');
  await fake.publishAsync(`facegate/${kiosk}/model`, '', { qos: 1, retain: true });
});
