/**
 * `facegate log` reads the access log read-only while a writer (the daemon) holds the
 * database open in WAL mode; `facegate door unlock-command` prints a command the kiosk's
 * own check accepts.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { KioskDb, kioskDbPath } from '../../src/state/db.js';
import { AccessLog, CSV_COLUMNS, type AccessEntry, type AccessEntryInput } from '../../src/access/log.js';
import { checkUnlock } from '../../src/door/remote.js';
import { generateKeyPair, loadPublicKeys } from '../../src/update/keys.js';

const run = promisify(execFile);
const cli = 'dist/src/cli.js';
const tmp = mkdtempSync(path.join(tmpdir(), 'facegate-log-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

async function facegate(args: string[], stateDir: string): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const r = await run(process.execPath, [cli, ...args], {
      env: { ...process.env, FACEGATE__STATE__DIR: stateDir, FACEGATE_LOG_LEVEL: 'warn' },
      timeout: 60_000,
    });
    return { ...r, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

const base: Omit<AccessEntryInput, 'time' | 'personName' | 'result' | 'reason'> = {
  door: 'front',
  personId: null,
  detail: 'test',
  source: 'face',
  score: 0.8,
  margin: 0.9,
  modelVersion: '20261202.120000',
  eventId: null,
  requestedBy: null,
};

test('facegate log: filters, JSON and CSV, read-only beside a running writer', async () => {
  const stateDir = path.join(tmp, 'state');
  const empty = await facegate(['log'], path.join(tmp, 'nothing-here'));
  assert.notEqual(empty.code, 0);
  assert.match(empty.stderr, /Has the kiosk run here yet/);

  // The daemon's handle: WAL, kept open (and writing) for the whole test.
  const db = KioskDb.open(kioskDbPath(stateDir));
  after(() => db.db.close());
  const notYet = await facegate(['log'], stateDir);
  assert.match(notYet.stderr, /no access log in .* yet: it is created when the kiosk runs with access.enabled: true/);
  const log = new AccessLog(db);
  log.migrate();
  const now = Date.now();
  const ago = (h: number): string => new Date(now - h * 3_600_000).toISOString();
  log.append({ ...base, time: ago(240), personName: 'Ana Lopez', result: 'granted', reason: null });
  log.append({ ...base, time: ago(2), personName: 'Ana Lopez', result: 'granted', reason: null });
  log.markOpened(2);
  log.append({
    ...base,
    time: ago(1),
    personName: 'Bo Chen',
    result: 'denied',
    reason: 'expired',
    detail: '=cmd, "x"',
  });
  log.append({ ...base, time: ago(0), personName: null, result: 'denied', reason: 'unknown' });

  const json = async (...args: string[]): Promise<AccessEntry[]> => {
    const r = await facegate(['log', '--json', ...args], stateDir);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as AccessEntry[];
  };
  const seqs = (es: AccessEntry[]): number[] => es.map((e) => e.seq);
  assert.deepEqual(seqs(await json()), [1, 2, 3, 4]);
  assert.deepEqual(seqs(await json('--since', '24h')), [2, 3, 4]);
  assert.deepEqual(seqs(await json('--since', ago(1.5))), [3, 4]);
  assert.deepEqual(seqs(await json('--denied')), [3, 4]);
  assert.deepEqual(seqs(await json('--person', 'Ana Lopez')), [1, 2]);
  assert.deepEqual(seqs(await json('--person', 'Ana Lopez', '--since', '1d')), [2]);
  assert.deepEqual(seqs(await json('--last', '2')), [3, 4]);
  const [opened] = await json('--since', '3h', '--person', 'Ana Lopez');
  assert.equal(opened?.opened, true);

  const csv = await facegate(['log', '--csv', '--denied'], stateDir);
  assert.equal(csv.code, 0, csv.stderr);
  const lines = csv.stdout.split('\r\n');
  assert.equal(lines[0], CSV_COLUMNS.join(','));
  assert.equal(lines.length, 4, 'header, two rows, final CRLF');
  assert.ok(lines[1]?.startsWith('3,'));
  assert.ok(lines[1]?.includes(`"'=cmd, ""x"""`), 'quoted, and a leading = defused for spreadsheets');

  const text = await facegate(['log', '--denied'], stateDir);
  assert.match(text.stdout, /^3\t.*\tBo Chen\tdenied: expired\tface\t/m);
  assert.match(text.stdout, /^4\t.*\t-\tdenied: unknown\tface\t/m);

  // The writer goes on while readers read; a new entry shows on the next read.
  db.transaction(() =>
    log.append({
      ...base,
      time: new Date().toISOString(),
      personName: 'Cy',
      result: 'denied',
      reason: 'not allowed now',
    }),
  );
  assert.deepEqual(seqs(await json('--person', 'Cy')), [5]);
  assert.equal(db.db.pragma('journal_mode', { simple: true }), 'wal');

  for (const bad of [
    ['--since', 'yesterday'],
    ['--last', '0'],
    ['--json', '--csv'],
  ]) {
    const r = await facegate(['log', ...bad], stateDir);
    assert.notEqual(r.code, 0, bad.join(' '));
    assert.match(
      r.stderr,
      /^facegate: (--since "yesterday": give an age|--last "0": give a whole number|give --json or --csv)/,
    );
  }
});

test('facegate door unlock-command: a command the kiosk accepts once, for its kiosk and door, with who asked', async () => {
  const keys = await generateKeyPair(path.join(tmp, 'keys'));
  const r = await facegate(
    [
      'door',
      'unlock-command',
      '--key',
      keys.privateKeyFile,
      '--by',
      'ops@site',
      '--kiosk',
      'k1',
      '--door',
      'front',
      '--ttl',
      '30',
    ],
    path.join(tmp, 'state-unlock'),
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /publish it \(QoS 1, not retained\) to facegate\/k1\/door\/unlock within 30 s/);
  const pub = await loadPublicKeys([keys.publicKeyFile]);
  const ok = checkUnlock(r.stdout.trim(), { kiosk: 'k1', door: 'front', keys: pub, maxTtlSeconds: 120 });
  assert.ok(ok.ok, ok.ok ? '' : ok.why);
  assert.equal(ok.command.by, 'ops@site');
  assert.equal(Date.parse(ok.command.expiresAt) - Date.parse(ok.command.issuedAt), 30_000);
  const other = checkUnlock(r.stdout.trim(), { kiosk: 'k2', door: 'front', keys: pub, maxTtlSeconds: 120 });
  assert.equal(other.ok, false);
  const badTtl = await facegate(
    ['door', 'unlock-command', '--key', keys.privateKeyFile, '--by', 'x', '--ttl', '0'],
    path.join(tmp, 'state-unlock'),
  );
  assert.notEqual(badTtl.code, 0);
  assert.match(badTtl.stderr, /--ttl "0": give whole seconds/);
});
