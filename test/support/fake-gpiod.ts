/**
 * A fake GPIO chip behind fake libgpiod 1.6 tools (gpioset, gpioget, gpiomon), for machines
 * whose kernel has no gpio-sim / gpio-mockup: the door code runs its real libgpiod path
 * (same programs, same arguments) against these. The chip's state is an append-only log of
 * line requests in `$FAKE_GPIOD_DIR/lines.jsonl`; as in the kernel, a line is held only
 * while the process that requested it lives (a killed holder releases it without writing
 * anything), and a second requester of a held line gets "Device or resource busy".
 *
 *   node fake-gpiod.js gpioset|gpioget|gpiomon ARGS…   (installFakeGpiod() writes wrappers on PATH)
 */
import { appendFileSync, chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface LineRequest {
  readonly op: 'request' | 'release';
  readonly pid: number;
  readonly chip: string;
  readonly line: number;
  readonly value: 0 | 1;
  readonly activeLow: boolean;
  readonly mode: string;
  readonly t: number;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function readRequests(dir: string): LineRequest[] {
  const f = path.join(dir, 'lines.jsonl');
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as LineRequest);
}

/** The line now: who holds it at which logical value (null: nobody, the line is at its default level). */
export function lineState(
  dir: string,
  chip: string,
  line: number,
): { holder: LineRequest | null; pulses: number; requests: LineRequest[] } {
  const all = readRequests(dir).filter((r) => r.chip === chip && r.line === line);
  const requests = all.filter((r) => r.op === 'request');
  let holder: LineRequest | null = null;
  for (const r of requests) {
    const gone = all.some((x) => x.op === 'release' && x.pid === r.pid && x.t >= r.t);
    if (!gone && isAlive(r.pid)) holder = r;
  }
  return { holder, pulses: requests.filter((r) => r.value === 1).length, requests };
}

/** Writes gpioset/gpioget/gpiomon wrappers into `binDir` (put it first on PATH) that run this fake with `stateDir`. */
export function installFakeGpiod(binDir: string, stateDir: string): void {
  mkdirSync(binDir, { recursive: true });
  mkdirSync(stateDir, { recursive: true });
  const self = fileURLToPath(import.meta.url);
  for (const tool of ['gpioset', 'gpioget', 'gpiomon']) {
    const f = path.join(binDir, tool);
    writeFileSync(f, `#!/bin/sh\nFAKE_GPIOD_DIR='${stateDir}' exec '${process.execPath}' '${self}' ${tool} "$@"\n`);
    chmodSync(f, 0o755);
  }
}

/** Makes the fake door contact on `line` report a new logical level (gpiomon prints it as an edge). */
export function setInput(stateDir: string, line: number, active: boolean): void {
  appendFileSync(path.join(stateDir, `input-${line}.txt`), `${active ? 1 : 0}\n`);
}

function parse(args: string[]): { flags: Map<string, string>; rest: string[] } {
  const flags = new Map<string, string>();
  const rest: string[] = [];
  for (const a of args) {
    if (a.startsWith('--')) {
      const [k, v] = a.slice(2).split('=');
      flags.set(k ?? '', v ?? '');
    } else if (a === '-l') flags.set('active-low', '');
    else rest.push(a);
  }
  return { flags, rest };
}

function main(tool: string, args: string[]): void {
  const dir = process.env.FAKE_GPIOD_DIR;
  if (!dir) throw new Error('FAKE_GPIOD_DIR is not set');
  const { flags, rest } = parse(args);
  if (flags.has('version')) {
    process.stdout.write(`${tool} (libgpiod) v1.6.3\nCopyright (C) 2017-2018 Bartosz Golaszewski\n`);
    return;
  }
  const chip = rest[0] ?? '';
  if (!/^gpiochip\d+$/.test(chip)) {
    process.stderr.write(`${tool}: error opening the GPIO chip: No such file or directory\n`);
    process.exit(1);
  }
  const activeLow = flags.has('active-low');
  if (tool === 'gpioget') {
    const line = Number(rest[1]);
    const s = lineState(dir, chip, line);
    process.stdout.write(`${s.holder?.value ?? 0}\n`);
    return;
  }
  if (tool === 'gpiomon') {
    const line = Number(rest[1]);
    const f = path.join(dir, `input-${line}.txt`);
    let seen = existsSync(f) ? readFileSync(f, 'utf8').length : 0;
    writeFileSync(path.join(dir, `gpiomon-${line}.ready`), String(process.pid));
    setInterval(() => {
      if (!existsSync(f)) return;
      const text = readFileSync(f, 'utf8');
      if (text.length > seen) {
        process.stdout.write(text.slice(seen));
        seen = text.length;
      }
    }, 20);
    return;
  }
  // gpioset chip offset=value
  const [offset, value] = (rest[1] ?? '').split('=');
  const line = Number(offset);
  const v = Number(value) === 1 ? 1 : 0;
  const held = lineState(dir, chip, line).holder;
  if (held && held.pid !== process.pid) {
    process.stderr.write('gpioset: error setting the GPIO line values: Device or resource busy\n');
    process.exit(1);
  }
  const mode = flags.get('mode') ?? 'exit';
  const t = Date.now();
  const rec = (op: 'request' | 'release'): void =>
    appendFileSync(
      path.join(dir, 'lines.jsonl'),
      `${JSON.stringify({ op, pid: process.pid, chip, line, value: v, activeLow, mode, t } satisfies LineRequest)}\n`,
    );
  rec('request');
  if (mode === 'exit') {
    rec('release');
    return;
  }
  if (mode === 'time') {
    // Like libgpiod 1.6: no signal handler in time mode; SIGTERM/SIGKILL end the process and the kernel releases the line.
    const ms = Number(flags.get('sec') ?? 0) * 1000 + Number(flags.get('usec') ?? 0) / 1000;
    setTimeout(() => rec('release'), ms);
    return;
  }
  // signal mode: hold until SIGINT/SIGTERM
  const keep = setInterval(() => undefined, 1 << 30);
  const end = (): void => {
    clearInterval(keep);
    rec('release');
    process.exit(0);
  };
  process.on('SIGTERM', end);
  process.on('SIGINT', end);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main(process.argv[2] ?? '', process.argv.slice(3));
}
