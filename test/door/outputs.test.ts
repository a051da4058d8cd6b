/**
 * The door outputs other than the relay (test/door/gpio.test.ts): the MQTT command to an
 * external controller as a real mosquitto subscriber receives it, the signed webhook as a
 * local HTTP server receives it, and the door contact's alarms.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connectAsync, type MqttClient, type IPublishPacket } from 'mqtt';
import { startMosquitto, type Mosquitto } from '../support/mosquitto.js';
import { MqttConnection } from '../../src/publish/mqtt.js';
import { Topics } from '../../src/publish/topics.js';
import { doorConfigSchema } from '../../src/door/config.js';
import { DoorOutputs } from '../../src/door/door.js';
import { ContactMonitor, type ContactAlarm } from '../../src/door/contact.js';
import {
  verifyWebhook,
  signWebhook,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  type WebhookBody,
} from '../../src/door/webhook.js';

async function until(what: string, cond: () => boolean, ms = 10000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

let broker: Mosquitto | undefined;
const closers: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c().catch(() => undefined);
  await broker?.stop();
});

async function kioskConnection(): Promise<MqttConnection> {
  broker ??= await startMosquitto();
  const conn = new MqttConnection(
    broker.url,
    { clientId: `kiosk-${Math.random().toString(16).slice(2)}`, reconnectPeriod: 200 },
    new Topics('facegate', 'front'),
  );
  await conn.start(5000);
  assert.ok(conn.connected, 'the kiosk connected to the test broker');
  closers.push(() => conn.stop());
  return conn;
}

/** An MQTT 5 subscriber with retain-as-published, so the retain flag it sees is the publisher's. */
async function subscriber(topic: string): Promise<{ client: MqttClient; got: IPublishPacket[] }> {
  assert.ok(broker);
  const client = await connectAsync(broker.url, { protocolVersion: 5, clientId: `ctl-${Math.random()}` });
  closers.push(() => client.endAsync());
  const got: IPublishPacket[] = [];
  client.on('message', (_t, _p, packet) => got.push(packet));
  await client.subscribeAsync(topic, { qos: 1, rap: true });
  return { client, got };
}

test('MQTT command: a real subscriber gets the open payload at QoS 1, never retained, then the off payload', async () => {
  const conn = await kioskConnection();
  const topic = 'cmnd/door/POWER';
  const ctl = await subscriber(topic);
  const cfg = doorConfigSchema.parse({
    pulseMs: 300,
    mqtt: { enabled: true, topic, payload: 'ON', offPayload: 'OFF' },
  });
  const door = new DoorOutputs(cfg, conn, { door: 'front', kiosk: 'front' });
  await door.start();
  closers.push(() => door.stop());
  assert.deepEqual(door.outputs, ['mqtt']);
  assert.equal(door.open({ seq: 1, person: 'Ana' }), true);
  assert.equal(door.open({ seq: 2, person: 'Ana' }), false, 'one opening at a time while released');
  assert.equal(door.state().lock, 'unlocked');
  await until('ON and OFF at the controller', () => ctl.got.length >= 2);
  assert.deepEqual(
    ctl.got.map((p) => [p.topic, p.payload.toString(), p.qos, p.retain]),
    [
      [topic, 'ON', 1, false],
      [topic, 'OFF', 1, false],
    ],
  );
  await until('locked again', () => door.state().lock === 'locked');
  // A controller that (re)subscribes later finds nothing retained to act on.
  const late = await subscriber(topic);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(late.got.length, 0, 'no retained door command on the broker');
  assert.equal(door.open({ seq: 3, person: 'Ana' }), true, 'opens again once locked');
  await until('the second ON', () => ctl.got.length >= 3);
  assert.equal(door.openings, 2);
  // Stop during a pulse sends the off payload at once.
  await door.stop();
  await until('OFF after stop', () => ctl.got.length >= 4);
  assert.deepEqual(
    ctl.got.slice(2).map((p) => [p.payload.toString(), p.qos, p.retain]),
    [
      ['ON', 1, false],
      ['OFF', 1, false],
    ],
  );
});

test('webhook: the HMAC signature verifies on a local HTTP server; a wrong secret, a changed body or an old timestamp do not', async () => {
  const received: { headers: IncomingMessage['headers']; body: string }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise((r) => server.close(r)));
  const port = (server.address() as AddressInfo).port;
  const secret = 'a long shared secret';
  const cfg = doorConfigSchema.parse({
    pulseMs: 200,
    webhook: { enabled: true, url: `http://127.0.0.1:${port}/open`, secret },
  });
  const door = new DoorOutputs(cfg, undefined, { door: 'front', kiosk: 'kiosk-1' });
  await door.start();
  closers.push(() => door.stop());
  assert.equal(door.open({ seq: 7, person: 'Ana Lopez' }), true);
  await until('the webhook request', () => received.length === 1);
  const [r] = received;
  assert.ok(r);
  const sig = r.headers[SIGNATURE_HEADER] as string;
  const ts = r.headers[TIMESTAMP_HEADER] as string;
  assert.match(sig, /^sha256=[0-9a-f]{64}$/);
  assert.deepEqual(verifyWebhook(secret, { signature: sig, timestamp: ts }, r.body), { ok: true });
  assert.deepEqual(verifyWebhook('another secret', { signature: sig, timestamp: ts }, r.body), {
    ok: false,
    why: 'bad signature',
  });
  const tampered = r.body.replace('"seq":7', '"seq":8');
  assert.notEqual(tampered, r.body);
  assert.equal(verifyWebhook(secret, { signature: sig, timestamp: ts }, tampered).ok, false);
  assert.deepEqual(verifyWebhook(secret, { signature: sig, timestamp: ts }, r.body, Date.now() + 600_000), {
    ok: false,
    why: 'timestamp too old or in the future',
  });
  assert.equal(verifyWebhook(secret, { signature: undefined, timestamp: ts }, r.body).ok, false);
  // A signature made for another timestamp does not pass with this one.
  assert.equal(
    verifyWebhook(secret, { signature: signWebhook(secret, Number(ts) - 1, r.body), timestamp: ts }, r.body).ok,
    false,
  );
  const body = JSON.parse(r.body) as WebhookBody;
  assert.equal(body.action, 'open');
  assert.equal(body.door, 'front');
  assert.equal(body.kiosk, 'kiosk-1');
  assert.equal(body.person, 'Ana Lopez');
  assert.equal(body.seq, 7);
  assert.equal(body.pulseMs, 200);
  assert.match(body.id, /^[0-9a-f-]{36}$/);
  // The next opening carries a fresh id (receivers drop ids they have seen).
  await until('locked again', () => !door.released);
  assert.equal(door.open({ seq: 8, person: 'Ana Lopez' }), true);
  await until('the second request', () => received.length === 2);
  assert.notEqual((JSON.parse(received[1]?.body ?? '{}') as WebhookBody).id, body.id);
});

test('contact: opening while locked is "door forced"; an authorised opening left open is "door held"; closing clears', async () => {
  let now = 1_000_000;
  const seen: (ContactAlarm | null)[] = [];
  const m = new ContactMonitor(
    { heldOpenMs: 60, graceMs: 1000 },
    (s) => seen.push(s.alarm),
    () => now,
  );
  m.contact(false); // initial level: closed
  assert.equal(m.alarm, null);
  m.contact(true); // opened, never released
  assert.equal(m.alarm, 'door forced');
  m.contact(false);
  assert.equal(m.alarm, null, 'closing clears the alarm');
  // Released until now+500: an opening within the pulse and the grace is authorised…
  m.released(now + 500);
  now += 1400;
  m.contact(true);
  assert.equal(m.alarm, null);
  // …but left open past heldOpenMs it is "door held".
  await until('door held', () => m.alarm === 'door held', 5000);
  m.contact(false);
  assert.equal(m.alarm, null);
  // Past the grace it is forced again.
  now += 200;
  m.contact(true);
  assert.equal(m.alarm, 'door forced');
  m.stop();
  assert.deepEqual(seen, [null, 'door forced', null, null, 'door held', null, 'door forced']);
  // A door found open at start is not forced; it is watched for being held.
  const m2 = new ContactMonitor(
    { heldOpenMs: 30, graceMs: 0 },
    () => undefined,
    () => now,
  );
  m2.contact(true);
  assert.equal(m2.alarm, null);
  await until('held at start', () => m2.alarm === 'door held', 5000);
  m2.stop();
});

test('contact over MQTT: the door outputs raise the alarms and show them in the door state', async () => {
  const conn = await kioskConnection();
  assert.ok(broker);
  const topic = 'sensors/front/contact';
  const cfg = doorConfigSchema.parse({
    pulseMs: 300,
    contact: { type: 'mqtt', mqtt: { topic }, heldOpenSeconds: 0.1, graceMs: 0 },
  });
  const alarms: ContactAlarm[] = [];
  const door = new DoorOutputs(cfg, conn, { door: 'front', kiosk: 'front', onAlarm: (a) => alarms.push(a) });
  await door.start();
  closers.push(() => door.stop());
  const sensor = await connectAsync(broker.url, { clientId: 'sensor' });
  closers.push(() => sensor.endAsync());
  await sensor.publishAsync(topic, 'closed', { qos: 1 });
  await until('closed', () => door.state().contact === 'closed');
  await sensor.publishAsync(topic, 'open', { qos: 1 });
  await until('forced', () => alarms.length === 1);
  assert.deepEqual(door.state(), { door: 'front', lock: 'locked', contact: 'open', alarm: 'door forced' });
  await sensor.publishAsync(topic, 'closed', { qos: 1 });
  await until('cleared', () => door.state().alarm === null);
  assert.equal(door.open({ seq: 1, person: 'Ana' }), true);
  await sensor.publishAsync(topic, 'open', { qos: 1 });
  await until('held', () => alarms.length === 2);
  assert.deepEqual(alarms, ['door forced', 'door held']);
  await sensor.publishAsync(topic, 'closed', { qos: 1 });
  await until('cleared again', () => door.state().alarm === null);
});
