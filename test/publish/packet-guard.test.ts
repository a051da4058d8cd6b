/**
 * The incoming packet size bound: unit tests of the guard on byte streams split at every
 * position, and a kiosk connection in a child process against a real mosquitto that gets
 * a 100 MB publish on its update topic and must not grow by anything like it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import mqttPacket from 'mqtt-packet';
import { connectAsync } from 'mqtt';
import { PacketSizeGuard, type OversizedPacket } from '../../src/publish/packet-guard.js';
import { startMosquitto } from '../support/mosquitto.js';

function runGuard(input: Buffer[], max: number, v5: boolean): { out: Buffer; dropped: OversizedPacket[] } {
  const dropped: OversizedPacket[] = [];
  const g = new PacketSizeGuard(max, v5, (p) => dropped.push(p));
  const out: Buffer[] = [];
  g.on('data', (b: Buffer) => out.push(b));
  for (const b of input) g.write(b);
  return { out: Buffer.concat(out), dropped };
}

function parseAll(bytes: Buffer, protocolVersion: 4 | 5): mqttPacket.Packet[] {
  const p = mqttPacket.parser({ protocolVersion });
  const got: mqttPacket.Packet[] = [];
  p.on('packet', (x) => got.push(x));
  p.parse(bytes);
  return got;
}

for (const protocolVersion of [4, 5] as const) {
  test(`guard (MQTT ${protocolVersion}): big publishes lose their payload, everything else passes byte for byte`, () => {
    const gen = (pk: object): Buffer => mqttPacket.generate(pk as mqttPacket.Packet, { protocolVersion });
    const small = gen({ cmd: 'publish', topic: 'a/b', payload: Buffer.alloc(100, 1), qos: 1, messageId: 7 });
    const big = gen({
      cmd: 'publish',
      topic: 'facegate/door-1/update/offer',
      payload: Buffer.alloc(5000, 2),
      qos: 1,
      messageId: 9,
      ...(protocolVersion === 5 ? { properties: { contentType: 'x' } } : {}),
    });
    const ping = gen({ cmd: 'pingresp' });
    const stream = Buffer.concat([small, big, ping, small]);
    // Every split point, and one byte at a time.
    const splits: Buffer[][] = [[stream], [...stream].map((b) => Buffer.from([b]))];
    for (let i = 1; i < stream.length; i += 97) splits.push([stream.subarray(0, i), stream.subarray(i)]);
    for (const parts of splits) {
      const { out, dropped } = runGuard(parts, 1000, protocolVersion === 5);
      assert.deepEqual(dropped, [{ topic: 'facegate/door-1/update/offer', bytes: big.length - 3 }]);
      const pk = parseAll(out, protocolVersion);
      assert.deepEqual(
        pk.map((p) => p.cmd),
        ['publish', 'publish', 'pingresp', 'publish'],
      );
      const [a, b, , d] = pk as mqttPacket.IPublishPacket[];
      assert.equal(a?.payload.length, 100);
      assert.equal(d?.payload.length, 100);
      assert.equal(b?.topic, 'facegate/door-1/update/offer');
      assert.equal(b?.messageId, 9, 'the packet id survives, so the publish is acknowledged');
      assert.equal(b?.payload.length, 0);
    }
    // Below the limit nothing changes.
    assert.deepEqual(runGuard([stream], 10_000, protocolVersion === 5).out, stream);
  });
}

const child = fileURLToPath(new URL('./packet-guard-child.js', import.meta.url));
const MB = 1024 * 1024;

for (const proto of ['4', '5']) {
  test(`a 100 MB message on the update topic does not grow the kiosk by 100 MB (real mosquitto, MQTT ${proto === '4' ? '3.1.1' : '5'})`, async () => {
    const broker = await startMosquitto();
    const proc = spawn(process.execPath, [child, broker.url, proto], { stdio: ['ignore', 'pipe', 'inherit'] });
    const watchdog = setTimeout(() => proc.kill('SIGKILL'), 60_000);
    try {
      const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
      const next = async (): Promise<Record<string, number | boolean>> => {
        const r = await lines.next();
        if (r.done) throw new Error('the child ended early');
        return JSON.parse(r.value) as Record<string, number | boolean>;
      };
      const ready = await next();
      assert.equal(ready.connected, true);
      const pub = await connectAsync(broker.url, { protocolVersion: 5 });
      try {
        await pub.publishAsync('facegate/door-1/update/offer', Buffer.alloc(100 * MB, 0x7b), { qos: 1 });
        await pub.publishAsync('facegate/door-1/update/offer', Buffer.alloc(1000, 0x7b), { qos: 1 });
        await pub.publishAsync('facegate/door-1/update/offer', 'done', { qos: 1 });
      } finally {
        await pub.endAsync();
      }
      // The small message still arrives after the big one: the connection was not lost.
      const events: Record<string, number | boolean>[] = [];
      for (;;) {
        const e = await next();
        events.push(e);
        if ('peak' in e) break;
      }
      const peak = events.at(-1) as { peak: number; oversized: number };
      const sizes = events.filter((e) => 'message' in e).map((e) => e.message);
      assert.ok(sizes.includes(1000), `the 1000-byte message arrived (${JSON.stringify(sizes)})`);
      assert.ok(!sizes.includes(100 * MB), 'the 100 MB payload never reached a handler');
      // Without the guard the 100 MB payload is assembled in memory (≥ 100 MB). With it, only
      // the socket's read chunks pass through; they are garbage that V8 frees when external
      // memory grows by a few tens of MB, so the peak moves with GC timing (14–34 MB seen).
      const grown = peak.peak - (ready.ready as number);
      assert.ok(grown < 50 * MB, `peak RSS grew by ${(grown / MB).toFixed(1)} MB for a 100 MB message`);
      // MQTT 3.1.1: the guard skipped it; MQTT 5: mosquitto honoured maximumPacketSize and never sent it.
      if (proto === '4') assert.equal(peak.oversized, 1);
    } finally {
      clearTimeout(watchdog);
      proc.kill('SIGKILL');
      await broker.stop();
    }
  });
}
