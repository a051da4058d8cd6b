/** The soak benchmark's arithmetic on small fixtures with known answers (the benchmark itself is not run here). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mulberry32 } from '../../src/train/rng.js';
import {
  abbaOrder,
  blockRatios,
  bootstrapRatio,
  mean,
  quantile,
  summarise,
  type PhaseValues,
} from '../../bench/soak-stats.js';

const oneTo = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

test('quantile takes rank ⌊q·n⌋: p99 of 100 values is the largest, of 1000 the 991st', () => {
  assert.equal(quantile(oneTo(100), 0.99), 100);
  assert.equal(quantile(oneTo(1000), 0.99), 991);
  assert.equal(quantile(oneTo(1000), 0.5), 501);
  assert.equal(quantile([7], 0.99), 7);
  assert.ok(Number.isNaN(quantile([], 0.5)));
});

test('summarise sorts a copy and reports count, p50, p95, p99 and max', () => {
  const values = oneTo(200).reverse();
  assert.deepEqual(summarise(values), { count: 200, p50: 101, p95: 191, p99: 199, max: 200 });
  assert.equal(values[0], 200, 'the input is left as it was');
  const empty = summarise([]);
  assert.equal(empty.count, 0);
  assert.ok(Number.isNaN(empty.p99) && Number.isNaN(empty.max));
});

test('abbaOrder repeats A B B A', () => {
  assert.deepEqual(abbaOrder(2), ['A', 'B', 'B', 'A', 'A', 'B', 'B', 'A']);
  assert.throws(() => abbaOrder(0), RangeError);
  assert.throws(() => abbaOrder(1.5), RangeError);
});

test("the bootstrap's random source (mulberry32) is repeatable for a seed and stays in [0, 1)", () => {
  const a = mulberry32(42);
  const b = mulberry32(42);
  const xs = Array.from({ length: 1000 }, () => a());
  assert.deepEqual(
    xs.slice(0, 5),
    Array.from({ length: 5 }, () => b()),
  );
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  assert.ok(Math.abs(mean(xs) - 0.5) < 0.05, `mean ${mean(xs)}`);
  assert.notDeepEqual(xs.slice(0, 5), Array.from({ length: 5 }, mulberry32(43)));
});

test('mean', () => {
  assert.equal(mean([1, 2, 3, 6]), 3);
  assert.ok(Number.isNaN(mean([])));
});

const p99 = (s: readonly number[]): number => quantile(s, 0.99);

test('bootstrapRatio: settings drawn alike give a ratio near 1 with an interval around it', () => {
  const phase = oneTo(500);
  const r = bootstrapRatio([phase, phase], [phase, phase], p99, 500, 7);
  assert.equal(r.ratio, 1);
  assert.ok(r.lo < 1 && r.hi > 1 - 1e-9 && r.lo > 0.9 && r.hi < 1.1, `${r.lo}–${r.hi}`);
});

test('bootstrapRatio: B twice as slow gives 2, its interval contains 2 and excludes 1', () => {
  const a = [oneTo(400), oneTo(400)];
  const b = a.map((p) => p.map((x) => 2 * x));
  const r = bootstrapRatio(a, b, p99, 500, 3);
  assert.equal(r.ratio, 2);
  assert.ok(r.lo <= 2 && r.hi >= 2 && r.lo > 1.5, `${r.lo}–${r.hi}`);
  assert.deepEqual(bootstrapRatio(a, b, p99, 500, 3), r, 'the same seed gives the same interval');
});

test('bootstrapRatio: a single outlier widens the p99 interval of a small sample', () => {
  const a = [oneTo(100)];
  const b = [[...oneTo(99), 1000]];
  const r = bootstrapRatio(a, b, p99, 1000, 5);
  assert.equal(r.ratio, 10, 'with 100 values p99 is the maximum');
  assert.ok(r.lo < 1.1 && r.hi >= 10, `${r.lo}–${r.hi}`);
});

test('blockRatios pools each block of phases per setting and skips a block without both', () => {
  const phases: PhaseValues[] = [
    { setting: 'A', values: [10] },
    { setting: 'B', values: [11] },
    { setting: 'B', values: [13] },
    { setting: 'A', values: [14] },
    { setting: 'A', values: [20] },
    { setting: 'B', values: [30] },
    { setting: 'B', values: [30] },
    { setting: 'A', values: [20] },
    { setting: 'A', values: [1] },
    { setting: 'A', values: [1] },
  ];
  assert.deepEqual(blockRatios(phases, 4, mean), [1, 1.5]);
  assert.deepEqual(blockRatios(phases.slice(0, 4), 2, mean), [11 / 10, 13 / 14]);
  assert.deepEqual(blockRatios([{ setting: 'A', values: [1] }], 4, mean), []);
});
