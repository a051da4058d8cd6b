/**
 * `facegate run` as a real child process, with a real trained model (faceres backbone on
 * ORL s1…s4), a `directory` camera replaying composed frames, and a real mosquitto:
 * the right `recognized` / `unknown` events reach a real subscriber; a broker killed and
 * restarted mid-run loses no event and keeps the order; `kill -9` makes the
 * broker publish the last will `offline`; events waiting on disk are delivered after a
 * restart; a bad config stops the start with one message; no model and no camera do not.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import type { EventPayload } from '../../src/publish/topics.js';
import { startMosquitto, freePort, type Mosquitto } from '../support/mosquitto.js';
import { requireShared } from '../support/shared.js';
import { trainedModelDir } from '../support/fixtures.js';
import { KioskDb, kioskDbPath } from '../../src/state/db.js';
import { writeScenes } from '../support/frames.js';

const cli = path.resolve('dist/src/cli.js');
const tmp = mkdtempSync(path.join(tmpdir(), 'facegate-run-'));
let broker: Mosquitto | undefined;
let modelDir = '';
const children: ChildProcess[] = [];

before(async () => {
  if (!existsSync(path.resolve('..', 'shared'))) return;
  broker = await startMosquitto();
  modelDir = await trainedModelDir({ backbone: 'faceres' });
});
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await broker?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

function writeConfig(name: string, over: Record<string, unknown>): string {
  const file = path.join(tmp, `${name}.json`);
  writeFileSync(file, JSON.stringify(over, null, 2));
  return file;
}

function baseConfig(
  name: string,
  frames: string,
  url: string,
  extra: { loop?: boolean; exitWhenCameraEnds?: boolean } = {},
): Record<string, unknown> {
  return {
    camera: {
      type: 'directory',
      name: 'door',
      fps: 10,
      queueSize: 200,
      directory: { path: frames, loop: extra.loop ?? false },
    },
    model: { dir: modelDir, precision: 'int8', threads: 1 },
    mqtt: { url, kioskId: name, reconnectMs: 200 },
    http: { port: 0 },
    state: { dir: path.join(tmp, `${name}-state`) },
    daemon: { exitWhenCameraEnds: extra.exitWhenCameraEnds ?? false, shutdownTimeoutMs: 8000 },
    log: { level: 'info' },
  };
}

interface Run {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

function runDaemon(configFile: string): Run {
  const env = { ...process.env };
  delete env.FACEGATE_LOG_LEVEL; // the config's log.level applies
  const child = spawn(process.execPath, [cli, 'run', '--config', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

async function subscribe(
  url: string,
  topic: string,
  clientId: string,
): Promise<{ client: MqttClient; msgs: { topic: string; text: string; retain: boolean }[]; events(): EventPayload[] }> {
  const client = await connectAsync(url, { clientId, clean: false, reconnectPeriod: 200 });
  const msgs: { topic: string; text: string; retain: boolean }[] = [];
  client.on('message', (t, p, packet) => msgs.push({ topic: t, text: p.toString(), retain: packet.retain }));
  await client.subscribeAsync(topic, { qos: 1 });
  return {
    client,
    msgs,
    events: () => {
      const seen = new Set<string>();
      return msgs
        .filter((m) => m.topic.endsWith('/events'))
        .map((m) => JSON.parse(m.text) as EventPayload)
        .filter((e) => !seen.has(e.id) && seen.add(e.id));
    },
  };
}

async function until(what: string, cond: () => boolean, ms: number, run?: Run): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}${run ? `\n--- daemon output ---\n${run.output().slice(-3000)}` : ''}`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a directory camera of composed ORL frames yields the right recognized and unknown events', async (t) => {
  if (!requireShared(t) || !broker) return;
  const frames = path.join(tmp, 'frames-events');
  // Known s1, nobody, stranger s35 (never trained), nobody, known s3. Gaps let tracks expire.
  await writeScenes(frames, [
    [null, 2],
    ['s1', 6],
    [null, 14],
    ['s35', 6],
    [null, 14],
    ['s3', 6],
    [null, 4],
  ]);
  const sub = await subscribe(broker.url, 'facegate/gate1/#', 'it-events');
  const run = runDaemon(writeConfig('gate1', baseConfig('gate1', frames, broker.url, { exitWhenCameraEnds: true })));
  const code = await run.exited;
  assert.equal(code, 0, run.output().slice(-3000));
  await until(
    'offline after the clean stop',
    () => sub.msgs.some((m) => m.topic === 'facegate/gate1/status' && m.text === 'offline'),
    5000,
    run,
  );
  const ev = sub.events();
  assert.deepEqual(
    ev.map((e) => [e.kind, e.name]),
    [
      ['recognized', 's1'],
      ['unknown', null],
      ['recognized', 's3'],
    ],
    run.output().slice(-3000),
  );
  const manifest = JSON.parse(readFileSync(path.join(modelDir, 'manifest.json'), 'utf8')) as { version: string };
  for (const e of ev) {
    assert.equal(e.modelVersion, manifest.version);
    assert.equal(e.delayed, false);
  }
  assert.deepEqual(
    ev.map((e) => e.seq),
    [1, 2, 3],
  );
  assert.ok(sub.msgs.some((m) => m.topic === 'facegate/gate1/status' && m.text === 'online'));
  await sub.client.endAsync();
});

test('kill -9 of the daemon: the broker publishes the retained last will "offline"', async (t) => {
  if (!requireShared(t) || !broker) return;
  const frames = path.join(tmp, 'frames-idle');
  await writeScenes(frames, [[null, 3]]);
  const sub = await subscribe(broker.url, 'facegate/gate2/status', 'it-will');
  const run = runDaemon(writeConfig('gate2', baseConfig('gate2', frames, broker.url, { loop: true })));
  await until('online', () => sub.msgs.at(-1)?.text === 'online', 60000, run);
  run.child.kill('SIGKILL');
  await run.exited;
  await until('offline from the will', () => sub.msgs.at(-1)?.text === 'offline', 10000, run);
  await sub.client.endAsync();
  // Retained: a subscriber arriving later learns the kiosk is offline.
  const late = await subscribe(broker.url, 'facegate/gate2/status', 'it-will-late');
  await until('retained offline', () => late.msgs.some((m) => m.retain && m.text === 'offline'), 5000);
  await late.client.endAsync();
});

test('events decided while the broker is down survive kill -9 and arrive, delayed and in order, after a restart', async (t) => {
  if (!requireShared(t) || !broker) return;
  const frames = path.join(tmp, 'frames-offline');
  await writeScenes(frames, [
    ['s2', 6],
    [null, 14],
    ['s4', 6],
    [null, 4],
  ]);
  const down = `mqtt://127.0.0.1:${await freePort()}`; // nothing listens there yet
  const cfg = baseConfig('gate3', frames, down);
  const run = runDaemon(writeConfig('gate3', cfg));
  const dbFile = kioskDbPath(path.join(tmp, 'gate3-state'));
  const pending = (): number => {
    if (!existsSync(dbFile)) return 0;
    const db = KioskDb.open(dbFile, { readonly: true });
    try {
      return (db.db.prepare('SELECT COUNT(*) AS n FROM event_outbox').get() as { n: number }).n;
    } catch {
      return 0; // the events part has not created its table yet
    } finally {
      db.close();
    }
  };
  await until('2 events in the outbox', () => pending() >= 2, 90000, run);
  run.child.kill('SIGKILL');
  await run.exited;
  // The broker comes back (here: the test broker); the daemon restarts with an empty scene.
  const idle = path.join(tmp, 'frames-offline-idle');
  await writeScenes(idle, [[null, 3]]);
  const sub = await subscribe(broker.url, 'facegate/gate3/events', 'it-outbox');
  const again = runDaemon(
    writeConfig('gate3b', {
      ...cfg,
      camera: { ...(cfg.camera as object), directory: { path: idle, loop: true } },
      mqtt: { ...(cfg.mqtt as object), url: broker.url },
    }),
  );
  await until('2 delayed events', () => sub.events().length >= 2, 60000, again);
  const ev = sub.events();
  assert.deepEqual(
    ev.map((e) => [e.name, e.seq, e.delayed]),
    [
      ['s2', 1, true],
      ['s4', 2, true],
    ],
  );
  again.child.kill('SIGTERM');
  assert.equal(await again.exited, 0);
  await sub.client.endAsync();
});

test('broker killed and restarted mid-run: every event arrives, in order, the late ones marked delayed', async (t) => {
  if (!requireShared(t) || !broker) return;
  // A broker of its own, with persistence: it keeps the subscriber's session across the restart.
  const own = await startMosquitto({ persistence: true });
  try {
    const frames = path.join(tmp, 'frames-outage');
    await writeScenes(frames, [
      ['s1', 6],
      [null, 14],
      ['s35', 6],
      [null, 14],
      ['s3', 6],
      [null, 14],
      ['s2', 6],
      [null, 14],
      ['s4', 6],
      [null, 4],
    ]);
    const sub = await subscribe(own.url, 'facegate/gate5/events', 'it-outage');
    t.after(() => sub.client.endAsync()); // a failed assertion must not leave a reconnecting client holding the run open
    const run = runDaemon(writeConfig('gate5', baseConfig('gate5', frames, own.url, { exitWhenCameraEnds: true })));
    await until('the first event', () => sub.events().length >= 1, 60000, run);
    await own.kill('SIGTERM'); // SIGTERM lets mosquitto save the session; the daemon sees the same outage
    await new Promise((r) => setTimeout(r, 2500));
    await own.restart();
    assert.equal(await run.exited, 0, run.output().slice(-3000));
    await until('5 events', () => sub.events().length >= 5, 20000, run);
    const ev = sub.events();
    assert.deepEqual(
      ev.map((e) => [e.kind, e.name]),
      [
        ['recognized', 's1'],
        ['unknown', null],
        ['recognized', 's3'],
        ['recognized', 's2'],
        ['recognized', 's4'],
      ],
      run.output().slice(-3000),
    );
    assert.deepEqual(
      ev.map((e) => e.seq),
      [1, 2, 3, 4, 5],
    );
    assert.equal(ev[0]?.delayed, false);
    assert.ok(
      ev.some((e) => e.delayed),
      'an event decided during the outage is marked delayed',
    );
  } finally {
    await own.stop();
  }
});

test('bad config: one clear message, non-zero exit', (t) => {
  if (!requireShared(t) || !broker) return;
  const r = spawnSync(
    process.execPath,
    [cli, 'run', '--config', writeConfig('x', { camera: { type: 'usb' }, mqtt: { port: 1 } })],
    {
      encoding: 'utf8',
      timeout: 60000,
    },
  );
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /^camera\.type: /m);
  assert.match(r.stderr, /^mqtt: .*"port"/m);
});

test('no trained model and no camera: the daemon stays up, keeps answering /healthz and says what to configure', async (t) => {
  if (!requireShared(t) || !broker) return;
  const cfg = baseConfig('gate4', path.join(tmp, 'no-frames-here'), broker.url);
  const run = runDaemon(
    writeConfig('gate4', {
      ...cfg,
      model: { dir: path.join(tmp, 'no-model'), threads: 1 },
      camera: {
        ...(cfg.camera as object),
        reopen: { initialDelayMs: 100, maxDelayMs: 400, factor: 2, stallTimeoutMs: 1000 },
      },
    }),
  );
  await until('the start banner', () => run.output().includes('Enrol the first person'), 60000, run);
  const url = /health: {2}(http:\/\/\S+)/.exec(run.output())?.[1];
  assert.ok(url, run.output());
  for (let i = 0; i < 3; i++) {
    const res = await fetch(url);
    assert.equal(res.status, 503);
    const h = (await res.json()) as { camera: string; cameraProblem: string; gallery: { people: number } };
    assert.equal(h.camera, 'failed');
    assert.match(h.cameraProblem, /^camera missing: .*no-frames-here.*Configure camera\.type/);
    assert.equal(h.gallery.people, 0);
    await new Promise((r) => setTimeout(r, 1200));
  }
  assert.equal(run.child.exitCode, null, 'still running');
  assert.match(run.output(), /camera failed; reopening/);
  run.child.kill('SIGTERM');
  assert.equal(await run.exited, 0);
});
