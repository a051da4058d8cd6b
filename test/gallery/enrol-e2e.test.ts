/**
 * Enrolment end to end, as an operator does it: `facegate enrol add NAME PHOTOS…` (the CLI,
 * real Yale photos), then `facegate run` with no trained model and a `directory` camera
 * replaying OTHER photos of that person: a real mosquitto subscriber sees `recognized` for
 * NAME. `facegate enrol remove NAME` while the daemon runs (the CLI writes the same kiosk
 * database): the next appearances are `unknown`, and the person's templates, crops and
 * thumbnail are gone from the database and from the state folder.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import sharp from 'sharp';
import type { EventPayload } from '../../src/publish/topics.js';
import { startMosquitto, type Mosquitto } from '../support/mosquitto.js';
import { requireShared, sharedPaths } from '../support/shared.js';
import { filesContaining, filesUnder, yale } from '../support/gallery.js';
import { KioskDb, kioskDbPath } from '../../src/state/db.js';

const cli = path.resolve('dist/src/cli.js');
const tmp = mkdtempSync(path.join(tmpdir(), 'facegate-enrol-e2e-'));
const stateDir = path.join(tmp, 'state');
const NAME = 'Yolanda Enrolled';
/** Yale subject 1: enrolled from three photos, seen by the camera in four others. */
const SUBJECT = 1;
const ENROL = ['normal', 'happy', 'glasses'];
const SEEN = ['sad', 'sleepy', 'surprised', 'wink', 'sad', 'sleepy'];
let broker: Mosquitto | undefined;
const children: ChildProcess[] = [];

before(async () => {
  if (!existsSync(sharedPaths.yale)) return;
  broker = await startMosquitto();
});
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await broker?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

interface Proc {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

function facegate(args: string[]): Proc {
  const env = { ...process.env };
  delete env.FACEGATE_LOG_LEVEL; // the config's log.level applies
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

/** Runs a CLI command to its end; fails with its output when it exits non-zero. */
async function command(args: string[]): Promise<string> {
  const p = facegate(args);
  const code = await p.exited;
  assert.equal(code, 0, `facegate ${args.join(' ')}\n${p.output()}`);
  return p.output();
}

async function until(what: string, cond: () => boolean, ms: number, run?: Proc): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}${run ? `\n--- daemon output ---\n${run.output().slice(-3000)}` : ''}`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The camera's loop: the person in front of it for 6 frames, then an empty scene long enough for the track to end. */
async function writeFrames(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const empty = await sharp({ create: { width: 320, height: 243, channels: 3, background: '#808080' } })
    .jpeg()
    .toBuffer();
  let i = 0;
  const put = (data: Buffer, ext: string): void =>
    writeFileSync(path.join(dir, `${String(++i).padStart(4, '0')}.${ext}`), data);
  for (const c of SEEN) put(yale(SUBJECT, c), 'gif');
  for (let k = 0; k < 14; k++) put(empty, 'jpg');
}

test('enrol add (CLI) → recognized on a real broker; enrol remove while running → unknown, nothing of the person left', async (t) => {
  if (!requireShared(t) || !broker) return;
  const frames = path.join(tmp, 'frames');
  await writeFrames(frames);
  const configFile = path.join(tmp, 'kiosk.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      camera: { type: 'directory', name: 'door', fps: 10, queueSize: 200, directory: { path: frames, loop: true } },
      model: { dir: path.join(tmp, 'no-trained-model'), threads: 1 },
      decide: { cooldownMs: 0 },
      mqtt: { url: broker.url, kioskId: 'enrol-e2e', reconnectMs: 200 },
      http: { port: 0 },
      state: { dir: stateDir },
      daemon: { exitWhenCameraEnds: false, shutdownTimeoutMs: 8000 },
      log: { level: 'info' },
    }),
  );

  // 1. Enrol from photos with the CLI, before the kiosk runs.
  const added = await command([
    'enrol',
    'add',
    NAME,
    ...ENROL.map((c) => path.join(sharedPaths.yale, `subject0${SUBJECT}`, `${c}.gif`)),
    '--config',
    configFile,
  ]);
  assert.match(added, new RegExp(`enrolled ${NAME} +\\(3 templates, id [0-9a-f-]{36}\\): 3 photo\\(s\\) accepted`));
  const id = /id ([0-9a-f-]{36})/.exec(added)?.[1] as string;
  const db = KioskDb.open(kioskDbPath(stateDir), { readonly: true });
  const vectors = (
    db.db.prepare('SELECT vector FROM gallery_templates WHERE person_id = ?').all(id) as { vector: Buffer }[]
  ).map((r) => r.vector.subarray(0, 64));
  const crops = (
    db.db.prepare('SELECT crop_file FROM gallery_templates WHERE person_id = ?').all(id) as { crop_file: string }[]
  ).map((r) => r.crop_file);
  db.close();
  assert.equal(vectors.length, 3);
  assert.equal(crops.length, 3);
  const personDir = path.join(stateDir, 'gallery', id);
  assert.deepEqual(
    filesUnder(personDir)
      .map((f) => path.basename(f))
      .sort(),
    [...crops, 'thumbnail.jpg'].sort(),
  );

  // 2. The kiosk runs and names her on a real broker.
  const client: MqttClient = await connectAsync(broker.url, { clientId: 'enrol-e2e-sub', reconnectPeriod: 200 });
  t.after(() => client.endAsync());
  const events: { event: EventPayload; at: number }[] = [];
  client.on('message', (topic, payload) => {
    if (topic.endsWith('/events'))
      events.push({ event: JSON.parse(payload.toString()) as EventPayload, at: Date.now() });
  });
  await client.subscribeAsync('facegate/enrol-e2e/events', { qos: 1 });
  const run = facegate(['run', '--config', configFile]);
  await until('recognized for the enrolled person', () => events.some((e) => e.event.name === NAME), 120000, run);
  assert.equal(events.find((e) => e.event.name === NAME)?.event.kind, 'recognized');

  // 3. Removed with the CLI while the kiosk runs: her next appearances are unknown.
  const removed = await command(['enrol', 'remove', NAME, '--config', configFile]);
  assert.match(removed, new RegExp(`removed ${NAME} \\(id ${id}\\)`));
  assert.match(removed, new RegExp(`export-bundle --remove ${id}`), 'says how to remove the person from the fleet');
  const removedAt = Date.now();
  // Two unknowns after the removal: the second is a whole loop of the camera after it.
  await until(
    'unknown after the removal',
    () => events.filter((e) => e.at > removedAt && e.event.kind === 'unknown').length >= 2,
    60000,
    run,
  );
  const firstUnknown = events.findIndex((e) => e.at > removedAt && e.event.kind === 'unknown');
  assert.deepEqual(
    events.slice(firstUnknown).filter((e) => e.event.name === NAME),
    [],
    'nobody is named after the first unknown that followed the removal',
  );
  assert.equal(run.child.exitCode, null, 'the kiosk kept running');

  // 4. Nothing of her is left: no rows, no folder, no template bytes, crop names or id in any file of the state folder.
  const after = KioskDb.open(kioskDbPath(stateDir), { readonly: true });
  try {
    assert.deepEqual(after.db.prepare('SELECT id FROM gallery_people').all(), []);
    assert.deepEqual(after.db.prepare('SELECT id FROM gallery_templates').all(), []);
  } finally {
    after.close();
  }
  assert.equal(existsSync(personDir), false, 'her folder of crops and thumbnail is gone');
  assert.deepEqual(filesContaining(stateDir, [...vectors, ...crops.map((c) => Buffer.from(c)), Buffer.from(id)]), []);
  const listed = await command(['enrol', 'list', '--config', configFile]);
  assert.match(listed, /nobody enrolled/);

  run.child.kill('SIGTERM');
  assert.equal(await run.exited, 0, run.output().slice(-3000));
});
