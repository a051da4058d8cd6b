import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FolderLock, FolderLockedError } from '../../src/state/lock.js';

const child = path.resolve('dist/test/state/lock-child.js');
const cli = path.resolve('dist/src/cli.js');

function holdLock(dir: string): Promise<ChildProcess> {
  const c = spawn(process.execPath, [child, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    c.stdout?.once('data', (d: Buffer) =>
      d.toString().startsWith('locked') ? resolve(c) : reject(new Error(d.toString())),
    );
    c.once('exit', (code) => reject(new Error(`lock child exited with ${code}`)));
  });
}

function killed(c: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    c.once('exit', () => resolve());
    c.kill('SIGKILL');
  });
}

test('a second process cannot take the folder; the error names the holder; a dead holder is taken over', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'facegate-lock-'));
  try {
    const holder = await holdLock(path.join(dir, 'state'));
    assert.throws(
      () => FolderLock.acquire(path.join(dir, 'state'), 'state.dir'),
      (err: unknown) =>
        err instanceof FolderLockedError &&
        err.holder?.pid === holder.pid &&
        new RegExp(`in use by facegate process ${holder.pid} on .* \\(running since \\d{4}-`).test(err.message),
    );
    await killed(holder); // kill -9: the OS drops its lock, the info file stays behind
    const mine = FolderLock.acquire(path.join(dir, 'state'), 'state.dir');
    assert.equal(FolderLock.holder(path.join(dir, 'state'))?.pid, process.pid);
    mine.release();
    assert.equal(FolderLock.holder(path.join(dir, 'state')), null);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('facegate run on a state folder or model store another kiosk holds says which process and exits non-zero', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'facegate-lock-'));
  try {
    const stateDir = path.join(dir, 'state');
    const modelsDir = path.join(dir, 'models');
    const cfgFile = path.join(dir, 'cfg.json');
    writeFileSync(
      cfgFile,
      JSON.stringify({
        model: { dir: path.join(dir, 'no-model') },
        mqtt: { url: 'mqtt://127.0.0.1:1', kioskId: 'k1' },
        http: { enabled: false },
        state: { dir: stateDir },
        updates: { enabled: true, modelsDir, publicKeys: ['-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----'] },
      }),
    );
    const run = (timeout = 60000): { status: number | null; stderr: string; stdout: string } => {
      const r = spawnSync(process.execPath, [cli, 'run', '--config', cfgFile], { encoding: 'utf8', timeout });
      return { status: r.status, stderr: r.stderr, stdout: r.stdout };
    };
    for (const [held, what] of [
      [stateDir, 'state.dir'],
      [modelsDir, 'updates.modelsDir'],
    ] as const) {
      const holder = await holdLock(held);
      const second = run();
      await killed(holder);
      assert.notEqual(second.status, 0);
      assert.match(
        second.stderr,
        new RegExp(`${what.replace('.', '\\.')} .* is in use by facegate process ${holder.pid} `),
      );
    }
    // Both holders are dead: the start gets past the locks; the unusable key only turns
    // updates off, and the kiosk runs until the test's SIGTERM.
    const third = run(15000);
    assert.doesNotMatch(third.stderr + third.stdout, /in use by/);
    assert.match(third.stderr + third.stdout, /model updates are off/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
