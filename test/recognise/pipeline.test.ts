import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { RecognitionPipeline } from '../../src/recognise/pipeline.js';
import { Recogniser } from '../../src/recognise/recogniser.js';
import { evaluate, resultJson } from '../../src/recognise/evaluate.js';
import { ModelError } from '../../src/shared/errors.js';
import { decodeRgb, listImages } from '../../src/shared/image.js';
import { boxIou } from '../../src/shared/geometry.js';
import { background, composeFrame } from '../support/compose.js';
import { trainedModelDir } from '../support/fixtures.js';
import { requireShared, sharedPaths } from '../support/shared.js';

let modelDir = '';
const haveShared = (): boolean => modelDir !== '';

before(async () => {
  try {
    await readFile(path.join(sharedPaths.orl, 'README.orig'));
  } catch {
    return;
  }
  modelDir = await trainedModelDir();
});

test('pipeline: a corrupt frame and a frame without a face give no matches and are counted', async (t) => {
  if (!requireShared(t) || !haveShared()) return;
  const p = await RecognitionPipeline.load({ modelDir, threads: 1 });
  try {
    const manifest = JSON.parse(await readFile(path.join(modelDir, 'manifest.json'), 'utf8')) as { version: string };
    assert.equal(p.modelVersion, manifest.version);
    assert.deepEqual(
      await p.process({ id: 1, timestamp: 0, source: 'test', image: Buffer.from('not an image at all') }),
      [],
    );
    assert.equal(p.stats.unreadable, 1);
    const bg = await sharp(background(640, 480, 3), { raw: { width: 640, height: 480, channels: 3 } })
      .jpeg()
      .toBuffer();
    assert.deepEqual(await p.process({ id: 2, timestamp: 0, source: 'test', image: bg }), []);
    assert.equal(p.stats.framesWithoutFace, 1);
    assert.equal(p.stats.frames, 2);
  } finally {
    await p.close();
  }
});

test('pipeline: a face pasted into a 640×480 frame is found where it was pasted and matched; a small one is skipped', async (t) => {
  if (!requireShared(t) || !haveShared()) return;
  const p = await RecognitionPipeline.load({ modelDir, threads: 1, minFaceSize: 80 });
  try {
    const file = (await listImages(path.join(sharedPaths.orl, 'validation', 's1')))[0]!;
    const big = await composeFrame(file, { seed: 5, scale: [2.2, 2.4] });
    const matches = await p.process({ id: 3, timestamp: 0, source: 'test', image: big.jpeg });
    assert.equal(matches.length, 1);
    const m = matches[0]!;
    assert.ok(
      boxIou(m.face.box, big.box) > 0.3,
      `detected ${JSON.stringify(m.face.box)} vs pasted ${JSON.stringify(big.box)}`,
    );
    assert.ok(['s1', 's2', 's3', 's4'].includes(m.candidate));
    assert.ok(m.similarity > -1 && m.similarity <= 1 && m.probability >= 0 && m.probability <= 1);
    assert.ok(m.label === null || m.label === m.candidate);
    assert.equal(m.face.frameId, 3);
    const small = await composeFrame(file, { seed: 6, scale: [0.7, 0.75] });
    const r = await p.processImage(await decodeRgb(small.jpeg), 4);
    assert.equal(r.matches.length, 0);
    assert.equal(r.skipped.length, 1);
    assert.equal(r.skipped[0]!.reason, 'too-small');
    assert.equal(p.stats.skippedTooSmall, 1);
    // Blurred (Gaussian σ 4): measured sharpness 2–4 against 7–180 for sharp faces; the gate is 5.
    const blurred = await sharp(big.jpeg).blur(4).jpeg().toBuffer();
    const rb = await p.processImage(await decodeRgb(blurred), 5);
    assert.equal(rb.matches.length, 0);
    assert.deepEqual(
      rb.skipped.map((x) => x.reason),
      ['too-blurred'],
    );
    assert.equal(p.stats.skippedBlurred, 1);
  } finally {
    await p.close();
  }
});

test('recogniser: a manifest that does not match the model, or has no recognition section, is refused at load', async (t) => {
  if (!requireShared(t) || !haveShared()) return;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'facegate-recog-'));
  try {
    await cp(modelDir, dir, { recursive: true });
    const file = path.join(dir, 'manifest.json');
    const manifest = JSON.parse(await readFile(file, 'utf8')) as {
      classes: string[];
      recognition?: { references: Record<string, number[]> };
    };
    const extra = structuredClone(manifest);
    extra.classes.push('s99');
    extra.recognition!.references.s99 = extra.recognition!.references.s1!;
    await writeFile(file, JSON.stringify(extra));
    await assert.rejects(
      Recogniser.load({ modelDir: dir }),
      (e: unknown) => e instanceof ModelError && /does not match its manifest/.test(e.message),
    );
    delete manifest.recognition;
    await writeFile(file, JSON.stringify(manifest));
    await assert.rejects(
      Recogniser.load({ modelDir: dir }),
      (e: unknown) => e instanceof ModelError && /facegate train/.test(e.message),
    );
    await assert.rejects(Recogniser.load({ modelDir: path.join(dir, 'nope') }), ModelError);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('eval on face crops: counts, strangers from folders the model does not know, JSON keys', async (t) => {
  if (!requireShared(t) || !haveShared()) return;
  const data = await mkdtemp(path.join(os.tmpdir(), 'facegate-eval-'));
  try {
    for (const p of ['s1', 's2', 's40'])
      await cp(path.join(sharedPaths.orl, 'validation', p), path.join(data, p), { recursive: true });
    await writeFile(path.join(data, 's2', 'broken.png'), 'not a png');
    const r = await evaluate({ modelDir, data, crops: true, threads: 1 });
    const j = resultJson(r);
    for (const k of [
      'accuracy',
      'far',
      'frr',
      'misidentified',
      'threshold',
      'known_images',
      'unknown_images',
      'faces_not_found',
    ])
      assert.ok(k in j, k);
    assert.equal(j.known_images, 5);
    assert.equal(j.unknown_images, 2);
    assert.equal(r.unreadable, 1);
    assert.equal(j.faces_not_found, 1);
    assert.deepEqual(r.strangerFolders, ['s40']);
    const total = Object.values(r.confusion).reduce((s, row) => s + Object.values(row).reduce((a, b) => a + b, 0), 0);
    assert.equal(total, 6);
    assert.equal(r.curve[0]!.far, 1);
  } finally {
    await rm(data, { recursive: true, force: true });
  }
});

test('facegate predict --json: one line per image, an unreadable image exits 2', async (t) => {
  if (!requireShared(t) || !haveShared()) return;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'facegate-predict-'));
  try {
    const bad = path.join(dir, 'bad.jpg');
    await writeFile(bad, 'nope');
    const good = path.join(sharedPaths.yale, 'subject01', 'normal.gif');
    const cli = path.resolve('dist', 'src', 'cli.js');
    const run = promisify(execFile);
    const err = await run(
      process.execPath,
      [cli, 'predict', '--model', modelDir, '--json', '--annotate', path.join(dir, 'out'), good, bad],
      { env: { ...process.env, FACEGATE_LOG_LEVEL: 'warn' } },
    ).then(
      () => null,
      (e: unknown) => e as { code: number; stdout: string },
    );
    assert.ok(err, 'exit code 2 expected');
    assert.equal(err.code, 2);
    const lines = err.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { image: string; faces?: { name: string; box: object }[]; error?: string });
    assert.equal(lines.length, 2);
    assert.equal(lines[0]!.faces!.length, 1);
    assert.ok(typeof lines[0]!.faces![0]!.name === 'string');
    assert.match(lines[1]!.error!, /not a readable image/);
    const meta = await sharp(path.join(dir, 'out', 'normal.png')).metadata();
    assert.equal(meta.width, 320);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
