import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Topics, assertTopicName, encodePayload } from '../../src/publish/topics.js';
import { HomeAssistantDiscovery, discoveryMessages } from '../../src/publish/homeassistant.js';
import type { MqttPort } from '../../src/publish/mqtt.js';
import { buildClientOptions, safeUrl } from '../../src/publish/mqtt.js';
import { validateConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/shared/errors.js';
import { testEvent } from '../support/outbox.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'facegate-publish-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

test('topics: relative to <base>/<kiosk>; wildcards and empty levels refused', () => {
  const t = new Topics('facegate', 'front-door');
  assert.equal(t.full('events'), 'facegate/front-door/events');
  assert.equal(t.status, 'facegate/front-door/status');
  assert.equal(t.relative('facegate/front-door/model/state'), 'model/state');
  assert.equal(t.relative('other/x'), null);
  for (const bad of ['a/+/b', '#', 'events/#', '', '/events', 'events/', 'a//b'])
    assert.throws(() => t.full(bad), /wildcard|empty/, bad);
  assert.throws(() => new Topics('face+gate', 'k'), /wildcard/);
  assert.throws(() => new Topics('facegate', 'a/b'), /one topic level/);
  assert.equal(t.haConfig('sensor', 'fps'), 'homeassistant/sensor/facegate_front-door/fps/config');
  assert.doesNotThrow(() => assertTopicName('homeassistant/status'));
  assert.equal(encodePayload('status', 'online'), 'online');
  assert.deepEqual(JSON.parse(encodePayload('events', testEvent(1))), testEvent(1));
});

test('Home Assistant discovery: event entity and three sensors with availability', () => {
  const msgs = discoveryMessages(new Topics('facegate', 'k1'), '1.2.3');
  assert.deepEqual(msgs.map((m) => m.topic).sort(), [
    'homeassistant/event/facegate_k1/recognition/config',
    'homeassistant/sensor/facegate_k1/fps/config',
    'homeassistant/sensor/facegate_k1/last_person/config',
    'homeassistant/sensor/facegate_k1/model_version/config',
  ]);
  for (const m of msgs) {
    assert.equal(m.config.availability_topic, 'facegate/k1/status');
    assert.ok(String(m.config.unique_id).startsWith('facegate_k1_'));
  }
  const ev = msgs.find((m) => m.topic.includes('/event/'))?.config;
  assert.deepEqual(ev?.event_types, ['recognized', 'unknown']);
  assert.equal(ev?.state_topic, 'facegate/k1/events');
});

test('Home Assistant discovery clears the old door lock config once per start, then announces', async () => {
  const wire: { topic: string; payload: string; retain: boolean }[] = [];
  const mqtt = {
    topics: new Topics('facegate', 'k1'),
    connected: true,
    publishAbsolute(topic: string, payload: string | Buffer, opts: { qos: 0 | 1; retain: boolean }) {
      wire.push({ topic, payload: payload.toString(), retain: opts.retain });
      return Promise.resolve();
    },
  } as unknown as MqttPort;
  const ha = new HomeAssistantDiscovery(mqtt, '1.2.3', { door: 'main' });
  await ha.announce();
  await ha.announce(); // Home Assistant came online again
  const lock = 'homeassistant/lock/facegate_k1/door/config';
  assert.deepEqual(
    wire.filter((w) => w.topic === lock),
    [{ topic: lock, payload: '', retain: true }],
  );
  const configs = wire.filter((w) => w.topic !== lock);
  assert.equal(configs.length, 2 * discoveryMessages(mqtt.topics, '1.2.3', { door: 'main' }).length);
  assert.ok(configs.every((w) => w.retain && w.payload.startsWith('{')));
});

test('mqtt options: will, protocol, credentials and TLS files; unreadable files are config errors', () => {
  const ca = path.join(tmp, 'ca.pem');
  const pw = path.join(tmp, 'pw');
  writeFileSync(ca, 'CA');
  writeFileSync(pw, 's3cret\nignored\n');
  const cfg = validateConfig({
    mqtt: { url: 'mqtts://b:8883', protocolVersion: 4, username: 'kiosk', passwordFile: pw, tls: { ca } },
  });
  const topics = new Topics(cfg.mqtt.baseTopic, cfg.mqtt.kioskId);
  const o = buildClientOptions(cfg.mqtt, topics);
  assert.equal(o.protocolVersion, 4);
  assert.deepEqual(o.will, { topic: 'facegate/kiosk/status', payload: Buffer.from('offline'), qos: 1, retain: true });
  assert.equal(o.username, 'kiosk');
  assert.equal(o.password, 's3cret');
  assert.equal(String(o.ca), 'CA');
  const missing = validateConfig({ mqtt: { tls: { cert: path.join(tmp, 'nope.pem'), key: ca } } });
  assert.throws(
    () => buildClientOptions(missing.mqtt, topics),
    (e: unknown) => e instanceof ConfigError && /mqtt\.tls\.cert: cannot read/.test(e.message),
  );
  const half = validateConfig({ mqtt: { tls: { cert: ca } } });
  assert.throws(() => buildClientOptions(half.mqtt, topics), /both cert and key/);
  assert.equal(safeUrl('mqtts://user:pass@broker:8883'), 'mqtts://broker:8883');
});
