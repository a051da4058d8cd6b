/** The built-in descriptors: chosen by `gallery.descriptor`, each with its own crop, size, id and impostor tail. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { galleryConfigSchema } from '../../src/gallery/config.js';
import { BUILTIN_DESCRIPTORS, cropFor, loadBuiltinDescriptor } from '../../src/gallery/descriptor.js';
import { thresholdForGallery } from '../../src/gallery/match.js';
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
    assert.match(dlib.id, /^dlib:[0-9a-f]{16}\/align1:l1-dlib$/);
    assert.match(faceres.id, /^faceres:[0-9a-f]{16}\/align1:m1\.3r$/);
    const byDefault = await loadBuiltinDescriptor({ threads: 1 });
    assert.equal(byDefault.id, dlib.id, 'the default is dlib');
    await byDefault.close();
    // The threshold comes from each descriptor's own impostor tail.
    assert.deepEqual(dlib.impostorTail, BUILTIN_DESCRIPTORS.dlib.impostorTail);
    const tDlib = thresholdForGallery(100, { tail: dlib.impostorTail });
    const tFaceres = thresholdForGallery(100, { tail: faceres.impostorTail });
    assert.ok(tDlib > tFaceres, `dlib ${tDlib} vs faceres ${tFaceres}`);

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
