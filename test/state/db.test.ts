import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { KioskDb, KioskDbError, kioskDbPath, type Migration } from '../../src/state/db.js';

const notes: Migration[] = [
  { version: 1, description: 'notes', up: (db) => db.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)') },
  { version: 2, description: 'notes.at', up: (db) => db.exec('ALTER TABLE notes ADD COLUMN at TEXT') },
];

function tempDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'facegate-db-'));
}

test('migrations run once, in order, and survive reopening', () => {
  const dir = tempDir();
  try {
    const file = kioskDbPath(path.join(dir, 'state'));
    const a = KioskDb.open(file);
    assert.equal(a.version('notes'), 0);
    a.migrate('notes', notes.slice(0, 1));
    assert.equal(a.version('notes'), 1);
    a.db.prepare('INSERT INTO notes (text) VALUES (?)').run('kept');
    a.close();

    const b = KioskDb.open(file);
    b.migrate('notes', notes);
    assert.equal(b.version('notes'), 2);
    b.migrate('notes', notes); // nothing left to do
    assert.deepEqual(b.db.prepare('SELECT text, at FROM notes').all(), [{ text: 'kept', at: null }]);
    assert.equal(b.db.pragma('journal_mode', { simple: true }), 'wal');
    b.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('parts keep separate versions', () => {
  const db = KioskDb.open(':memory:');
  db.migrate('notes', notes);
  db.migrate('other', [{ version: 1, description: 'x', up: (d) => d.exec('CREATE TABLE other (x)') }]);
  assert.equal(db.version('notes'), 2);
  assert.equal(db.version('other'), 1);
  db.close();
});

test('a failing migration leaves neither its tables nor its version', () => {
  const db = KioskDb.open(':memory:');
  db.migrate('notes', notes.slice(0, 1));
  const broken: Migration = {
    version: 2,
    description: 'half done',
    up: (d) => {
      d.exec('CREATE TABLE half (x)');
      throw new Error('boom');
    },
  };
  assert.throws(() => db.migrate('notes', [notes[0] as Migration, broken]), /boom/);
  assert.equal(db.version('notes'), 1);
  assert.equal(db.db.prepare("SELECT name FROM sqlite_master WHERE name = 'half'").get(), undefined);
  db.close();
});

test('a database from a newer facegate is refused with what to do', () => {
  const db = KioskDb.open(':memory:');
  db.migrate('notes', notes);
  assert.throws(
    () => db.migrate('notes', notes.slice(0, 1)),
    (err: unknown) => err instanceof KioskDbError && /newer than this facegate knows/.test(err.message),
  );
  db.close();
});

test('migrations must be numbered without gaps', () => {
  const db = KioskDb.open(':memory:');
  assert.throws(() => db.migrate('notes', [notes[1] as Migration]), /numbered 1, 2, 3/);
  db.close();
});

test('a file that is not a database is refused with what to do', () => {
  const dir = tempDir();
  try {
    const file = path.join(dir, 'kiosk.db');
    writeFileSync(file, 'this is not SQLite '.repeat(100));
    assert.throws(
      () => KioskDb.open(file),
      (err: unknown) => err instanceof KioskDbError && /damaged .*move the file away/s.test(err.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('read-only open of a missing database says the kiosk has not run', () => {
  const dir = tempDir();
  try {
    assert.throws(
      () => KioskDb.open(path.join(dir, 'kiosk.db'), { readonly: true }),
      (err: unknown) => err instanceof KioskDbError && /Has the kiosk run here yet/.test(err.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
