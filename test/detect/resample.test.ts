import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LetterboxResampler, resampleTaps } from '../../src/detect/resample.js';
import type { RgbImage } from '../../src/shared/image.js';

/** Output `o` of resampling `values` with `t`. */
function apply(t: ReturnType<typeof resampleTaps>, values: readonly number[], o: number): number {
  let acc = 0;
  for (let j = 0; j < t.taps; j++) acc += (values[t.start[o]! + j] ?? NaN) * t.weights[o * t.taps + j]!;
  return acc;
}

test('shrinking averages the source each output covers, partial pixels by coverage', () => {
  // 5 → 2: output 0 covers [0, 2.5), output 1 covers [2.5, 5)
  const t = resampleTaps(5, 2);
  const v = [10, 20, 30, 40, 50];
  assert.ok(Math.abs(apply(t, v, 0) - (10 + 20 + 30 / 2) / 2.5) < 1e-5);
  assert.ok(Math.abs(apply(t, v, 1) - (30 / 2 + 40 + 50) / 2.5) < 1e-5);
  // 4 → 2 is a plain 2-pixel mean; 3 → 3 the identity
  const half = resampleTaps(4, 2);
  assert.deepEqual([apply(half, [0, 2, 4, 8], 0), apply(half, [0, 2, 4, 8], 1)], [1, 6]);
  const same = resampleTaps(3, 3);
  assert.deepEqual(
    [0, 1, 2].map((o) => apply(same, [7, 8, 9], o)),
    [7, 8, 9],
  );
});

test('enlarging is bilinear between pixel centres and clamps at the edges', () => {
  const t = resampleTaps(2, 4); // centres of outputs at source 0.25·(2o+1) − 0.5: −0.25, 0.25, 0.75, 1.25
  const v = [0, 100];
  assert.deepEqual(
    [0, 1, 2, 3].map((o) => apply(t, v, o)),
    [0, 25, 75, 100],
  );
  assert.deepEqual(resampleTaps(1, 3).taps, 1);
  assert.throws(() => resampleTaps(0, 2), RangeError);
});

test('every output weight row sums to 1 and stays inside the source', () => {
  for (const [n, m] of [
    [640, 256],
    [480, 192],
    [92, 210],
    [112, 256],
    [1000, 256],
    [257, 256],
  ] as const) {
    const t = resampleTaps(n, m);
    for (let o = 0; o < m; o++) {
      let sum = 0;
      for (let j = 0; j < t.taps; j++) sum += t.weights[o * t.taps + j]!;
      assert.ok(Math.abs(sum - 1) < 1e-5, `${n}→${m} output ${o} sums to ${sum}`);
      assert.ok(t.start[o]! >= 0 && t.start[o]! + t.taps <= n, `${n}→${m} output ${o} reads outside`);
    }
  }
});

test('the letterbox input: the frame scaled to −1..1 in its box, padding at −1, refilled when the geometry changes', () => {
  const img: RgbImage = { data: new Uint8Array(4 * 2 * 3).fill(255), width: 4, height: 2 };
  const r = new LetterboxResampler();
  const input = r.fill(img, { width: 4, height: 2, left: 0, top: 1, inputWidth: 4, inputHeight: 4 });
  const px = (x: number, y: number): number[] => [...input.subarray((y * 4 + x) * 3, (y * 4 + x) * 3 + 3)];
  assert.deepEqual(px(0, 0), [-1, -1, -1]);
  assert.deepEqual(px(3, 1), [1, 1, 1]);
  assert.deepEqual(px(0, 2), [1, 1, 1]);
  assert.deepEqual(px(0, 3), [-1, -1, -1]);
  // a taller frame: the old content outside the new box must not remain
  const tall: RgbImage = { data: new Uint8Array(2 * 4 * 3).fill(0), width: 2, height: 4 };
  r.fill(tall, { width: 2, height: 4, left: 1, top: 0, inputWidth: 4, inputHeight: 4 });
  assert.deepEqual(px(0, 1), [-1, -1, -1]);
  assert.deepEqual(px(1, 1), [-1, -1, -1], 'black (0) is −1 too');
  assert.deepEqual(px(3, 2), [-1, -1, -1]);
  const grey: RgbImage = { data: new Uint8Array(2 * 4 * 3).fill(51), width: 2, height: 4 };
  r.fill(grey, { width: 2, height: 4, left: 1, top: 0, inputWidth: 4, inputHeight: 4 });
  assert.ok(Math.abs(px(1, 1)[0]! - (51 / 127.5 - 1)) < 1e-6);
  assert.deepEqual(px(0, 1), [-1, -1, -1]);
});

test('an input that is not square: rows of inputWidth, padding only where the frame does not reach', () => {
  // a 4×2 frame shrunk to 2×1 in a 2-wide, 2-high input (one padding row below)
  const img: RgbImage = {
    data: new Uint8Array([0, 0, 0, 255, 255, 255, 51, 51, 51, 102, 102, 102]),
    width: 2,
    height: 2,
  };
  const r = new LetterboxResampler();
  const input = r.fill(img, { width: 2, height: 1, left: 0, top: 0, inputWidth: 2, inputHeight: 2 });
  assert.equal(input.length, 2 * 2 * 3);
  // column 0: mean of 0 and 51; column 1: mean of 255 and 102
  assert.ok(Math.abs(input[0]! - (25.5 / 127.5 - 1)) < 1e-6);
  assert.ok(Math.abs(input[3]! - (178.5 / 127.5 - 1)) < 1e-6);
  assert.deepEqual([...input.subarray(6)], [-1, -1, -1, -1, -1, -1]);
  // the same frame at full size fills a 2×2 input: the buffer is reused, the padding overwritten
  const full = r.fill(img, { width: 2, height: 2, left: 0, top: 0, inputWidth: 2, inputHeight: 2 });
  assert.equal(full, input);
  assert.ok(Math.abs(full[6]! - (51 / 127.5 - 1)) < 1e-6);
  // a wider input gets its own buffer
  const wide = r.fill(img, { width: 2, height: 2, left: 1, top: 0, inputWidth: 4, inputHeight: 2 });
  assert.equal(wide.length, 4 * 2 * 3);
  assert.deepEqual([...wide.subarray(0, 3)], [-1, -1, -1]);
  assert.equal(wide[3], -1, 'black is −1');
  assert.throws(() => r.fill(img, { width: 2, height: 2, left: 1, top: 0, inputWidth: 2, inputHeight: 2 }), RangeError);
});
