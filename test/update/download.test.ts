/**
 * Offers by URL against a real local HTTP server and a real mosquitto: a server that
 * never finishes holds up neither a chunked offer nor the shutdown, only configured
 * prefixes are fetched, and the length a server sent is never published.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { startMosquitto, type Mosquitto } from '../support/mosquitto.js';
import { MqttConnection } from '../../src/publish/mqtt.js';
import { Topics, type ModelStatePayload } from '../../src/publish/topics.js';
import { generateKeyPair, loadPrivateKey } from '../../src/update/keys.js';
import { createBundle } from '../../src/update/bundle.js';
import { DeviceModelRunner } from '../../src/update/selftest.js';
import { updatesConfigSchema } from '../../src/update/config.js';
import { ModelUpdater, type ModelSwitch } from '../../src/update/updater.js';
import type { ActiveModel } from '../../src/update/store.js';
import { makeOffer } from '../../src/update/transfer.js';
import { KioskDb } from '../../src/state/db.js';
import { writeTinyModelDir } from './helpers.js';

const BASE = 'facegate';
const KIOSK = 'door-1';
const runner = new DeviceModelRunner();

class Host implements ModelSwitch {
  version = '';
  activate(m: ActiveModel): Promise<void> {
    this.version = m.version;
    return Promise.resolve();
  }
}

/** Resolves with `what` or rejects after `ms`: a bounded wait, so a hang fails the test instead of holding it. */
function within<T>(what: Promise<T>, ms: number, label: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    what,
    new Promise<never>((_r, reject) => {
      timer = setTimeout(() => reject(new Error(`${label}: not within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

test('offers by URL: a slow server blocks nothing, stop() cancels, only allowed prefixes, no remote sizes', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'facegate-download-'));
  const requests: string[] = [];
  const open = new Set<ServerResponse>();
  let aborted = 0;
  const server = createServer((req, res) => {
    requests.push(req.url ?? '');
    if (req.url === '/slow/2.0.fgb') {
      // Headers, one byte, then silence: the download never ends by itself.
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write(Buffer.from([1]));
      open.add(res);
      res.on('close', () => {
        open.delete(res);
        aborted++;
      });
      return;
    }
    if (req.url === '/short/2.0.fgb') {
      res.end(Buffer.alloc(1234, 7));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const allowed = `https://127.0.0.1:${port}/`;
  let broker: Mosquitto | undefined;
  let conn: MqttConnection | undefined;
  let obs: MqttClient | undefined;
  let u: ModelUpdater | undefined;
  try {
    broker = await startMosquitto();
    const keys = await generateKeyPair(path.join(dir, 'keys'));
    const key = await loadPrivateKey(keys.privateKeyFile);
    const fallback = await writeTinyModelDir(path.join(dir, 'm1'), { version: '1.0', seed: 1 });
    const bundle = async (v: string, seed: number): Promise<Buffer> => {
      const m = await writeTinyModelDir(path.join(dir, `m${v}`), { version: v, seed });
      return (await createBundle({ modelDir: m, runner, key })).bytes;
    };
    const config = updatesConfigSchema.parse({
      enabled: true,
      publicKeys: [keys.publicKeyFile],
      modelsDir: path.join(dir, 'store'),
      allowedUrlPrefixes: [`${allowed}slow/`, `${allowed}short/`],
    });
    assert.deepEqual(updatesConfigSchema.parse({}).allowedUrlPrefixes, [], 'no downloads unless configured');
    conn = new MqttConnection(broker.url, { clientId: 'kiosk', reconnectPeriod: 200 }, new Topics(BASE, KIOSK));
    await conn.start(5000);
    const host = new Host();
    // The HTTPS of a real deployment is not what is tested here: the test server speaks plain HTTP.
    const plain: typeof fetch = (input, init) => fetch((input as string).replace(/^https:/, 'http:'), init);
    u = new ModelUpdater({
      config,
      kioskId: KIOSK,
      baseTopic: BASE,
      fallbackDir: fallback,
      mqtt: conn,
      host,
      db: KioskDb.open(':memory:'),
      log: pino({ level: 'silent' }),
      fetch: plain,
    });
    await host.activate(await u.recover());
    await u.start();
    obs = await connectAsync(broker.url, { clientId: 'observer' });
    const states: ModelStatePayload[] = [];
    obs.on('message', (_t, p) => states.push(JSON.parse(p.toString()) as ModelStatePayload));
    await obs.subscribeAsync(`${BASE}/${KIOSK}/model`, { qos: 1 });
    const o = obs;
    const until = async (pred: () => boolean, label: string): Promise<void> => {
      await within(
        (async () => {
          while (!pred()) await new Promise((r) => setTimeout(r, 20));
        })(),
        30_000,
        label,
      );
    };
    const offerTopic = `${BASE}/${KIOSK}/update/offer`;
    const sendUrl = async (b: Buffer, url: string): Promise<void> => {
      await o.publishAsync(offerTopic, JSON.stringify(makeOffer(b, { url }).offer), { qos: 1 });
    };
    const b2 = await bundle('2.0', 2);

    // Not under an allowed prefix: refused without a request.
    await sendUrl(b2, `${allowed}elsewhere/2.0.fgb`);
    await until(() => states.some((s) => s.state?.includes('allowedUrlPrefixes') ?? false), 'refusal of a foreign URL');
    assert.equal(requests.length, 0, 'nothing was fetched');

    // A server that sends the wrong length: refused, and its length is not published.
    await sendUrl(b2, `${allowed}short/2.0.fgb`);
    await until(
      () => states.some((s) => s.state?.startsWith('rejected: truncated download') ?? false),
      'short download',
    );
    assert.ok(!states.some((s) => JSON.stringify(s).includes('1234')), 'the served length is not published');

    // A server that never finishes, then a chunked offer: the chunked one installs meanwhile.
    await sendUrl(b2, `${allowed}slow/2.0.fgb`);
    await until(() => open.size === 1, 'the slow download started');
    const { offer, chunks } = makeOffer(await bundle('3.0', 3), { chunkSize: 16 * 1024 });
    await o.publishAsync(offerTopic, JSON.stringify(offer), { qos: 1 });
    for (const c of chunks) await o.publishAsync(`${BASE}/${KIOSK}/update/chunk`, c, { qos: 1 });
    await until(() => host.version === '3.0', 'the chunked offer installs while a download hangs');
    assert.equal(open.size, 1, 'the slow download is still open');

    // stop() aborts the download instead of waiting for it.
    await within(u.stop(), 10_000, 'stop() with a download in progress');
    u = undefined;
    await until(() => aborted === 1, 'the server saw the download cancelled');
    assert.equal(host.version, '3.0');
  } finally {
    await u?.stop();
    for (const r of open) r.destroy();
    await obs?.endAsync();
    await conn?.stop();
    await broker?.stop();
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true });
  }
});
