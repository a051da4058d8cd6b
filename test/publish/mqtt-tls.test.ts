/**
 * MQTT over TLS with a client certificate and a password, against a real mosquitto whose
 * certificates are made here with openssl: the daemon's connection options (files read
 * from config paths) connect and deliver; without the client certificate or with a wrong
 * password it does not connect. An operator command (`enrol publish-bundle --config`) reaches
 * the same broker with the kiosk config's TLS files and password file.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connectAsync } from 'mqtt';
import { startMosquitto, type Mosquitto } from '../support/mosquitto.js';
import { MqttConnection, buildClientOptions } from '../../src/publish/mqtt.js';
import { Topics } from '../../src/publish/topics.js';
import { validateConfig } from '../../src/config/load.js';

const dir = mkdtempSync(path.join(tmpdir(), 'facegate-tls-'));
const f = (name: string): string => path.join(dir, name);
const tools =
  spawnSync('openssl', ['version']).status === 0 && spawnSync('mosquitto_passwd', ['-h']).error === undefined;
let broker: Mosquitto | undefined;

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: 'ignore' });
}

before(async () => {
  if (!tools) return;
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=facegate test CA',
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
  );
  const leaf = (name: string, cn: string, ext: string): void => {
    openssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=${cn}`,
      '-keyout',
      f(`${name}.key`),
      '-out',
      f(`${name}.csr`),
    );
    writeFileSync(f(`${name}.ext`), ext);
    openssl(
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      f(`${name}.ext`),
      '-out',
      f(`${name}.pem`),
    );
  };
  leaf('server', '127.0.0.1', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  leaf('client', 'kiosk-1', 'extendedKeyUsage=clientAuth\n');
  writeFileSync(f('passwd'), '');
  execFileSync('mosquitto_passwd', ['-b', f('passwd'), 'kiosk', 'door-secret']);
  chmodSync(f('passwd'), 0o600);
  chmodSync(f('server.key'), 0o644); // mosquitto may drop privileges before reading it
  writeFileSync(f('password.txt'), 'door-secret\n');
  broker = await startMosquitto({
    tls: { ca: f('ca.pem'), cert: f('server.pem'), key: f('server.key'), requireCertificate: true },
    passwordFile: f('passwd'),
  });
});
after(async () => {
  await broker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('TLS + client certificate + password file: connects, publishes online and an event', async (t) => {
  if (!tools || !broker) {
    t.skip('needs openssl and mosquitto_passwd');
    return;
  }
  const cfg = validateConfig({
    mqtt: {
      url: broker.url,
      kioskId: 'tls1',
      username: 'kiosk',
      passwordFile: f('password.txt'),
      tls: { ca: f('ca.pem'), cert: f('client.pem'), key: f('client.key') },
    },
  });
  const topics = new Topics(cfg.mqtt.baseTopic, cfg.mqtt.kioskId);
  const sub = await connectAsync(broker.url, {
    ...buildClientOptions(cfg.mqtt, topics),
    clientId: 'tls-sub',
    will: undefined,
  });
  const got: string[] = [];
  sub.on('message', (topic, payload) => got.push(`${topic} ${payload.toString()}`));
  await sub.subscribeAsync('facegate/tls1/#', { qos: 1 });
  const conn = new MqttConnection(cfg.mqtt.url, buildClientOptions(cfg.mqtt, topics), topics);
  await conn.start(5000);
  assert.equal(conn.connected, true);
  await conn.publishRelative('probe', 'hello', { qos: 1, retain: false });
  await conn.stop();
  const deadline = Date.now() + 5000;
  while (!got.includes('facegate/tls1/status offline') && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(got, ['facegate/tls1/status online', 'facegate/tls1/probe hello', 'facegate/tls1/status offline']);
  await sub.endAsync();
});

test('without the client certificate, or with a wrong password, it does not connect', async (t) => {
  if (!tools || !broker) {
    t.skip('needs openssl and mosquitto_passwd');
    return;
  }
  for (const over of [
    { tls: { ca: f('ca.pem') } },
    { password: 'wrong', tls: { ca: f('ca.pem'), cert: f('client.pem'), key: f('client.key') } },
  ]) {
    const cfg = validateConfig({
      mqtt: { url: broker.url, kioskId: 'tls2', username: 'kiosk', reconnectMs: 100000, ...over },
    });
    const topics = new Topics(cfg.mqtt.baseTopic, cfg.mqtt.kioskId);
    const conn = new MqttConnection(cfg.mqtt.url, buildClientOptions(cfg.mqtt, topics), topics);
    await conn.start(1500);
    assert.equal(conn.connected, false, JSON.stringify(over));
    await conn.stop();
  }
});

test('an operator command reaches the same broker from the kiosk config: enrol publish-bundle --config (TLS, client certificate, password file)', async (t) => {
  if (!tools || !broker) {
    t.skip('needs openssl and mosquitto_passwd');
    return;
  }
  const mqtt = {
    url: broker.url,
    kioskId: 'tls-op',
    username: 'kiosk',
    passwordFile: f('password.txt'),
    tls: { ca: f('ca.pem'), cert: f('client.pem'), key: f('client.key') },
  };
  writeFileSync(f('kiosk.json'), JSON.stringify({ mqtt }));
  writeFileSync(f('people.json'), '{"manifest":{},"signatures":[]}');
  const cfg = validateConfig({ mqtt });
  const sub = await connectAsync(broker.url, {
    ...buildClientOptions(cfg.mqtt, new Topics('facegate', 'tls-op')),
    clientId: 'tls-op-sub',
    will: undefined,
  });
  try {
    const got: string[] = [];
    sub.on('message', (topic, payload) => got.push(`${topic} ${payload.toString()}`));
    await sub.subscribeAsync('facegate/fleet/update/people', { qos: 1 });
    const cli = path.resolve('dist/src/cli.js');
    const args = ['enrol', 'publish-bundle', f('people.json'), '--fleet', '--wait', '0'];
    const r = spawnSync(process.execPath, [cli, ...args, '--config', f('kiosk.json')], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    for (const until = Date.now() + 10_000; got.length < 1;) {
      assert.ok(Date.now() < until, 'the bundle reaches a subscriber within 10 s');
      await new Promise((res) => setTimeout(res, 20));
    }
    assert.deepEqual(got, ['facegate/fleet/update/people {"manifest":{},"signatures":[]}']);
    // Without the config's TLS files the broker cannot be reached.
    const bare = spawnSync(
      process.execPath,
      [cli, ...args, '--broker', broker.url, '--username', 'kiosk', '--password-file', f('password.txt')],
      { encoding: 'utf8', timeout: 60_000 },
    );
    assert.notEqual(bare.status, 0);
    assert.match(bare.stderr, /cannot connect to mqtts:\/\/127\.0\.0\.1/);
  } finally {
    await sub.endAsync();
  }
});
