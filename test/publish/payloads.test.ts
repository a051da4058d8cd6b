/**
 * Snapshots of what the kiosk publishes (docs/mqtt.md), each built by the code that builds it
 * on the kiosk: the `events` messages as the event publisher hands them to the broker, the
 * retained `state` message as the state reporter publishes it, the `status` payloads and the
 * Home Assistant discovery configs. A change to any of them fails here with the difference.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { KioskDb } from '../../src/state/db.js';
import { EventPublisher, type EventSink } from '../../src/publish/events.js';
import { discoveryMessages } from '../../src/publish/homeassistant.js';
import type { MqttPort } from '../../src/publish/mqtt.js';
import { Topics, encodePayload, type EventPayload, type StatePayload } from '../../src/publish/topics.js';
import { StateReporter } from '../../src/daemon/state.js';
import { assertSnapshot, normalise } from '../support/snapshot.js';

const MODEL_VERSION = '20261128.140444';
const FRAME_TIME = Date.parse('2026-11-28T14:03:07.512Z');

/** A broker connection that records what would go on the wire. */
class WireSink implements EventSink {
  connected = true;
  readonly wire: string[] = [];
  publish(topic: 'events', payload: EventPayload): Promise<void> {
    this.wire.push(encodePayload(topic, payload));
    return Promise.resolve();
  }
  onConnect(): void {
    // Connected from the start, or never: nothing to tell.
  }
}

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(ok(), `timed out waiting for ${what}`);
}

test('events payloads: recognized, unknown, and delayed after an outage (snapshot)', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'facegate-payloads-'));
  const sink = new WireSink();
  const db = KioskDb.open(':memory:');
  const opts = { db, stateDir: dir, maxEvents: 10, kiosk: 'front-door', camera: 'door' };
  let events = new EventPublisher(sink, opts);
  try {
    await events.start();
    events.publish(
      { kind: 'recognized', name: 'alice', score: 0.912345, trackId: 17, frameId: 53311, timestamp: FRAME_TIME },
      MODEL_VERSION,
    );
    events.publish(
      { kind: 'unknown', name: null, score: 0.41, trackId: 18, frameId: 53320, timestamp: FRAME_TIME + 2000 },
      MODEL_VERSION,
    );
    await until('two events on the wire', () => sink.wire.length === 2);
    // The broker is away: the event waits on disk, and after a restart it goes out marked delayed.
    const offline = new WireSink();
    offline.connected = false;
    const before = new EventPublisher(offline, opts);
    await events.stop(0);
    await before.start();
    before.publish(
      { kind: 'recognized', name: 'bob', score: 0.8, trackId: 19, frameId: 53400, timestamp: FRAME_TIME + 20_000 },
      MODEL_VERSION,
    );
    await before.stop(0);
    events = new EventPublisher(sink, opts);
    await events.start();
    await until('the delayed event on the wire', () => sink.wire.length === 3);
  } finally {
    await events.stop(0);
    rmSync(dir, { recursive: true, force: true });
  }
  const wire = sink.wire.map((w) => JSON.parse(w) as EventPayload);
  assert.deepEqual(
    wire.map((e) => [e.seq, e.delayed]),
    [
      [1, false],
      [2, false],
      [3, true],
    ],
  );
  assert.equal(new Set(wire.map((e) => e.id)).size, 3, 'every event has its own id');
  assertSnapshot('mqtt-events', normalise(wire, { '*.id': 'uuid' }));
});

test('state payload as the state reporter publishes it (snapshot)', () => {
  const published: { topic: string; payload: StatePayload }[] = [];
  const mqtt = {
    connected: true,
    publish(topic: string, payload: StatePayload) {
      published.push({ topic, payload });
      return Promise.resolve();
    },
    onConnect() {},
  } as unknown as MqttPort;
  const reporter = new StateReporter(
    mqtt,
    () => ({
      lastPerson: 'alice',
      lastEventTime: '2026-11-28T14:03:07.512Z',
      modelVersion: MODEL_VERSION,
      camera: 'ok',
      pendingEvents: 0,
      processed: 0,
      gallery: { people: 12, threshold: 0.7, score: 'cosine', shift: 0 },
    }),
    () => undefined,
  );
  reporter.kick();
  const [first, ...more] = published;
  assert.ok(first && more.length === 0, 'one state message');
  assert.equal(first.topic, 'state');
  assertSnapshot(
    'mqtt-state',
    normalise(JSON.parse(encodePayload('state', first.payload)), { uptimeSeconds: 'number' }),
  );
});

test('status payloads on the wire are plain text (snapshot)', () => {
  assertSnapshot('mqtt-status', [encodePayload('status', 'online'), encodePayload('status', 'offline')]);
});

test('Home Assistant discovery configs (snapshot)', () => {
  const messages = discoveryMessages(new Topics('facegate', 'front-door'), MODEL_VERSION);
  assert.deepEqual(
    messages.map((m) => m.topic),
    [
      'homeassistant/event/facegate_front-door/recognition/config',
      'homeassistant/sensor/facegate_front-door/last_person/config',
      'homeassistant/sensor/facegate_front-door/fps/config',
      'homeassistant/sensor/facegate_front-door/model_version/config',
    ],
  );
  assertSnapshot('ha-discovery', messages);
});

test('Home Assistant discovery with door access: the door as binary sensors without a command, access decisions as events (snapshot)', () => {
  const messages = discoveryMessages(new Topics('facegate', 'front-door'), MODEL_VERSION, {
    door: 'main',
    contact: true,
  });
  const topics = messages.map((m) => m.topic);
  assert.deepEqual(
    topics.filter((t) => t.includes('/door_')),
    [
      'homeassistant/binary_sensor/facegate_front-door/door_lock/config',
      'homeassistant/binary_sensor/facegate_front-door/door_contact/config',
    ],
  );
  assert.equal(topics.length, 7, topics.join(', '));
  // The kiosk refuses anything but a signed unlock command: Home Assistant gets nothing to press.
  for (const m of messages) assert.equal(m.config.command_topic, undefined, m.topic);
  assertSnapshot('ha-discovery-door', messages);
  const noContact = discoveryMessages(new Topics('facegate', 'front-door'), MODEL_VERSION, { door: 'main' });
  assert.deepEqual(
    noContact.map((m) => m.topic).filter((t) => t.includes('/door_')),
    ['homeassistant/binary_sensor/facegate_front-door/door_lock/config'],
  );
});
