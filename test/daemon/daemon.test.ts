/**
 * The daemon in process against a REAL mosquitto: ordering, payloads, status and last
 * will, Home Assistant discovery, a broker that dies mid-run, the outbox across a
 * restart, /healthz and /metrics. Camera, model and decider are scripted fakes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { Daemon } from '../../src/daemon/daemon.js';
import type { EventPayload } from '../../src/publish/topics.js';
import { startMosquitto, type Mosquitto } from '../support/mosquitto.js';
import { ScriptSource, ScriptRecogniser, EachFrameDecider, testConfig } from '../support/daemon-fakes.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'facegate-daemon-'));
let broker: Mosquitto;
before(async () => {
  broker = await startMosquitto({ persistence: true });
});
after(async () => {
  await broker.stop();
  rmSync(tmp, { recursive: true, force: true });
});

interface Sub {
  client: MqttClient;
  messages: { topic: string; text: string; retain: boolean }[];
  events(): EventPayload[];
}

async function subscriber(url: string, topics: string[], clientId: string): Promise<Sub> {
  const client = await connectAsync(url, { clientId, clean: false, reconnectPeriod: 100, protocolVersion: 4 });
  const messages: Sub['messages'] = [];
  client.on('message', (topic, payload, packet) =>
    messages.push({ topic, text: payload.toString(), retain: packet.retain }),
  );
  await client.subscribeAsync(topics, { qos: 1 });
  return {
    client,
    messages,
    events: () => {
      const seen = new Set<string>();
      const out: EventPayload[] = [];
      for (const m of messages) {
        if (!m.topic.endsWith('/events')) continue;
        const e = JSON.parse(m.text) as EventPayload;
        if (seen.has(e.id)) continue; // QoS 1: at least once
        seen.add(e.id);
        out.push(e);
      }
      return out;
    },
  };
}

async function until(what: string, cond: () => boolean, ms = 15000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function daemonWith(
  script: string[],
  opts: { kioskId: string; stateDir: string; url?: string; intervalMs?: number; extra?: Record<string, unknown> },
): { daemon: Daemon; rec: ScriptRecogniser } {
  const rec = new ScriptRecogniser();
  const cfg = testConfig({
    url: opts.url ?? broker.url,
    stateDir: opts.stateDir,
    kioskId: opts.kioskId,
    ...(opts.extra ? { extra: opts.extra } : {}),
  });
  const daemon = new Daemon(cfg, {
    loadPipeline: () => Promise.resolve(rec),
    createDecider: () => new EachFrameDecider(),
    createSource: () => new ScriptSource(script, opts.intervalMs ?? 10),
    version: '9.9.9',
  });
  return { daemon, rec };
}

test('events arrive in order with every field; status online then offline; HA discovery re-announced', async () => {
  const sub = await subscriber(broker.url, ['facegate/k1/#', 'homeassistant/#'], 'sub-basic');
  const script = ['none', 'event:alice', 'none', 'event:?', 'event:bob', ...Array<string>(1000).fill('none')];
  const { daemon, rec } = daemonWith(script, { kioskId: 'k1', stateDir: path.join(tmp, 'basic') });
  await daemon.start();
  await until('3 events', () => sub.events().length >= 3);
  const ev = sub.events();
  assert.deepEqual(
    ev.map((e) => [e.kind, e.name]),
    [
      ['recognized', 'alice'],
      ['unknown', null],
      ['recognized', 'bob'],
    ],
  );
  assert.deepEqual(
    ev.map((e) => e.seq),
    [1, 2, 3],
  );
  for (const e of ev) {
    assert.match(e.id, /^[0-9a-f-]{36}$/);
    assert.equal(e.modelVersion, '20260101.000000');
    assert.equal(e.kiosk, 'k1');
    assert.equal(e.delayed, false);
    assert.ok(!Number.isNaN(Date.parse(e.time)));
    assert.equal(e.score, 0.9);
  }
  const eventMsgs = sub.messages.filter((m) => m.topic === 'facegate/k1/events');
  assert.ok(
    eventMsgs.every((m) => !m.retain),
    'events are never retained',
  );
  assert.ok(sub.messages.some((m) => m.topic === 'facegate/k1/status' && m.text === 'online'));
  // Home Assistant discovery: event entity + three sensors, retained; re-sent when HA says online.
  await until('discovery', () => sub.messages.filter((m) => m.topic.startsWith('homeassistant/')).length >= 4);
  const configs = sub.messages.filter((m) => m.topic.startsWith('homeassistant/') && m.topic.endsWith('/config'));
  const topics = new Set(configs.map((m) => m.topic));
  assert.ok(topics.has('homeassistant/event/facegate_k1/recognition/config'));
  for (const s of ['last_person', 'fps', 'model_version'])
    assert.ok(topics.has(`homeassistant/sensor/facegate_k1/${s}/config`), s);
  const eventCfg = JSON.parse(configs.find((m) => m.topic.includes('/event/'))?.text ?? '{}') as {
    state_topic: string;
    event_types: string[];
    availability_topic: string;
  };
  assert.equal(eventCfg.state_topic, 'facegate/k1/events');
  assert.equal(eventCfg.availability_topic, 'facegate/k1/status');
  const before = configs.length;
  await sub.client.publishAsync('homeassistant/status', 'online');
  await until(
    're-announcement',
    () =>
      sub.messages.filter((m) => m.topic.startsWith('homeassistant/') && m.topic.endsWith('/config')).length >=
      before + 4,
  );
  // The state topic feeds the sensors.
  await until('state', () =>
    sub.messages.some(
      (m) =>
        m.topic === 'facegate/k1/state' && (JSON.parse(m.text) as { lastPerson: string | null }).lastPerson === 'bob',
    ),
  );
  // Health and metrics.
  const health = await fetch(`${daemon.httpAddress ?? ''}/healthz`);
  assert.equal(health.status, 200);
  const metrics = await (await fetch(`${daemon.httpAddress ?? ''}/metrics`)).text();
  assert.match(metrics, /facegate_decisions_total\{kind="recognized"\} [1-9]/);
  assert.match(metrics, /facegate_model_info\{version="20260101.000000"\} 1/);
  assert.match(metrics, /facegate_broker_connected 1/);
  assert.match(metrics, /facegate_stage_seconds_bucket\{le="[^"]+",stage="frame_to_event"\}/);
  await daemon.stop();
  assert.ok(rec.closed, 'model closed on stop');
  await until('offline', () => sub.messages.some((m) => m.topic === 'facegate/k1/status' && m.text === 'offline'));
  await sub.client.endAsync();
});

test('broker killed and restarted mid-run: no event lost, order kept, the late ones marked delayed', async () => {
  const script = Array.from({ length: 80 }, (_, i) => `event:p${i}`);
  const sub = await subscriber(broker.url, ['facegate/k2/events'], 'sub-kill');
  const { daemon } = daemonWith(script, { kioskId: 'k2', stateDir: path.join(tmp, 'kill'), intervalMs: 15 });
  await daemon.start();
  await until('some events', () => sub.events().length >= 10);
  // SIGTERM, not SIGKILL: mosquitto then saves the subscriber's session, so what it had already
  // accepted is not lost on the broker side; the daemon side (what this tests) sees the same outage.
  await broker.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 400));
  await broker.restart();
  await until('all 80 events', () => sub.events().length >= 80, 30000);
  const ev = sub.events();
  assert.deepEqual(
    ev.map((e) => e.name),
    script.map((s) => s.slice(6)),
    'every event, in order',
  );
  assert.deepEqual(
    ev.map((e) => e.seq),
    script.map((_, i) => i + 1),
  );
  assert.ok(
    ev.some((e) => e.delayed),
    'events decided while the broker was away are marked delayed',
  );
  assert.equal(ev[0]?.delayed, false);
  await daemon.stop();
  await sub.client.endAsync();
});

test('events waiting on disk survive a daemon restart and are delivered, delayed, before new ones', async () => {
  const stateDir = path.join(tmp, 'restart');
  const sub = await subscriber(broker.url, ['facegate/k3/events'], 'sub-restart');
  await broker.kill('SIGTERM');
  const a = daemonWith(['event:a1', 'event:a2', 'event:a3'], { kioskId: 'k3', stateDir });
  await a.daemon.start();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(a.daemon.health().pendingEvents, 3);
  await a.daemon.stop();
  await broker.restart();
  const b = daemonWith(['none', 'event:b1'], { kioskId: 'k3', stateDir });
  await b.daemon.start();
  await until('4 events', () => sub.events().length >= 4);
  const ev = sub.events();
  assert.deepEqual(
    ev.map((e) => [e.name, e.seq, e.delayed]),
    [
      ['a1', 1, true],
      ['a2', 2, true],
      ['a3', 3, true],
      ['b1', 4, false],
    ],
  );
  await b.daemon.stop();
  await sub.client.endAsync();
});

test('two daemons on one state folder: the second start fails naming the first; the first keeps its database', async () => {
  const stateDir = path.join(tmp, 'twice');
  const a = daemonWith(['event:x', ...Array<string>(1000).fill('none')], { kioskId: 'k5', stateDir });
  await a.daemon.start();
  const b = daemonWith(['none'], { kioskId: 'k5b', stateDir });
  await assert.rejects(
    b.daemon.start(),
    new RegExp(`state\\.dir .*twice is in use by facegate process ${process.pid} `),
  );
  assert.equal(a.daemon.db.db.open, true);
  assert.equal(a.daemon.db.db.pragma('journal_mode', { simple: true }), 'wal');
  await a.daemon.stop();
  assert.throws(() => a.daemon.db, /not open/);
  // Once the first one stopped, the folder is free again.
  const c = daemonWith(['none'], { kioskId: 'k5', stateDir });
  await c.daemon.start();
  await c.daemon.stop();
});

test('embedded broker when no url is configured', async () => {
  const { daemon } = daemonWith(['event:e1'], { kioskId: 'k4', stateDir: path.join(tmp, 'embedded'), url: '' });
  await daemon.start();
  assert.match(daemon.brokerUrl, /^mqtt:\/\/127\.0\.0\.1:\d+$/);
  const sub = await subscriber(daemon.brokerUrl, ['facegate/k4/status'], 'sub-embedded');
  await until('retained online', () => sub.messages.some((m) => m.text === 'online' && m.retain));
  await sub.client.endAsync();
  await daemon.stop();
});

test('a camera that fails while running is reopened without a restart; /healthz says 503 meanwhile', async () => {
  let opened = 0;
  let sinkOf: import('../../src/capture/source.js').FrameSink | undefined;
  const rec = new ScriptRecogniser();
  const cfg = testConfig({
    url: broker.url,
    stateDir: path.join(tmp, 'reopen'),
    kioskId: 'k5',
    extra: { camera: { type: 'directory', reopen: { initialDelayMs: 300, maxDelayMs: 300, stallTimeoutMs: 0 } } },
  });
  const daemon = new Daemon(cfg, {
    loadPipeline: () => Promise.resolve(rec),
    createDecider: () => new EachFrameDecider(),
    createSource: () => {
      opened++;
      const inner = new ScriptSource(['none'], 10, true);
      return {
        description: 'flaky',
        open: (sink) => {
          sinkOf = sink;
          return inner.open(sink);
        },
        close: () => inner.close(),
      };
    },
  });
  await daemon.start();
  const health = async (): Promise<number> => (await fetch(`${daemon.httpAddress ?? ''}/healthz`)).status;
  assert.equal(await health(), 200);
  sinkOf?.error(new Error('USB camera unplugged'));
  assert.equal(await health(), 503);
  await until('reopened', () => daemon.health().camera === 'ok');
  assert.equal(await health(), 200);
  assert.equal(opened, 2);
  assert.match(await (await fetch(`${daemon.httpAddress ?? ''}/metrics`)).text(), /facegate_camera_reopens_total 1/);
  await daemon.stop();
});
