/**
 * Attack benchmark: a kiosk's model updater (real MQTT connection with its packet size
 * guard, real kiosk database file, real signed bundles and ONNX self-tests) against a
 * real mosquitto, attacked for a bounded time by another client on the same broker (a
 * child process, so its own buffers do not count in the kiosk's memory). The attacker
 * replays captured signed offers (older, running, with new transfer ids, re-chunked as
 * one chunk), retains offers, floods garbage offers, garbles chunks of a live transfer
 * and sends oversized messages. A stand-in frame loop (a timer that does a little work
 * every 10 ms) shows whether recognition would have kept running.
 *
 *   npm run bench:attack -- [--seconds 30] [--mqtt 5|4]
 *
 * With MQTT 5 mosquitto honours the kiosk's maximum packet size and never sends the
 * oversized messages; with 4 (MQTT 3.1.1) the kiosk's own guard skips them.
 *
 * Prints: installs it should not have done (must be 0), peak RSS, state writes, and the
 * frame loop's count and longest gap. Exit status 1 when an install happened.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connectAsync } from 'mqtt';
import { pino } from 'pino';
import { startMosquitto } from '../test/support/mosquitto.js';
import { writeTinyModelDir } from '../test/update/helpers.js';
import { MqttConnection, buildClientOptions } from '../src/publish/mqtt.js';
import { Topics } from '../src/publish/topics.js';
import { mqttSchema } from '../src/config/schema.js';
import { generateKeyPair, loadPrivateKey } from '../src/update/keys.js';
import { createBundle } from '../src/update/bundle.js';
import { DeviceModelRunner } from '../src/update/selftest.js';
import { updatesConfigSchema } from '../src/update/config.js';
import { ModelUpdater, type ModelSwitch } from '../src/update/updater.js';
import type { ActiveModel } from '../src/update/store.js';
import { encodeChunk, makeOffer } from '../src/update/transfer.js';
import { publishModel } from '../src/update/publisher.js';
import { KioskDb, kioskDbPath } from '../src/state/db.js';

const BASE = 'facegate';
const KIOSK = 'door-1';
const MB = 1024 * 1024;

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '30' },
    attacker: { type: 'string' }, // internal: run as the attacking child with this work dir
    broker: { type: 'string' },
    mqtt: { type: 'string', default: '5' },
  },
});
const seconds = Number(values.seconds);
const protocolVersion = values.mqtt === '4' ? 4 : 5;
if (!(seconds > 0)) throw new Error('--seconds must be a positive number');

if (values.attacker) await attack(values.attacker, values.broker ?? '', seconds);
else await kiosk();

/** The attacking client: loops over the attacks until the time is up, then prints what it sent. */
async function attack(dir: string, url: string, secs: number): Promise<void> {
  const old = readFileSync(path.join(dir, 'old.fgb'));
  const running = readFileSync(path.join(dir, 'running.fgb'));
  const c = await connectAsync(url, { clientId: 'attacker', protocolVersion: 5 });
  const offerTopic = `${BASE}/${KIOSK}/update/offer`;
  const chunkTopic = `${BASE}/${KIOSK}/update/chunk`;
  const fleetOffer = `${BASE}/fleet/update/offer`;
  const sent: Record<string, number> = {};
  const count = (k: string, n = 1): void => void (sent[k] = (sent[k] ?? 0) + n);
  const until = Date.now() + secs * 1000;
  const big = Buffer.alloc(40 * MB, 0x7b);
  while (Date.now() < until) {
    // Replays with fresh transfer ids: the older bundle and the running one.
    for (const b of [old, running]) {
      const { offer, chunks } = makeOffer(b, { chunkSize: 64 * 1024 });
      await c.publishAsync(offerTopic, JSON.stringify(offer), { qos: 1 });
      for (const ch of chunks) await c.publishAsync(chunkTopic, ch, { qos: 1 });
      count('replayed offers');
    }
    // Re-chunked as one chunk, retained on the kiosk's and the fleet's offer topics.
    const one = makeOffer(old, { chunkSize: old.length });
    await c.publishAsync(offerTopic, JSON.stringify(one.offer), { qos: 1, retain: true });
    await c.publishAsync(fleetOffer, JSON.stringify(one.offer), { qos: 1, retain: true });
    await c.publishAsync(chunkTopic, one.chunks[0] ?? Buffer.alloc(0), { qos: 1, retain: true });
    count('retained offers', 2);
    // Garbled: a bit flipped in the signed manifest, bad chunks with the transfer's id.
    const g = makeOffer(running, { chunkSize: 64 * 1024 });
    const text = JSON.stringify(g.offer).replace(/"version":"([^"]*)"/, '"version":"9$1"');
    await c.publishAsync(offerTopic, text, { qos: 1 });
    for (let i = 0; i < 20; i++)
      await c.publishAsync(chunkTopic, encodeChunk(g.offer.transferId, i, Buffer.alloc(64 * 1024, i)), { qos: 1 });
    count('garbled offers');
    count('garbled chunks', 20);
    // A flood of garbage offers, one of them very wide.
    for (let i = 0; i < 300; i++) await c.publishAsync(offerTopic, `{"garbage":${i}}`, { qos: 0 });
    const wide = Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, i]));
    await c.publishAsync(offerTopic, JSON.stringify({ type: 'facegate-model-offer', ...wide }), { qos: 1 });
    count('garbage offers', 301);
    // Oversized: 40 MB on the offer topic.
    await c.publishAsync(offerTopic, big, { qos: 1 });
    count('40 MB messages');
  }
  // Clear the retained offers again.
  for (const t of [offerTopic, fleetOffer, chunkTopic]) await c.publishAsync(t, '', { qos: 1, retain: true });
  await c.endAsync();
  process.stdout.write(`${JSON.stringify(sent)}\n`);
}

async function kiosk(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'facegate-attack-'));
  const broker = await startMosquitto();
  try {
    const runner = new DeviceModelRunner();
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
      transferTimeoutMs: 3000,
    });
    const mqttCfg = mqttSchema.parse({ url: broker.url, kioskId: KIOSK, reconnectMs: 200, protocolVersion });
    const topics = new Topics(BASE, KIOSK);
    const conn = new MqttConnection(
      broker.url,
      buildClientOptions(mqttCfg, topics),
      topics,
      () => undefined,
      mqttCfg.maxPacketBytes,
    );
    await conn.start(5000);
    const activations: string[] = [];
    const host: ModelSwitch = {
      activate: (m: ActiveModel) => {
        activations.push(m.version);
        return Promise.resolve();
      },
    };
    const db = KioskDb.open(kioskDbPath(path.join(dir, 'state')));
    const u = new ModelUpdater({
      config,
      kioskId: KIOSK,
      baseTopic: BASE,
      fallbackDir: fallback,
      mqtt: conn,
      host,
      db,
      log: pino({ level: 'silent' }),
    });
    await host.activate(await u.recover());
    await u.start();
    // The operator installs 2.0 then 3.0; the attacker has captured both bundles.
    const b2 = await bundle('2.0', 2);
    const b3 = await bundle('3.0', 3);
    for (const b of [b2, b3]) {
      const r = await publishModel({
        brokerUrl: broker.url,
        baseTopic: BASE,
        kiosks: [KIOSK],
        fleet: false,
        bundle: b,
        waitMs: 30_000,
      });
      const v = r.verdicts.get(KIOSK);
      if (v?.state !== 'installed')
        throw new Error(`setup: ${v?.version ?? '?'} not installed: ${v?.state ?? 'no verdict'}`);
    }
    await u.idle();
    writeFileSync(path.join(dir, 'old.fgb'), b2);
    writeFileSync(path.join(dir, 'running.fgb'), b3);
    const expected = activations.length;
    const rssBefore = process.resourceUsage().maxRSS * 1024;

    // The stand-in frame loop: a little work every 10 ms; its longest gap shows a stall.
    let frames = 0;
    let last = performance.now();
    let longestGap = 0;
    const loop = setInterval(() => {
      const now = performance.now();
      longestGap = Math.max(longestGap, now - last);
      last = now;
      let x = 0;
      for (let i = 0; i < 20_000; i++) x += Math.sqrt(i);
      if (x > 0) frames++;
    }, 10);

    const self = fileURLToPath(import.meta.url);
    const child = spawn(
      process.execPath,
      [self, '--attacker', dir, '--broker', broker.url, '--seconds', String(seconds)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    await u.idle();
    clearInterval(loop);
    const bad = activations.slice(expected);
    const peak = process.resourceUsage().maxRSS * 1024;
    const report = {
      seconds,
      mqttProtocol: protocolVersion,
      attackerExit: code,
      sent: JSON.parse(out.trim() || '{}') as Record<string, number>,
      unwantedInstalls: bad.length,
      unwantedVersions: bad,
      running: u.runningVersion,
      peakRssMB: +(peak / MB).toFixed(1),
      peakRssBeforeAttackMB: +(rssBefore / MB).toFixed(1),
      stateWritesForRejections: u.rejectionWrites,
      rejectionsOnlyCounted: u.unrecordedRejections,
      updateMessagesIgnored: u.ignoredMessages,
      oversizedMessagesSkipped: conn.oversizedPackets,
      frameLoop: {
        ticks: frames,
        expectedTicks: Math.round((seconds * 1000) / 10),
        longestGapMs: Math.round(longestGap),
      },
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    await u.stop();
    await conn.stop();
    db.close();
    if (bad.length > 0) process.exitCode = 1;
  } finally {
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
