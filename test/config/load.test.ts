import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { loadConfig, envOverrides, configJsonSchema, defaultConfigFile, redactConfig } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';
import { ConfigError } from '../../src/shared/errors.js';

const dir = mkdtempSync(path.join(tmpdir(), 'facegate-config-'));
const write = (name: string, obj: unknown): string => {
  const f = path.join(dir, name);
  writeFileSync(f, typeof obj === 'string' ? obj : JSON.stringify(obj));
  return f;
};

test('config/default.json is exactly the schema defaults (no drift)', () => {
  const file = JSON.parse(readFileSync(defaultConfigFile, 'utf8')) as unknown;
  assert.deepEqual(file, configSchema.parse({}));
});

test('file overrides defaults, env overrides file', () => {
  const f = write('a.json', { mqtt: { url: 'mqtt://file:1883', kioskId: 'front' }, camera: { fps: 2 } });
  const cfg = loadConfig({
    file: f,
    env: {
      FACEGATE__MQTT__URL: 'mqtts://env:8883',
      FACEGATE__CAMERA__QUEUE_SIZE: '7',
      FACEGATE__MQTT__TLS__REJECT_UNAUTHORIZED: 'false',
    },
  });
  assert.equal(cfg.mqtt.url, 'mqtts://env:8883');
  assert.equal(cfg.mqtt.kioskId, 'front');
  assert.equal(cfg.camera.fps, 2);
  assert.equal(cfg.camera.queueSize, 7);
  assert.equal(cfg.mqtt.tls.rejectUnauthorized, false);
  assert.equal(cfg.camera.reopen.maxDelayMs, 30000);
});

test('string leaves keep env text as is (a numeric password stays a string)', () => {
  const o = envOverrides({ FACEGATE__MQTT__PASSWORD: '12345', PATH: '/bin' });
  assert.deepEqual(o, { mqtt: { password: '12345' } });
});

test('bad config: every problem as a path: message line', () => {
  const f = write('bad.json', { camera: { type: 'usb', fps: 'x' }, mqtt: { colour: 1 } });
  assert.throws(
    () => loadConfig({ file: f, env: {} }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /^camera\.type: /m);
      assert.match(err.message, /^camera\.fps: /m);
      assert.match(err.message, /^mqtt: .*colour/m);
      return true;
    },
  );
});

test('"fleet" is refused as a kiosk id (it carries fleet-wide offers)', () => {
  assert.throws(
    () => loadConfig({ file: write('fleet.json', { mqtt: { kioskId: 'fleet' } }), env: {} }),
    /^mqtt\.kioskId: must not be "fleet"/m,
  );
});

test('unknown env key and broken JSON are config errors', () => {
  assert.throws(() => envOverrides({ FACEGATE__MQTT__NOPE: '1' }), /FACEGATE__MQTT__NOPE: no such config key/);
  assert.throws(() => loadConfig({ file: write('broken.json', '{ nope'), env: {} }), /not valid JSON/);
  assert.throws(() => loadConfig({ file: path.join(dir, 'missing.json'), env: {} }), /cannot be read/);
});

test('every key of the schema has a description and a default', () => {
  interface Js {
    properties?: Record<string, Js>;
    description?: string;
    default?: unknown;
  }
  const walk = (node: Js, at: string): void => {
    for (const [k, child] of Object.entries(node.properties ?? {})) {
      const p = at ? `${at}.${k}` : k;
      assert.ok(child.description, `${p} has no description`);
      assert.ok('default' in child, `${p} has no default`);
      walk(child, p);
    }
  };
  walk(configJsonSchema() as Js, '');
});

test('redaction hides the password', () => {
  const cfg = loadConfig({ env: { FACEGATE__MQTT__PASSWORD: 'secret' } });
  assert.equal(redactConfig(cfg).mqtt.password, '***');
});

test('CLI: bad config exits non-zero with path: message; --print-schema prints JSON Schema', () => {
  const f = write('bad2.json', { http: { port: 'eighty' } });
  const r = spawnSync(process.execPath, ['dist/src/cli.js', 'config', '--config', f], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /^http\.port: /m);
  const schema = JSON.parse(
    execFileSync(process.execPath, ['dist/src/cli.js', 'config', '--print-schema'], { encoding: 'utf8' }),
  ) as { properties: Record<string, unknown> };
  assert.ok(schema.properties.mqtt);
});
