/**
 * The web app on its own (a real fastify server on a free loopback port, a real bus and
 * metrics registry, the in-memory gallery): health and metrics as before, the admin API's
 * login, sessions, CSRF and rate limit, the people API, secrets hidden, event thumbnails,
 * and the live feed costing nothing while nobody watches.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdtempSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Registry } from 'prom-client';
import sharp from 'sharp';
import type { Face, Match } from '../../src/shared/messages.js';
import type { EventPayload } from '../../src/publish/topics.js';
import { DaemonBus, type FrameSeen } from '../../src/publish/bus.js';
import { validateConfig } from '../../src/config/load.js';
import { WebApp, hideSecrets } from '../../src/web/server.js';
import { hashPassword, verifyPassword } from '../../src/web/auth.js';
import { LiveFeed } from '../../src/web/live.js';
import type { WebHealth } from '../../src/web/ports.js';
import { FakeGallery } from '../support/fake-gallery.js';

const PASSWORD = 'door-keeper-42';
const hashP = hashPassword(PASSWORD);

async function startApp(
  over: { host?: string; hash?: string; attempts?: number; thermal?: string; thumbnailsIn?: string } = {},
): Promise<{ app: WebApp; url: string; gallery: FakeGallery; bus: DaemonBus; health: { h: WebHealth } }> {
  const config = validateConfig({
    http: {
      host: over.host ?? '127.0.0.1',
      port: 0,
      admin: {
        passwordHash: over.hash ?? (await hashP),
        loginAttemptsPerMinute: over.attempts ?? 50,
        eventThumbnails: over.thumbnailsIn !== undefined,
      },
    },
    mqtt: { password: 'mqtt-secret' },
    ...(over.thumbnailsIn ? { state: { dir: over.thumbnailsIn } } : {}),
  });
  const bus = new DaemonBus();
  const gallery = new FakeGallery();
  const health = { h: { ready: true, camera: 'ok', model: '20260101.000000', broker: 'connected', pendingEvents: 0 } };
  const app = new WebApp({
    config,
    bus,
    registry: new Registry(),
    health: () => health.h,
    gallery: () => gallery,
    door: () => ({ state: () => ({ state: 'closed', since: null }) }),
    ...(over.thermal ? { thermalDir: over.thermal } : {}),
  });
  await app.start();
  return { app, url: app.address, gallery, bus, health };
}

class Client {
  cookie = '';
  csrf = '';
  constructor(private readonly base: string) {}
  async req(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
    const h: Record<string, string> = { ...headers };
    if (this.cookie) h.cookie = this.cookie;
    if (body !== undefined) h['content-type'] = 'application/json';
    const res = await fetch(`${this.base}${url}`, {
      method,
      headers: h,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const set = res.headers.get('set-cookie');
    if (set) this.cookie = set.split(';')[0] ?? '';
    return res;
  }
  async login(password = PASSWORD): Promise<Response> {
    const res = await this.req('POST', '/api/login', { password });
    if (res.ok) this.csrf = ((await res.clone().json()) as { csrf: string }).csrf;
    return res;
  }
}

test('/healthz and /metrics answer as before; the pages are served with a strict content security policy', async () => {
  const { app, url, health } = await startApp();
  try {
    const ok = await fetch(`${url}/healthz`);
    assert.equal(ok.status, 200);
    assert.equal(((await ok.json()) as WebHealth).camera, 'ok');
    health.h = { ...health.h, ready: false, camera: 'failed' };
    assert.equal((await fetch(`${url}/healthz`)).status, 503);
    const m = await fetch(`${url}/metrics`);
    assert.equal(m.status, 200);
    assert.match(m.headers.get('content-type') ?? '', /text\/plain/);
    for (const page of ['/', '/admin']) {
      const r = await fetch(`${url}${page}`);
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-security-policy') ?? '', /default-src 'self'/);
      assert.doesNotMatch(await r.text(), /https?:\/\//, `${page} loads nothing from outside`);
    }
    for (const asset of ['screen.js', 'admin.js', 'style.css'])
      assert.doesNotMatch(await (await fetch(`${url}/assets/${asset}`)).text(), /https?:\/\/|@import|url\(/);
    assert.equal((await fetch(`${url}/assets/..%2Fserver.js`)).status, 404);
    assert.equal((await fetch(`${url}/nothing`)).status, 404);
  } finally {
    await app.stop();
  }
});

test('the admin API refuses without a session, with a wrong password, without the CSRF token, and after logout', async () => {
  const { app, url, gallery } = await startApp();
  try {
    gallery.seed('Ana', ['staff']);
    const c = new Client(url);
    assert.equal((await c.req('GET', '/api/admin/people')).status, 401);
    assert.equal((await c.req('GET', '/api/admin/status')).status, 401);
    assert.equal((await c.login('wrong password')).status, 401);
    assert.equal(c.cookie, '');
    const ok = await c.login();
    assert.equal(ok.status, 200);
    const setCookie = ok.headers.get('set-cookie') ?? '';
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Strict/);
    const people = (await (await c.req('GET', '/api/admin/people')).json()) as { people: { name: string }[] };
    assert.deepEqual(
      people.people.map((p) => p.name),
      ['Ana'],
    );
    const id = gallery.list()[0]?.id ?? '';
    // A change without the CSRF token (what a cross-site form could send) is refused.
    assert.equal((await c.req('PATCH', `/api/admin/people/${id}`, { name: 'Ana B' })).status, 403);
    assert.equal(
      (await c.req('PATCH', `/api/admin/people/${id}`, { name: 'Ana B' }, { 'x-csrf-token': 'forged' })).status,
      403,
    );
    assert.equal(gallery.get(id)?.name, 'Ana');
    const renamed = await c.req(
      'PATCH',
      `/api/admin/people/${id}`,
      { name: 'Ana B', groups: ['staff', 'night'], validUntil: '2030-01-01T00:00:00Z' },
      { 'x-csrf-token': c.csrf },
    );
    assert.equal(renamed.status, 200);
    assert.deepEqual(gallery.get(id)?.groups, ['staff', 'night']);
    assert.equal(gallery.get(id)?.validUntil, '2030-01-01T00:00:00Z');
    const bad = await c.req('PATCH', `/api/admin/people/${id}`, { validUntil: 'soon' }, { 'x-csrf-token': c.csrf });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /validUntil/);
    // Removal wants the name repeated.
    const noConfirm = await c.req('DELETE', `/api/admin/people/${id}`, undefined, { 'x-csrf-token': c.csrf });
    assert.equal(noConfirm.status, 400);
    assert.ok(gallery.get(id));
    const removed = await c.req('DELETE', `/api/admin/people/${id}?confirm=Ana%20B`, undefined, {
      'x-csrf-token': c.csrf,
    });
    assert.equal(removed.status, 200);
    assert.equal(gallery.get(id), undefined);
    // Logout: the same cookie no longer works.
    const cookie = c.cookie;
    assert.equal((await c.req('POST', '/api/logout', undefined, { 'x-csrf-token': c.csrf })).status, 200);
    c.cookie = cookie;
    assert.equal((await c.req('GET', '/api/admin/people')).status, 401);
  } finally {
    await app.stop();
  }
});

test('enrolment from photos goes through multipart to the gallery; refusals come back with their code', async () => {
  const { app, url, gallery } = await startApp();
  try {
    const c = new Client(url);
    await c.login();
    const form = (n: number): FormData => {
      const f = new FormData();
      f.set('name', 'Bruno');
      f.set('groups', 'staff, visitors');
      f.set('validFrom', '2026-01-01T08:00:00Z');
      for (let i = 0; i < n; i++) f.append('photos', new Blob([Buffer.from([0xff, 0xd8, i])]), `p${i}.jpg`);
      return f;
    };
    const post = (f: FormData, csrf = c.csrf): Promise<Response> =>
      fetch(`${url}/api/admin/people/photos`, {
        method: 'POST',
        headers: { cookie: c.cookie, 'x-csrf-token': csrf },
        body: f,
      });
    assert.equal((await post(form(3), 'x')).status, 403);
    const few = await post(form(1));
    assert.equal(few.status, 422);
    assert.deepEqual(await few.json(), { error: 'give at least 2 photos of the face', code: 'too-few' });
    const ok = await post(form(3));
    assert.equal(ok.status, 200);
    assert.equal(((await ok.json()) as { accepted: number }).accepted, 3);
    assert.deepEqual(gallery.get('Bruno')?.groups, ['staff', 'visitors']);
    assert.equal(gallery.get('Bruno')?.validFrom, '2026-01-01T08:00:00Z');
  } finally {
    await app.stop();
  }
});

test('login attempts are rate-limited per address', async () => {
  const { app, url } = await startApp({ attempts: 3 });
  try {
    const c = new Client(url);
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) codes.push((await c.login('nope nope')).status);
    assert.deepEqual(codes, [401, 401, 401, 429, 429]);
    assert.equal((await c.login()).status, 429, 'even the right password waits for the window');
  } finally {
    await app.stop();
  }
});

test('no password: a loopback address starts with the admin page locked; a network address is refused', async () => {
  const locked = await startApp({ hash: '' });
  try {
    const c = new Client(locked.url);
    const s = (await (await c.req('GET', '/api/session')).json()) as { passwordSet: boolean };
    assert.equal(s.passwordSet, false);
    const r = await c.login();
    assert.equal(r.status, 403);
    assert.match(((await r.json()) as { error: string }).error, /facegate admin set-password/);
  } finally {
    await locked.app.stop();
  }
  await assert.rejects(
    startApp({ host: '0.0.0.0', hash: '' }),
    /http\.host is 0\.0\.0\.0.*facegate admin set-password/,
  );
  await assert.rejects(startApp({ hash: 'md5:abc' }), /not a scrypt hash/);
});

test('the status shows health, temperatures where readable, and the config with every secret hidden', async () => {
  const thermal = mkdtempSync(path.join(tmpdir(), 'facegate-thermal-'));
  mkdirSync(path.join(thermal, 'thermal_zone0'));
  writeFileSync(path.join(thermal, 'thermal_zone0', 'temp'), '48312\n');
  writeFileSync(path.join(thermal, 'thermal_zone0', 'type'), 'cpu-thermal\n');
  const { app, url } = await startApp({ thermal });
  try {
    const c = new Client(url);
    await c.login();
    const s = (await (await c.req('GET', '/api/admin/status')).json()) as Record<string, unknown>;
    assert.deepEqual(s.temperatures, [{ zone: 'thermal_zone0', type: 'cpu-thermal', celsius: 48.3 }]);
    const text = JSON.stringify(s.config);
    assert.doesNotMatch(text, /mqtt-secret/);
    assert.doesNotMatch(text, /scrypt\$/);
    assert.match(text, /"passwordHash":"\*\*\*"/);
    assert.deepEqual(
      (s.models as { version: string }[]).map((m) => m.version),
      ['20260101.000000'],
    );
  } finally {
    await app.stop();
  }
  assert.deepEqual(hideSecrets({ a: { token: 'x', password: '', list: [{ secret: 's' }] } }), {
    a: { token: '***', password: '', list: [{ secret: '***' }] },
  });
});

function frameSeen(id: number): FrameSeen {
  const face = { frameId: id, box: { x: 1, y: 2, width: 50, height: 60 }, score: 0.9, keypoints: [] };
  return {
    frame: { id, timestamp: Date.now(), source: 't', image: Buffer.from([0xff, 0xd8, 1, 2, 3]) },
    matches: [{ face, label: 'Ana', candidate: 's1', similarity: 0.8, probability: 0.9, margin: 0.5 }],
    modelVersion: 'v',
    timings: { queueMs: 0, recogniseMs: 0, decideMs: 0 },
  };
}

/** A response stand-in: records writes, and can play a client whose socket is full. */
class FakeRes {
  writes: (string | Buffer)[] = [];
  writableNeedDrain = false;
  writableEnded = false;
  socket = null;
  private readonly handlers: (() => void)[] = [];
  writeHead(): this {
    return this;
  }
  write(c: string | Buffer): boolean {
    this.writes.push(c);
    return true;
  }
  end(): void {
    this.writableEnded = true;
    for (const h of this.handlers) h();
  }
  on(_e: 'close', h: () => void): this {
    this.handlers.push(h);
    return this;
  }
}

test('the live feed listens to the bus only while a browser watches, caps the rate and drops for a full socket', () => {
  const bus = new DaemonBus();
  let now = 0;
  let listened = 0;
  const on = bus.on.bind(bus);
  bus.on = (kind, l) => {
    listened++;
    return on(kind, l);
  };
  const feed = new LiveFeed(
    bus,
    5,
    () => ({}),
    1000,
    () => now,
  );
  bus.emit('frame', frameSeen(1));
  assert.equal(listened, 0, 'no listener, no cost, while nobody watches');
  const fast = new FakeRes();
  const slow = new FakeRes();
  feed.addVideoClient(fast as never);
  feed.addVideoClient(slow as never);
  assert.equal(listened, 2);
  slow.writableNeedDrain = true;
  for (let i = 0; i < 10; i++) {
    bus.emit('frame', frameSeen(i));
    now += 50; // 20 frames a second offered, 5 a second allowed
  }
  assert.equal(feed.stats.framesSent, 3); // t = 0, 200, 400 ms
  assert.equal(slow.writes.length, 0);
  assert.equal(feed.stats.framesDropped, 3);
  assert.ok(fast.writes.some((w) => Buffer.isBuffer(w) && w[0] === 0xff));
  fast.end();
  slow.end();
  const before = feed.stats.framesSent;
  bus.emit('frame', frameSeen(99));
  assert.equal(feed.stats.framesSent, before);
  assert.equal(feed.stats.videoClients, 0);
});

test('facegate admin set-password writes the hash into the config file, atomically, keeping the other keys', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'facegate-pw-'));
  const file = path.join(dir, 'kiosk.json');
  writeFileSync(file, JSON.stringify({ mqtt: { url: 'mqtt://broker:1883' }, http: { port: 8080 } }));
  const cli = path.resolve('dist/src/cli.js');
  const r = spawnSync(process.execPath, [cli, 'admin', 'set-password', '--config', file], {
    input: `${PASSWORD}\n`,
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  const cfg = JSON.parse(readFileSync(file, 'utf8')) as {
    mqtt: { url: string };
    http: { port: number; admin: { passwordHash: string } };
  };
  assert.equal(cfg.mqtt.url, 'mqtt://broker:1883');
  assert.equal(cfg.http.port, 8080);
  assert.equal(await verifyPassword(PASSWORD, cfg.http.admin.passwordHash), true);
  const short = spawnSync(process.execPath, [cli, 'admin', 'set-password', '--config', file], {
    input: 'short\n',
    encoding: 'utf8',
  });
  assert.notEqual(short.status, 0);
  assert.match(short.stderr, /at least 8 characters/);
  assert.equal(
    (JSON.parse(readFileSync(file, 'utf8')) as typeof cfg).http.admin.passwordHash,
    cfg.http.admin.passwordHash,
  );
  const fresh = path.join(dir, 'new.json');
  assert.equal(
    spawnSync(process.execPath, [cli, 'admin', 'set-password', '--config', fresh], { input: `${PASSWORD}\n` }).status,
    0,
  );
  assert.equal(statSync(fresh).mode & 0o777, 0o600);
  writeFileSync(file, '{ broken');
  const broken = spawnSync(process.execPath, [cli, 'admin', 'set-password', '--config', file], {
    input: `${PASSWORD}\n`,
    encoding: 'utf8',
  });
  assert.notEqual(broken.status, 0);
  assert.match(broken.stderr, /not a valid JSON config.*nothing was written/);
  assert.equal(readFileSync(file, 'utf8'), '{ broken');
});

test('event thumbnails (when enabled): the face of each decision, 0600 in state.dir, erased with the person and at stop', async () => {
  const stateDir = mkdtempSync(path.join(tmpdir(), 'facegate-thumbs-'));
  const dir = path.join(stateDir, 'event-thumbnails');
  const { app, url, gallery, bus } = await startApp({ thumbnailsIn: stateDir });
  try {
    const ana = gallery.seed('Ana');
    const c = new Client(url);
    await c.login();
    // A frame with Ana on the left and a stranger on the right; a decision about each.
    const image = await sharp({ create: { width: 320, height: 240, channels: 3, background: '#808080' } })
      .jpeg()
      .toBuffer();
    const face = (x: number): Face => ({
      frameId: 7,
      box: { x, y: 60, width: 80, height: 100 },
      score: 0.9,
      keypoints: [],
    });
    const m = (x: number, label: string | null): Match => ({
      face: face(x),
      label,
      candidate: label ?? '',
      similarity: 0.8,
      probability: 0.9,
      margin: 0.5,
    });
    bus.emit('frame', {
      frame: { id: 7, timestamp: Date.now(), source: 't', image },
      matches: [m(20, 'Ana'), m(220, null)],
      modelVersion: 'v',
      timings: { queueMs: 0, recogniseMs: 0, decideMs: 0 },
    });
    const decide = (seq: number, name: string | null): void =>
      bus.emit('decision', {
        decision: { kind: name ? 'recognized' : 'unknown', name, score: 0.8, trackId: seq, frameId: 7, timestamp: 0 },
        modelVersion: 'v',
        event: { seq, time: new Date().toISOString() } as EventPayload,
      });
    decide(1, 'Ana');
    decide(2, null);
    type Events = { thumbnails: boolean; events: { seq: number; thumbnail: boolean }[] };
    const events = async (): Promise<Events> => (await (await c.req('GET', '/api/admin/events')).json()) as Events;
    const deadline = Date.now() + 10_000;
    while ((await events()).events.some((e) => !e.thumbnail)) {
      assert.ok(Date.now() < deadline, 'both thumbnails stored within 10 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal((await events()).thumbnails, true);
    const jpeg = await c.req('GET', '/api/admin/events/1/thumbnail');
    assert.equal(jpeg.headers.get('content-type'), 'image/jpeg');
    const meta = await sharp(Buffer.from(await jpeg.arrayBuffer())).metadata();
    assert.deepEqual([meta.width, meta.height], [96, 96]);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.deepEqual(readdirSync(dir).sort(), ['1.jpg', '2.jpg']);
    for (const f of readdirSync(dir)) assert.equal(statSync(path.join(dir, f)).mode & 0o777, 0o600, f);
    assert.equal((await new Client(url).req('GET', '/api/admin/events/1/thumbnail')).status, 401);

    // Removing Ana erases her picture; the stranger's stays until it is too old or the kiosk stops.
    const del = await c.req('DELETE', `/api/admin/people/${ana.id}?confirm=Ana`, undefined, { 'x-csrf-token': c.csrf });
    assert.equal(del.status, 200);
    assert.equal((await c.req('GET', '/api/admin/events/1/thumbnail')).status, 404);
    assert.deepEqual(readdirSync(dir), ['2.jpg']);
    assert.deepEqual(
      (await events()).events.map((e) => [e.seq, e.thumbnail]),
      [
        [2, true],
        [1, false],
      ],
    );
  } finally {
    await app.stop();
  }
  assert.equal(existsSync(dir), false, 'no face picture is left after stop');
  rmSync(stateDir, { recursive: true, force: true });

  // Off (the default): no picture, no folder.
  const off = await startApp();
  try {
    const c = new Client(off.url);
    await c.login();
    assert.equal(
      ((await (await c.req('GET', '/api/admin/events')).json()) as { thumbnails: boolean }).thumbnails,
      false,
    );
  } finally {
    await off.app.stop();
  }
});
