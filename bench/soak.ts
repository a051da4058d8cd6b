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
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { connectAsync } from 'mqtt';
import type { EventPayload } from '../src/publish/topics.js';
import { startMosquitto, freePort, type Mosquitto } from '../test/support/mosquitto.js';
import { trainedModelDir } from '../test/support/fixtures.js';
import { writeScenes } from '../test/support/frames.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '3' },
    fps: { type: 'string', default: '10' },
    model: { type: 'string' },
    precision: { type: 'string', default: 'int8' },
    browsers: { type: 'string', default: '0' },
  },
});
const minutes = Number(values.minutes);
const fps = Number(values.fps);
if (!(minutes > 0) || !(fps > 0)) throw new Error('--minutes and --fps must be positive numbers');
const browsers = Number(values.browsers);
if (!Number.isInteger(browsers) || browsers < 0) throw new Error('--browsers must be 0 or more');

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

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
  // Known, nobody, stranger, nobody, known: about three events per cycle.
  const count = await writeScenes(frames, [
    ['s1', 6],
    [null, 12],
    ['s35', 6],
    [null, 12],
    ['s3', 6],
    [null, 12],
  ]);
  const httpPort = await freePort();
  const embeddedPort = await freePort();
  const config = {
    camera: { type: 'directory', name: 'soak', fps, queueSize: 2, directory: { path: frames, loop: true } },
    model: { dir: modelDir, precision: values.precision, threads: 1 },
    decide: { cooldownMs: 1000 },
    mqtt: { url: broker?.url ?? '', kioskId: 'soak', embedded: { port: embeddedPort } },
    http: { port: httpPort },
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
  const scrape = async (): Promise<string> => (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  // Wait for readiness.
  const t0 = Date.now();
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${httpPort}/healthz`)).status === 200) break;
    } catch {
      /* not listening yet */
    }
    if (child.exitCode !== null) throw new Error('the daemon exited during start');
    if (Date.now() - t0 > 180_000) throw new Error('the daemon did not become ready in 3 minutes');
    await new Promise((r) => setTimeout(r, 200));
  }
  let closeBrowsers = (): Promise<void> => Promise.resolve();
  if (browsers > 0) {
    const { chromium } = await import('playwright-core');
    const b = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
    });
    for (let i = 0; i < browsers; i++) await (await b.newPage()).goto(`http://127.0.0.1:${httpPort}/`);
    closeBrowsers = () => b.close();
  }
  const sub = await connectAsync(url, { protocolVersion: broker ? 5 : 4 });
  const latencies: number[] = [];
  const kinds = new Map<string, number>();
  sub.on('message', (_t, payload) => {
    const e = JSON.parse(payload.toString()) as EventPayload;
    latencies.push(Date.now() - Date.parse(e.time));
    kinds.set(e.kind, (kinds.get(e.kind) ?? 0) + 1);
  });
  await sub.subscribeAsync('facegate/soak/events', { qos: 1 });

  const start = await scrape();
  const startAt = Date.now();
  const rss: { t: number; mb: number }[] = [
    { t: 0, mb: metric(start, 'facegate_process_resident_memory_bytes') / 2 ** 20 },
  ];
  process.stdout.write(
    `soak: ${minutes} min at ${fps} fps, ${count} frames looping, model ${path.basename(modelDir)} (${String(values.precision)}), broker ${broker ? 'mosquitto' : 'embedded aedes'}, ${browsers} browser(s) on the kiosk screen\n`,
  );
  const endAt = startAt + minutes * 60_000;
  while (Date.now() < endAt) {
    await new Promise((r) => setTimeout(r, Math.min(10_000, endAt - Date.now())));
    const m = await scrape();
    rss.push({ t: (Date.now() - startAt) / 1000, mb: metric(m, 'facegate_process_resident_memory_bytes') / 2 ** 20 });
    process.stdout.write(
      `  t=${Math.round((Date.now() - startAt) / 1000)}s rss=${(rss.at(-1)?.mb ?? 0).toFixed(1)} MB events=${latencies.length}\n`,
    );
  }
  const end = await scrape();
  const seconds = (Date.now() - startAt) / 1000;
  await closeBrowsers();
  child.kill('SIGTERM');
  const code = await exited;
  await sub.endAsync();
  await broker?.stop();
  rmSync(tmp, { recursive: true, force: true });

  const d = (name: string): number => metric(end, name) - metric(start, name);
  const sorted = [...latencies].sort((a, b) => a - b);
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
    `events               ${latencies.length} (${[...kinds].map(([k, v]) => `${k} ${v}`).join(', ')})`,
    `frame → MQTT event   p50 ${quantile(sorted, 0.5)} ms, p99 ${quantile(sorted, 0.99)} ms, max ${sorted.at(-1) ?? NaN} ms`,
    `RSS                  start ${(rss[0]?.mb ?? NaN).toFixed(1)} MB, end ${(rss.at(-1)?.mb ?? NaN).toFixed(1)} MB, trend over the 2nd half ${trend.toFixed(2)} MB/min`,
    `daemon exit code     ${code ?? 'signal'} after SIGTERM`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
