/**
 * Snapshots of the model-update contract (docs/updates.md, docs/mqtt.md), each made by the
 * code that makes it: the signed bundle header and manifest from `createBundle`, the offer
 * from `makeOffer` (what `facegate publish-model` sends), and the retained `model` state the
 * kiosk's updater publishes before, during and after an install. Hashes, sizes, ids, keys and
 * times differ per run and are normalised by name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import type { MessageHandler } from '../../src/publish/mqtt.js';
import type { ModelStatePayload } from '../../src/publish/topics.js';
import { createBundle, parseHeader } from '../../src/update/bundle.js';
import { updatesConfigSchema } from '../../src/update/config.js';
import { generateKeyPair, loadPrivateKey } from '../../src/update/keys.js';
import { DeviceModelRunner } from '../../src/update/selftest.js';
import { makeOffer } from '../../src/update/transfer.js';
import { KioskDb } from '../../src/state/db.js';
import { ModelUpdater, type UpdateMqttPort } from '../../src/update/updater.js';
import { assertSnapshot, normalise, type NormaliseRules } from '../support/snapshot.js';
import { writeTinyModelDir } from './helpers.js';

const NOW = new Date('2026-01-28T10:15:00.000Z');
const FILES: NormaliseRules = { 'files.*.sha256': 'sha256', 'files.*.bytes': 'byte-count' };
const prefixed = (prefix: string, rules: NormaliseRules): NormaliseRules =>
  Object.fromEntries(Object.entries(rules).map(([k, v]) => [`${prefix}.${k}`, v]));

/** The kiosk's MQTT connection, in memory: records what the updater publishes, hands it messages. */
class MemoryMqtt implements UpdateMqttPort {
  readonly published: { topic: string; payload: string; qos: number; retain: boolean }[] = [];
  readonly handlers = new Map<string, MessageHandler>();
  publishRelative(topic: string, payload: string | Buffer, opts: { qos: 0 | 1; retain: boolean }): Promise<void> {
    this.published.push({ topic, payload: payload.toString(), ...opts });
    return Promise.resolve();
  }
  subscribe(topic: string, handler: MessageHandler): Promise<void> {
    this.handlers.set(topic, handler);
    return Promise.resolve();
  }
  subscribeAbsolute(topic: string, handler: MessageHandler): Promise<void> {
    this.handlers.set(topic, handler);
    return Promise.resolve();
  }
  deliver(topic: string, payload: Buffer): void {
    const h = this.handlers.get(topic);
    assert.ok(h, `the updater did not subscribe to ${topic}`);
    void h(topic, payload, { retained: false });
  }
  states(): ModelStatePayload[] {
    return this.published.filter((p) => p.topic === 'model').map((p) => JSON.parse(p.payload) as ModelStatePayload);
  }
}

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 3000 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(ok(), `timed out waiting for ${what}`);
}

test('bundle header, offer and the retained model state through an install (snapshots)', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'facegate-update-payloads-'));
  let updater: ModelUpdater | undefined;
  try {
    const keys = await generateKeyPair(path.join(dir, 'keys'));
    const key = await loadPrivateKey(keys.privateKeyFile);
    const running = await writeTinyModelDir(path.join(dir, 'running'), {
      version: '20260101.090000',
      seed: 1,
      int8: true,
    });
    const next = await writeTinyModelDir(path.join(dir, 'next'), { version: '20260128.101500', seed: 2, int8: true });
    const runner = new DeviceModelRunner();
    const { bytes } = await createBundle({ modelDir: next, runner, key, now: NOW });

    const header = parseHeader(bytes);
    assert.equal(header.signatures[0]?.keyId, key.id);
    assertSnapshot(
      'bundle-header',
      normalise(header, {
        ...prefixed('manifest', FILES),
        'signatures.*.keyId': 'hex16',
        'signatures.*.signature': 'base64',
      }),
    );

    const { offer, chunks } = makeOffer(bytes, { chunkSize: 16 * 1024 });
    assert.ok(chunks.length > 1, 'the bundle goes out in several chunks');
    assertSnapshot(
      'update-offer',
      normalise(offer, {
        transferId: 'hex16',
        size: 'byte-count',
        sha256: 'sha256',
        ...prefixed('manifest', FILES),
        'signatures.*.keyId': 'hex16',
        'signatures.*.signature': 'base64',
        chunks: 'byte-count',
        'chunkSha256.*': 'sha256',
      }),
    );

    const mqtt = new MemoryMqtt();
    updater = new ModelUpdater({
      db: KioskDb.open(':memory:'),
      config: updatesConfigSchema.parse({
        enabled: true,
        publicKeys: [keys.publicKeyFile],
        modelsDir: path.join(dir, 'store'),
      }),
      kioskId: 'front-door',
      baseTopic: 'facegate',
      fallbackDir: running,
      mqtt,
      host: {
        activate: () => Promise.resolve(),
        // what precision auto reports after timing both files at load
        precision: {
          asked: 'auto',
          running: 'int8',
          reason: 'int8 ran faster here (3.41 ms against fp32 9.87 ms a face)',
          int8Ms: 3.41,
          fp32Ms: 9.87,
        },
      },
      runner,
      log: pino({ level: 'silent' }),
    });
    await updater.recover();
    await updater.start();
    await until('the state at start', () => mqtt.states().length === 1);
    mqtt.deliver('update/offer', Buffer.from(JSON.stringify(offer)));
    for (const c of chunks) mqtt.deliver('update/chunk', c);
    await until('the install', () => mqtt.states().some((s) => s.state === 'installed'));

    assert.ok(
      mqtt.published.every((p) => p.topic === 'model' && p.qos === 1 && p.retain),
      'model state: QoS 1, retained',
    );
    const states = mqtt.states();
    const during = states.find((s) => s.transfer !== null);
    assert.ok(during, 'a state while the transfer runs');
    const installed = states.find((s) => s.state === 'installed');
    assertSnapshot('mqtt-model-state', {
      atStart: states[0],
      duringTransfer: normalise(during, {
        'transfer.transferId': 'hex16',
        'transfer.received': 'byte-count',
        'transfer.chunks': 'byte-count',
      }),
      installed: normalise(installed, { at: 'iso-time', probationUntil: 'iso-time' }),
    });
  } finally {
    await updater?.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
