/**
 * gallery.landmarks mesh: dlib's chip cut from the face mesh's dense landmarks. Its templates
 * have their own descriptor id, so switching the setting computes them from the kept
 * enrolment crops (as any descriptor change does), and the kiosk's detector adds the
 * landmarks to every face it finds.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { requireShared } from '../support/shared.js';
import { ENROL_CONDITIONS, yale } from '../support/gallery.js';
import { galleryConfigSchema } from '../../src/gallery/config.js';
import { openGallery } from '../../src/gallery/open.js';
import { builtinSpec, cropFor, DLIB_MESH_DESCRIPTOR } from '../../src/gallery/descriptor.js';
import { search } from '../../src/gallery/match.js';
import { DLIB_CHIP_POINTS } from '../../src/detect/align.js';
import { loadDetector } from '../../src/detect/model.js';
import { decodeRgb } from '../../src/shared/image.js';
import { ConfigError } from '../../src/shared/errors.js';

let dir = '';
before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'facegate-landmarks-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('gallery.landmarks: keypoints by default; mesh only with dlib and a fitted variant, refused with what to set', () => {
  assert.equal(galleryConfigSchema.parse({}).landmarks, 'keypoints');
  assert.equal(galleryConfigSchema.parse({ landmarks: 'mesh' }).landmarks, 'mesh');
  const faceres = galleryConfigSchema.safeParse({ descriptor: 'faceres', landmarks: 'mesh', flip: true });
  assert.ok(!faceres.success);
  assert.ok(faceres.error.issues.some((i) => i.path[0] === 'landmarks' && /descriptor to dlib/.test(i.message)));
  const best = galleryConfigSchema.safeParse({ landmarks: 'mesh', flip: false, rule: 'best' });
  assert.ok(!best.success);
  assert.match(best.error.issues[0]?.message ?? '', /dlib \(mesh landmarks\).*flip true, rule centroid/);
  assert.equal(builtinSpec('dlib', 'mesh'), DLIB_MESH_DESCRIPTOR);
  assert.throws(() => builtinSpec('faceres', 'mesh'), ConfigError);
});

test('switching to mesh landmarks: new templates from the kept crops, the person still found, a stranger not', async (t) => {
  if (!requireShared(t)) return;
  const stateDir = path.join(dir, 'state');
  const keypoints = await openGallery({ config: galleryConfigSchema.parse({}), stateDir, threads: 1 });
  let before: string;
  try {
    const r = await keypoints.gallery.enrolPhotos(
      'Ada',
      ENROL_CONDITIONS.map((c) => yale(1, c)),
    );
    assert.equal(r.person.name, 'Ada');
    before = keypoints.descriptor.id;
  } finally {
    await keypoints.close();
  }
  const mesh = await openGallery({ config: galleryConfigSchema.parse({ landmarks: 'mesh' }), stateDir, threads: 1 });
  try {
    const { gallery, descriptor, detector } = mesh;
    assert.notEqual(descriptor.id, before, 'the mesh chip is another descriptor');
    assert.match(descriptor.id, /^dlib:[0-9a-f]{16}\+facemesh-[0-9a-f]{16}\/align1:mesh68\+flip$/);
    assert.equal(gallery.snapshot(descriptor).people, 0, 'no templates of the mesh chip yet');
    const { recomputed } = await gallery.prepareDescriptor(descriptor);
    assert.equal(recomputed, ENROL_CONDITIONS.length);
    const snap = gallery.snapshot(descriptor);
    assert.equal(snap.people, 1);
    const probe = async (subject: number, condition: string): Promise<number> => {
      const img = await decodeRgb(yale(subject, condition));
      const [f] = await detector.detect(img);
      assert.equal(f?.landmarks?.length, DLIB_CHIP_POINTS.length, "the gallery's detector adds the landmarks");
      const [v] = await descriptor.describe([cropFor(descriptor, img, f)]);
      return search(snap.index, v!).best?.score ?? -1;
    };
    assert.ok((await probe(1, 'sad')) >= snap.threshold, 'her own face passes the threshold');
    assert.ok((await probe(2, 'sad')) < snap.threshold, 'a stranger does not');
  } finally {
    await mesh.close();
  }
});

test("faces of another detector (a trained model's) get the gallery detector's landmarks, once", async (t) => {
  if (!requireShared(t)) return;
  const plain = await loadDetector({ threads: 1 });
  const mesh = await loadDetector({ threads: 1, landmarks: 'mesh' });
  try {
    const img = await decodeRgb(yale(1, 'normal'));
    const faces = await plain.detect(img);
    assert.ok(faces.length > 0 && faces.every((f) => !f.landmarks));
    assert.equal(await plain.withLandmarks(img, faces), faces, 'without a mesh: unchanged');
    const added = await mesh.withLandmarks(img, faces);
    assert.equal(added[0]?.landmarks?.length, DLIB_CHIP_POINTS.length);
    assert.deepEqual(added[0]?.box, faces[0]?.box);
    // The same landmarks as the mesh detector's own, and nothing run again for faces that have them.
    assert.deepEqual(added[0]?.landmarks, (await mesh.detect(img))[0]?.landmarks);
    assert.equal(await mesh.withLandmarks(img, added), added);
  } finally {
    await plain.close();
    await mesh.close();
  }
});
