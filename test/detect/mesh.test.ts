import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alignmentTransform, DLIB_CHIP_POINTS } from '../../src/detect/align.js';
import { dlibPointsFromMesh, MESH_FOR_DLIB, MESH_INPUT, MESH_POINTS, meshCrop } from '../../src/detect/mesh.js';

test('mesh → dlib points: one group per chip point, each the mean of its mesh points, in frame pixels', () => {
  assert.equal(MESH_FOR_DLIB.length, DLIB_CHIP_POINTS.length);
  for (const g of MESH_FOR_DLIB) for (const i of g) assert.ok(i >= 0 && i < MESH_POINTS);
  // Mesh point i at (i, 2i, z) in crop pixels; the crop map doubles and shifts by (10, 20).
  const points = new Float32Array(MESH_POINTS * 3);
  for (let i = 0; i < MESH_POINTS; i++) points.set([i, 2 * i, 99], 3 * i);
  const crop = { a: 2, b: 0, c: 10, d: 0, e: 2, f: 20 };
  const out = dlibPointsFromMesh(points, crop);
  assert.equal(out.length, DLIB_CHIP_POINTS.length);
  // dlib 27 is the mean of mesh 168 and 6; 30 is mesh 4 alone. +0.5: pixel index → frame pixels.
  const mean = (168 + 6) / 2;
  assert.deepEqual(out[0], { x: 2 * mean + 10 + 0.5, y: 4 * mean + 20 + 0.5 });
  assert.deepEqual(out[3], { x: 2 * 4 + 10 + 0.5, y: 4 * 4 + 20 + 0.5 });
});

test("the mesh's crop: 1.4 × the box's longer side about its centre, eyes levelled", () => {
  const face = {
    box: { x: 100, y: 50, width: 80, height: 100 },
    keypoints: [
      { x: 120, y: 90 },
      { x: 160, y: 110 },
    ],
  };
  const sq = meshCrop(face);
  assert.equal(sq.cx, 140);
  assert.equal(sq.cy, 100);
  assert.ok(Math.abs(sq.side - 140) < 1e-9);
  assert.ok(Math.abs(sq.angle - Math.atan2(20, 40)) < 1e-9);
  // The crop's centre pixel lands on the box centre.
  const m = alignmentTransform(sq, MESH_INPUT);
  const h = MESH_INPUT / 2 - 0.5;
  assert.ok(Math.abs(m.a * h + m.b * h + m.c + 0.5 - 140) < 1e-9);
  assert.ok(Math.abs(m.d * h + m.e * h + m.f + 0.5 - 100) < 1e-9);
});
