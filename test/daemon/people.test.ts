/**
 * The daemon's people parts, with updates enabled, against a real mosquitto: a people bundle
 * it cannot install is answered `rejected: <reason>` on the retained `<base>/<kiosk>/people`
 * topic, one it installs `installed`; a person removed by another process writing the kiosk
 * database (as `facegate enrol remove` does) is announced on `<base>/<kiosk>/people/removed`.
 * `facegate enrol publish-bundle` waits for the answers and prints them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connectAsync } from 'mqtt';
import { Daemon } from '../../src/daemon/daemon.js';
import { createPeopleBundle } from '../../src/gallery/bundle.js';
import { GalleryStore } from '../../src/gallery/store.js';
import { galleryFilesDir } from '../../src/gallery/open.js';
import type { PeopleRemovedPayload, PeopleStatePayload } from '../../src/publish/topics.js';
import { KioskDb, kioskDbPath } from '../../src/state/db.js';
import { generateKeyPair, loadPrivateKey } from '../../src/update/keys.js';
import { startMosquitto } from '../support/mosquitto.js';
import { ScriptSource, ScriptRecogniser, EachFrameDecider, testConfig } from '../support/daemon-fakes.js';

const cliJs = path.resolve('dist/src/cli.js');
const run = promisify(execFile);

test('daemon: people bundle results on the people topic, removal notices on people/removed', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'facegate-daemon-people-'));
  const broker = await startMosquitto();
  const stateDir = path.join(dir, 'state');
  const keys = await generateKeyPair(path.join(dir, 'keys'));
  const stranger = await generateKeyPair(path.join(dir, 'stranger'));
  const daemon = new Daemon(
    testConfig({
      url: broker.url,
      stateDir,
      kioskId: 'kd',
      extra: { updates: { enabled: true, publicKeys: [keys.publicKeyFile], modelsDir: path.join(dir, 'store') } },
    }),
    {
      loadPipeline: () => Promise.resolve(new ScriptRecogniser()),
      createDecider: () => new EachFrameDecider(),
      createSource: () => new ScriptSource(Array<string>(100_000).fill('none'), 5),
      version: '9.9.9',
    },
  );
  const sub = await connectAsync(broker.url, { clientId: 'daemon-people-sub', reconnectPeriod: 0 });
  const states: PeopleStatePayload[] = [];
  const notices: PeopleRemovedPayload[] = [];
  sub.on('message', (topic, payload) => {
    if (topic === 'facegate/kd/people') states.push(JSON.parse(payload.toString()) as PeopleStatePayload);
    if (topic === 'facegate/kd/people/removed') notices.push(JSON.parse(payload.toString()) as PeopleRemovedPayload);
  });
  await sub.subscribeAsync(['facegate/kd/people', 'facegate/kd/people/removed'], { qos: 1 });
  const until = async (what: string, ok: () => boolean): Promise<void> => {
    for (const end = Date.now() + 20_000; !ok();) {
      assert.ok(Date.now() < end, `${what} within 20 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  let cli: KioskDb | undefined;
  try {
    // Enrolled before the daemon starts, as people are (another process's connection: facegate enrol …).
    cli = KioskDb.open(kioskDbPath(stateDir));
    const store = new GalleryStore(cli, galleryFilesDir(stateDir));
    store.open();
    // Templates of another descriptor: nothing the fake pipeline searches; the person only has to exist.
    const ada = store.addTemplates('Ada', 'test:other', [
      { vector: Float32Array.from([1, 0]), source: 'photo 1', quality: {} },
    ]);
    const bo = store.addTemplates('Bo', 'test:other', [
      { vector: Float32Array.from([0, 1]), source: 'photo 1', quality: {} },
    ]);
    await daemon.start();
    const descriptor = daemon.gallery?.descriptorId ?? '';
    assert.ok(descriptor);

    // The operator's command: sends, waits for the kiosk's answer, prints it; exit status 1 on a rejection.
    // (Not spawnSync: the daemon runs in this process and must answer while the command waits.)
    const send = async (bytes: Buffer, name: string): Promise<{ status: number; stdout: string }> => {
      const file = path.join(dir, name);
      writeFileSync(file, bytes);
      const args = [cliJs, 'enrol', 'publish-bundle', file, '--broker', broker.url, '--kiosk', 'kd', '--wait', '30'];
      try {
        const r = await run(process.execPath, args, { encoding: 'utf8', timeout: 60_000 });
        return { status: 0, stdout: `${r.stdout}${r.stderr}` };
      } catch (err) {
        const e = err as { code: number; stdout: string; stderr: string };
        return { status: e.code, stdout: `${e.stdout}${e.stderr}` };
      }
    };
    // Signed by a key the kiosk does not trust: rejected, with the reason, retained.
    const opStore = new GalleryStore(KioskDb.open(':memory:'), path.join(dir, 'op'));
    opStore.open();
    const refused = await send(
      createPeopleBundle({
        store: opStore,
        descriptor,
        removed: [],
        key: await loadPrivateKey(stranger.privateKeyFile),
      }).bytes,
      'stranger.json',
    );
    assert.equal(refused.status, 1, refused.stdout);
    assert.match(refused.stdout, /^kd: rejected: people bundle signed by unknown key/m);
    await until('the rejection', () => states.length >= 1);
    assert.match(states[0]?.state ?? '', /^rejected: people bundle signed by unknown key [0-9a-f]{16}/);
    assert.equal(states[0]?.kiosk, 'kd');

    // A trusted removal bundle: installed, Bo erased, and not announced as a local removal.
    const installed = await send(
      createPeopleBundle({
        store: opStore,
        descriptor,
        removed: [bo.id],
        key: await loadPrivateKey(keys.privateKeyFile),
      }).bytes,
      'removal.json',
    );
    assert.equal(installed.status, 0, installed.stdout);
    assert.match(installed.stdout, /^kd: installed \(0 enrolled or updated, 1 erased\)/m);
    await until('the install', () => states.length >= 2);
    assert.equal(states[1]?.state, 'installed');
    assert.equal(states[1]?.removed, 1);
    assert.equal(store.person(bo.id), undefined);

    // Removed by the other process: the daemon announces it.
    store.remove(ada.id);
    await until('the removal notice', () => notices.length >= 1);
    assert.deepEqual(
      notices.map((n) => [n.kiosk, n.id, n.signed]),
      [['kd', ada.id, false]],
    );
  } finally {
    await daemon.stop('test');
    cli?.close();
    await sub.endAsync();
    await broker.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
