import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Histogram,
  RangeCollector,
  entropyRange,
  histogramFor,
  klDivergence,
  percentileRange,
} from '../../../src/model/quantize/ranges.js';
import { mulberry32 } from '../../../src/train/rng.js';

test('RangeCollector keeps the min and max over batches and rejects NaN', () => {
  const c = new RangeCollector();
  assert.throws(() => c.range(), RangeError);
  c.update(new Float32Array([1, -2, 3]));
  c.update(new Float32Array([0.5, 7]));
  assert.deepEqual(c.range(), { min: -2, max: 7 });
  assert.throws(() => c.update(new Float32Array([Number.NaN])), RangeError);
});

test('Histogram counts values into equal bins, clamping at the ends', () => {
  const h = new Histogram(0, 4, 4);
  h.update(new Float32Array([0, 0.5, 1, 3.99, 4, 10, -1]));
  assert.deepEqual([...h.counts], [3, 1, 0, 3]);
  assert.equal(h.edge(2), 2);
  assert.throws(() => new Histogram(1, 1), RangeError);
});

test('histogramFor: non-negative data from 0, signed data symmetric for entropy', () => {
  assert.equal(histogramFor('entropy', { min: 0, max: 6 })?.lo, 0);
  const e = histogramFor('entropy', { min: -2, max: 5 });
  assert.deepEqual([e?.lo, e?.hi], [-5, 5]);
  const p = histogramFor('percentile', { min: -2, max: 5 });
  assert.deepEqual([p?.lo, p?.hi], [-2, 5]);
  assert.equal(histogramFor('entropy', { min: 0, max: 0 }), undefined);
});

/** 100 000 half-normal values (|N(0, 1)|, like a ReLU's output) plus a few far outliers. */
function withOutliers(): { values: Float32Array; observed: { min: number; max: number } } {
  const r = mulberry32(7);
  const values = new Float32Array(100_005);
  for (let i = 0; i < 100_000; i++)
    values[i] = Math.abs(Math.sqrt(-2 * Math.log(Math.max(r(), 1e-12))) * Math.cos(2 * Math.PI * r()));
  values.set([50, 60, 70, 80, 100], 100_000);
  return { values, observed: { min: 0, max: 100 } };
}

test('percentileRange cuts rare outliers and never widens the observed range', () => {
  const { values, observed } = withOutliers();
  const h = histogramFor('percentile', observed) as Histogram;
  h.update(values);
  const r = percentileRange(h, observed, 99.99); // cuts 0.005 % = 5 values a side
  assert.equal(r.min, 0);
  assert.ok(r.max <= 6, `max ${r.max} should drop to the bulk of the data`);
  assert.deepEqual(percentileRange(h, observed, 100), observed);
  assert.throws(() => percentileRange(h, observed, 0), RangeError);
});

test('klDivergence is 0 for equal distributions and positive otherwise', () => {
  assert.equal(klDivergence(new Float64Array([1, 2, 3]), new Float64Array([2, 4, 6])), 0);
  assert.ok(klDivergence(new Float64Array([1, 2, 3]), new Float64Array([3, 2, 1])) > 0.1);
});

test('entropyRange clips far outliers, keeps a dense range whole', () => {
  const { values, observed } = withOutliers();
  const h = histogramFor('entropy', observed) as Histogram;
  h.update(values);
  const r = entropyRange(h, observed);
  assert.equal(r.min, 0);
  assert.ok(r.max < 50, `threshold ${r.max} should clip the outliers (50…100)`);
  assert.ok(r.max >= 2, `threshold ${r.max} should not cut deep into the bulk`);

  // Signed, symmetric data without outliers: the window stays near the full range.
  const rand = mulberry32(3);
  const signed = Float32Array.from({ length: 50_000 }, () => rand() * 2 - 1);
  const hs = histogramFor('entropy', { min: -1, max: 1 }) as Histogram;
  hs.update(signed);
  const rs = entropyRange(hs, { min: -1, max: 1 });
  assert.ok(rs.min < -0.85 && rs.max > 0.85, `got [${rs.min}, ${rs.max}]`);
});
