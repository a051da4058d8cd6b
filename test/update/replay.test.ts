/**
 * An attacker on the broker replays captured signed bundles, retained offers and bad
 * chunks against a kiosk (real mosquitto, real signed bundles, real ONNX self-tests, the
 * history in a real kiosk database file). Nothing the operator or the probation undid
 * comes back; forced bundles install once; the store stays bounded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
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
import { MAX_VERSION_FOLDERS, type ActiveModel } from '../../src/update/store.js';
import { encodeChunk, makeOffer } from '../../src/update/transfer.js';
import { KioskDb, kioskDbPath } from '../../src/state/db.js';
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

test('replays, retained offers and bad chunks over a real broker: nothing undone comes back', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'facegate-replay-'));
  let broker: Mosquitto | undefined;
  let conn: MqttConnection | undefined;
  let obs: MqttClient | undefined;
  let u: ModelUpdater | undefined;
  const db = KioskDb.open(kioskDbPath(path.join(dir, 'state')));
  try {
    broker = await startMosquitto();
    const keys = await generateKeyPair(path.join(dir, 'keys'));
    const key = await loadPrivateKey(keys.privateKeyFile);
    const fallback = await writeTinyModelDir(path.join(dir, 'm1'), { version: '1.0', seed: 1 });
    const bundle = async (v: string, seed: number, forced = false): Promise<Buffer> => {
      const m = await writeTinyModelDir(path.join(dir, `m${v}-${seed}`), { version: v, seed });
      return (await createBundle({ modelDir: m, runner, key, forced })).bytes;
    };
    const config = updatesConfigSchema.parse({
      enabled: true,
      publicKeys: [keys.publicKeyFile],
      modelsDir: path.join(dir, 'store'),
      transferTimeoutMs: 5000,
    });
    conn = new MqttConnection(broker.url, { clientId: 'kiosk-door-1', reconnectPeriod: 200 }, new Topics(BASE, KIOSK));
    await conn.start(5000);
    const host = new Host();
    /** A kiosk (re)start on the same store and database. */
    const start = async (): Promise<ModelUpdater> => {
      await u?.stop();
      const next = new ModelUpdater({
        config,
        kioskId: KIOSK,
        baseTopic: BASE,
        fallbackDir: fallback,
        mqtt: conn as MqttConnection,
        host,
        db,
        log: pino({ level: 'silent' }),
      });
      await host.activate(await next.recover());
      await next.start();
      u = next;
      return next;
    };
    await start();
    obs = await connectAsync(broker.url, { clientId: 'attacker' });
    const o = obs;
    await o.subscribeAsync(`${BASE}/${KIOSK}/model`, { qos: 1 });
    const verdicts: ModelStatePayload[] = [];
    o.on('message', (_t, p, packet) => {
      if (!packet.retain) verdicts.push(JSON.parse(p.toString()) as ModelStatePayload);
    });
    /** Offers a bundle (new transfer id each time, as a replay would) and returns the verdict. */
    const offer = async (b: Buffer, o2: { badChunkFirst?: boolean } = {}): Promise<string> => {
      const { offer: off, chunks } = makeOffer(b, { chunkSize: 64 * 1024 });
      const n = verdicts.length;
      await o.publishAsync(`${BASE}/${KIOSK}/update/offer`, JSON.stringify(off), { qos: 1 });
      if (o2.badChunkFirst)
        await o.publishAsync(`${BASE}/${KIOSK}/update/chunk`, encodeChunk(off.transferId, 0, Buffer.from('garbage')), {
          qos: 1,
        });
      for (const c of chunks) await o.publishAsync(`${BASE}/${KIOSK}/update/chunk`, c, { qos: 1 });
      for (const until = Date.now() + 15000; ;) {
        // The verdict on this offer: a state published by a restart just before it (a
        // rollback) may still be on its way to this observer and is not one.
        const v = verdicts
          .slice(n)
          .find((s) => s.offered === off.version && s.transfer === null && /^(installed|rejected)/.test(s.state ?? ''));
        if (v) return v.state ?? '';
        assert.ok(Date.now() < until, `a verdict on ${off.version} within 15 s`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };

    const b2 = await bundle('2.0', 2);
    const b3 = await bundle('3.0', 3);
    let forced2 = b2;
    let forced2b = b2;
    const b4 = await bundle('4.0', 4);
    const forced4 = await bundle('4.0', 44, true);

    await t.test('a bad chunk with the visible transfer id does not abort the transfer', async () => {
      assert.equal(await offer(b2, { badChunkFirst: true }), 'installed');
      assert.equal(host.version, '2.0');
    });

    await t.test(
      '(a) restart during probation rolls back; the captured 2.0 replayed with a new transfer id is refused',
      async () => {
        const n = verdicts.length;
        await start();
        assert.equal(host.version, '1.0');
        // The restarted kiosk announces its rollback; wait for it, so it is not taken for the verdict on the replay.
        for (const until = Date.now() + 15000; !verdicts.slice(n).some((s) => s.state?.startsWith('rolled back'));) {
          assert.ok(Date.now() < until, 'the restarted kiosk publishes its rollback within 15 s');
          await new Promise((r) => setTimeout(r, 20));
        }
        assert.match(
          await offer(b2),
          /^rejected: bundle 2\.0 was rolled back: restarted during the probation of 2\.0 on this kiosk at /,
        );
        assert.equal(host.version, '1.0');
      },
    );

    await t.test('(b) after a forced downgrade 3.0 → 2.0, replaying 3.0 is refused', async () => {
      assert.equal(await offer(b3), 'installed');
      forced2 = await bundle('2.0', 22, true); // the operator signs a downgrade after 3.0
      assert.equal(await offer(forced2), 'installed');
      forced2b = await bundle('2.0', 23, true); // another one, never used, signed before 4.0
      assert.equal(host.version, '2.0');
      assert.equal(await offer(b3), 'rejected: version 3.0 is not newer than 3.0, installed on this kiosk before');
      assert.equal(host.version, '2.0');
    });

    await t.test(
      '(c) after 4.0, the forced 2.0 replayed, or another forced 2.0 signed before 4.0, is refused',
      async () => {
        assert.equal(await offer(b4), 'installed');
        assert.match(await offer(forced2), /^rejected: forced bundle 2\.0 was used already/);
        assert.match(
          await offer(forced2b),
          /^rejected: forced bundle 2\.0 \(signed .*\) is older than version 4\.0 installed after it was signed/,
        );
        assert.equal(host.version, '4.0');
      },
    );

    await t.test('the running version is not installed again, even forced; the store stays bounded', async () => {
      assert.equal(await offer(forced4), 'rejected: version 4.0 is running already');
      const folders = await readdir(path.join(dir, 'store', 'versions'));
      assert.ok(folders.length <= MAX_VERSION_FOLDERS, folders.join(', '));
    });

    await t.test('the refusals survive a restart (the history is in the database)', async () => {
      await start(); // 4.0 was on probation: rolled back to 2.0 (forced)
      assert.equal(host.version, '2.0');
      for (const b of [b2, b3, b4, forced2, forced2b]) assert.match(await offer(b), /^rejected: /);
      assert.equal(host.version, '2.0');
    });

    await t.test('a retained offer is ignored at every reconnect', async () => {
      const b5 = await bundle('5.0', 5);
      const { offer: off, chunks } = makeOffer(b5, { chunkSize: b5.length });
      await o.publishAsync(`${BASE}/${KIOSK}/update/offer`, JSON.stringify(off), { qos: 1, retain: true });
      await o.publishAsync(`${BASE}/${KIOSK}/update/chunk`, chunks[0] as Buffer, { qos: 1, retain: true });
      const k = await start();
      const until = Date.now() + 5000;
      while (k.ignoredMessages < 1) {
        assert.ok(Date.now() < until, 'the retained offer reached the restarted updater within 5 s');
        await new Promise((r) => setTimeout(r, 20));
      }
      await k.idle();
      assert.equal(host.version, '2.0');
      await o.publishAsync(`${BASE}/${KIOSK}/update/offer`, '', { qos: 1, retain: true });
      await o.publishAsync(`${BASE}/${KIOSK}/update/chunk`, '', { qos: 1, retain: true });
    });
    await writeFile(path.join(dir, 'done'), '');
  } finally {
    await u?.stop();
    await obs?.endAsync();
    await conn?.stop();
    await broker?.stop();
    db.close();
    await rm(dir, { recursive: true, force: true });
  }
});
