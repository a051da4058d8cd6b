import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile, readlink, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { generateKeyPair, loadPrivateKey, loadPublicKey, type PublicKey } from '../../src/update/keys.js';
import { createBundle } from '../../src/update/bundle.js';
import { DeviceModelRunner, syntheticReferences } from '../../src/update/selftest.js';
import { ModelStore, type ActiveModel } from '../../src/update/store.js';
import { INSTALL_STEPS, ROLLBACK_STEPS } from '../../src/update/hooks.js';
import { UpdateRejected } from '../../src/update/errors.js';
import { verifyModelDir } from '../../src/model/dir/directory.js';
import { writeTinyModelDir, SIZE } from './helpers.js';

const runner = new DeviceModelRunner();
const silent = pino({ level: 'silent' });

interface Fixture {
  dir: string;
  fallback: string;
  pub: PublicKey;
  pubFile: string;
  bundles: Record<string, Buffer>;
  modelDirs: Record<string, string>;
}

async function fixture(): Promise<Fixture> {
  const dir = await mkdtemp(path.join(tmpdir(), 'facegate-store-'));
  const k = await generateKeyPair(path.join(dir, 'keys'));
  const priv = await loadPrivateKey(k.privateKeyFile);
  const fallback = await writeTinyModelDir(path.join(dir, 'fallback'), { version: '1.0', seed: 1, int8: true });
  const modelDirs: Record<string, string> = { '1.0': fallback };
  const bundles: Record<string, Buffer> = {};
  for (const [v, seed] of [
    ['2.0', 2],
    ['3.0', 3],
  ] as const) {
    modelDirs[v] = await writeTinyModelDir(path.join(dir, `m${v}`), { version: v, seed, int8: true });
    bundles[v] = (await createBundle({ modelDir: modelDirs[v], runner, key: priv })).bytes;
  }
  // 4.0 claims answers of 3.0's model but ships another one: fails its self-test.
  const m4 = await writeTinyModelDir(path.join(dir, 'm4.0'), { version: '4.0', seed: 4, int8: true });
  const good4 = (await createBundle({ modelDir: m4, runner, key: priv })).bytes;
  await writeTinyModelDir(m4, { version: '4.0', seed: 40, int8: true });
  bundles['4.0-bad'] = (
    await createBundle({
      modelDir: m4,
      runner: {
        answer: async (d, m, f, imgs) => {
          // Record what the good model said, pack the other model: a mismatch signed by a trusted key.
          const goodDir = path.join(dir, 'm4.0-good');
          await writeTinyModelDir(goodDir, { version: '4.0', seed: 4, int8: true });
          return runner.answer(goodDir, m, f, imgs);
        },
      },
      key: priv,
    })
  ).bytes;
  assert.ok(good4.length > 0);
  return { dir, fallback, pub: await loadPublicKey(k.publicKeyFile), pubFile: k.publicKeyFile, bundles, modelDirs };
}

function store(f: Fixture, modelsDir: string): ModelStore {
  return new ModelStore({
    dir: modelsDir,
    fallbackDir: f.fallback,
    keys: [f.pub],
    runner,
    probationMinutes: 10,
    log: silent,
  });
}

/** The active model really is the one of `version`: files verify and it gives that model's answers. */
async function assertRuns(f: Fixture, active: ActiveModel, version: string): Promise<void> {
  assert.equal(active.version, version);
  const m = await verifyModelDir(active.dir);
  assert.equal(m.version, version);
  const imgs = syntheticReferences(SIZE, SIZE).map((r) => r.image);
  const ref = await verifyModelDir(f.modelDirs[version] as string);
  for (const file of ['model.onnx', 'model.int8.onnx']) {
    assert.deepEqual(
      await runner.answer(active.dir, m, file, imgs),
      await runner.answer(f.modelDirs[version] as string, ref, file, imgs),
    );
  }
}

async function leftovers(modelsDir: string): Promise<string[]> {
  return (await readdir(modelsDir)).filter(
    (n) => n.endsWith('.tmp') || n === 'staging' || n === 'transfers' || n === 'probation.json',
  );
}

test('install swaps atomically; a restart during probation rolls back; after probation the new model stays', async () => {
  const f = await fixture();
  try {
    const dir = path.join(f.dir, 'store');
    let s = store(f, dir);
    const first = await s.recover();
    assert.equal(first.active.source, 'fallback');
    await assertRuns(f, first.active, '1.0');

    const r = await s.install(f.bundles['2.0'] as Buffer, { kioskId: 'k1' });
    assert.equal(r.installed.version, '2.0');
    assert.equal(r.previous.version, '1.0');
    assert.equal((await s.readState()).state, 'installed');
    assert.ok(await s.probationUntil());

    // Restart before probation passed → previous model, reported.
    s = store(f, dir);
    const back = await s.recover();
    await assertRuns(f, back.active, '1.0');
    assert.equal(back.state.state, 'rolled back: restarted during the probation of 2.0');
    assert.deepEqual(await leftovers(dir), []);

    // Install again, pass probation, restart → stays.
    const again = await s.install(f.bundles['2.0'] as Buffer, { kioskId: 'k1' });
    assert.equal(await s.passProbation(again.installed.version), true);
    s = store(f, dir);
    const kept = await s.recover();
    await assertRuns(f, kept.active, '2.0');
    assert.equal(kept.state.previous, '1.0');
    assert.equal(kept.state.state, 'installed');

    // 3.0 over 2.0, then a runtime rollback (host reported the new model failing).
    await s.install(f.bundles['3.0'] as Buffer, { kioskId: 'k1' });
    const rb = await s.rollback('too many errors');
    assert.ok(rb);
    await assertRuns(f, rb.active, '2.0');
    assert.equal(rb.state.state, 'rolled back: too many errors');
    assert.equal(rb.state.previous, '1.0');
    assert.equal(await readlink(path.join(dir, 'previous')), f.fallback);
  } finally {
    await rm(f.dir, { recursive: true, force: true });
  }
});

test('rejected installs change nothing: old version, failing self-test, unknown key', async () => {
  const f = await fixture();
  try {
    const dir = path.join(f.dir, 'store');
    const s = store(f, dir);
    await s.recover();
    const r = await s.install(f.bundles['3.0'] as Buffer, { kioskId: 'k1' });
    await s.passProbation(r.installed.version);
    const before = await readlink(path.join(dir, 'current'));

    await assert.rejects(
      s.install(f.bundles['2.0'] as Buffer, { kioskId: 'k1' }),
      (e: unknown) => e instanceof UpdateRejected && /not newer than running 3.0/.test(e.reason),
    );
    await assert.rejects(
      s.install(f.bundles['4.0-bad'] as Buffer, { kioskId: 'k1' }),
      (e: unknown) =>
        e instanceof UpdateRejected && /^model failed its self-test: self-test failed on model.onnx/.test(e.reason),
    );
    const stranger = new ModelStore({
      dir,
      fallbackDir: f.fallback,
      keys: [],
      runner,
      probationMinutes: 10,
      log: silent,
    });
    await assert.rejects(stranger.install(f.bundles['2.0'] as Buffer, {}), /unsigned|unknown key/);

    assert.equal(await readlink(path.join(dir, 'current')), before);
    assert.deepEqual(await readdir(path.join(dir, 'staging')), []);
    assert.equal((await readdir(path.join(dir, 'versions'))).length, 1);
    await assertRuns(f, await s.active(), '3.0');
  } finally {
    await rm(f.dir, { recursive: true, force: true });
  }
});

test('a model whose files were damaged on disk is not started: the previous one is', async () => {
  const f = await fixture();
  try {
    const dir = path.join(f.dir, 'store');
    let s = store(f, dir);
    await s.recover();
    for (const v of ['2.0', '3.0']) {
      const r = await s.install(f.bundles[v] as Buffer, { kioskId: 'k1' });
      await s.passProbation(r.installed.version);
    }
    const active = await s.active();
    const onnx = path.join(active.dir, 'model.int8.onnx');
    const bytes = await readFile(onnx);
    bytes[bytes.length - 5] = (bytes[bytes.length - 5] ?? 0) ^ 1;
    await writeFile(onnx, bytes);
    s = store(f, dir);
    const r = await s.recover();
    await assertRuns(f, r.active, '2.0');
    assert.match(r.state.state ?? '', /^rolled back: model failed verification at start/);
  } finally {
    await rm(f.dir, { recursive: true, force: true });
  }
});

test('SIGKILL at every install step leaves a store that starts a valid, verified model', async () => {
  const f = await fixture();
  const child = path.resolve('dist/test/update/crash-child.js');
  const bundleFile = path.join(f.dir, 'b3.fgb');
  await writeFile(bundleFile, f.bundles['3.0'] as Buffer);
  try {
    // Two starting points: nothing installed yet (fallback 1.0), and 2.0 installed and final.
    const base = path.join(f.dir, 'base');
    const s0 = store(f, base);
    await s0.recover();
    const r = await s0.install(f.bundles['2.0'] as Buffer, { kioskId: 'k1' });
    await s0.passProbation(r.installed.version);

    for (const [start, expected] of [
      ['empty', '1.0'],
      ['installed', '2.0'],
    ] as const) {
      for (const step of INSTALL_STEPS) {
        const dir = path.join(f.dir, `crash-${start}-${step}`);
        if (start === 'installed') await cp(base, dir, { recursive: true, verbatimSymlinks: true });
        const res = spawnSync(process.execPath, [child, dir, f.fallback, bundleFile, f.pubFile], {
          env: { ...process.env, FACEGATE_CRASH_AT: step },
          encoding: 'utf8',
        });
        assert.equal(
          res.signal,
          'SIGKILL',
          `${start}/${step}: child was not killed (status ${res.status}, ${res.stderr})`,
        );
        const after = await store(f, dir).recover();
        await assertRuns(f, after.active, expected);
        const beforeMarker = ['staged', 'tested', 'version-placed', 'marker-written'].includes(step);
        assert.match(
          after.state.state ?? '',
          beforeMarker ? /^rejected: install of 3.0 interrupted/ : /^rolled back: /,
          `${start}/${step}`,
        );
        assert.deepEqual(await leftovers(dir), [], `${start}/${step}`);
        // The store still accepts the update after the crash.
        const s = store(f, dir);
        const ok = await s.install(f.bundles['3.0'] as Buffer, { kioskId: 'k1' });
        assert.equal(ok.installed.version, '3.0');
        await rm(dir, { recursive: true, force: true });
      }
    }
    // A crash during the rollback at start: the next start finishes it, same reason.
    const swapped = path.join(f.dir, 'swapped');
    await cp(base, swapped, { recursive: true, verbatimSymlinks: true });
    const k = spawnSync(process.execPath, [child, swapped, f.fallback, bundleFile, f.pubFile], {
      env: { ...process.env, FACEGATE_CRASH_AT: 'swapped' },
      encoding: 'utf8',
    });
    assert.equal(k.signal, 'SIGKILL');
    for (const step of ROLLBACK_STEPS) {
      const dir = path.join(f.dir, `rollback-${step}`);
      await cp(swapped, dir, { recursive: true, verbatimSymlinks: true });
      const res = spawnSync(process.execPath, [child, dir, f.fallback, bundleFile, f.pubFile, 'recover'], {
        env: { ...process.env, FACEGATE_CRASH_AT: step },
        encoding: 'utf8',
      });
      assert.equal(res.signal, 'SIGKILL', `${step}: child was not killed (status ${res.status}, ${res.stderr})`);
      const after = await store(f, dir).recover();
      await assertRuns(f, after.active, '2.0');
      assert.equal(after.state.state, 'rolled back: restarted during the probation of 3.0', step);
      assert.equal(after.state.previous, '1.0', step);
      assert.deepEqual(await leftovers(dir), [], step);
      await rm(dir, { recursive: true, force: true });
    }

    // Without a crash the child finishes and the new model survives the restart.
    const dir = path.join(f.dir, 'no-crash');
    const res = spawnSync(process.execPath, [child, dir, f.fallback, bundleFile, f.pubFile], {
      env: { ...process.env, FACEGATE_CRASH_AT: '' },
      encoding: 'utf8',
    });
    assert.equal(res.status, 0, res.stderr);
    await assertRuns(f, (await store(f, dir).recover()).active, '3.0');
  } finally {
    await rm(f.dir, { recursive: true, force: true });
  }
});

test('a corrupt probation marker keeps a current that verifies; the installed versions stay', async () => {
  const f = await fixture();
  try {
    const dir = path.join(f.dir, 'store');
    const s = store(f, dir);
    await s.recover();
    await s.install(f.bundles['2.0'] as Buffer, { kioskId: 'k1' });
    await s.install(f.bundles['3.0'] as Buffer, { kioskId: 'k1' });
    const before = (await readdir(path.join(dir, 'versions'))).sort();
    await writeFile(path.join(dir, 'probation.json'), '{"version": "3.0", "tar');
    const r = await store(f, dir).recover();
    await assertRuns(f, r.active, '3.0');
    assert.match(r.state.state ?? '', /probation marker unreadable/);
    assert.deepEqual((await readdir(path.join(dir, 'versions'))).sort(), before);
    assert.ok(await readlink(path.join(dir, 'current')));
  } finally {
    await rm(f.dir, { recursive: true, force: true });
  }
});
