/**
 * Soak benchmark: `facegate run` as a child process on a replayed camera (composed ORL
 * frames, looping) against a real mosquitto (or the embedded broker when mosquitto is not
 * installed), for a bounded time. Prints frames per second, dropped frames, p50/p99
 * latency from frame capture to the event at an MQTT subscriber, and RSS at start and end
 * with its trend. Figures are measured in this one run.
 *
 *   npm run bench:soak -- [--minutes 3] [--fps 10] [--model DIR] [--browsers 2]
 *
 * --browsers N opens the kiosk screen (/) in N headless Chromium pages (/usr/bin/chromium via
 * playwright-core) for the whole run: compare its fps and p99 with a run without.
 *
 *   npm run bench:soak -- --alternate [--blocks 3] [--phase-minutes 1.75] [--warmup-minutes 1]
 *
 * --alternate compares the two settings in one run of one daemon: phases without browsers (A)
 * and with two Chromium pages (B: the kiosk screen, and the admin page logged in, both live)
 * in ABBA blocks after a warm-up that is not counted. The camera shows a different person
 * every 4 frames (3 frames of a face, 1 empty), and a track ends at the first frame without
 * its face, so each visit ends in an event: about 2.5 events a second at 10 fps, enough for a
 * p99 from over a thousand events per setting. Prints fps, dropped frames and latency
 * percentiles per phase and per setting, and the ratios B/A with a bootstrap interval and
 * their spread across blocks.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { connectAsync } from 'mqtt';
import type { Browser } from 'playwright-core';
import type { EventPayload } from '../src/publish/topics.js';
import { hashPassword } from '../src/web/auth.js';
import { launchChromium } from '../test/support/chromium.js';
import { startMosquitto, freePort, type Mosquitto } from '../test/support/mosquitto.js';
import { trainedModelDir } from '../test/support/fixtures.js';
import { writeScenes } from '../test/support/frames.js';
import {
  abbaOrder,
  blockRatios,
  bootstrapRatio,
  mean,
  quantile,
  summarise,
  type PhaseValues,
  type Setting,
} from './soak-stats.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '3' },
    fps: { type: 'string', default: '10' },
    model: { type: 'string' },
    precision: { type: 'string', default: 'int8' },
    browsers: { type: 'string', default: '0' },
    alternate: { type: 'boolean', default: false },
    blocks: { type: 'string', default: '3' },
    'phase-minutes': { type: 'string', default: '1.75' },
    'warmup-minutes': { type: 'string', default: '1' },
    'settle-seconds': { type: 'string', default: '10' },
  },
});
const minutes = Number(values.minutes);
const fps = Number(values.fps);
if (!(minutes > 0) || !(fps > 0)) throw new Error('--minutes and --fps must be positive numbers');
const browsers = Number(values.browsers);
if (!Number.isInteger(browsers) || browsers < 0) throw new Error('--browsers must be 0 or more');
const blocks = Number(values.blocks);
const phaseMinutes = Number(values['phase-minutes']);
const warmupMinutes = Number(values['warmup-minutes']);
const settleSeconds = Number(values['settle-seconds']);
if (!Number.isInteger(blocks) || blocks < 1) throw new Error('--blocks must be a whole number ≥ 1');
if (!(phaseMinutes > 0) || !(warmupMinutes >= 0) || !(settleSeconds >= 0) || settleSeconds >= phaseMinutes * 60)
  throw new Error(
    '--phase-minutes must be positive, --warmup-minutes and --settle-seconds 0 or more and shorter than a phase',
  );
if (values.alternate && browsers > 0) throw new Error('--alternate opens its own browsers; leave out --browsers');

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += ((xs[i] as number) - mx) * ((ys[i] as number) - my);
    den += ((xs[i] as number) - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

function metric(text: string, name: string): number {
  // Sums every label set; a counter nobody incremented yet has no line: 0.
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'gm'))) sum += Number(m[1]);
  return sum;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

interface Received {
  /** Frame capture time of the deciding frame (ms since the epoch). */
  readonly frameAt: number;
  readonly latency: number;
  readonly kind: string;
}

interface Kiosk {
  readonly httpPort: number;
  readonly base: string;
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  readonly received: Received[];
  readonly scrape: () => Promise<string>;
  readonly describe: string;
  readonly password: string;
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(path.join(tmpdir(), 'facegate-soak-'));
  let broker: Mosquitto | undefined;
  try {
    broker = await startMosquitto();
  } catch (err) {
    process.stdout.write(`mosquitto unavailable (${(err as Error).message}); using the embedded broker\n`);
  }
  const modelDir = values.model ?? (await trainedModelDir({ backbone: 'faceres' }));
  const frames = path.join(tmp, 'frames');
  const count = values.alternate
    ? // A short visit by each of six people in turn, one empty frame between visits.
      await writeScenes(
        frames,
        ['s1', 's3', 's12', 's20', 's35', 's40'].flatMap((p): [string | null, number][] => [
          [p, 3],
          [null, 1],
        ]),
      )
    : // Known, nobody, stranger, nobody, known: about three events per cycle.
      await writeScenes(frames, [
        ['s1', 6],
        [null, 12],
        ['s35', 6],
        [null, 12],
        ['s3', 6],
        [null, 12],
      ]);
  const httpPort = await freePort();
  const embeddedPort = await freePort();
  const password = randomBytes(12).toString('hex');
  const config = {
    camera: { type: 'directory', name: 'soak', fps, queueSize: 2, directory: { path: frames, loop: true } },
    model: { dir: modelDir, precision: values.precision, threads: 1 },
    // --alternate: a track ends at the first frame without its face, so every visit is an event.
    decide: values.alternate ? { cooldownMs: 1000, maxAgeFrames: 0 } : { cooldownMs: 1000 },
    mqtt: { url: broker?.url ?? '', kioskId: 'soak', embedded: { port: embeddedPort } },
    http: { port: httpPort, ...(values.alternate ? { admin: { passwordHash: await hashPassword(password) } } : {}) },
    state: { dir: path.join(tmp, 'state') },
    log: { level: 'warn' },
  };
  const configFile = path.join(tmp, 'config.json');
  writeFileSync(configFile, JSON.stringify(config));
  const url = broker?.url ?? `mqtt://127.0.0.1:${embeddedPort}`;

  const child = spawn(process.execPath, [path.resolve('dist/src/cli.js'), 'run', '--config', configFile], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  const base = `http://127.0.0.1:${httpPort}`;
  const scrape = async (): Promise<string> => (await fetch(`${base}/metrics`)).text();
  // Wait for readiness.
  const t0 = Date.now();
  for (;;) {
    try {
      if ((await fetch(`${base}/healthz`)).status === 200) break;
    } catch {
      /* not listening yet */
    }
    if (child.exitCode !== null) throw new Error('the daemon exited during start');
    if (Date.now() - t0 > 180_000) throw new Error('the daemon did not become ready in 3 minutes');
    await sleep(200);
  }
  const sub = await connectAsync(url, { protocolVersion: broker ? 5 : 4 });
  const received: Received[] = [];
  sub.on('message', (_t, payload) => {
    const e = JSON.parse(payload.toString()) as EventPayload;
    const frameAt = Date.parse(e.time);
    received.push({ frameAt, latency: Date.now() - frameAt, kind: e.kind });
  });
  await sub.subscribeAsync('facegate/soak/events', { qos: 1 });
  const describe = `${fps} fps, ${count} frames looping, model ${path.basename(modelDir)} (${String(values.precision)}), broker ${broker ? 'mosquitto' : 'embedded aedes'}`;
  const kiosk: Kiosk = { httpPort, base, child, exited, received, scrape, describe, password };
  try {
    if (values.alternate) await alternate(kiosk);
    else await plain(kiosk);
  } finally {
    if (child.exitCode === null) child.kill('SIGTERM');
    const code = await exited;
    process.stdout.write(`daemon exit code     ${code ?? 'signal'} after SIGTERM\n`);
    await sub.endAsync();
    await broker?.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** One setting for the whole run: --browsers N pages on the kiosk screen, or none. */
async function plain(k: Kiosk): Promise<void> {
  let closeBrowsers = (): Promise<void> => Promise.resolve();
  if (browsers > 0) {
    const b = await launchChromium();
    for (let i = 0; i < browsers; i++) await (await b.newPage()).goto(`${k.base}/`);
    closeBrowsers = () => b.close();
  }
  const start = await k.scrape();
  const startAt = Date.now();
  const rss: { t: number; mb: number }[] = [
    { t: 0, mb: metric(start, 'facegate_process_resident_memory_bytes') / 2 ** 20 },
  ];
  process.stdout.write(`soak: ${minutes} min at ${k.describe}, ${browsers} browser(s) on the kiosk screen\n`);
  const endAt = startAt + minutes * 60_000;
  while (Date.now() < endAt) {
    await sleep(Math.min(10_000, endAt - Date.now()));
    const m = await k.scrape();
    rss.push({ t: (Date.now() - startAt) / 1000, mb: metric(m, 'facegate_process_resident_memory_bytes') / 2 ** 20 });
    process.stdout.write(
      `  t=${Math.round((Date.now() - startAt) / 1000)}s rss=${(rss.at(-1)?.mb ?? 0).toFixed(1)} MB events=${k.received.length}\n`,
    );
  }
  const end = await k.scrape();
  const seconds = (Date.now() - startAt) / 1000;
  await closeBrowsers();

  const d = (name: string): number => metric(end, name) - metric(start, name);
  const sorted = k.received.map((r) => r.latency).sort((a, b) => a - b);
  const kinds = new Map<string, number>();
  for (const r of k.received) kinds.set(r.kind, (kinds.get(r.kind) ?? 0) + 1);
  // Trend over the second half (after warm-up: JIT, caches, onnxruntime arenas).
  const half = rss.filter((r) => r.t >= seconds / 2);
  const trend =
    half.length >= 2
      ? slope(
          half.map((r) => r.t / 60),
          half.map((r) => r.mb),
        )
      : NaN;
  const lines = [
    '',
    `frames in            ${d('facegate_frames_in_total')} (${(d('facegate_frames_in_total') / seconds).toFixed(2)}/s)`,
    `frames processed     ${d('facegate_frames_processed_total')} (${(d('facegate_frames_processed_total') / seconds).toFixed(2)} fps)`,
    `frames dropped       ${d('facegate_frames_dropped_total')} (${((100 * d('facegate_frames_dropped_total')) / Math.max(1, d('facegate_frames_in_total'))).toFixed(1)} %)`,
    `frame errors         ${d('facegate_frame_errors_total')}`,
    `events               ${k.received.length} (${[...kinds].map(([n, v]) => `${n} ${v}`).join(', ')})`,
    `frame → MQTT event   p50 ${quantile(sorted, 0.5)} ms, p99 ${quantile(sorted, 0.99)} ms, max ${sorted.at(-1) ?? NaN} ms`,
    `RSS                  start ${(rss[0]?.mb ?? NaN).toFixed(1)} MB, end ${(rss.at(-1)?.mb ?? NaN).toFixed(1)} MB, trend over the 2nd half ${trend.toFixed(2)} MB/min`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** Two headless Chromium pages, both live: the kiosk screen, and the admin page logged in. */
async function openPages(k: Kiosk): Promise<Browser> {
  const b = await launchChromium();
  try {
    const screen = await (await b.newContext({ viewport: { width: 1920, height: 1080 } })).newPage();
    await screen.goto(`${k.base}/`);
    const admin = await (await b.newContext({ viewport: { width: 1920, height: 1080 } })).newPage();
    await admin.goto(`${k.base}/admin`);
    await admin.fill('#password', k.password);
    await admin.click('#login button[type=submit]');
    // Both pages follow the kiosk: the banner names a decision, the recent events list fills.
    await screen.locator('#banner-main', { hasText: /Not recognised|Welcome/ }).waitFor({ timeout: 60_000 });
    await admin.locator('#events tr').first().waitFor({ timeout: 60_000 });
  } catch (err) {
    await b.close();
    throw err;
  }
  return b;
}

interface Phase {
  readonly setting: Setting;
  readonly from: number;
  readonly to: number;
  readonly seconds: number;
  readonly framesIn: number;
  readonly processed: number;
  readonly dropped: number;
  readonly errors: number;
  /** The daemon's CPU time over the window, seconds (user + system, all its threads). */
  readonly cpu: number;
  /** The machine's 1-minute load average at the window's end (every process on it, not only ours). */
  readonly load: number;
  readonly rssMb: number;
}

const fmt = (x: number, digits = 0): string => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');
const pad = (s: string, n: number): string => s.padEnd(n);

/** A B B A … in one daemon, after a warm-up; prints per phase, per setting and the ratios B/A. */
async function alternate(k: Kiosk): Promise<void> {
  const order = abbaOrder(blocks);
  const name: Record<Setting, string> = { A: 'no browser', B: '2 browsers' };
  process.stdout.write(
    `soak --alternate: ${k.describe}; warm-up ${warmupMinutes} min (not counted), then ${order.join(' ')} ` +
      `(A = no browser, B = kiosk screen + admin page in headless Chromium), ${phaseMinutes} min a phase, ` +
      `the first ${settleSeconds} s of each not counted\n`,
  );
  let browser: Browser | undefined;
  const setTo = async (s: Setting): Promise<void> => {
    if (s === 'B' && !browser) browser = await openPages(k);
    if (s === 'A' && browser) {
      await browser.close();
      browser = undefined;
    }
  };
  const phases: Phase[] = [];
  try {
    if (warmupMinutes > 0) {
      // Warm both settings: the daemon (JIT, onnxruntime arenas) and Chromium's files.
      await setTo('B');
      await sleep((warmupMinutes * 60_000) / 2);
      await setTo('A');
      await sleep((warmupMinutes * 60_000) / 2);
    }
    for (const [i, setting] of order.entries()) {
      await setTo(setting);
      await sleep(settleSeconds * 1000);
      const start = await k.scrape();
      const from = Date.now();
      await sleep(phaseMinutes * 60_000 - settleSeconds * 1000);
      const end = await k.scrape();
      const to = Date.now();
      const d = (n: string): number => metric(end, n) - metric(start, n);
      const p: Phase = {
        setting,
        from,
        to,
        seconds: (to - from) / 1000,
        framesIn: d('facegate_frames_in_total'),
        processed: d('facegate_frames_processed_total'),
        dropped: d('facegate_frames_dropped_total'),
        errors: d('facegate_frame_errors_total'),
        cpu: d('facegate_process_cpu_seconds_total'),
        load: loadavg()[0] ?? NaN,
        rssMb: metric(end, 'facegate_process_resident_memory_bytes') / 2 ** 20,
      };
      phases.push(p);
      const lat = summarise(latencies(k, p));
      process.stdout.write(
        `  phase ${pad(String(i + 1), 2)} ${setting} ${pad(name[setting], 10)} ${fmt(p.processed / p.seconds, 2)} fps ` +
          `(${fmt(p.framesIn / p.seconds, 2)} in), dropped ${p.dropped}, events ${lat.count}, p50 ${lat.p50} ms, ` +
          `p95 ${lat.p95} ms, p99 ${lat.p99} ms, daemon CPU ${fmt((100 * p.cpu) / p.seconds)} %, ` +
          `load ${fmt(p.load, 1)}, rss ${fmt(p.rssMb, 1)} MB\n`,
      );
    }
  } finally {
    await browser?.close();
  }
  // Events published after the last window closed are still in flight; wait for them briefly.
  await sleep(2000);
  report(k, phases);
}

/** Frame → event latencies of the events whose frame was captured inside the phase's window. */
function latencies(k: Kiosk, p: Phase): number[] {
  return k.received.filter((r) => r.frameAt >= p.from && r.frameAt < p.to).map((r) => r.latency);
}

function report(k: Kiosk, phases: readonly Phase[]): void {
  const by = (s: Setting): Phase[] => phases.filter((p) => p.setting === s);
  const lat = (s: Setting): number[][] => by(s).map((p) => latencies(k, p));
  const sum = (ps: Phase[], f: (p: Phase) => number): number => ps.reduce((x, p) => x + f(p), 0);
  const fpsOf = (ps: Phase[]): number => sum(ps, (p) => p.processed) / sum(ps, (p) => p.seconds);
  const lines = [
    '',
    'setting        fps    frames in  dropped  errors  events   p50   p95   p99   max (ms)  daemon CPU  load',
  ];
  for (const s of ['A', 'B'] as const) {
    const ps = by(s);
    const l = summarise(lat(s).flat());
    lines.push(
      `${s} ${pad(s === 'A' ? 'no browser' : '2 browsers', 11)} ${fmt(fpsOf(ps), 2).padStart(6)} ${String(sum(ps, (p) => p.framesIn)).padStart(10)} ` +
        `${String(sum(ps, (p) => p.dropped)).padStart(8)} ${String(sum(ps, (p) => p.errors)).padStart(7)} ${String(l.count).padStart(7)} ` +
        `${String(l.p50).padStart(5)} ${String(l.p95).padStart(5)} ${String(l.p99).padStart(5)} ${String(l.max).padStart(5)}       ` +
        `${fmt((100 * sum(ps, (p) => p.cpu)) / sum(ps, (p) => p.seconds)).padStart(5)} %  ${fmt(mean(ps.map((p) => p.load)), 1).padStart(4)}`,
    );
  }
  const phaseValues = (f: (p: Phase) => number[]): PhaseValues[] =>
    phases.map((p) => ({ setting: p.setting, values: f(p) }));
  const range = (xs: number[]): string =>
    xs.length ? `${fmt(Math.min(...xs), 3)}–${fmt(Math.max(...xs), 3)} over ${xs.length} block(s)` : 'n/a';
  lines.push('', 'ratio B/A (2 browsers / none); 1.10 = 10 % more');
  const fpsBlocks = blockRatios(
    phaseValues((p) => [p.processed / p.seconds]),
    4,
    mean,
  );
  lines.push(`  fps  ${fmt(fpsOf(by('B')) / fpsOf(by('A')), 3)}   per ABBA block ${range(fpsBlocks)}`);
  for (const [label, q] of [
    ['p50', 0.5],
    ['p95', 0.95],
    ['p99', 0.99],
  ] as const) {
    const stat = (sorted: readonly number[]): number => quantile(sorted, q);
    const r = bootstrapRatio(lat('A'), lat('B'), stat);
    const blocksR = blockRatios(
      phaseValues((p) => latencies(k, p)),
      4,
      stat,
    );
    lines.push(
      `  ${label}  ${fmt(r.ratio, 3)}   95 % bootstrap ${fmt(r.lo, 3)}–${fmt(r.hi, 3)}; per ABBA block ${range(blocksR)}`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
