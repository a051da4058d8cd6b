/**
 * The GPIO relay through libgpiod 1.x tools. No kernel here offers gpio-sim or gpio-mockup
 * (no /dev/gpiochip*, no configfs, no modprobe), so these run the real code path — the same
 * gpioset invocations — against a fake chip (test/support/fake-gpiod.ts). When a real GPIO
 * character device exists, the last test also runs Debian's gpioset against it.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GpioRelay, GpioInput, gpiosetArgs, libgpiodMajor, GpioError } from '../../src/door/gpio.js';
import { installFakeGpiod, lineState, readRequests, setInput } from '../support/fake-gpiod.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'facegate-gpio-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

async function until(what: string, cond: () => boolean, ms = 10000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function fakeChip(name: string): { bin: string; state: string } {
  const bin = path.join(tmp, name, 'bin');
  const state = path.join(tmp, name, 'chip');
  installFakeGpiod(bin, state);
  return { bin, state };
}

const line = { chip: 'gpiochip0', line: 17, activeLow: true };

test('gpioset arguments (libgpiod 1.x): active-low, exit and time modes; version parsing', () => {
  assert.deepEqual(gpiosetArgs(line, 0, { kind: 'exit' }), ['--active-low', '--mode=exit', 'gpiochip0', '17=0']);
  assert.deepEqual(gpiosetArgs({ ...line, activeLow: false }, 1, { kind: 'time', ms: 2500 }), [
    '--mode=time',
    '--sec=2',
    '--usec=500000',
    'gpiochip0',
    '17=1',
  ]);
  assert.equal(libgpiodMajor('gpioset (libgpiod) v1.6.3\nCopyright'), 1);
  assert.equal(libgpiodMajor('gpioset (libgpiod) v2.1'), 2);
  assert.equal(libgpiodMajor('something else'), null);
});

test('relay: off at start (held inactive), exactly one pulse of pulseMs, off again after it', async () => {
  const { bin, state } = fakeChip('pulse');
  const relay = new GpioRelay({ ...line, gpioset: path.join(bin, 'gpioset') }, 300);
  await relay.start();
  await until('the inactive holder', () => lineState(state, 'gpiochip0', 17).holder?.value === 0);
  assert.equal(lineState(state, 'gpiochip0', 17).holder?.activeLow, true);
  assert.equal(relay.state, 'off');
  assert.equal(relay.pulse(), true);
  assert.equal(relay.pulse(), false, 'one opening at a time');
  assert.equal(relay.state, 'on');
  await until('the line active', () => lineState(state, 'gpiochip0', 17).holder?.value === 1);
  const pulse = lineState(state, 'gpiochip0', 17).holder;
  assert.equal(pulse?.mode, 'time');
  await until('off again', () => relay.state === 'off');
  await until('held inactive again', () => lineState(state, 'gpiochip0', 17).holder?.value === 0);
  assert.equal(lineState(state, 'gpiochip0', 17).pulses, 1);
  await relay.stop();
  assert.equal(lineState(state, 'gpiochip0', 17).holder, null, 'stop releases the line (wired default: off)');
});

test('relay: kill -9 of the process holding the relay on leaves it off (inactive holder takes the line)', async () => {
  const { bin, state } = fakeChip('kill');
  const relay = new GpioRelay({ ...line, gpioset: path.join(bin, 'gpioset') }, 30_000);
  await relay.start();
  relay.pulse();
  await until('the line active', () => lineState(state, 'gpiochip0', 17).holder?.value === 1);
  const pid = relay.holderPid;
  assert.ok(pid);
  process.kill(pid, 'SIGKILL');
  await until('off', () => relay.state === 'off');
  await until('held inactive', () => lineState(state, 'gpiochip0', 17).holder?.value === 0);
  assert.equal(lineState(state, 'gpiochip0', 17).pulses, 1);
  // The inactive holder killed too: it is replaced.
  const idle = lineState(state, 'gpiochip0', 17).holder?.pid;
  assert.ok(idle);
  process.kill(idle, 'SIGKILL');
  await until('a new inactive holder', () => {
    const h = lineState(state, 'gpiochip0', 17).holder;
    return h?.value === 0 && h.pid !== idle;
  });
  await relay.stop();
});

test('relay: stop while on ends the pulse at once (SIGTERM path of the daemon)', async () => {
  const { bin, state } = fakeChip('stop');
  const relay = new GpioRelay({ ...line, gpioset: path.join(bin, 'gpioset') }, 30_000);
  await relay.start();
  relay.pulse();
  await until('the line active', () => lineState(state, 'gpiochip0', 17).holder?.value === 1);
  await relay.stop();
  assert.equal(relay.state, 'off');
  assert.equal(lineState(state, 'gpiochip0', 17).holder, null);
  assert.equal(relay.pulse(), false, 'a stopped relay never pulses');
});

test('relay: a pulse left by a crashed run holds the line: start waits for it, then holds it inactive', async () => {
  const { bin, state } = fakeChip('busy');
  // The orphan of a killed daemon: still holding the line active for its (short) pulse.
  const orphan = spawn(path.join(bin, 'gpioset'), [
    '--active-low',
    '--mode=time',
    '--sec=0',
    '--usec=600000',
    'gpiochip0',
    '17=1',
  ]);
  await until('orphan holds', () => lineState(state, 'gpiochip0', 17).holder?.value === 1);
  const relay = new GpioRelay({ ...line, gpioset: path.join(bin, 'gpioset') }, 3000);
  await relay.start();
  // Nothing else took the line before the orphan let go of it.
  const all = readRequests(state);
  const released = all.find((r) => r.op === 'release' && r.pid === orphan.pid);
  const next = all.find((r) => r.op === 'request' && r.pid !== orphan.pid);
  assert.ok(released && next && next.t >= released.t, 'start waited for the orphan to let go');
  await until('held inactive', () => lineState(state, 'gpiochip0', 17).holder?.value === 0);
  await relay.stop();
});

test('relay: a missing chip, a missing tool and a libgpiod 2 tool are refused with what to do', async () => {
  const { bin } = fakeChip('errors');
  const bad = new GpioRelay({ ...line, chip: 'nochip', gpioset: path.join(bin, 'gpioset') }, 300);
  await assert.rejects(bad.start(), (e: unknown) => e instanceof GpioError && /gpioinfo lists them/.test(e.message));
  const none = new GpioRelay({ ...line, gpioset: path.join(tmp, 'no-such-gpioset') }, 300);
  await assert.rejects(none.start(), /apt-get install gpiod/);
  const v2 = path.join(tmp, 'gpioset-v2');
  writeFileSync(v2, '#!/bin/sh\necho "gpioset (libgpiod) v2.1"\n');
  chmodSync(v2, 0o755);
  await assert.rejects(new GpioRelay({ ...line, gpioset: v2 }, 300).start(), /libgpiod 1\.x/);
});

test('door contact on a GPIO input: initial level from gpioget, then edges from gpiomon', async () => {
  const { bin, state } = fakeChip('contact');
  const levels: boolean[] = [];
  const input = new GpioInput(
    {
      chip: 'gpiochip0',
      line: 27,
      activeLow: false,
      gpiomon: path.join(bin, 'gpiomon'),
      gpioget: path.join(bin, 'gpioget'),
    },
    (l) => levels.push(l),
  );
  await input.start();
  try {
    assert.deepEqual(levels, [false]);
    await until('gpiomon watching', () => existsSync(path.join(state, 'gpiomon-27.ready')));
    setInput(state, 27, true);
    setInput(state, 27, false);
    await until('two edges', () => levels.length === 3);
    assert.deepEqual(levels, [false, true, false]);
  } finally {
    await input.stop();
  }
});

test('a real GPIO character device, where the kernel has one', (t) => {
  const chips = existsSync('/dev')
    ? spawnSync('sh', ['-c', 'ls /dev/gpiochip* 2>/dev/null'], { encoding: 'utf8' })
    : null;
  if (!chips?.stdout.trim()) {
    t.skip('no /dev/gpiochip* here (no gpio-sim / gpio-mockup): the relay ran against the fake chip above');
    return;
  }
  const r = spawnSync('gpioinfo', { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});
