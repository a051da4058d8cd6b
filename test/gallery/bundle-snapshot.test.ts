/**
 * Snapshot of the people bundle (docs/gallery.md, docs/mqtt.md): a public contract between
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
