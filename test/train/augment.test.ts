import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  applyTransform,
  augment,
  augmentConfigSchema,
  IDENTITY_TRANSFORM,
  randomTransform,
  TUTORIAL_AUGMENTATION,
} from '../../src/train/augment.js';
import { mulberry32 } from '../../src/train/rng.js';
import { decodeRgb, type RgbImage } from '../../src/shared/image.js';
import { requireShared, sharedPaths } from '../support/shared.js';
import path from 'node:path';

/** A w×h image whose red channel is the column, green the row, blue a constant. */
function ramp(w: number, h: number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let r = 0; r < h; r++)
    for (let c = 0; c < w; c++) {
      const o = (r * w + c) * 3;
      data[o] = c;
      data[o + 1] = r;
      data[o + 2] = 7;
    }
  return { data, width: w, height: h };
}
const px = (img: RgbImage, r: number, c: number): number[] =>
  Array.from(img.data.subarray((r * img.width + c) * 3, (r * img.width + c) * 3 + 3));

test('identity transform leaves the image unchanged', () => {
  const img = ramp(9, 7);
  assert.deepEqual(applyTransform(img, IDENTITY_TRANSFORM).data, img.data);
});

test('horizontal flip mirrors columns', () => {
  const img = ramp(9, 7);
  const out = applyTransform(img, { ...IDENTITY_TRANSFORM, flipHorizontal: true });
  for (let r = 0; r < 7; r++) for (let c = 0; c < 9; c++) assert.deepEqual(px(out, r, c), px(img, r, 8 - c));
});

test('shifts move content by whole pixels and fill with the nearest edge (Keras semantics: input = output + t)', () => {
  const img = ramp(10, 8);
  // tx shifts rows: output row r reads input row r + 2; the last rows repeat the edge.
  const down = applyTransform(img, { ...IDENTITY_TRANSFORM, tx: 2 });
  assert.deepEqual(px(down, 0, 3), [3, 2, 7]);
  assert.deepEqual(px(down, 5, 3), [3, 7, 7]);
  assert.deepEqual(px(down, 7, 3), [3, 7, 7], 'nearest fill repeats the last row');
  const left = applyTransform(img, { ...IDENTITY_TRANSFORM, ty: -3 });
  assert.deepEqual(px(left, 4, 0), [0, 4, 7], 'nearest fill repeats the first column');
  assert.deepEqual(px(left, 4, 5), [2, 4, 7]);
});

test('rotation by 90° maps rows to columns around the Keras centre', () => {
  // Keras centres at (h/2 + 0.5, w/2 + 0.5); on a 5×5 image that is (3, 3), so with
  // theta = 90 the output (r, c) reads input (3 - (c - 3), 3 + (r - 3)) = (6 - c, r).
  const img = ramp(5, 5);
  const out = applyTransform(img, { ...IDENTITY_TRANSFORM, theta: 90 });
  assert.deepEqual(px(out, 1, 3), [1, 3, 7]);
  assert.deepEqual(px(out, 2, 4), [2, 2, 7]);
  assert.deepEqual(px(out, 4, 2), [4, 4, 7]);
});

test('random parameters stay inside the configured ranges and flip about half the time', () => {
  const rng = mulberry32(123);
  let flips = 0;
  let maxTheta = 0;
  let maxTx = 0;
  let maxTy = 0;
  const n = 2000;
  for (let i = 0; i < n; i++) {
    const p = randomTransform(rng, TUTORIAL_AUGMENTATION, 112, 92);
    maxTheta = Math.max(maxTheta, Math.abs(p.theta));
    maxTx = Math.max(maxTx, Math.abs(p.tx));
    maxTy = Math.max(maxTy, Math.abs(p.ty));
    if (p.flipHorizontal) flips++;
  }
  assert.ok(maxTheta <= 20 && maxTheta > 19, `theta within ±20 and using the range (max ${maxTheta})`);
  assert.ok(maxTx <= 0.2 * 112 && maxTx > 0.19 * 112, `tx from height_shift_range × rows (max ${maxTx})`);
  assert.ok(maxTy <= 0.2 * 92 && maxTy > 0.19 * 92, `ty from width_shift_range × columns (max ${maxTy})`);
  assert.ok(flips > 0.45 * n && flips < 0.55 * n, `flip probability 0.5 (${flips}/${n})`);
});

test('disabled parameters are never drawn', () => {
  const cfg = augmentConfigSchema.parse({
    rotationRange: 0,
    widthShiftRange: 0,
    heightShiftRange: 0.1,
    horizontalFlip: false,
  });
  const rng = mulberry32(5);
  for (let i = 0; i < 200; i++) {
    const p = randomTransform(rng, cfg, 100, 100);
    assert.equal(p.theta, 0);
    assert.equal(p.ty, 0);
    assert.equal(p.flipHorizontal, false);
    assert.ok(Math.abs(p.tx) <= 10);
  }
});

test('augmenting a real ORL face is deterministic with a seed and differs across seeds', async (t) => {
  if (!requireShared(t)) return;
  const img = await decodeRgb(path.join(sharedPaths.orl, 'train', 's1', '1.png'), { width: 224, height: 224 });
  const a = augment(img, mulberry32(42));
  const b = augment(img, mulberry32(42));
  const c = augment(img, mulberry32(43));
  assert.deepEqual(a.params, b.params);
  assert.deepEqual(a.image.data, b.image.data);
  assert.notDeepEqual(a.image.data, c.image.data);
  assert.notDeepEqual(a.image.data, img.data);
  assert.equal(a.image.width, 224);
  assert.equal(a.image.height, 224);
});
