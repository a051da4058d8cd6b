import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, chmod, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { canonicalJson } from '../../src/update/canonical.js';
import { compareVersions } from '../../src/update/version.js';
import { generateKeyPair, loadPrivateKey, loadPublicKey } from '../../src/update/keys.js';
import {
  createBundle,
  verifyBundleBytes,
  checkPolicy,
  signBundleFile,
  packBundle,
  parseHeader,
  encodeHeader,
  extractBundle,
  layout,
  signManifest,
  type BundleManifest,
} from '../../src/update/bundle.js';
import { DeviceModelRunner, runSelfTest, answersSchema, SELFTEST_ANSWERS } from '../../src/update/selftest.js';
import { verifyModelDir } from '../../src/model/dir/directory.js';
import { UpdateRejected, KeyError } from '../../src/update/errors.js';
import { writeTinyModelDir, tinyModel } from './helpers.js';

const runner = new DeviceModelRunner();

async function tmp(): Promise<string> {
  return mkdtemp(path.join(tmpdir(), 'facegate-bundle-'));
}

function rejects(fn: () => unknown, reason: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof UpdateRejected && reason.test(err.reason));
}

test('canonical JSON sorts keys at every level and has no whitespace', () => {
  assert.equal(canonicalJson({ b: 1, a: [true, null, { d: 'x', c: 2 }] }), '{"a":[true,null,{"c":2,"d":"x"}],"b":1}');
  assert.throws(() => canonicalJson({ a: NaN }));
});

test('versions compare by numeric runs', () => {
  assert.equal(compareVersions('1.10', '1.9'), 1);
  assert.equal(compareVersions('20260128.101500', '20260128.101501'), -1);
  assert.equal(compareVersions('2.0', '2.0'), 0);
  assert.equal(compareVersions('2.0', '2.0.1'), -1);
  assert.equal(compareVersions('2.0-rc1', '2.0-rc2'), -1);
});

test('keygen writes a 0600 private key, refuses to overwrite it, and a world-readable key is refused', async () => {
  const dir = await tmp();
  try {
    const k = await generateKeyPair(dir);
    assert.equal((await stat(k.privateKeyFile)).mode & 0o777, 0o600);
    assert.match(k.id, /^[0-9a-f]{16}$/);
    assert.equal((await loadPublicKey(k.publicKeyFile)).id, k.id);
    assert.equal((await loadPublicKey(await readFile(k.publicKeyFile, 'utf8'))).id, k.id);
    assert.equal((await loadPrivateKey(k.privateKeyFile)).id, k.id);
    await assert.rejects(generateKeyPair(dir), KeyError);
    await chmod(k.privateKeyFile, 0o644);
    await assert.rejects(loadPrivateKey(k.privateKeyFile), /readable by others/);
    await assert.rejects(loadPublicKey(k.privateKeyFile), KeyError);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a signed bundle verifies; tampering, unknown keys, truncation and bad paths are refused', async () => {
  const dir = await tmp();
  try {
    const model = await writeTinyModelDir(path.join(dir, 'm'), { version: '2.0', seed: 1, int8: true });
    const k = await generateKeyPair(path.join(dir, 'keys'));
    const other = await generateKeyPair(path.join(dir, 'other'));
    const priv = await loadPrivateKey(k.privateKeyFile);
    const pub = await loadPublicKey(k.publicKeyFile);
    const otherPub = await loadPublicKey(other.publicKeyFile);
    const { bytes, manifest } = await createBundle({ modelDir: model, runner, key: priv });

    const v = verifyBundleBytes(bytes, [otherPub, pub]);
    assert.equal(v.keyId, pub.id);
    assert.equal(v.manifest.version, '2.0');
    assert.deepEqual(v.manifest.labels, ['person1', 'person2', 'person3', 'person4']);
    assert.equal(manifest.forced, false);
    assert.ok(
      'model/model.onnx' in manifest.files &&
        'model/model.int8.onnx' in manifest.files &&
        'selftest/ref-0.png' in manifest.files,
    );

    rejects(() => verifyBundleBytes(bytes, [otherPub]), /^signed by unknown key/);

    // A flipped byte in the ONNX file.
    const onnx = layout(v.manifest, v.dataOffset).find((e) => e.name === 'model/model.onnx');
    assert.ok(onnx);
    const flipped = Buffer.from(bytes);
    const at = onnx.offset + Math.floor(onnx.bytes / 2);
    flipped[at] = (flipped[at] ?? 0) ^ 0xff;
    rejects(() => verifyBundleBytes(flipped, [pub]), /^tampered bundle: model\/model.onnx/);

    // The manifest edited after signing (a newer version number to beat replay checks).
    const header = parseHeader(bytes);
    const edited = { ...header.manifest, version: '9.0' };
    const reheaded = Buffer.concat([encodeHeader(edited, header.signatures), bytes.subarray(header.dataOffset)]);
    rejects(() => verifyBundleBytes(reheaded, [pub]), /^bad signature/);

    rejects(() => verifyBundleBytes(bytes.subarray(0, bytes.length - 10), [pub]), /^truncated bundle/);
    rejects(() => verifyBundleBytes(Buffer.concat([bytes, Buffer.from('x')]), [pub]), /bytes after the last file/);
    rejects(() => verifyBundleBytes(Buffer.from('not a bundle at all'), [pub]), /^not a facegate bundle/);

    // Unsigned, then signed with `bundle sign`.
    const unsigned = Buffer.concat([encodeHeader(header.manifest, []), bytes.subarray(header.dataOffset)]);
    rejects(() => verifyBundleBytes(unsigned, [pub]), /^unsigned bundle/);
    const file = path.join(dir, 'b.fgb');
    await writeFile(file, unsigned);
    await signBundleFile(file, priv);
    assert.equal(verifyBundleBytes(await readFile(file), [pub]).keyId, pub.id);

    // A path that would leave the install folder never parses, even when signed.
    const evil: BundleManifest = {
      ...header.manifest,
      files: { ...header.manifest.files, '../evil': { sha256: 'a'.repeat(64), bytes: 0 } },
    };
    const evilBytes = Buffer.concat([
      encodeHeader(evil, [signManifest(evil, priv)]),
      bytes.subarray(header.dataOffset),
    ]);
    rejects(() => verifyBundleBytes(evilBytes, [pub]), /^malformed bundle manifest: files/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('policy: older versions need a forced bundle, forced bundles expire, kiosk lists are honoured', async () => {
  const dir = await tmp();
  try {
    const model = await writeTinyModelDir(path.join(dir, 'm'), { version: '1.5', seed: 1 });
    const plain = (await createBundle({ modelDir: model, runner })).manifest;
    const forced = (
      await createBundle({
        modelDir: model,
        runner,
        forced: true,
        kiosks: ['door-1'],
        now: new Date('2026-01-01T00:00:00Z'),
      })
    ).manifest;
    assert.equal(forced.expiresAt, '2026-01-08T00:00:00.000Z');
    assert.doesNotThrow(() => checkPolicy(plain, { runningVersion: '1.4' }));
    assert.doesNotThrow(() => checkPolicy(plain, { runningVersion: null }));
    assert.throws(() => checkPolicy(plain, { runningVersion: '1.5' }), /not newer than running 1.5/);
    assert.throws(() => checkPolicy(plain, { runningVersion: '1.10' }), /not newer/);
    const at = new Date('2026-01-02T00:00:00Z');
    assert.doesNotThrow(() =>
      checkPolicy(forced, { runningVersion: '2.0', allowForced: true, kioskId: 'door-1', now: at }),
    );
    assert.throws(
      () => checkPolicy(forced, { runningVersion: '2.0', allowForced: false, kioskId: 'door-1', now: at }),
      /allowForced is false/,
    );
    assert.throws(
      () => checkPolicy(forced, { runningVersion: '2.0', allowForced: true, kioskId: 'door-2', now: at }),
      /not for kiosk door-2/,
    );
    assert.throws(
      () =>
        checkPolicy(forced, {
          runningVersion: '2.0',
          allowForced: true,
          kioskId: 'door-1',
          now: new Date('2026-02-01T00:00:00Z'),
        }),
      /expired/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the self-test passes on the packed model and fails when a different model is signed into the bundle', async () => {
  const dir = await tmp();
  try {
    const model = await writeTinyModelDir(path.join(dir, 'm'), { version: '3.0', seed: 5, int8: true });
    const k = await generateKeyPair(path.join(dir, 'keys'));
    const priv = await loadPrivateKey(k.privateKeyFile);
    const pub = await loadPublicKey(k.publicKeyFile);
    const refs = [1, 2, 3].map((i) =>
      path.join(path.resolve('..', 'shared', 'data', 'faces', 'orl', 'validation', `s${i}`, '9.png')),
    );
    const { bytes } = await createBundle({ modelDir: model, runner, key: priv, references: refs });
    const v = verifyBundleBytes(bytes, [pub]);
    const out = path.join(dir, 'x');
    await extractBundle(bytes, v, out);
    const m = await verifyModelDir(path.join(out, 'model'));
    const answers = answersSchema.parse(JSON.parse(await readFile(path.join(out, SELFTEST_ANSWERS), 'utf8')));
    assert.deepEqual(
      answers.cases.map((c) => c.source),
      ['9.png', '9.png', '9.png'],
    );
    await runSelfTest(path.join(out, 'model'), m, answers, out, runner);

    // Same bundle, model.onnx replaced by another model (hashes updated, signed again).
    const header = parseHeader(bytes);
    const files = new Map<string, Buffer>();
    for (const e of layout(header.manifest, header.dataOffset))
      files.set(e.name, bytes.subarray(e.offset, e.offset + e.bytes));
    const wrong = await writeTinyModelDir(path.join(dir, 'wrong'), { version: '3.0', seed: 99, int8: true });
    for (const f of ['manifest.json', 'model.onnx', 'model.int8.onnx'])
      files.set(`model/${f}`, await readFile(path.join(wrong, f)));
    const { sha256 } = await import('../../src/model/dir/hash.js');
    const manifest: BundleManifest = {
      ...header.manifest,
      files: Object.fromEntries([...files.entries()].map(([n, d]) => [n, { sha256: sha256(d), bytes: d.length }])),
    };
    const repacked = packBundle(manifest, files, [signManifest(manifest, priv)]);
    const v2 = verifyBundleBytes(repacked, [pub]);
    const out2 = path.join(dir, 'y');
    await extractBundle(repacked, v2, out2);
    const m2 = await verifyModelDir(path.join(out2, 'model'));
    await assert.rejects(
      runSelfTest(path.join(out2, 'model'), m2, answers, out2, runner),
      /self-test failed on model.onnx/,
    );
    assert.ok(tinyModel(1, 4).length > 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
