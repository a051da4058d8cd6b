/**
 * Templates belong to a descriptor. A signed model update (real mosquitto, real updater,
 * real ONNX models) whose model directory brings another face descriptor (`descriptor.onnx`):
 * - with crops kept, the daemon's loader computes every enrolled person's templates for the
 *   new descriptor from the kept crops before the switch, and enrolment follows the new
 *   descriptor; a rollback finds the previous descriptor's templates again;
 * - with crops not kept, the update is refused with the reason (rolled back, who is concerned)
 *   and the kiosk keeps its model, descriptor and templates.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { startMosquitto, type Mosquitto } from '../support/mosquitto.js';
import { requireShared, sharedPaths } from '../support/shared.js';
import { ENROL_CONDITIONS, yale } from '../support/gallery.js';
import { tinyModel, writeTinyModelDir } from '../update/helpers.js';
import { MqttConnection } from '../../src/publish/mqtt.js';
import { Topics, type ModelStatePayload } from '../../src/publish/topics.js';
import { generateKeyPair, loadPrivateKey } from '../../src/update/keys.js';
import { createBundle } from '../../src/update/bundle.js';
import { DeviceModelRunner } from '../../src/update/selftest.js';
import { updatesConfigSchema } from '../../src/update/config.js';
import { ModelUpdater } from '../../src/update/updater.js';
import { publishModel } from '../../src/update/publisher.js';
import { KioskDb } from '../../src/state/db.js';
import { configSchema } from '../../src/config/schema.js';
import { galleryConfigSchema } from '../../src/gallery/config.js';
import { openGallery, type OpenGallery } from '../../src/gallery/open.js';
import { MODEL_DESCRIPTOR_FILE, loadModelDirDescriptor } from '../../src/gallery/descriptor.js';
import { sha256 } from '../../src/model/dir/hash.js';
import { MANIFEST_FILE, type Manifest } from '../../src/model/manifest.js';
import { defaultLoader } from '../../src/daemon/daemon.js';
import { ModelHost } from '../../src/daemon/worker.js';

const BASE = 'facegate';
const silent = pino({ level: 'silent' });

/** Waits for the next live (not retained) verdict on the kiosk's model topic. */
function nextVerdict(observer: MqttClient, kiosk: string, version: string): Promise<ModelStatePayload> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      observer.off('message', on);
      reject(new Error(`no verdict for ${version} on ${kiosk}`));
    }, 120_000);
    const on = (topic: string, payload: Buffer, packet: { retain: boolean }): void => {
      if (packet.retain || topic !== `${BASE}/${kiosk}/model`) return;
      const s = JSON.parse(payload.toString()) as ModelStatePayload;
      if (s.offered !== version || s.transfer !== null) return;
      clearTimeout(t);
      observer.off('message', on);
      resolve(s);
    };
    observer.on('message', on);
  });
}

/** A kiosk: its gallery, the daemon's loader and model host, its updater on its own MQTT connection. */
interface Kiosk {
  id: string;
  g: OpenGallery;
  host: ModelHost;
  updater: ModelUpdater;
  conn: MqttConnection;
  db: KioskDb;
}

test('a model update that changes the descriptor: templates recomputed from kept crops, or the update refused', async (t) => {
  if (!requireShared(t)) return;
  const dir = await mkdtemp(path.join(tmpdir(), 'facegate-model-change-'));
  let broker: Mosquitto | undefined;
  let observer: MqttClient | undefined;
  const kiosks: Kiosk[] = [];
  try {
    broker = await startMosquitto();
    const keys = await generateKeyPair(path.join(dir, 'keys'));
    const key = await loadPrivateKey(keys.privateKeyFile);
    const runner = new DeviceModelRunner();
    const fallback = await writeTinyModelDir(path.join(dir, 'm1'), { version: '1.0', seed: 1, int8: true });

    // Model 2.0 brings its own descriptor (a small real graph: pixels → 3 features), listed in its manifest.
    const m2 = await writeTinyModelDir(path.join(dir, 'm2'), { version: '2.0', seed: 2, int8: true });
    const descriptorBytes = tinyModel(42, 4);
    writeFileSync(path.join(m2, MODEL_DESCRIPTOR_FILE), descriptorBytes);
    const manifest = JSON.parse(readFileSync(path.join(m2, MANIFEST_FILE), 'utf8')) as Manifest;
    manifest.files[MODEL_DESCRIPTOR_FILE] = { sha256: sha256(descriptorBytes), bytes: descriptorBytes.length };
    writeFileSync(path.join(m2, MANIFEST_FILE), JSON.stringify(manifest, null, 2));
    const refs = [1, 2].map((i) => path.join(sharedPaths.orl, 'validation', `s${i}`, '9.png'));
    const bundle = (await createBundle({ modelDir: m2, runner, key, references: refs })).bytes;
    const newDescriptor = await loadModelDirDescriptor(m2, 1);
    assert.ok(newDescriptor);
    const newId = newDescriptor.id;
    // What the gallery's snapshot needs of the new descriptor (its model is closed here).
    const next = { id: newId, impostorTail: newDescriptor.impostorTail, rule: newDescriptor.rule };
    await newDescriptor.close();

    const modelCfg = configSchema.parse({ model: { threads: 1 } }).model;
    const start = async (id: string, keepCrops: boolean): Promise<Kiosk> => {
      const db = KioskDb.open(path.join(dir, `${id}.db`));
      const g = await openGallery({
        config: galleryConfigSchema.parse({ keepCrops }),
        stateDir: path.join(dir, `${id}-state`),
        db,
        threads: 1,
      });
      const host = new ModelHost(await defaultLoader(modelCfg, g, silent));
      const conn = new MqttConnection(
        (broker as Mosquitto).url,
        { clientId: `kiosk-${id}`, reconnectPeriod: 200 },
        new Topics(BASE, id),
      );
      await conn.start(5000);
      const updater = new ModelUpdater({
        config: updatesConfigSchema.parse({
          enabled: true,
          publicKeys: [keys.publicKeyFile],
          modelsDir: path.join(dir, `${id}-models`),
          probationMinutes: 10,
          maxBundleBytes: 64 * 1024 * 1024,
        }),
        kioskId: id,
        baseTopic: BASE,
        fallbackDir: fallback,
        mqtt: conn,
        host,
        db,
        log: silent,
      });
      const k = { id, g, host, updater, conn, db };
      kiosks.push(k);
      await host.activate(await updater.recover());
      await updater.start();
      return k;
    };
    observer = await connectAsync(broker.url, { clientId: 'observer' });
    await observer.subscribeAsync(`${BASE}/+/model`, { qos: 1 });
    const offer = async (k: Kiosk): Promise<ModelStatePayload> => {
      const verdict = nextVerdict(observer as MqttClient, k.id, '2.0');
      await publishModel({
        brokerUrl: (broker as Mosquitto).url,
        baseTopic: BASE,
        kiosks: [k.id],
        fleet: false,
        bundle,
        chunkSize: 64 * 1024,
        url: null,
        waitMs: 0,
      });
      const v = await verdict;
      await k.updater.idle();
      return v;
    };

    await t.test('crops kept: every template is recomputed for the new descriptor before the switch', async () => {
      const k = await start('door-keep', true);
      const builtinId = k.g.gallery.descriptorId;
      assert.notEqual(builtinId, newId);
      const ada = await k.g.gallery.enrolPhotos(
        'Ada',
        ENROL_CONDITIONS.map((c) => yale(1, c)),
      );
      const bo = await k.g.gallery.enrolPhotos(
        'Bo',
        ENROL_CONDITIONS.map((c) => yale(2, c)),
      );
      assert.equal(k.g.gallery.snapshot(next).people, 0, 'no template of the new descriptor before the update');

      const v = await offer(k);
      assert.equal(v.state, 'installed', JSON.stringify(v));
      assert.equal(v.version, '2.0');
      assert.equal(k.host.currentVersion, '2.0');
      assert.equal(k.g.gallery.descriptorId, newId, 'enrolment follows the new descriptor');
      for (const p of [ada, bo]) {
        const ts = k.g.store.templates(p.person.id);
        const fresh = ts.filter((x) => x.descriptor === newId);
        const old = ts.filter((x) => x.descriptor === builtinId);
        assert.equal(fresh.length, 3, 'one new template per kept crop');
        assert.equal(fresh[0]?.vector.length, 3, 'made by the new descriptor (3 features)');
        assert.deepEqual(
          fresh.map((x) => x.cropFile).sort(),
          old.map((x) => x.cropFile).sort(),
          'from the same kept crops',
        );
        assert.equal(k.g.gallery.get(p.person.id)?.templates, 3);
      }
      assert.equal(k.g.gallery.snapshot(next).people, 2, 'both searchable under the new descriptor');

      // The recogniser of the new model searches the new templates (a frame of Ada runs without error).
      const r = await k.host.process({ id: 1, timestamp: Date.now(), source: 'test', image: yale(1, 'sad') });
      assert.equal(r.modelVersion, '2.0');
      assert.equal(r.matches.length, 1);

      // Rolled back: the previous descriptor's templates were kept and are searched again.
      assert.equal(await k.updater.reportFailure('test: back to the previous model'), true);
      assert.equal(k.host.currentVersion, '1.0');
      assert.equal(k.g.gallery.descriptorId, builtinId);
      assert.equal(k.g.gallery.snapshot().people, 2);
    });

    await t.test(
      'crops not kept: the update is refused with the reason; model, descriptor and templates stay',
      async () => {
        const k = await start('door-nocrops', false);
        const builtinId = k.g.gallery.descriptorId;
        const cy = await k.g.gallery.enrolPhotos(
          'Cy',
          ENROL_CONDITIONS.map((c) => yale(3, c)),
        );
        assert.deepEqual(k.g.store.files(cy.person.id), [], 'nothing kept but the templates');

        const v = await offer(k);
        assert.match(
          v.state ?? '',
          /^rolled back: model failed to start: 1 enrolled person has no face template for descriptor model:.* and no kept enrolment crops .*gallery\.keepCrops.*: Cy\. Keep the current model, or remove and enrol them again/,
        );
        assert.equal(v.version, '1.0');
        assert.equal(k.host.currentVersion, '1.0');
        assert.equal(k.g.gallery.descriptorId, builtinId);
        assert.deepEqual(
          k.g.store.templates(cy.person.id).map((x) => x.descriptor),
          [builtinId, builtinId, builtinId],
        );
        assert.equal(k.g.gallery.snapshot().people, 1, 'Cy is still recognised');
      },
    );
  } finally {
    for (const k of kiosks.reverse()) {
      await k.updater.stop();
      await k.host.stop();
      await k.conn.stop();
      await k.g.close();
      k.db.close();
    }
    await observer?.endAsync();
    await broker?.stop();
    if (existsSync(dir)) await rm(dir, { recursive: true, force: true });
  }
});
