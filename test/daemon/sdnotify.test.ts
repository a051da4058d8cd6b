/**
 * sd_notify: the datagrams reach a real unix datagram socket (a Python receiver stands in
 * for systemd); nothing is sent when NOTIFY_SOCKET is unset.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SdNotify } from '../../src/daemon/sdnotify.js';

const python = ['/usr/bin/python3', 'python3'].find(
  (p) => spawnSync(p, ['-c', 'import socket'], { stdio: 'ignore' }).status === 0,
);
const hasNotify = spawnSync('systemd-notify', ['--version'], { stdio: 'ignore' }).status === 0;

test('watchdog interval is half of WATCHDOG_USEC, only for this PID, only with NOTIFY_SOCKET', () => {
  assert.equal(new SdNotify({}).enabled, false);
  assert.equal(new SdNotify({ WATCHDOG_USEC: '30000000' }).watchdogIntervalMs, undefined);
  assert.equal(new SdNotify({ NOTIFY_SOCKET: '/x', WATCHDOG_USEC: '30000000' }).watchdogIntervalMs, 15000);
  assert.equal(
    new SdNotify({ NOTIFY_SOCKET: '/x', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '1' }).watchdogIntervalMs,
    process.pid === 1 ? 15000 : undefined,
  );
});

test('READY, WATCHDOG and STOPPING reach the notify socket', async (t) => {
  if (!python || !hasNotify) {
    t.skip('needs python3 and systemd-notify');
    return;
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'facegate-notify-'));
  const sock = path.join(dir, 'notify.sock');
  const receiver = spawn(
    python,
    [
      '-u',
      '-c',
      `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    m = s.recv(4096).decode()
    if m.strip() == "BARRIER=1":
        continue  # systemd-notify's synchronisation message
    print(m.replace("\\n", ";"), flush=True)
    if "STOPPING=1" in m:
        break
`,
      sock,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = new Promise<void>((resolve) => receiver.once('exit', () => resolve()));
  let out = '';
  receiver.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  while (!existsSync(sock) || !out.includes('bound')) await new Promise((r) => setTimeout(r, 20));
  const sd = new SdNotify({ ...process.env, NOTIFY_SOCKET: sock });
  await sd.ready('running');
  await sd.notify('WATCHDOG=1');
  await sd.stopping();
  await exited;
  const lines = out.trim().split('\n').slice(1);
  assert.match(lines[0] ?? '', /READY=1/);
  assert.match(lines[0] ?? '', /STATUS=running/);
  assert.match(lines[0] ?? '', new RegExp(`MAINPID=${process.pid}`));
  assert.match(lines[1] ?? '', /WATCHDOG=1/);
  assert.match(lines[2] ?? '', /STOPPING=1/);
  rmSync(dir, { recursive: true, force: true });
});
