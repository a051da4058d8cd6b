import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rgbBatch } from '../../src/shared/image.js';

const crop = (w: number, h: number, fill: number): { data: Uint8Array; width: number; height: number } => ({
  data: new Uint8Array(w * h * 3).fill(fill),
  width: w,
  height: h,
});

test('rgbBatch packs crops one after another as [n, height, width, 3]', () => {
  const b = rgbBatch([crop(2, 1, 7), crop(2, 1, 9)], 2, 1, 'model');
  assert.deepEqual(b.dims, [2, 1, 2, 3]);
  assert.deepEqual([...b.data], [7, 7, 7, 7, 7, 7, 9, 9, 9, 9, 9, 9]);
  assert.deepEqual(rgbBatch([], 4, 4, 'model').dims, [0, 4, 4, 3]);
});

test('rgbBatch refuses a crop of another size, naming what wants which size', () => {
  assert.throws(() => rgbBatch([crop(2, 2, 0), crop(3, 2, 0)], 2, 2, 'descriptor'), {
    name: 'RangeError',
    message: 'crop is 3×2, descriptor wants 2×2',
  });
});
