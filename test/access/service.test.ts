/**
 * Door access as the daemon runs it: decisions on the bus → rules → access log → door
 * outputs (relay on a fake GPIO chip, MQTT command) → `access` messages on a real
 * mosquitto broker. Then what an attacker on the broker can do: replay a recorded grant,
 * `events` message, access message or remote-unlock command — nothing opens but a fresh,
 * signed, unexpired, unused unlock command.
 */
import { test, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { connectAsync, type IPublishPacket, type MqttClient } from 'mqtt';
import { startMosquitto, type Mosquitto } from '../support/mosquitto.js';
import { installFakeGpiod, lineState } from '../support/fake-gpiod.js';
import { assertSnapshot, normalise } from '../support/snapshot.js';
import { MqttConnection } from '../../src/publish/mqtt.js';
import { Topics, type AccessPayload, type EventPayload } from '../../src/publish/topics.js';
import { DaemonBus, type FrameSeen } from '../../src/publish/bus.js';
import { KioskDb, kioskDbPath } from '../../src/state/db.js';
import { accessConfigSchema, WEEKDAYS } from '../../src/access/config.js';
import { doorConfigSchema } from '../../src/door/config.js';
import { DoorAccess } from '../../src/access/service.js';
import { AccessLog } from '../../src/access/log.js';
import { signUnlock } from '../../src/door/remote.js';
import { generateKeyPair, loadPrivateKey } from '../../src/update/keys.js';
import type { Decision } from '../../src/shared/messages.js';

const BASE = 'facegate';
const KIOSK = 'front';
const DOOR = 'front-door';
const CONTROLLER = 'cmnd/front/POWER';
const MODEL = '20261202.120000';

const tmp = mkdtempSync(path.join(tmpdir(), 'facegate-access-'));
let broker: Mosquitto | undefined;
const closers: (() => Promise<unknown>)[] = [];
// Each test's kiosks and clients stop when it ends: a kiosk left running would publish on the
// same topics as the next test's.
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
});
after(async () => {
  await broker?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

async function until(what: string, cond: () => boolean, ms = 10000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A weekday that is not today (UTC): a rule on it alone is "not allowed now". */
const notToday = WEEKDAYS[(new Date().getUTCDay() + 1) % 7] ?? 'mon';

interface Kiosk {
  access: DoorAccess;
  /** A kiosk restart: a new MQTT connection and door access on the same database and chip. */
  restart(): Promise<DoorAccess>;
  readonly db: KioskDb;
  readonly dbFile: string;
  readonly bus: DaemonBus;
  /** Relay pulses on the fake chip. */
  pulses(): number;
  /** Door commands the controller received. */
  readonly commands: IPublishPacket[];
  /** `access` messages seen by a subscriber. */
  readonly accessMsgs: IPublishPacket[];
  /** A decision through the bus, as the daemon emits it; returns the events payload it carried. */
  decide(d: Partial<Decision> & { faces?: number }): EventPayload;
  keys: { privateKeyFile: string; publicKeyFile: string };
}

let kioskNo = 0;
async function startKiosk(doorExtra: Record<string, unknown> = {}): Promise<Kiosk> {
  broker ??= await startMosquitto();
  const dir = path.join(tmp, `kiosk-${++kioskNo}`);
  const bin = path.join(dir, 'bin');
  const chip = path.join(dir, 'chip');
  installFakeGpiod(bin, chip);
  const keys = await generateKeyPair(path.join(dir, 'keys'));
  const dbFile = kioskDbPath(path.join(dir, 'state'));
  const db = KioskDb.open(dbFile);
  closers.push(() => Promise.resolve(db.db.close()));
  const observer: MqttClient = await connectAsync(broker.url, { protocolVersion: 5, clientId: `observer-${kioskNo}` });
  closers.push(() => observer.endAsync());
  const commands: IPublishPacket[] = [];
  const accessMsgs: IPublishPacket[] = [];
  observer.on('message', (topic, _p, packet) => {
    if (topic === CONTROLLER) commands.push(packet);
    if (topic === `${BASE}/${KIOSK}/access`) accessMsgs.push(packet);
  });
  // Retain-as-published: the retain flag seen is the kiosk's own.
  await observer.subscribeAsync([CONTROLLER, `${BASE}/${KIOSK}/access`], { qos: 1, rap: true });
  const bus = new DaemonBus();
  const b = broker;
  let conns = 0;
  let stopCurrent = (): Promise<void> => Promise.resolve();
  const launch = async (): Promise<DoorAccess> => {
    const conn = new MqttConnection(
      b.url,
      { clientId: `kiosk-${kioskNo}-${++conns}`, reconnectPeriod: 200 },
      new Topics(BASE, KIOSK),
    );
    await conn.start(5000);
    closers.push(() => conn.stop());
    const a = new DoorAccess({
      access: accessConfigSchema.parse({
        enabled: true,
        door: DOOR,
        timeZone: 'UTC',
        rules: [
          { name: 'Ana, always', persons: ['Ana Lopez'], holidays: true },
          { name: 'Bo, contract ended', persons: ['Bo Chen'], validUntil: '2020-01-31' },
          { name: `Cy, ${notToday} only`, persons: ['Cy Diaz'], days: [notToday] },
        ],
        open: { minScore: 0.5, minMargin: 0.5, minFaceSize: 80 },
      }),
      door: doorConfigSchema.parse({
        pulseMs: 200,
        relay: { enabled: true, gpioset: path.join(bin, 'gpioset') },
        mqtt: { enabled: true, topic: CONTROLLER, payload: 'ON' },
        remoteUnlock: { enabled: true, publicKeys: [keys.publicKeyFile], maxTtlSeconds: 120 },
        ...doorExtra,
      }),
      kiosk: KIOSK,
      db,
      mqtt: conn,
      bus,
    });
    await a.start();
    const stop = async (): Promise<void> => {
      await a.stop();
      await conn.stop();
    };
    closers.push(stop);
    stopCurrent = stop;
    return a;
  };
  const access = await launch();
  let frameId = 0;
  let seq = 0;
  const kiosk: Kiosk = {
    access,
    async restart() {
      await stopCurrent();
      kiosk.access = await launch();
      return kiosk.access;
    },
    db,
    dbFile,
    bus,
    keys,
    commands,
    accessMsgs,
    pulses: () => lineState(chip, 'gpiochip0', 5).pulses,
    decide(d) {
      const id = ++frameId;
      const faces = d.faces ?? 1;
      bus.emit('frame', {
        frame: { id },
        matches: Array.from({ length: faces }, () => ({})),
        modelVersion: MODEL,
        timings: { queueMs: 0, recogniseMs: 0, decideMs: 0 },
      } as unknown as FrameSeen);
      const decision: Decision = {
        kind: d.kind ?? 'recognized',
        name: d.name === undefined ? 'Ana Lopez' : d.name,
        score: d.score ?? 0.82,
        trackId: 1,
        frameId: id,
        timestamp: Date.now(),
        margin: 'margin' in d ? d.margin : 0.9,
        faceSize: 'faceSize' in d ? d.faceSize : 140,
      };
      const event: EventPayload = {
        id: randomUUID(),
        seq: ++seq,
        kind: decision.kind,
        name: decision.name,
        score: decision.score,
        time: new Date(decision.timestamp).toISOString(),
        modelVersion: MODEL,
        kiosk: KIOSK,
        camera: 'door',
        trackId: 1,
        frameId: id,
        delayed: false,
      };
      bus.emit('decision', { decision, modelVersion: MODEL, event });
      return event;
    },
  };
  return kiosk;
}

const parse = (p: IPublishPacket): AccessPayload => JSON.parse(p.payload.toString()) as AccessPayload;

test('decisions: one pulse and one door command per grant; every decision logged and published (QoS 1, not retained)', async () => {
  const k = await startKiosk();
  const granted = k.decide({ name: 'Ana Lopez' });
  await until('one pulse', () => k.pulses() === 1);
  await until('one door command', () => k.commands.length === 1);
  await until('the access message', () => k.accessMsgs.length === 1);
  const [first] = k.accessMsgs;
  assert.ok(first);
  assert.equal(first.qos, 1);
  assert.equal(first.retain, false);
  const p = parse(first);
  assert.equal(p.eventId, granted.id);
  assertSnapshot('mqtt-access', normalise(p, { time: 'iso-time', eventId: 'uuid' }));
  await until('locked again', () => k.access.state().lock === 'locked' && !k.access.relayHolderPid);

  // Every denial: no pulse, no command, the right reason in the log and on MQTT.
  const denials: [Partial<Decision> & { faces?: number }, string][] = [
    [{ kind: 'unknown', name: null, score: 0.2 }, 'unknown'],
    // Recognised, but no rule names them: default deny.
    [{ name: 'Dee Evans' }, 'not allowed now'],
    [{ name: 'Bo Chen' }, 'expired'],
    [{ name: 'Cy Diaz' }, 'not allowed now'],
    [{ name: 'Ana Lopez', faces: 2 }, 'several faces'],
    [{ name: 'Ana Lopez', margin: 0.1 }, 'low confidence'],
    [{ name: 'Ana Lopez', score: 0.3 }, 'low confidence'],
    [{ name: 'Ana Lopez', faceSize: 40 }, 'low confidence'],
    [{ name: 'Ana Lopez', margin: undefined }, 'low confidence'],
  ];
  for (const [d] of denials) k.decide(d);
  await until('every access message', () => k.accessMsgs.length === 1 + denials.length);
  const msgs = k.accessMsgs.slice(1).map(parse);
  assert.deepEqual(
    msgs.map((m) => [m.result, m.reason, m.opened]),
    denials.map(([, reason]) => ['denied', reason, false]),
  );
  assert.ok(k.accessMsgs.every((m) => m.qos === 1 && !m.retain));
  const seqs = k.accessMsgs.map((m) => parse(m).seq);
  assert.deepEqual(
    seqs,
    seqs.map((_, i) => i + 1),
    'sequence numbers 1, 2, 3… in order',
  );
  assert.equal(k.pulses(), 1, 'no pulse for any denial');
  assert.equal(k.commands.length, 1, 'no door command for any denial');
  const log = k.access.query({});
  assert.equal(log.length, 1 + denials.length);
  assert.deepEqual(
    log.map((e) => [e.seq, e.result, e.reason, e.opened]),
    [[1, 'granted', null, true], ...denials.map(([, reason], i) => [i + 2, 'denied', reason, false])],
  );
  assert.equal(log[0]?.modelVersion, MODEL);
  assert.equal(log[0]?.score, 0.82);
  assert.deepEqual(
    k.access.query({ deniedOnly: true, person: 'Bo Chen' }).map((e) => e.reason),
    ['expired'],
  );
});

test('access log: entries older than retentionDays go, sequence numbers never go back', () => {
  const db = KioskDb.open(':memory:');
  const log = new AccessLog(db);
  log.migrate();
  const day = 86_400_000;
  const now = Date.parse('2026-06-30T12:00:00Z');
  const entry = (ageDays: number) => ({
    time: new Date(now - ageDays * day).toISOString(),
    door: DOOR,
    personId: 'ana',
    personName: 'Ana Lopez',
    result: 'denied' as const,
    reason: 'not allowed now' as const,
    detail: 'test',
    source: 'face' as const,
    score: 0.8,
    margin: 0.9,
    modelVersion: MODEL,
    eventId: null,
    requestedBy: null,
  });
  const seqs = [entry(120), entry(91), entry(89), entry(1)].map((e) => log.append(e).seq);
  assert.deepEqual(seqs, [1, 2, 3, 4]);
  assert.ok(log.useNonce('a'.repeat(32), new Date(now - day).toISOString(), now - 2 * day));
  assert.ok(log.useNonce('b'.repeat(32), new Date(now + day).toISOString(), now));
  assert.equal(log.prune(90, now), 2, 'the 120- and 91-day-old entries');
  assert.deepEqual(
    log.query({}).map((e) => e.seq),
    [3, 4],
  );
  // Expired nonces go; one still valid stays used.
  assert.ok(log.useNonce('a'.repeat(32), new Date(now + day).toISOString(), now));
  assert.equal(log.useNonce('b'.repeat(32), new Date(now + day).toISOString(), now), false);
  // Also after deleting the newest entries, a new one never reuses a number.
  db.db.prepare('DELETE FROM access_log').run();
  assert.equal(log.append(entry(0)).seq, 5);
  db.db.close();
});

test('replay: recorded grants, events, access messages and unlock commands re-sent on the broker open nothing', async () => {
  const k = await startKiosk();
  assert.ok(broker);
  const key = await loadPrivateKey(k.keys.privateKeyFile);
  const unlockTopic = `${BASE}/${KIOSK}/door/unlock`;
  const attacker = await connectAsync(broker.url, { clientId: 'attacker' });
  closers.push(() => attacker.endAsync());
  /** Sends an unsigned command and waits until the kiosk logged its refusal: every earlier message was handled. */
  let syncs = 0;
  const sync = async (): Promise<void> => {
    const by = `sync-${++syncs}`;
    const n = k.access.query({}).length;
    await attacker.publishAsync(unlockTopic, JSON.stringify({ open: true, by }), { qos: 1 });
    await until('the sync refusal logged', () => k.access.query({}).length > n);
  };

  // A real grant and a real remote unlock, each recorded by the attacker.
  const recordedEvent = k.decide({ name: 'Ana Lopez' });
  await until('the grant published', () => k.accessMsgs.length === 1);
  const recordedAccess = k.accessMsgs[0]?.payload;
  assert.ok(recordedAccess);
  await until('locked again', () => k.access.state().lock === 'locked' && !k.access.relayHolderPid);
  const cmd = JSON.stringify(signUnlock(key, { kiosk: KIOSK, door: DOOR, by: 'operator@site', ttlSeconds: 60 }));
  await attacker.publishAsync(unlockTopic, cmd, { qos: 1 });
  await until('the remote unlock pulse', () => k.pulses() === 2);
  await until('locked again', () => k.access.state().lock === 'locked' && !k.access.relayHolderPid);
  const remote = k.access.query({}).find((e) => e.source === 'remote');
  assert.equal(remote?.result, 'granted');
  assert.equal(remote?.requestedBy, 'operator@site', 'logged with who asked');
  assert.equal(remote?.opened, true);
  const commandsBefore = k.commands.length;
  assert.equal(commandsBefore, 2);

  // Everything recorded, re-sent (plain and retained) by another client.
  for (const retain of [false, true]) {
    await attacker.publishAsync(`${BASE}/${KIOSK}/events`, JSON.stringify(recordedEvent), { qos: 1, retain });
    await attacker.publishAsync(`${BASE}/${KIOSK}/access`, recordedAccess, { qos: 1, retain });
    await attacker.publishAsync(
      `${BASE}/${KIOSK}/door`,
      JSON.stringify({ door: DOOR, lock: 'unlocked', contact: null, alarm: null }),
      { qos: 1, retain },
    );
    await attacker.publishAsync(unlockTopic, cmd, { qos: 1, retain });
  }
  await sync();
  // Retained ones are delivered again to a kiosk that restarts and subscribes.
  const n = k.access.query({}).length;
  const again = await k.restart();
  await until('the retained replay refused', () => again.query({}).length > n);
  assert.equal(k.pulses(), 2, 'no relay pulse from any replay');
  assert.equal(k.commands.length, commandsBefore, 'no door command from any replay');
  const refused = again.query({ deniedOnly: true }).filter((e) => e.source === 'remote');
  assert.ok(refused.some((e) => e.detail === 'remote unlock refused: already used (a replayed command)'));
  assert.ok(refused.every((e) => !e.opened));
  assert.equal(again.query({}).filter((e) => e.opened).length, 2, 'only the real grant and the real unlock opened');

  // Expired, unsigned, forged, for another door, valid too long, from an unknown key: refused, logged.
  const other = await loadPrivateKey((await generateKeyPair(path.join(tmp, 'other-keys'))).privateKeyFile);
  const signed = signUnlock(key, { kiosk: KIOSK, door: DOOR, by: 'mallory', ttlSeconds: 60 });
  const bad: [string, RegExp][] = [
    [
      JSON.stringify(
        signUnlock(key, { kiosk: KIOSK, door: DOOR, by: 'late', ttlSeconds: 60, now: Date.now() - 120_000 }),
      ),
      /expired/,
    ],
    ['ON', /not JSON/],
    [JSON.stringify({ ...signed, signature: undefined }), /not a signed unlock command/],
    [JSON.stringify({ ...signed, by: 'someone else' }), /bad signature/],
    [JSON.stringify(signUnlock(key, { kiosk: KIOSK, door: 'back', by: 'x', ttlSeconds: 60 })), /for door back/],
    [JSON.stringify(signUnlock(key, { kiosk: KIOSK, door: DOOR, by: 'x', ttlSeconds: 3600 })), /longer than/],
    [JSON.stringify(signUnlock(other, { kiosk: KIOSK, door: DOOR, by: 'x', ttlSeconds: 60 })), /is not in/],
  ];
  for (const [payload, why] of bad) {
    const before = again.query({}).length;
    await attacker.publishAsync(unlockTopic, payload, { qos: 1 });
    await until('the refusal logged', () => again.query({}).length > before);
    const [last] = again.query({ last: 1 });
    assert.equal(last?.result, 'denied');
    assert.equal(last?.source, 'remote');
    assert.match(last?.detail ?? '', why);
  }
  const late = again.query({ last: bad.length }).reverse()[0];
  assert.equal(late?.requestedBy, 'late', 'a refused signed command is logged with who asked');
  assert.equal(k.pulses(), 2);
  assert.equal(k.commands.length, commandsBefore); // Clear what the attacker left retained on the broker.
  for (const sub of ['events', 'access', 'door', 'door/unlock'])
    await attacker.publishAsync(`${BASE}/${KIOSK}/${sub}`, '', { qos: 1, retain: true });
});

test('door contact: "door forced" and "door held" go to the access log and the access topic, and refuse faces meanwhile', async () => {
  const topic = 'sensors/front/contact';
  const k = await startKiosk({ contact: { type: 'mqtt', mqtt: { topic }, heldOpenSeconds: 0.2, graceMs: 5000 } });
  assert.ok(broker);
  const sensor = await connectAsync(broker.url, { clientId: 'contact-sensor' });
  closers.push(() => sensor.endAsync());
  const entries = (): number => k.access.query({}).length;
  await sensor.publishAsync(topic, 'closed', { qos: 1 });
  await until('closed', () => k.access.state().contact === 'closed');
  await sensor.publishAsync(topic, 'open', { qos: 1 });
  await until('door forced logged', () => entries() === 1);
  // While the alarm lasts, even an allowed face is refused with it.
  k.decide({ name: 'Ana Lopez' });
  await until('the face refused', () => entries() === 2);
  await sensor.publishAsync(topic, 'closed', { qos: 1 });
  await until('alarm cleared', () => k.access.state().alarm === null);
  k.decide({ name: 'Ana Lopez' });
  await until('the grant', () => entries() === 3);
  await until('its pulse', () => k.pulses() === 1);
  await sensor.publishAsync(topic, 'open', { qos: 1 });
  await until('door held logged', () => entries() === 4);
  assert.deepEqual(
    k.access.query({}).map((e) => [e.source, e.result, e.reason, e.opened]),
    [
      ['contact', 'denied', 'door forced', false],
      ['face', 'denied', 'door forced', false],
      ['face', 'granted', null, true],
      ['contact', 'denied', 'door held', false],
    ],
  );
  // QoS 1 is at-least-once: a message may arrive twice (same seq); count each seq once.
  const bySeq = (): Map<unknown, IPublishPacket> => new Map(k.accessMsgs.map((m) => [parse(m).seq, m]));
  await until('published', () => bySeq().size >= 4);
  assert.deepEqual(
    [...bySeq().values()].map((m) => parse(m).reason),
    ['door forced', 'door forced', null, 'door held'],
  );
  assert.equal(k.pulses(), 1);
  await sensor.publishAsync(topic, 'closed', { qos: 1 });
});
