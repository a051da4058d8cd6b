import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  activationParams,
  channelAbsMax,
  dequantizeU8,
  quantizeU8,
  quantizeWeightsAndBias,
  roundHalfEven,
  weightScales,
} from '../../../src/model/quantize/params.js';

test('activationParams: a ReLU range [0, 6] gives zero point 0 and scale 6/255', () => {
  const p = activationParams(0, 6);
  assert.equal(p.zeroPoint, 0);
  assert.equal(p.scale, Math.fround(6 / 255));
  assert.equal(quantizeU8(6, p), 255);
  assert.equal(quantizeU8(-1, p), 0, 'saturation at 0 is what makes the ReLU redundant');
  assert.equal(quantizeU8(7, p), 255, 'and at the top what makes ReLU6 redundant');
});

test('activationParams: the range is widened to include 0, and 0 is exact', () => {
  const p = activationParams(2, 4); // -> [0, 4]
  assert.equal(p.zeroPoint, 0);
  assert.equal(p.scale, Math.fround(4 / 255));
  const s = activationParams(-1, 1);
  assert.equal(s.zeroPoint, 127); // 1 / fround(2/255) = 127.4999…
  assert.equal(dequantizeU8(quantizeU8(0, s), s), 0);
  const n = activationParams(-3, -1); // -> [-3, 0]
  assert.equal(n.zeroPoint, 255);
});

test('activationParams: degenerate and invalid ranges', () => {
  assert.deepEqual(activationParams(0, 0), { scale: 1, zeroPoint: 0 });
  assert.throws(() => activationParams(1, 0), RangeError);
  assert.throws(() => activationParams(Number.NaN, 1), RangeError);
});

test('roundHalfEven rounds ties to even like QuantizeLinear', () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, 2.4, -2.6].map(roundHalfEven), [0, 2, 2, -0, -2, 2, -3]);
});

test('channelAbsMax groups by the given axis', () => {
  // shape [2, 3]: rows are axis 0, columns axis 1
  const w = new Float32Array([1, -5, 2, -3, 4, 0.5]);
  assert.deepEqual([...channelAbsMax(w, [2, 3], 0)], [5, 4]);
  assert.deepEqual([...channelAbsMax(w, [2, 3], 1)], [3, 5, 2]);
});

test('quantizeWeightsAndBias: symmetric per-channel int8 in [-127, 127], bias at in_scale × w_scale', () => {
  const w = new Float32Array([0.5, -1, 0.25, 0.02, -0.011, 0]);
  const { weights, bias } = quantizeWeightsAndBias(w, [2, 3], 0, new Float32Array([0.3, -0.07]), 0.05);
  assert.deepEqual([...weights.scales], [Math.fround(1 / 127), Math.fround(0.02 / 127)]);
  assert.deepEqual([...weights.values], [64, -127, 32, 127, -70, 0]);
  assert.ok(bias);
  assert.deepEqual(
    [...bias.scales],
    [Math.fround(0.05 * Math.fround(1 / 127)), Math.fround(0.05 * Math.fround(0.02 / 127))],
  );
  assert.equal(bias.values[0], Math.round(0.3 / (bias.scales[0] as number)));
  assert.equal(bias.values[1], Math.round(-0.07 / (bias.scales[1] as number)));
  // dequantised weights are within half a step of the originals
  weights.values.forEach((q, i) => {
    const s = weights.scales[Math.floor(i / 3)] as number;
    assert.ok(Math.abs(q * s - (w[i] as number)) <= s / 2 + 1e-9);
  });
});

test('quantizeWeightsAndBias: Gemm weights [in, out] are quantised per column (axis 1)', () => {
  const w = new Float32Array([1, 10, -2, -20]); // [2 in, 2 out]
  const { weights } = quantizeWeightsAndBias(w, [2, 2], 1, undefined, 1);
  assert.deepEqual([...weights.scales], [Math.fround(2 / 127), Math.fround(20 / 127)]);
  assert.deepEqual([...weights.values], [64, 64, -127, -127]);
});

test('quantizeWeightsAndBias: dead channels get scale 1; a bias that would overflow int32 raises the weight scale', () => {
  const w = new Float32Array([0, 0, 1e-9, -1e-9]);
  const { weights, bias } = quantizeWeightsAndBias(w, [2, 2], 0, new Float32Array([0.5, 100]), 1e-3);
  assert.equal(weights.scales[0], 1);
  assert.ok(bias);
  assert.ok(Math.abs(bias.values[1] as number) < 2 ** 31 - 1);
  assert.ok(Math.abs((bias.values[1] as number) * (bias.scales[1] as number) - 100) < 1e-3 * 100);
  assert.throws(() => quantizeWeightsAndBias(w, [2, 2], 0, new Float32Array([1]), 1), RangeError);
});

test('weightScales: |w|max / 127 per channel (float32), a dead channel gets 1', () => {
  const w = new Float32Array([0.5, -1, 0.25, 0, 0, 0, 0.02, -0.011, 0.3]); // [3, 3]
  const rows = weightScales(w, [3, 3], 0);
  assert.deepEqual([...rows], [Math.fround(1 / 127), 1, Math.fround(0.3 / 127)]);
  const cols = weightScales(w, [3, 3], 1);
  const absMax = channelAbsMax(w, [3, 3], 1);
  assert.deepEqual(
    [...cols],
    [...absMax].map((m) => Math.fround(m / 127)),
  );
  // the scales quantizeWeightsAndBias uses when no bias forces them up
  assert.deepEqual([...quantizeWeightsAndBias(w, [3, 3], 0, undefined, 1).weights.scales], [...rows]);
});

test('quantizeWeightsAndBias: pre-rounded values are used as given, on the round-to-nearest scales', () => {
  const w = new Float32Array([0.5, -1, 0.25, 0.02, -0.011, 0]); // [2, 3]
  const scales = weightScales(w, [2, 3], 0);
  // deliberately not the nearest steps (nearest is [64, -127, 32, 127, -70, 0])
  const rounded = { values: new Int8Array([63, -127, 33, 126, -69, 1]), scales };
  const { weights, bias } = quantizeWeightsAndBias(w, [2, 3], 0, new Float32Array([0.3, -0.07]), 0.05, rounded);
  assert.deepEqual([...weights.values], [63, -127, 33, 126, -69, 1]);
  assert.deepEqual([...weights.scales], [...scales]);
  assert.ok(bias);
  assert.equal(bias.values[0], Math.round(0.3 / (bias.scales[0] as number)));
  // Gemm layout [in, out], axis 1: channels are columns
  const g = new Float32Array([1, 10, -2, -20]);
  const gr = { values: new Int8Array([63, 65, -127, -126]), scales: weightScales(g, [2, 2], 1) };
  assert.deepEqual([...quantizeWeightsAndBias(g, [2, 2], 1, undefined, 1, gr).weights.values], [63, 65, -127, -126]);
});

test('quantizeWeightsAndBias: a channel whose bias raises its scale is re-rounded to nearest on that scale', () => {
  const w = new Float32Array([1, -0.5, 3e-9, -1e-9]); // [2, 2]; channel 1 tiny, with a large bias
  const rounded = { values: new Int8Array([126, -62, 100, -100]), scales: weightScales(w, [2, 2], 0) };
  const { weights, bias } = quantizeWeightsAndBias(w, [2, 2], 0, new Float32Array([0.1, 100]), 1e-3, rounded);
  assert.equal(weights.scales[0], Math.fround(1 / 127));
  const s1 = weights.scales[1] as number;
  assert.ok(s1 > (rounded.scales[1] as number) * 1000, 'channel 1 scale was raised');
  assert.deepEqual([...weights.values.slice(0, 2)], [126, -62], 'channel 0 keeps its pre-rounded values');
  assert.deepEqual(
    [...weights.values.slice(2)],
    [roundHalfEven(3e-9 / s1), roundHalfEven(-1e-9 / s1)].map((v) => v + 0),
  );
  assert.ok(bias);
  assert.ok(Math.abs((bias.values[1] as number) * (bias.scales[1] as number) - 100) < 1e-3 * 100);
});

test('quantizeWeightsAndBias: pre-rounded values of the wrong size are rejected', () => {
  const w = new Float32Array([1, 2, 3, 4]);
  const scales = weightScales(w, [2, 2], 0);
  assert.throws(
    () => quantizeWeightsAndBias(w, [2, 2], 0, undefined, 1, { values: new Int8Array(3), scales }),
    RangeError,
  );
  assert.throws(
    () => quantizeWeightsAndBias(w, [2, 2], 0, undefined, 1, { values: new Int8Array(4), scales: new Float32Array(3) }),
    RangeError,
  );
  assert.throws(
    () => quantizeWeightsAndBias(w, [2, 2], 1, undefined, 1, { values: new Int8Array(4), scales: new Float32Array(1) }),
    RangeError,
  );
});
