/**
 * Rejections are rate-limited and their reasons capped: a flood of garbage offers costs a
 * bounded number of state writes and retained publishes, and an offer with 20,000 unknown
 * keys does not put a megabyte into the state, the retained topic or the log.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { generateKeyPair } from '../../src/update/keys.js';
import { updatesConfigSchema } from '../../src/update/config.js';
import {
  MAX_REASON_CHARS,
  ModelUpdater,
  REJECTION_BURST,
  REJECTION_REFILL_MS,
  type UpdateMqttPort,
} from '../../src/update/updater.js';
import type { MessageHandler } from '../../src/publish/mqtt.js';
import { KioskDb } from '../../src/state/db.js';
import { writeTinyModelDir } from './helpers.js';

test('a flood of garbage offers costs a bounded number of state writes; long reasons are capped', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'facegate-rejections-'));
  try {
    const keys = await generateKeyPair(path.join(dir, 'keys'));
    const fallback = await writeTinyModelDir(path.join(dir, 'm1'), { version: '1.0', seed: 1 });
    const handlers = new Map<string, MessageHandler>();
    const published: string[] = [];
    const port: UpdateMqttPort = {
      publishRelative: (topic, payload) => {
        if (topic === 'model') published.push(payload.toString());
        return Promise.resolve();
      },
      subscribe: (topic, h) => {
        handlers.set(topic, h);
        return Promise.resolve();
      },
      subscribeAbsolute: () => Promise.resolve(),
    };
    let now = Date.parse('2026-01-01T00:00:00Z');
    const logLines: string[] = [];
    const u = new ModelUpdater({
      config: updatesConfigSchema.parse({
        enabled: true,
        publicKeys: [keys.publicKeyFile],
        modelsDir: path.join(dir, 'store'),
      }),
      kioskId: 'door-1',
      baseTopic: 'facegate',
      fallbackDir: fallback,
      mqtt: port,
      host: { activate: () => Promise.resolve() },
      db: KioskDb.open(':memory:'),
      log: pino({ level: 'info' }, { write: (l: string) => void logLines.push(l) }),
      now: () => now,
    });
    await u.recover();
    await u.start();
    const offer = handlers.get('update/offer');
    assert.ok(offer);
    const startPublishes = published.length;

    // 20,000 unknown keys: rejected, with a short reason everywhere.
    const wide = Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, i]));
    offer('update/offer', Buffer.from(JSON.stringify({ type: 'facegate-model-offer', ...wide })), { retained: false });
    await u.idle();
    const last = published.at(-1) ?? '';
    assert.match(last, /rejected: malformed offer/);
    assert.ok(last.length < MAX_REASON_CHARS + 400, `retained state of ${last.length} chars`);
    assert.ok(
      logLines.every((l) => l.length < MAX_REASON_CHARS + 400),
      'no log line carries the whole offer',
    );

    // 2000 garbage offers at once: at most the burst is recorded.
    for (let i = 0; i < 2000; i++) offer('update/offer', Buffer.from(`{"garbage":${i}}`), { retained: false });
    await u.idle();
    const writes = published.length - startPublishes;
    assert.equal(writes, REJECTION_BURST, `${writes} retained publishes for 2001 rejected offers`);
    assert.equal(u.rejectionWrites, REJECTION_BURST);
    assert.equal(u.unrecordedRejections, 2001 - REJECTION_BURST);

    // The limit refills: later rejections are recorded again.
    now += REJECTION_REFILL_MS;
    offer('update/offer', Buffer.from('{"late":1}'), { retained: false });
    await u.idle();
    assert.equal(published.length - startPublishes, REJECTION_BURST + 1);
    await u.stop();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a flood of garbage offers is handled one message a turn of the event loop, not as one long chain', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'facegate-rejections-turns-'));
  try {
    const keys = await generateKeyPair(path.join(dir, 'keys'));
    const fallback = await writeTinyModelDir(path.join(dir, 'm1'), { version: '1.0', seed: 1 });
    const handlers = new Map<string, MessageHandler>();
    const port: UpdateMqttPort = {
      publishRelative: () => Promise.resolve(),
      subscribe: (topic, h) => {
        handlers.set(topic, h);
        return Promise.resolve();
      },
      subscribeAbsolute: () => Promise.resolve(),
    };
    const u = new ModelUpdater({
      config: updatesConfigSchema.parse({
        enabled: true,
        publicKeys: [keys.publicKeyFile],
        modelsDir: path.join(dir, 'store'),
      }),
      kioskId: 'door-1',
      baseTopic: 'facegate',
      fallbackDir: fallback,
      mqtt: port,
      host: { activate: () => Promise.resolve() },
      db: KioskDb.open(':memory:'),
      log: pino({ level: 'silent' }),
      now: () => 0, // the rate limit never refills: after the burst, rejections need no I/O
    });
    await u.recover();
    await u.start();
    const offer = handlers.get('update/offer');
    assert.ok(offer);
    for (let i = 0; i < REJECTION_BURST; i++) offer('update/offer', Buffer.from(`{"g":${i}}`), { retained: false });
    await u.idle();
    assert.equal(u.rejectionWrites, REJECTION_BURST);

    // 1000 more: none needs I/O. Count how many the updater handled before each turn of the loop.
    const flood = 1000;
    for (let i = 0; i < flood; i++) offer('update/offer', Buffer.from(`{"g":${i}}`), { retained: false });
    const perTurn: number[] = [];
    let last = 0;
    const turns = new Promise<void>((resolve) => {
      const turn = (): void => {
        perTurn.push(u.unrecordedRejections - last);
        last = u.unrecordedRejections;
        if (u.unrecordedRejections < flood && perTurn.length < 10 * flood) setImmediate(turn);
        else resolve();
      };
      setImmediate(turn);
    });
    await turns;
    await u.idle();
    assert.equal(u.unrecordedRejections, flood);
    // Back to back, all 1000 would run before the first turn; here a turn never waits for more than a few.
    assert.ok(Math.max(...perTurn) <= 2, `up to ${Math.max(...perTurn)} messages handled between two turns`);
    await u.stop();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
