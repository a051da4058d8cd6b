/** The built-in descriptors: chosen by `gallery.descriptor`, each with its own crop, size, id and impostor tail. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { galleryConfigSchema } from '../../src/gallery/config.js';
import {
  BUILTIN_DESCRIPTORS,
  cropFor,
  DEFAULT_VARIANT,
  loadBuiltinDescriptor,
  marginFor,
  mirror,
} from '../../src/gallery/descriptor.js';
import {
  BUILTIN_AGGREGATE_TAILS,
  BUILTIN_IMPOSTOR_TAILS,
  tailFor,
  thresholdForGallery,
} from '../../src/gallery/match.js';
import { ConfigError } from '../../src/shared/errors.js';
import { loadDetector } from '../../src/detect/model.js';
import { decodeRgb } from '../../src/shared/image.js';
import { requireShared, sharedPaths } from '../support/shared.js';

test('gallery.descriptor defaults to dlib and refuses unknown names with the valid ones', () => {
  assert.equal(galleryConfigSchema.parse({}).descriptor, 'dlib');
  assert.equal(galleryConfigSchema.parse({ descriptor: 'faceres' }).descriptor, 'faceres');
  const bad = galleryConfigSchema.safeParse({ descriptor: 'arcface' });
  assert.ok(!bad.success);
  assert.match(bad.error.issues[0]?.message ?? '', /dlib.*faceres/);
});

test('each built-in descriptor has its own size, crop, id and threshold', async (t) => {
  const dlib = await loadBuiltinDescriptor({ name: 'dlib', threads: 1 });
  const faceres = await loadBuiltinDescriptor({ name: 'faceres', threads: 1 });
  try {
    assert.deepEqual([dlib.size, dlib.inputSize, dlib.crop.method], [128, 150, 'landmarks']);
    assert.deepEqual([faceres.size, faceres.inputSize, faceres.crop.method], [1024, 224, 'box']);
    assert.match(dlib.id, /^dlib:[0-9a-f]{16}\/align1:l1-dlib\+flip$/);
    assert.match(faceres.id, /^faceres:[0-9a-f]{16}\/align1:m1\.3r\+flip$/);
    const byDefault = await loadBuiltinDescriptor({ threads: 1 });
    assert.equal(byDefault.id, dlib.id, 'the default is dlib');
    await byDefault.close();
    // The threshold comes from each descriptor's own impostor tail.
    assert.deepEqual(dlib.impostorTail, tailFor(BUILTIN_DESCRIPTORS.dlib.impostorTails, DEFAULT_VARIANT, 'dlib'));
    const tDlib = thresholdForGallery(100, { tail: dlib.impostorTail });
    const tFaceres = thresholdForGallery(100, { tail: faceres.impostorTail });
    assert.ok(tDlib > tFaceres, `dlib ${tDlib} vs faceres ${tFaceres}`);
    // Pooling a track's frames: each descriptor's default scoring has a tail for pooled descriptors.
    assert.deepEqual(dlib.aggregateTail, BUILTIN_AGGREGATE_TAILS.dlib['flip+centroid']);
    assert.deepEqual(faceres.aggregateTail, BUILTIN_AGGREGATE_TAILS.faceres['flip+centroid']);

    if (!requireShared(t)) return;
    // Real faces: the crop has the descriptor's size; the same person scores above another person.
    const detector = await loadDetector({ threads: 1 });
    try {
      const yale = (s: string, c: string): string => path.join(sharedPaths.yale, s, `${c}.gif`);
      const vec = async (file: string): Promise<Float32Array> => {
        const img = await decodeRgb(file);
        const [face] = await detector.detect(img);
        assert.ok(face, `a face in ${file}`);
        const crop = cropFor(dlib, img, face);
        assert.deepEqual([crop.width, crop.height], [150, 150]);
        const [v] = await dlib.describe([crop]);
        return v!;
      };
      const a = await vec(yale('subject01', 'normal'));
      const b = await vec(yale('subject01', 'happy'));
      const c = await vec(yale('subject02', 'normal'));
      const dot = (x: Float32Array, y: Float32Array): number => x.reduce((s, v, i) => s + v * y[i]!, 0);
      assert.ok(dot(a, b) > dot(a, c), `same ${dot(a, b)} vs other ${dot(a, c)}`);
    } finally {
      await detector.close();
    }
  } finally {
    await dlib.close();
    await faceres.close();
  }
});

test('gallery.flip and gallery.rule: only variants with a fitted impostor tail pass, and the refusal names those that exist', () => {
  const ok = galleryConfigSchema.parse({ descriptor: 'dlib', flip: true, rule: 'top-k' });
  assert.deepEqual([ok.flip, ok.rule], [true, 'top-k']);
  const bad = galleryConfigSchema.safeParse({ descriptor: 'faceres', flip: true, rule: 'best' });
  assert.ok(!bad.success);
  const issue = bad.error.issues[0];
  assert.deepEqual(issue?.path, ['rule']);
  assert.match(issue?.message ?? '', /faceres descriptor with flip true and rule best/);
  assert.match(issue?.message ?? '', /\(flip false, rule best; flip true, rule centroid\)/);
  const dlibBad = galleryConfigSchema.safeParse({ descriptor: 'dlib', flip: false, rule: 'top-k' });
  assert.ok(!dlibBad.success);
  assert.match(dlibBad.error.issues[0]?.message ?? '', /flip true, rule top-k/, 'lists the fitted dlib variants');
  // The same refusal where a descriptor is loaded with a variant its spec has no tail for.
  assert.throws(
    () => tailFor(BUILTIN_IMPOSTOR_TAILS.faceres, { flip: true, rule: 'best' }, 'faceres'),
    (e: unknown) => e instanceof ConfigError && /set gallery.flip and gallery.rule/.test(e.message),
  );
});

test('each fitted dlib variant has its own tail, and the threshold follows it', () => {
  const t = BUILTIN_IMPOSTOR_TAILS.dlib;
  const at1000 = (v: keyof typeof t): number => thresholdForGallery(1000, { tail: t[v] });
  // Flip and centroid raise impostor scores (t0), so their thresholds are higher than best's.
  assert.ok(at1000('flip+centroid') > at1000('flip+best'));
  assert.ok(at1000('flip+best') > at1000('best'));
  assert.ok(at1000('centroid') > at1000('best'));
  for (const tail of Object.values(t)) assert.equal(tail.q0, 0.001);
});

test("flip: the descriptor of a crop is the unit mean of the crop's and its mirror's, and the id says so", async (t) => {
  const plain = await loadBuiltinDescriptor({ name: 'dlib', threads: 1, flip: false, rule: 'best' });
  const flipped = await loadBuiltinDescriptor({ name: 'dlib', threads: 1, flip: true, rule: 'centroid' });
  try {
    assert.equal(flipped.id, `${plain.id}+flip`, 'templates of one cannot be compared with the other');
    assert.deepEqual([flipped.flip, flipped.rule], [true, 'centroid']);
    assert.deepEqual(flipped.impostorTail, BUILTIN_IMPOSTOR_TAILS.dlib['flip+centroid']);
    await assert.rejects(
      loadBuiltinDescriptor({ name: 'faceres', threads: 1, flip: false, rule: 'top-k' }),
      (e: unknown) => e instanceof ConfigError,
    );
    if (!requireShared(t)) return;
    const detector = await loadDetector({ threads: 1 });
    try {
      const img = await decodeRgb(path.join(sharedPaths.yale, 'subject03', 'glasses.gif'));
      const [face] = await detector.detect(img);
      assert.ok(face);
      const crop = cropFor(plain, img, face);
      const [a, b] = await plain.describe([crop, mirror(crop)]);
      const [f, again] = await flipped.describe([crop, crop]);
      const mean = a!.map((x, i) => x + b![i]!);
      const norm = Math.hypot(...mean);
      for (let i = 0; i < mean.length; i++) assert.ok(Math.abs(f![i]! - mean[i]! / norm) < 1e-5, `component ${i}`);
      for (let i = 0; i < f!.length; i++)
        assert.ok(Math.abs(again![i]! - f![i]!) < 1e-5, 'each crop of a batch its own pair');
      assert.ok(Math.abs(Math.hypot(...f!) - 1) < 1e-5);
    } finally {
      await detector.close();
    }
  } finally {
    await plain.close();
    await flipped.close();
  }
});

test('gallery.norm margin: refused at config load where no margin calibration is fitted, or for another targetFar; auto takes it where fitted', () => {
  assert.equal(galleryConfigSchema.parse({}).norm, 'auto');
  // auto: never refused; margin where the settings have a calibration, else the plain cosine.
  for (const c of [{ descriptor: 'faceres' }, { rule: 'best' }, { targetFar: 0.001 }])
    assert.equal(galleryConfigSchema.parse(c).norm, 'auto', JSON.stringify(c));
  const fitted = BUILTIN_DESCRIPTORS.dlib.marginCalibrations['flip+centroid'];
  assert.equal(marginFor('auto', BUILTIN_DESCRIPTORS.dlib, { flip: true, rule: 'centroid' }, 'dlib'), fitted);
  assert.equal(marginFor('auto', BUILTIN_DESCRIPTORS.dlib, { flip: true, rule: 'best' }, 'dlib'), null);
  assert.equal(marginFor('auto', BUILTIN_DESCRIPTORS.faceres, { flip: true, rule: 'centroid' }, 'faceres'), null);
  assert.equal(marginFor('none', BUILTIN_DESCRIPTORS.dlib, { flip: true, rule: 'centroid' }, 'dlib'), null);
  assert.throws(
    () => marginFor('margin', BUILTIN_DESCRIPTORS.faceres, { flip: true, rule: 'centroid' }, 'faceres'),
    /set gallery.norm to none/,
  );
  assert.equal(galleryConfigSchema.parse({ norm: 'margin' }).norm, 'margin', 'dlib, flip + centroid: calibrated');
  const faceres = galleryConfigSchema.safeParse({ descriptor: 'faceres', norm: 'margin' });
  assert.ok(!faceres.success);
  assert.deepEqual(faceres.error.issues[0]?.path, ['norm']);
  assert.match(faceres.error.issues[0]?.message ?? '', /faceres descriptor .*set gallery.norm to none/);
  const best = galleryConfigSchema.safeParse({ norm: 'margin', rule: 'best' });
  assert.ok(!best.success);
  assert.match(best.error.issues[0]?.message ?? '', /only for flip\+centroid/);
  const far = galleryConfigSchema.safeParse({ norm: 'margin', targetFar: 0.001 });
  assert.ok(!far.success);
  assert.match(far.error.issues[0]?.message ?? '', /targetFar 0.01 only, got 0.001/);
  // The kiosk reads the same table the config check names.
  assert.deepEqual(Object.keys(BUILTIN_DESCRIPTORS.dlib.marginCalibrations), ['flip+centroid']);
  assert.deepEqual(Object.keys(BUILTIN_DESCRIPTORS.faceres.marginCalibrations), []);
});
