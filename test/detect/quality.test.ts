import { test } from 'node:test';
import assert from 'node:assert/strict';
import { laplacianVariance, qualityVerdict, sharpness } from '../../src/detect/quality.js';

test('Laplacian variance: flat image 0, a checkerboard is sharp, a ramp is flat', () => {
  const flat = new Float32Array(25).fill(100);
  assert.equal(laplacianVariance(flat, 5, 5), 0);
  const ramp = new Float32Array(25).map((_, i) => (i % 5) * 10);
  assert.equal(laplacianVariance(ramp, 5, 5), 0);
  // 4×4 checkerboard of 0/1: interior Laplacians are ±4, mean 0 → variance 16
  const cb = new Float32Array(16).map((_, i) => ((i % 4) + Math.floor(i / 4)) % 2);
  assert.equal(laplacianVariance(cb, 4, 4), 16);
  assert.equal(laplacianVariance(cb, 2, 8), 0);
});

test('sharpness of an RGB image uses its luma', () => {
  const data = new Uint8Array(16 * 3);
  for (let i = 0; i < 16; i++) {
    const v = ((i % 4) + Math.floor(i / 4)) % 2 ? 100 : 0;
    data.fill(v, i * 3, i * 3 + 3);
  }
  assert.ok(Math.abs(sharpness({ data, width: 4, height: 4 }) - 160000) < 1);
});

test('quality gate: too small first, then too blurred', () => {
  const t = { minFaceSize: 40, minSharpness: 10 };
  assert.deepEqual(qualityVerdict(30, 5, t), { ok: false, reason: 'too-small' });
  assert.deepEqual(qualityVerdict(50, 5, t), { ok: false, reason: 'too-blurred' });
  assert.deepEqual(qualityVerdict(50, 10, t), { ok: true });
});
