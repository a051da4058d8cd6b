/**
 * A kiosk's own removal reaches the operator as an unsigned, advisory notice on
 * `<base>/<kiosk>/people/removed` (real mosquitto): whichever process removed the person, and
 * when it was removed while the daemon was stopped or the broker away (the removal queues the
 * notice in the kiosk database; the daemon forgets the id once the broker acknowledged it);
 * removals a signed people bundle made are not announced (the fleet knows). The payload
 * carries the id only (snapshot).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connectAsync } from 'mqtt';
import { KioskDb, kioskDbPath } from '../../src/state/db.js';
import { GalleryStore } from '../../src/gallery/store.js';
import { RemovalNotices } from '../../src/gallery/removals.js';
import { PeopleHistory } from '../../src/update/history.js';
import { MqttConnection } from '../../src/publish/mqtt.js';
import { Topics, type PeopleRemovedPayload } from '../../src/publish/topics.js';
import { startMosquitto } from '../support/mosquitto.js';
import { assertSnapshot, normalise } from '../support/snapshot.js';

async function waitFor(ok: () => boolean, what: string): Promise<void> {
  for (const until = Date.now() + 10_000; !ok();) {
    assert.ok(Date.now() < until, `${what} (within 10 s)`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const D = 'faceres:0123456789abcdef/align1:m1.3r';
const template = (x: number): { vector: Float32Array; source: string; quality: Record<string, number> } => ({
  vector: Float32Array.from([x, 1 - x]),
  source: 'photo 1',
  quality: {},
});

test('a person removed at the kiosk is announced (id only, unsigned), also when removed while the daemon was stopped; one removed by a signed bundle is not', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'facegate-removals-'));
  const broker = await startMosquitto();
  // The daemon's connection to the kiosk database, and another process's (facegate enrol remove).
  const db = KioskDb.open(kioskDbPath(dir));
  const cli = KioskDb.open(kioskDbPath(dir));
  const conn = new MqttConnection(
    broker.url,
    { clientId: 'kiosk-r', reconnectPeriod: 200 },
    new Topics('facegate', 'door-r'),
  );
  const sub = await connectAsync(broker.url, { clientId: 'operator-r', reconnectPeriod: 0 });
  let notices: RemovalNotices | undefined;
  try {
    const store = new GalleryStore(db, path.join(dir, 'gallery'));
    store.open();
    const ada = store.addTemplates('Ada', D, [template(0.1)]);
    const bo = store.addTemplates('Bo', D, [template(0.2)]);
    const cy = store.addTemplates('Cy', D, [template(0.3)]);
    await conn.start(5000);
    const got: { topic: string; payload: PeopleRemovedPayload; retain: boolean }[] = [];
    sub.on('message', (topic, payload, packet) =>
      got.push({ topic, payload: JSON.parse(payload.toString()) as PeopleRemovedPayload, retain: packet.retain }),
    );
    await sub.subscribeAsync('facegate/+/people/removed', { qos: 1 });
    notices = new RemovalNotices({ mqtt: conn, kioskId: 'door-r', store, intervalMs: 60_000 });
    await notices.start();
    assert.deepEqual(notices.check(), [], 'nothing removed yet');

    // Removed by another process writing the same database (facegate enrol remove).
    const other = new GalleryStore(cli, path.join(dir, 'gallery'));
    other.open();
    other.remove(ada.id);
    assert.deepEqual(notices.check(), [ada.id]);
    await waitFor(() => store.pendingNotices().length === 0, 'the broker acknowledged it: the id leaves the queue');
    assert.deepEqual(notices.check(), [], 'announced once');

    // Removed by a signed people bundle: not queued, not announced.
    const history = new PeopleHistory(db);
    history.open();
    store.applyBundle(D, [], [bo.id], () => history.record('f'.repeat(64), '2026-01-01T00:00:00.000Z', [bo.id]));
    store.addTemplates('Dee', D, [template(0.4)]);
    assert.deepEqual(notices.check(), [], 'a bundle removal and an enrolment announce nobody');

    // Removed while the daemon is stopped: announced at its next start.
    await notices.stop();
    other.remove(cy.id);
    assert.deepEqual(
      store.pendingNotices().map((n) => n.personId),
      [cy.id],
      'queued in the kiosk database',
    );
    notices = new RemovalNotices({ mqtt: conn, kioskId: 'door-r', store, intervalMs: 60_000 });
    await notices.start();
    await waitFor(() => store.pendingNotices().length === 0, 'announced at the start');

    for (const until = Date.now() + 10_000; got.length < 2;) {
      assert.ok(Date.now() < until, 'both notices reach a subscriber within 10 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(
      got.map((g) => [g.topic, g.payload.id, g.retain]),
      [
        ['facegate/door-r/people/removed', ada.id, false],
        ['facegate/door-r/people/removed', cy.id, false],
      ],
    );
    assert.doesNotMatch(JSON.stringify(got), /Ada|Cy/, 'no name: the kiosk has erased it');
    assertSnapshot('mqtt-people-removed', normalise(got[0]?.payload, { id: 'uuid', at: 'iso-time' }));
  } finally {
    await notices?.stop();
    await sub.endAsync();
    await conn.stop();
    cli.close();
    db.close();
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a notice the broker does not take stays queued and is sent again; a bundle that removes or re-enrols the person makes it moot', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'facegate-removals-'));
  const db = KioskDb.open(kioskDbPath(dir));
  try {
    const store = new GalleryStore(db, path.join(dir, 'gallery'));
    store.open();
    const ada = store.addTemplates('Ada', D, [template(0.1)]);
    const bo = store.addTemplates('Bo', D, [template(0.2)]);
    let broker: 'away' | 'back' = 'away';
    const published: string[] = [];
    const mqtt = {
      publishRelative: (_topic: string, payload: string | Buffer): Promise<void> => {
        if (broker === 'away') return Promise.reject(new Error('connection closed'));
        published.push((JSON.parse(payload.toString()) as PeopleRemovedPayload).id);
        return Promise.resolve();
      },
    };
    const notices = new RemovalNotices({ mqtt, kioskId: 'door-r', store, intervalMs: 60_000 });
    store.remove(ada.id);
    assert.deepEqual(notices.check(), [ada.id]);
    assert.deepEqual(notices.check(), [], 'not handed again while on its way');
    await waitFor(() => notices.check().length === 1, 'refused, then handed again');
    broker = 'back';
    await waitFor(() => {
      notices.check(); // what the daemon's timer does
      return store.pendingNotices().length === 0;
    }, 'sent once the broker takes it');
    assert.deepEqual(published, [ada.id]);
    assert.equal(notices.sent, 1);

    store.remove(bo.id);
    assert.equal(store.pendingNotices().length, 1);
    store.applyBundle(D, [], [bo.id], () => undefined);
    assert.deepEqual(store.pendingNotices(), [], 'the fleet removed the person: nothing to announce');
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
