/**
 * The exporter's small maths, on fixtures with known answers: TF SAME padding, output
 * sizes, weight layouts, broadcasting.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  broadcastShapes,
  convOutSize,
  depthwiseToOihw,
  hwioToOihw,
  samePadding,
  transposeData,
} from '../../../src/model/export/emitter.js';

test('samePadding puts the odd pixel at the end, as TF does', () => {
  assert.deepEqual(samePadding(224, 3, 2), [0, 1]); // MobileNet's first conv
  assert.deepEqual(samePadding(7, 3, 2), [1, 1]);
  assert.deepEqual(samePadding(8, 3, 1), [1, 1]);
  assert.deepEqual(samePadding(8, 4, 1), [1, 2]);
  assert.deepEqual(samePadding(5, 1, 2), [0, 0]);
  assert.deepEqual(samePadding(9, 3, 1, 2), [2, 2]); // dilation 2: effective kernel 5
  assert.deepEqual(samePadding(3, 5, 3), [1, 1]); // kernel larger than the input
});

test('convOutSize follows floor((n + pads - effective kernel) / stride) + 1', () => {
  assert.equal(convOutSize(224, 3, 2, 1, [0, 1]), 112);
  assert.equal(convOutSize(13, 5, 1, 2, [0, 0]), 5);
  assert.equal(convOutSize(null, 3, 1, 1, [1, 1]), null);
});

test('transposeData matches numpy.transpose on a 2×3×4 tensor', () => {
  const data = Float32Array.from({ length: 24 }, (_, i) => i);
  const t = transposeData(data, [2, 3, 4], [2, 0, 1]); // → [4,2,3]
  // out[k][i][j] = in[i][j][k] = 12i + 4j + k
  assert.equal(t[0 * 6 + 1 * 3 + 2], 12 + 8 + 0);
  assert.equal(t[3 * 6 + 0 * 3 + 1], 4 + 3);
});

test('hwioToOihw and depthwiseToOihw put output channels first (depthwise: channel-major, c*mult + m)', () => {
  // HWIO [1,1,2,3]: w[0][0][i][o] = 10i + o
  const hwio = Float32Array.from([0, 1, 2, 10, 11, 12]);
  assert.deepEqual([...hwioToOihw(hwio, [1, 1, 2, 3])], [0, 10, 1, 11, 2, 12]);
  // depthwise [1,1,2,2]: w[0][0][c][m] = 10c + m → outputs c0m0, c0m1, c1m0, c1m1
  const dw = Float32Array.from([0, 1, 10, 11]);
  assert.deepEqual([...depthwiseToOihw(dw, [1, 1, 2, 2])], [0, 1, 10, 11]);
});

test('broadcastShapes follows numpy rules and keeps unknown dimensions unknown', () => {
  assert.deepEqual(broadcastShapes([null, 7, 7, 8], [8]), [null, 7, 7, 8]);
  assert.deepEqual(broadcastShapes([null, 64], [1, 64]), [null, 64]);
  assert.deepEqual(broadcastShapes([3, 1], [1, 4]), [3, 4]);
  assert.deepEqual(broadcastShapes([], [2, 2]), [2, 2]);
});
