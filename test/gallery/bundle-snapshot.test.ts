/**
 * Snapshots of the people bundle (formats 1 and 2) and of the kiosk's retained answer on
 * `<base>/<kiosk>/people`. Snapshot of the people bundle (docs/gallery.md, docs/mqtt.md): a public contract between
 * the operator's `facegate enrol export-bundle` and every kiosk. Made by the real code from a
 * gallery of synthetic templates; run-dependent values (ids, times, keys, vectors) normalised.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { KioskDb } from '../../src/state/db.js';
import { GalleryStore } from '../../src/gallery/store.js';
import { createPeopleBundle, readPeopleBundle } from '../../src/gallery/bundle.js';
import { generateKeyPair, loadPrivateKey, loadPublicKeys } from '../../src/update/keys.js';
import { assertSnapshot, normalise } from '../support/snapshot.js';
import { createHash } from 'node:crypto';
import { PeopleBundleReceiver } from '../../src/gallery/receiver.js';
import type { MessageHandler } from '../../src/publish/mqtt.js';
import type { PeopleStatePayload } from '../../src/publish/topics.js';

const DESCRIPTOR = 'faceres:0123456789abcdef/align1:m1.3r';

test('people bundle (snapshot)', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'facegate-people-snap-'));
  const db = KioskDb.open(':memory:');
  try {
    const store = new GalleryStore(db, path.join(dir, 'gallery'));
    store.open();
    const vector = Float32Array.from({ length: 8 }, (_, i) => (i + 1) / 10);
    const ada = store.addTemplates(
      'Ada',
      'faceres:0123456789abcdef/align1:m1.3r',
      [{ vector, source: 'photo 1', quality: {} }],
      { groups: ['staff'], validUntil: '2030-01-01T00:00:00.000Z' },
    );
    const keys = await generateKeyPair(path.join(dir, 'keys'));
    const { bytes, manifest } = createPeopleBundle({
      store,
      descriptor: 'faceres:0123456789abcdef/align1:m1.3r',
      removed: ['7d444840-9dc0-41b1-8f4e-5b2a2c3f6a10'],
      key: await loadPrivateKey(keys.privateKeyFile),
    });
    assert.deepEqual(readPeopleBundle(bytes, await loadPublicKeys([keys.publicKeyFile])), manifest);
    assert.equal(manifest.people[0]?.id, ada.id);
    assertSnapshot(
      'people-bundle',
      normalise(JSON.parse(bytes.toString()), {
        'manifest.createdAt': 'iso-time',
        'manifest.people.0.id': 'uuid',
        'manifest.people.0.templates.0': 'base64',
        'manifest.removed.0': 'uuid',
        'signatures.0.keyId': 'hex16',
        'signatures.0.signature': 'base64',
      }),
    );
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('people bundle with crops, format 2 (snapshot)', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'facegate-people-snap-'));
  const db = KioskDb.open(':memory:');
  try {
    const store = new GalleryStore(db, path.join(dir, 'gallery'));
    store.open();
    const vector = Float32Array.from({ length: 8 }, (_, i) => (i + 1) / 10);
    // Any bytes stand for the kept PNG crop here: the exporter copies the file, it does not decode it.
    store.addTemplates('Ada', DESCRIPTOR, [{ vector, source: 'photo 1', quality: {}, crop: Buffer.from('crop one') }], {
      groups: ['staff'],
    });
    const keys = await generateKeyPair(path.join(dir, 'keys'));
    const { bytes, manifest } = createPeopleBundle({
      store,
      descriptor: DESCRIPTOR,
      withCrops: true,
      key: await loadPrivateKey(keys.privateKeyFile),
    });
    assert.deepEqual(readPeopleBundle(bytes, await loadPublicKeys([keys.publicKeyFile])), manifest);
    assert.equal(Buffer.from(manifest.people[0]?.crops?.[0] ?? '', 'base64').toString(), 'crop one');
    assertSnapshot(
      'people-bundle-v2',
      normalise(JSON.parse(bytes.toString()), {
        'manifest.createdAt': 'iso-time',
        'manifest.people.0.id': 'uuid',
        'manifest.people.0.templates.0': 'base64',
        'manifest.people.0.crops.0': 'base64',
        'signatures.0.keyId': 'hex16',
        'signatures.0.signature': 'base64',
      }),
    );
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** The kiosk's MQTT connection, in memory: records what the receiver publishes, hands it messages. */
class MemoryMqtt {
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
  onConnect(): void {}
}

test('the retained people state: installed, and rejected with the reason (snapshot)', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'facegate-people-state-'));
  const op = KioskDb.open(':memory:');
  const door = KioskDb.open(':memory:');
  const mqtt = new MemoryMqtt();
  let receiver: PeopleBundleReceiver | undefined;
  try {
    const opStore = new GalleryStore(op, path.join(dir, 'op'));
    opStore.open();
    opStore.addTemplates('Ada', DESCRIPTOR, [{ vector: Float32Array.from([0.6, 0.8]), source: 'p', quality: {} }]);
    const keys = await generateKeyPair(path.join(dir, 'keys'));
    const key = await loadPrivateKey(keys.privateKeyFile);
    const bundle = createPeopleBundle({ store: opStore, descriptor: DESCRIPTOR, key });
    const doorStore = new GalleryStore(door, path.join(dir, 'door'));
    doorStore.open();
    const results: unknown[] = [];
    receiver = new PeopleBundleReceiver({
      mqtt,
      baseTopic: 'facegate',
      kioskId: 'front-door',
      keys: await loadPublicKeys([keys.publicKeyFile]),
      gallery: {
        descriptorId: DESCRIPTOR,
        describeCrops: () => Promise.reject(new Error('not called: same descriptor')),
      },
      store: doorStore,
      db: door,
      keepCrops: true,
      onResult: (r) => results.push(r),
    });
    await receiver.start();
    const deliver = (bytes: Buffer): void =>
      mqtt.handlers.get('update/people')?.('update/people', bytes, { retained: false });
    deliver(bundle.bytes);
    deliver(bundle.bytes);
    await receiver.idle();
    assert.equal(results.length, 2);
    const states = mqtt.published.filter((p) => p.topic === 'people');
    assert.deepEqual(
      states.map((p) => [p.qos, p.retain]),
      [
        [1, true],
        [1, true],
      ],
      'QoS 1, retained, as the model state',
    );
    const [installed, rejected] = states.map((p) => JSON.parse(p.payload) as PeopleStatePayload);
    const sha = createHash('sha256').update(bundle.bytes).digest('hex');
    assert.equal(installed?.sha256, sha);
    assert.equal(installed?.createdAt, bundle.manifest.createdAt);
    assert.match(rejected?.state ?? '', /^rejected: people bundle of .* was installed already \(at /);
    const rules = { sha256: 'sha256', createdAt: 'iso-time', at: 'iso-time' } as const;
    assertSnapshot('mqtt-people-state', {
      installed: normalise(installed, rules),
      rejected: normalise(
        { ...rejected, state: rejected?.state.replace(/\d{4}-[\d-]+T[\d:.]+Z/g, '<iso-time>') },
        rules,
      ),
    });
  } finally {
    await receiver?.stop();
    op.close();
    door.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
