/**
 * The update history as the admin page lists it: every bundle offered, newest attempt first,
 * with what became of it (installed, refused or rolled back, with why). A real kiosk
 * database in memory; manifests made here (the history reads only their fields).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KioskDb } from '../../src/state/db.js';
import type { BundleManifest } from '../../src/update/bundle.js';
import { UpdateHistory } from '../../src/update/history.js';

function manifest(version: string, forced = false): BundleManifest {
  return {
    format: 'facegate-bundle' as const,
    formatVersion: 1 as const,
    version,
    createdAt: '2026-11-01T10:00:00.000Z',
    forced,
    expiresAt: forced ? '2027-01-01T00:00:00.000Z' : null,
    kiosks: null,
    labels: ['a', 'b'],
    thresholds: null,
    files: {},
  };
}

test('list: every bundle offered, newest attempt first, with its outcome', () => {
  const db = KioskDb.open(':memory:');
  try {
    let clock = Date.parse('2026-12-01T08:00:00.000Z');
    const h = new UpdateHistory(db, () => new Date((clock += 60_000)));
    h.open();
    assert.deepEqual(h.list(), []);
    h.installed(manifest('1.0'));
    h.installed(manifest('2.0'));
    h.refuseVersion('2.0', 'rolled back (no frames for 60 s)');
    h.refuse(manifest('3.0'), 'rejected (self-test failed)');
    h.attempt(manifest('1.5', true));
    const list = h.list();
    assert.deepEqual(
      list.map((u) => [u.version, u.forced, u.installedAt !== null, u.reason]),
      [
        ['1.5', true, false, null],
        ['3.0', false, false, 'rejected (self-test failed)'],
        ['2.0', false, true, 'rolled back (no frames for 60 s)'],
        ['1.0', false, true, null],
      ],
    );
    assert.equal(list[3]?.attemptedAt, '2026-12-01T08:01:00.000Z');
    assert.equal(list[3]?.createdAt, '2026-11-01T10:00:00.000Z');
    assert.ok(list[2]?.refusedAt);
    assert.equal(h.list(2).length, 2);
  } finally {
    db.close();
  }
});
