/**
 * Signed people bundles: an operator's kiosk enrols real faces and exports a bundle signed
 * with the update key; another kiosk installs it and recognises the people; a removal
 * bundle erases a person there, for good (a replayed or older bundle cannot bring her back);
 * tampered, unknown-key, foreign-kiosk and other-descriptor bundles are refused with the
 * reason. The CLI (export-bundle, install-bundle) does the same between two state folders.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { requireShared } from '../support/shared.js';
import { ENROL_CONDITIONS, filesContaining, yale } from '../support/gallery.js';
import { galleryConfigSchema } from '../../src/gallery/config.js';
import { openGallery, type OpenGallery } from '../../src/gallery/open.js';
import { createPeopleBundle, installPeopleBundle, type PeopleInstallResult } from '../../src/gallery/bundle.js';
import { PeopleBundleReceiver, publishPeopleBundle } from '../../src/gallery/receiver.js';
import { MqttConnection } from '../../src/publish/mqtt.js';
import { Topics, type PeopleStatePayload } from '../../src/publish/topics.js';
import { connectAsync } from 'mqtt';
import { createHash } from 'node:crypto';
import { startMosquitto } from '../support/mosquitto.js';
import { search } from '../../src/gallery/match.js';
import { generateKeyPair, loadPrivateKey, loadPublicKeys } from '../../src/update/keys.js';
import { UpdateRejected } from '../../src/update/errors.js';
import { KioskDb, kioskDbPath } from '../../src/state/db.js';
import { decodeRgb } from '../../src/shared/image.js';
import { alignFace } from '../../src/detect/align.js';
import { MODEL_DESCRIPTOR_FILE, loadModelDirDescriptor } from '../../src/gallery/descriptor.js';
import { tinyModel } from '../update/helpers.js';

const cli = path.resolve('dist/src/cli.js');
let dir = '';
const opened: { g: OpenGallery; db: KioskDb }[] = [];

before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'facegate-people-bundle-'));
});
after(async () => {
  for (const o of opened.reverse()) {
    await o.g.close();
    o.db.close();
  }
  rmSync(dir, { recursive: true, force: true });
});

async function kiosk(name: string, descriptor?: OpenGallery['descriptor']): Promise<{ g: OpenGallery; db: KioskDb }> {
  const stateDir = path.join(dir, name);
  const db = KioskDb.open(kioskDbPath(stateDir));
  const g = await openGallery({
    config: galleryConfigSchema.parse({}),
    stateDir,
    db,
    threads: 1,
    ...(descriptor ? { descriptor } : {}),
  });
  opened.push({ g, db });
  return { g, db };
}

async function rejected(fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof UpdateRejected) return err.message;
    throw err;
  }
  assert.fail('expected an UpdateRejected');
}

test('a signed people bundle enrols people on another kiosk; a removal bundle is final; bad bundles are refused', async (t) => {
  if (!requireShared(t)) return;
  const keys = await generateKeyPair(path.join(dir, 'keys'));
  const key = await loadPrivateKey(keys.privateKeyFile);
  const trusted = await loadPublicKeys([keys.publicKeyFile]);
  const stranger = await loadPrivateKey((await generateKeyPair(path.join(dir, 'stranger'))).privateKeyFile);

  const op = await kiosk('operator');
  const ada = await op.g.gallery.enrolPhotos(
    'Ada',
    ENROL_CONDITIONS.map((c) => yale(1, c)),
  );
  await op.g.gallery.enrolPhotos(
    'Bo',
    ENROL_CONDITIONS.map((c) => yale(2, c)),
  );
  const descriptor = op.g.gallery.descriptorId;
  const door = await kiosk('door', op.g.descriptor);
  const install = (bytes: Buffer, kioskId = 'door-1', d = descriptor): ReturnType<typeof installPeopleBundle> =>
    installPeopleBundle(bytes, {
      store: door.g.store,
      db: door.db,
      keys: trusted,
      kioskId,
      descriptor: d,
      keepCrops: true,
      describeCrops: (c) => door.g.gallery.describeCrops(c),
    });
  const at = (s: number): Date => new Date(Date.UTC(2026, 0, 1, 0, 0, s));

  // Made and signed before the others: an older bundle, kept by an attacker.
  const early = createPeopleBundle({ store: op.g.store, descriptor, key, now: at(1) }).bytes;
  const first = createPeopleBundle({ store: op.g.store, descriptor, key, now: at(2) });
  assert.equal(first.manifest.people.length, 2);
  assert.equal(first.manifest.people[0]?.templates.length, 3);

  // Refused before anything is written.
  const tampered = Buffer.from(first.bytes.toString().replace('"Bo"', '"Eve"'));
  assert.match(await rejected(() => install(tampered)), /bad signature/);
  const foreign = createPeopleBundle({ store: op.g.store, descriptor, key: stranger, now: at(3) }).bytes;
  assert.match(await rejected(() => install(foreign)), /unknown key .*updates\.publicKeys/);
  const elsewhere = createPeopleBundle({ store: op.g.store, descriptor, key, kiosks: ['door-9'], now: at(3) }).bytes;
  assert.match(await rejected(() => install(elsewhere)), /for kiosks door-9, not door-1/);
  assert.match(
    await rejected(() => install(first.bytes, 'door-1', 'other:x')),
    /made by descriptor .* runs other:x and the bundle carries no face crops.*--with-crops/,
  );
  assert.equal(door.g.gallery.list().length, 0);

  // Installed: both people, with the operator's ids; Ada's other photo finds her on this kiosk.
  assert.deepEqual(await install(first.bytes), { put: 2, removed: 0, skipped: [], fromCrops: 0 });
  assert.deepEqual(
    door.g.gallery.list().map((p) => [p.name, p.templates]),
    [
      ['Ada', 3],
      ['Bo', 3],
    ],
  );
  assert.equal(door.g.gallery.get('Ada')?.id, ada.person.id);
  const snap = door.g.gallery.snapshot();
  const img = await decodeRgb(yale(1, 'sad'));
  const [face] = await door.g.detector.detect(img);
  assert.ok(face);
  const d = door.g.descriptor;
  const [probe] = await d.describe([alignFace(img, face.box, face.keypoints, d.inputSize, d.crop)]);
  const hit = search(snap.index, probe as Float32Array).best;
  assert.equal(snap.names.get(hit?.personId ?? ''), 'Ada');
  assert.ok((hit?.score ?? 0) >= snap.threshold, 'recognised with the bundle templates');

  // Replays: the same bundle, and one signed before it.
  assert.match(await rejected(() => install(first.bytes)), /installed already/);
  assert.match(await rejected(() => install(early)), /not newer than the people bundle of 2026-01-01T00:00:02/);

  // Removal: Ada is erased on the door kiosk: rows, template bytes.
  const vectors = door.g.store.templates(ada.person.id).map((x) => Buffer.from(x.vector.buffer, 0, 64));
  const removal = createPeopleBundle({
    store: op.g.store,
    descriptor,
    names: ['Bo'],
    removed: [ada.person.id],
    key,
    now: at(4),
  }).bytes;
  assert.deepEqual(await install(removal), { put: 1, removed: 1, skipped: [], fromCrops: 0 });
  assert.equal(door.g.gallery.get('Ada'), undefined);
  assert.deepEqual(filesContaining(path.join(dir, 'door'), vectors), [], 'no template byte of hers is left');
  assert.deepEqual(
    door.g.gallery.list().map((p) => p.name),
    ['Bo'],
  );

  // Final: a newer bundle that still lists her (the operator's kiosk kept her) does not bring her back.
  const later = createPeopleBundle({ store: op.g.store, descriptor, key, now: at(5) }).bytes;
  assert.deepEqual(await install(later), { put: 1, removed: 0, skipped: ['Ada'], fromCrops: 0 });
  assert.equal(door.g.gallery.get('Ada'), undefined);
  assert.match(await rejected(() => install(first.bytes)), /installed already/);
});

test('with crops (format 2), a kiosk running another descriptor computes its own templates; it keeps the crops only if its config does', async (t) => {
  if (!requireShared(t)) return;
  const keys = await generateKeyPair(path.join(dir, 'crop-keys'));
  const key = await loadPrivateKey(keys.privateKeyFile);
  const trusted = await loadPublicKeys([keys.publicKeyFile]);
  const op = await kiosk('crop-operator');
  const eve = await op.g.gallery.enrolPhotos(
    'Eve',
    ENROL_CONDITIONS.map((c) => yale(5, c)),
  );
  const descriptor = op.g.gallery.descriptorId;
  // Another descriptor: a small real ONNX graph (pixels → 3 features), as a model directory brings one.
  const modelDir = path.join(dir, 'other-model');
  mkdirSync(modelDir, { recursive: true });
  writeFileSync(path.join(modelDir, MODEL_DESCRIPTOR_FILE), tinyModel(42, 4));
  const other = await loadModelDirDescriptor(modelDir, 1);
  assert.ok(other);
  t.after(() => other.close());
  assert.notEqual(other.id, descriptor);
  const plain = createPeopleBundle({ store: op.g.store, descriptor, key, now: new Date(Date.UTC(2026, 1, 1)) });
  const withCrops = createPeopleBundle({
    store: op.g.store,
    descriptor,
    key,
    withCrops: true,
    now: new Date(Date.UTC(2026, 1, 2)),
  });
  assert.equal(plain.manifest.formatVersion, 1, 'without crops: the format every kiosk reads');
  assert.equal(withCrops.manifest.formatVersion, 2);
  const crops = withCrops.manifest.people[0]?.crops ?? [];
  assert.equal(crops.length, 3);
  const kept = op.g.store.templates(eve.person.id).map((x) => op.g.store.readCrop(eve.person.id, x.cropFile ?? ''));
  assert.deepEqual(
    crops.map((c) => Buffer.from(c, 'base64')),
    kept,
    'the kept crops, byte for byte',
  );

  for (const keepCrops of [false, true]) {
    const k = await kiosk(`crop-door-${keepCrops}`, other);
    const install = (bytes: Buffer): Promise<PeopleInstallResult> =>
      installPeopleBundle(bytes, {
        store: k.g.store,
        db: k.db,
        keys: trusted,
        kioskId: 'door-2',
        descriptor: k.g.gallery.descriptorId,
        keepCrops,
        describeCrops: (c) => k.g.gallery.describeCrops(c),
      });
    assert.match(await rejected(() => install(plain.bytes)), /carries no face crops/);
    assert.deepEqual(await install(withCrops.bytes), { put: 1, removed: 0, skipped: [], fromCrops: 1 });
    const ts = k.g.store.templates(eve.person.id);
    assert.deepEqual(
      ts.map((x) => [x.descriptor, x.vector.length]),
      [
        [other.id, 3],
        [other.id, 3],
        [other.id, 3],
      ],
      "three templates of this kiosk's descriptor, computed here",
    );
    assert.equal(k.g.gallery.snapshot().people, 1, 'searchable at once');
    const files = k.g.store.files(eve.person.id);
    if (keepCrops) {
      assert.equal(files.length, 3, 'the crops are kept: a later model change recomputes from them');
      assert.ok(ts.every((x) => x.cropFile !== null));
      for (const f of files)
        assert.equal(statSync(path.join(k.g.store.personDir(eve.person.id), f)).mode & 0o777, 0o600);
    } else {
      assert.deepEqual(files, [], 'gallery.keepCrops false: no face image is written');
      assert.deepEqual(filesContaining(path.join(dir, `crop-door-${keepCrops}`), kept), []);
    }
  }
});

test('facegate enrol export-bundle / install-bundle between two kiosks', async (t) => {
  if (!requireShared(t)) return;
  const keys = await generateKeyPair(path.join(dir, 'cli-keys'));
  const config = (name: string): string => {
    const file = path.join(dir, `${name}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        state: { dir: path.join(dir, `${name}-state`) },
        mqtt: { kioskId: name },
        model: { threads: 1 },
        updates: { publicKeys: [keys.publicKeyFile] },
      }),
    );
    return file;
  };
  const run = (args: string[]): string => {
    const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, `facegate ${args.join(' ')}\n${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  const op = config('cli-operator');
  const door = config('cli-door');
  const photos = ENROL_CONDITIONS.map((c) => {
    const f = path.join(dir, `cy-${c}.gif`);
    writeFileSync(f, yale(3, c));
    return f;
  });
  run(['enrol', 'add', 'Cy', ...photos, '--config', op]);
  const file = path.join(dir, 'people.fgpeople');
  assert.match(
    run(['enrol', 'export-bundle', '--key', keys.privateKeyFile, '--out', file, '--config', op]),
    /wrote .*: 1 people, 0 removals, \d+ bytes, signed .* by key [0-9a-f]{16}/,
  );
  assert.ok(existsSync(file));
  assert.match(
    run(['enrol', 'export-bundle', '--key', keys.privateKeyFile, '--out', `${file}.2`, '--with-crops', '--config', op]),
    /wrote .*: 1 people with their face crops, 0 removals/,
  );
  assert.match(run(['enrol', 'install-bundle', file, '--config', door]), /1 people enrolled or updated, 0 erased/);
  assert.match(run(['enrol', 'list', '--config', door]), /^Cy {2}\(3 templates/m);
  const again = spawnSync(process.execPath, [cli, 'enrol', 'install-bundle', file, '--config', door], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.notEqual(again.status, 0);
  assert.match(again.stderr, /installed already/);
});

test('over MQTT: one fleet publish enrols the people on every kiosk, each answers on its people topic; the removal reaches every kiosk the same way; a replay is rejected with the reason', async (t) => {
  if (!requireShared(t)) return;
  const broker = await startMosquitto();
  const receivers: { r: PeopleBundleReceiver; conn: MqttConnection }[] = [];
  const observer = await connectAsync(broker.url, { clientId: 'people-observer', reconnectPeriod: 0 });
  try {
    const keys = await generateKeyPair(path.join(dir, 'fleet-keys'));
    const key = await loadPrivateKey(keys.privateKeyFile);
    const trusted = await loadPublicKeys([keys.publicKeyFile]);
    const op = await kiosk('fleet-operator');
    const dee = await op.g.gallery.enrolPhotos(
      'Dee',
      ENROL_CONDITIONS.map((c) => yale(4, c)),
    );
    const descriptor = op.g.gallery.descriptorId;
    const doors: { g: OpenGallery; results: (PeopleInstallResult | Error)[] }[] = [];
    for (const id of ['fleet-a', 'fleet-b']) {
      const k = await kiosk(id, op.g.descriptor);
      const results: (PeopleInstallResult | Error)[] = [];
      const conn = new MqttConnection(broker.url, { clientId: id, reconnectPeriod: 200 }, new Topics('facegate', id));
      await conn.start(5000);
      const r = new PeopleBundleReceiver({
        mqtt: conn,
        baseTopic: 'facegate',
        kioskId: id,
        keys: trusted,
        gallery: k.g.gallery,
        store: k.g.store,
        db: k.db,
        keepCrops: true,
        onResult: (x) => results.push(x),
      });
      await r.start();
      receivers.push({ r, conn });
      doors.push({ g: k.g, results });
    }
    // What any subscriber sees: the retained answer of each kiosk.
    const seen: { topic: string; state: PeopleStatePayload; retain: boolean }[] = [];
    observer.on('message', (topic, payload, packet) =>
      seen.push({ topic, state: JSON.parse(payload.toString()) as PeopleStatePayload, retain: packet.retain }),
    );
    await observer.subscribeAsync('facegate/+/people', { qos: 1 });
    const send = async (bytes: Buffer): Promise<ReadonlyMap<string, PeopleStatePayload>> => {
      const { verdicts } = await publishPeopleBundle({
        brokerUrl: broker.url,
        baseTopic: 'facegate',
        kiosks: ['fleet-a', 'fleet-b'],
        fleet: false,
        bundle: bytes,
        waitMs: 30_000,
      });
      assert.deepEqual([...verdicts.keys()].sort(), ['fleet-a', 'fleet-b'], 'both kiosks answered within 30 s');
      return verdicts;
    };
    const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
    const first = createPeopleBundle({ store: op.g.store, descriptor, key });
    let verdicts = await send(first.bytes);
    for (const d of doors) {
      assert.deepEqual(d.results[0], { put: 1, removed: 0, skipped: [], fromCrops: 0 });
      assert.equal(d.g.gallery.get('Dee')?.id, dee.person.id);
    }
    for (const [kiosk, v] of verdicts)
      assert.deepEqual(
        { ...v, at: 'x' },
        {
          kiosk,
          state: 'installed',
          sha256: sha(first.bytes),
          createdAt: first.manifest.createdAt,
          at: 'x',
          put: 1,
          removed: 0,
          skipped: 0,
          fromCrops: 0,
        },
      );

    // The same bundle again: each kiosk rejects it, says why, and the retained state says so.
    verdicts = await send(first.bytes);
    for (const v of verdicts.values()) {
      assert.match(v.state, /^rejected: people bundle of .* was installed already/);
      assert.equal(v.put, null);
      assert.equal(v.createdAt, first.manifest.createdAt);
    }
    const late = await connectAsync(broker.url, { clientId: 'people-late', reconnectPeriod: 0 });
    try {
      const retained = new Map<string, PeopleStatePayload>();
      late.on('message', (topic, payload, packet) => {
        if (packet.retain) retained.set(topic, JSON.parse(payload.toString()) as PeopleStatePayload);
      });
      await late.subscribeAsync('facegate/+/people', { qos: 1 });
      for (const until = Date.now() + 10_000; retained.size < 2;) {
        assert.ok(Date.now() < until, 'both retained states within 10 s');
        await new Promise((r) => setTimeout(r, 20));
      }
      for (const s of retained.values()) assert.match(s.state, /^rejected: .*installed already/);
    } finally {
      await late.endAsync();
    }

    // The removal goes to the fleet topic: every kiosk gets it from one publish.
    const removal = createPeopleBundle({ store: op.g.store, descriptor, names: [], removed: [dee.person.id], key });
    await publishPeopleBundle({
      brokerUrl: broker.url,
      baseTopic: 'facegate',
      kiosks: [],
      fleet: true,
      bundle: removal.bytes,
    });
    for (const until = Date.now() + 30_000; doors.some((d) => d.results.length < 3);) {
      assert.ok(Date.now() < until, 'every kiosk handles the removal within 30 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const d of doors) assert.equal(d.g.gallery.get('Dee'), undefined, 'removed on every kiosk');
    for (const until = Date.now() + 10_000; seen.filter((x) => x.state.sha256 === sha(removal.bytes)).length < 2;) {
      assert.ok(Date.now() < until, 'both answers to the removal within 10 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const x of seen.filter((y) => y.state.sha256 === sha(removal.bytes))) {
      assert.equal(x.state.state, 'installed');
      assert.equal(x.state.removed, 1);
    }
  } finally {
    await observer.endAsync();
    for (const { r, conn } of receivers) {
      await r.stop();
      await conn.stop();
    }
    await broker.stop();
  }
});
