/**
 * Operator commands reach the kiosks' broker the way the kiosks do: `--config FILE` (its
 * mqtt section: url, base topic, user, password file, TLS files), flags over it, a warning
 * for a password in the URL. Against a real mosquitto that refuses anonymous clients,
 * `facegate enrol publish-bundle --config …` delivers; without the credentials it fails
 * with a message that says which flags to give.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connectAsync } from 'mqtt';
import { startMosquitto, type Mosquitto } from '../support/mosquitto.js';
import { resolveOperatorBroker } from '../../src/publish/operator.js';
import { validateConfig } from '../../src/config/load.js';
import { ConfigError, FacegateError } from '../../src/shared/errors.js';

const dir = mkdtempSync(path.join(tmpdir(), 'facegate-operator-'));
const f = (name: string): string => path.join(dir, name);
const cli = path.resolve('dist/src/cli.js');
const tools = spawnSync('mosquitto_passwd', ['-h']).error === undefined;
let broker: Mosquitto | undefined;

before(async () => {
  writeFileSync(f('password.txt'), 'op-secret\nignored second line\n');
  writeFileSync(f('ca.pem'), 'ca bytes');
  if (!tools) return;
  writeFileSync(f('passwd'), '');
  execFileSync('mosquitto_passwd', ['-b', f('passwd'), 'operator', 'op-secret']);
  chmodSync(f('passwd'), 0o600);
  broker = await startMosquitto({ passwordFile: f('passwd') });
});
after(async () => {
  await broker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('the broker of a kiosk config, with flags over it', () => {
  const mqtt = validateConfig({
    mqtt: {
      url: 'mqtts://broker.example:8883',
      baseTopic: 'site-7',
      kioskId: 'front-door',
      username: 'kiosk',
      passwordFile: f('password.txt'),
      tls: { ca: f('ca.pem') },
    },
  }).mqtt;
  const fromConfig = resolveOperatorBroker({ config: 'kiosk.json' }, mqtt);
  assert.equal(fromConfig.url, 'mqtts://broker.example:8883');
  assert.equal(fromConfig.baseTopic, 'site-7');
  assert.equal(fromConfig.clientOptions.username, 'kiosk');
  assert.equal(fromConfig.clientOptions.password, 'op-secret', 'first line of the password file');
  assert.equal(fromConfig.clientOptions.ca?.toString(), 'ca bytes');
  assert.equal(fromConfig.clientOptions.rejectUnauthorized, true);
  assert.match(String(fromConfig.clientOptions.clientId), /^facegate-operator-[0-9a-f]{8}$/, 'never the kiosk id');
  assert.equal(fromConfig.clientOptions.will, undefined, 'no last will on the kiosk status');
  assert.deepEqual(fromConfig.warnings, []);

  const over = resolveOperatorBroker(
    { config: 'kiosk.json', broker: 'mqtt://other:1883', baseTopic: 'b2', username: 'ops' },
    mqtt,
  );
  assert.equal(over.url, 'mqtt://other:1883');
  assert.equal(over.baseTopic, 'b2');
  assert.equal(over.clientOptions.username, 'ops');

  const plain = resolveOperatorBroker({ broker: 'mqtt://u:hunter2@b:1883' }, null);
  assert.equal(plain.baseTopic, 'facegate');
  assert.equal(plain.clientOptions.password, undefined);
  assert.equal(plain.warnings.length, 1);
  assert.match(plain.warnings[0] ?? '', /carries a password.*--password-file/);
  assert.doesNotMatch(plain.warnings[0] ?? '', /hunter2/, 'the warning does not repeat it');

  assert.throws(() => resolveOperatorBroker({}, null), FacegateError);
  assert.throws(() => resolveOperatorBroker({}, null), /give --broker URL, or --config FILE/);
  assert.throws(
    () => resolveOperatorBroker({ broker: 'mqtt://b', passwordFile: f('missing') }, null),
    (e: unknown) => e instanceof ConfigError && /mqtt\.passwordFile: cannot read/.test((e as Error).message),
  );
});

test('enrol publish-bundle reaches a broker that needs a user and password, from a kiosk config', async (t) => {
  if (!broker) {
    t.skip('mosquitto_passwd is not installed');
    return;
  }
  const config = f('kiosk.json');
  writeFileSync(
    config,
    JSON.stringify({ mqtt: { url: broker.url, username: 'operator', passwordFile: f('password.txt') } }),
  );
  const bundle = f('people.json');
  writeFileSync(bundle, '{"manifest":{},"signatures":[]}');
  const sub = await connectAsync(broker.url, {
    clientId: 'operator-watch',
    username: 'operator',
    password: 'op-secret',
    reconnectPeriod: 0,
  });
  try {
    const got: string[] = [];
    sub.on('message', (topic, payload) => got.push(`${topic} ${payload.toString()}`));
    await sub.subscribeAsync('facegate/+/update/people', { qos: 1 });
    const run = (args: string[]): ReturnType<typeof spawnSync> =>
      spawnSync(
        process.execPath,
        [cli, 'enrol', 'publish-bundle', bundle, '--kiosk', 'door-1', '--wait', '0', ...args],
        {
          encoding: 'utf8',
          timeout: 60_000,
        },
      );
    const ok = run(['--config', config]);
    assert.equal(ok.status, 0, `${String(ok.stdout)}${String(ok.stderr)}`);
    assert.match(String(ok.stdout), /sent .* to facegate\/door-1\/update\/people/);
    for (const until = Date.now() + 10_000; got.length < 1;) {
      assert.ok(Date.now() < until, 'the bundle reaches a subscriber within 10 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(got, ['facegate/door-1/update/people {"manifest":{},"signatures":[]}']);

    // Flags alone do the same; without them the broker refuses, and the message says what to give.
    const flags = run(['--broker', broker.url, '--username', 'operator', '--password-file', f('password.txt')]);
    assert.equal(flags.status, 0, String(flags.stderr));
    const anonymous = run(['--broker', broker.url]);
    assert.notEqual(anonymous.status, 0);
    assert.match(
      String(anonymous.stderr),
      /cannot connect to mqtt:\/\/127\.0\.0\.1:\d+: .*--username .*--password-file/,
    );
    const inUrl = run(['--broker', broker.url.replace('mqtt://', 'mqtt://operator:op-secret@')]);
    assert.equal(inUrl.status, 0, String(inUrl.stderr));
    assert.match(String(inUrl.stderr), /warning: the broker URL .*\*\*\*.* carries a password/);
    assert.doesNotMatch(String(inUrl.stderr), /op-secret/);
  } finally {
    await sub.endAsync();
  }
});
