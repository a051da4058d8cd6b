/**
 * The event outbox in the kiosk database: bounded, ordered, monotonic sequence across
 * restarts; an older install's outbox.jsonl and sequence imported once (records that
 * are not events skipped and counted); a database that refuses writes degrades to memory
 * instead of stopping the start; kill -9 at each write leaves the old state or the new.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { KioskDb, kioskDbPath } from '../../src/state/db.js';
import { Outbox } from '../../src/publish/outbox.js';
import { openOutbox, testEvent } from '../support/outbox.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'facegate-outbox-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

function pendingSeqs(o: Outbox): number[] {
  const out: number[] = [];
  for (let e = o.peek(); e; e = o.peek()) {
    out.push(e.payload.seq);
    o.ack(e.payload.seq);
  }
  return out;
}

/** The files an install from before the database left in state.dir, with records a bad disk or an old bug left. */
function legacyFiles(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    path.join(dir, 'outbox.jsonl'),
    [
      JSON.stringify({ add: testEvent(1) }),
      JSON.stringify({ add: testEvent(2) }),
      JSON.stringify({ ack: 1 }),
      'null',
      '42',
      '{"add":null}',
      JSON.stringify({ add: testEvent(3) }),
      '{"add":{"seq":9', // torn by a power cut
    ].join('\n'),
  );
  writeFileSync(path.join(dir, 'sequence'), '5\n');
}

test('bounded, oldest dropped and counted, order kept, sequence monotonic across restarts and an empty outbox', () => {
  const dir = path.join(tmp, 'basic');
  const a = openOutbox(dir, 3);
  for (let i = 0; i < 5; i++) a.o.add(testEvent(a.o.nextSeq()), false);
  assert.equal(a.o.size, 3);
  assert.equal(a.o.dropped, 2);
  assert.equal(a.o.peek()?.payload.seq, 3);
  a.o.ack(3);
  a.db.close();
  const b = openOutbox(dir, 3);
  assert.deepEqual(
    [b.o.size, b.o.peek()?.payload.seq, b.o.peek()?.delayed],
    [2, 4, true],
    'reloaded events are delayed',
  );
  assert.deepEqual(pendingSeqs(b.o), [4, 5]);
  b.db.close();
  const c = openOutbox(dir, 3);
  assert.equal(c.o.size, 0);
  assert.equal(c.o.nextSeq(), 6, 'the sequence survives an empty outbox');
  c.db.close();
});

test("an older install's outbox.jsonl and sequence are imported once; null, 42, {add:null} and a torn line are skipped and counted", () => {
  const dir = path.join(tmp, 'legacy');
  legacyFiles(dir);
  const a = openOutbox(dir);
  assert.equal(a.o.badRecords, 4);
  assert.equal(a.o.imported, 2);
  assert.equal(existsSync(path.join(dir, 'outbox.jsonl')), false);
  assert.equal(existsSync(path.join(dir, 'sequence')), false);
  assert.equal(a.o.nextSeq(), 6, 'the sequence file counts (5), not only the events left');
  a.db.close();
  const b = openOutbox(dir);
  assert.equal(b.o.badRecords, 0);
  assert.deepEqual(pendingSeqs(b.o), [2, 3]);
  b.db.close();
});

test('records in the database that are not events are skipped, counted and removed', () => {
  const dir = path.join(tmp, 'bad-rows');
  const a = openOutbox(dir);
  a.o.add(testEvent(a.o.nextSeq()), false);
  a.db.db.prepare('INSERT INTO event_outbox (seq, payload) VALUES (?, ?)').run(7, 'null');
  a.db.db.prepare('INSERT INTO event_outbox (seq, payload) VALUES (?, ?)').run(8, '{"seq":8}');
  a.db.db.prepare('INSERT INTO event_outbox (seq, payload) VALUES (?, ?)').run(9, 'not json');
  a.db.close();
  const b = openOutbox(dir);
  assert.equal(b.o.badRecords, 3);
  assert.deepEqual(pendingSeqs(b.o), [1]);
  b.db.close();
  assert.equal(openOutbox(dir).o.badRecords, 0);
});

test('a long outage keeps at most maxEvents stored: 20,000 events, maxEvents 10', () => {
  const dir = path.join(tmp, 'outage');
  const a = openOutbox(dir, 10);
  for (let i = 0; i < 20_000; i++) a.o.add(testEvent(a.o.nextSeq()), true);
  assert.equal(a.o.size, 10);
  assert.equal(a.o.dropped, 19_990);
  assert.equal((a.db.db.prepare('SELECT COUNT(*) AS n FROM event_outbox').get() as { n: number }).n, 10);
  a.db.db.pragma('wal_checkpoint(TRUNCATE)');
  assert.ok(statSync(kioskDbPath(dir)).size < 256 * 1024, `database of ${statSync(kioskDbPath(dir)).size} bytes`);
  a.db.close();
  const b = openOutbox(dir, 10);
  assert.deepEqual(
    pendingSeqs(b.o),
    Array.from({ length: 10 }, (_, i) => 19_991 + i),
  );
  b.db.close();
});

test('a database that refuses writes (full) degrades to memory at start and while running, and catches up after', () => {
  const dir = path.join(tmp, 'full');
  // At start: the tables cannot even be created; the older files are read and kept.
  legacyFiles(dir);
  const full = KioskDb.open(kioskDbPath(dir));
  full.db.pragma(`max_page_count = ${full.db.pragma('page_count', { simple: true }) as number}`);
  const a = new Outbox(full, dir, 1000);
  assert.doesNotThrow(() => a.load());
  assert.match(a.degraded ?? '', /full/);
  assert.equal(a.size, 2);
  assert.ok(existsSync(path.join(dir, 'outbox.jsonl')), 'the older files stay until imported');
  for (let i = 0; i < 200; i++) assert.doesNotThrow(() => a.add(testEvent(a.nextSeq()), false));
  assert.equal(a.size, 202);
  assert.ok(a.writeFailures >= 200);
  assert.ok(a.degraded !== null);
  // Space again: the next write stores everything held in memory.
  full.db.pragma('max_page_count = 1000000');
  a.add(testEvent(a.nextSeq()), false);
  assert.equal(a.degraded, null);
  full.close();
  const b = openOutbox(dir, 1000);
  assert.equal(b.o.size, 203);
  assert.equal(b.o.nextSeq(), 207);
  b.db.close();
});

test('kill -9 at each write: the outbox holds the state before that write, and the next start carries on', () => {
  const child = path.resolve('dist/test/publish/outbox-child.js');
  // The state after each write of the child's script (import; add 6, 7, 8; ack 2).
  const states: { pending: number[]; next: number }[] = [
    { pending: [2, 3], next: 6 },
    { pending: [2, 3, 6], next: 7 },
    { pending: [2, 3, 6, 7], next: 8 },
    { pending: [2, 3, 6, 7, 8], next: 9 },
    { pending: [3, 6, 7, 8], next: 9 },
  ];
  const crashes: [string, number][] = [
    ['outbox-import-written#1', 0],
    ['outbox-add-written#1', 0],
    ['outbox-add-written#2', 1],
    ['outbox-add-written#3', 2],
    ['outbox-ack-written#1', 3],
    ['', 4], // no crash
  ];
  for (const [at, want] of crashes) {
    const dir = path.join(tmp, `crash-${at || 'none'}`);
    legacyFiles(dir);
    const r = spawnSync(process.execPath, [child, dir], {
      encoding: 'utf8',
      env: { ...process.env, FACEGATE_CRASH_AT: at },
    });
    if (at) assert.equal(r.signal, 'SIGKILL', `${at}: ${r.stderr}`);
    else assert.equal(r.stdout, 'done\n', r.stderr);
    const { db, o } = openOutbox(dir);
    const next = o.nextSeq();
    assert.deepEqual({ pending: pendingSeqs(o), next }, states[want], at);
    db.close();
  }
});
