import { test } from 'node:test';
import assert from 'node:assert/strict';
import { combinations, decideVisit, pooledFrames, visitRates, type ScoredFrame } from '../../src/gallery/eval.js';
import { aggregateThreshold, buildIndex, personScores, thresholdForGallery } from '../../src/gallery/match.js';
import { poolable } from '../../src/gallery/recognise.js';

const v = (...x: number[]): Float32Array => Float32Array.from(x);
// Two people on the first two axes; a probe tilted off its person's axis scores 0.8.
const index = buildIndex(
  [
    { personId: 'ann', templates: [v(1, 0, 0, 0)] },
    { personId: 'bob', templates: [v(0, 1, 0, 0)] },
  ],
  { rule: 'centroid' },
);
const frame = (truth: number, d: Float32Array): ScoredFrame => ({
  truth,
  scores: personScores(index, d),
  descriptor: d,
});
// ann's frames, each off her axis in another direction: every one 0.8; the first two cancel off-axis, so the mean of the three is 2.4/√6.12 ≈ 0.970
const ann = [v(0.8, 0, 0.6, 0), v(0.8, 0, -0.6, 0), v(0.8, 0, 0, 0.6)].map((d) => frame(0, d));

test('combinations: every choice of m, in order', () => {
  assert.deepEqual(combinations([1, 2, 3], 2), [
    [1, 2],
    [1, 3],
    [2, 3],
  ]);
  assert.deepEqual(combinations([1, 2], 3), []);
});

test('pooled frames: the mean of the window ending at each frame, scored (one person left out plays a stranger)', () => {
  const p = pooledFrames(ann, index, 5);
  assert.deepEqual(
    p.map((x) => [x.who, Math.round(x.score * 1000) / 1000]),
    [
      [0, 0.8],
      [0, 1],
      [0, 0.97],
    ],
  );
  // a window of 2: the third mean pools frames 2 and 3 only
  assert.equal(Math.round(pooledFrames(ann, index, 2)[2]!.score * 1000) / 1000, 0.883);
  assert.equal(pooledFrames(ann, index, 5, 0)[2]!.who, 1);
  assert.throws(() => pooledFrames([{ truth: 0, scores: new Float32Array(2) }], index, 5), /descriptors/);
});

test('a visit: frames under the threshold are refused by the vote, named by the pool at its own threshold', () => {
  const settings = { k: 3, n: 5 };
  const best = ann.map((f) => ({ who: 0, score: f.scores[0]! }));
  assert.equal(decideVisit(best, 0.85, settings), null);
  assert.equal(decideVisit(best, 0.85, settings, { frames: pooledFrames(ann, index, 5), threshold: 0.9 }), 0);
  assert.equal(decideVisit(best, 0.85, settings, { frames: pooledFrames(ann, index, 5), threshold: 0.98 }), null);
  // the vote still names where it can
  assert.equal(decideVisit(best, 0.75, settings, { frames: pooledFrames(ann, index, 5), threshold: 0.98 }), 0);
  const plain = visitRates(ann, 0.85, settings);
  const pooled = visitRates(ann, 0.85, settings, { index, threshold: 0.9 });
  assert.deepEqual(plain, { genuineVisits: 1, strangerVisits: 1, frr: 1, far: 0 });
  assert.deepEqual(pooled, { genuineVisits: 1, strangerVisits: 1, frr: 0, far: 0 });
});

test('aggregate threshold: the gallery threshold at a tenth of the target FAR, from the aggregate tail', () => {
  const tail = { t0: 0.9497, q0: 0.001, beta: 0.0046 };
  assert.equal(aggregateThreshold(249, tail), thresholdForGallery(249, { targetFar: 0.001, tail }));
  assert.equal(Math.round(aggregateThreshold(249, tail) * 1e4) / 1e4, 0.9751);
});

test('poolable: a mean descriptor named only at the aggregate threshold, by name', () => {
  const snap = { index, names: new Map([['ann', 'Ann']]), aggregateThreshold: 0.9 };
  const p = poolable(snap, v(1, 0, 0, 0), 'dlib:x');
  assert.ok(p);
  assert.deepEqual(p.score(v(0.95, 0.05, 0.3, 0)).label, 'Ann');
  assert.equal(p.score(v(0.8, 0, 0.6, 0)).label, null);
  assert.equal(Math.round(p.score(v(0.8, 0, 0.6, 0)).margin * 100) / 100, 0.8);
  assert.equal(poolable({ index, names: snap.names }, v(1, 0, 0, 0), 'dlib:x'), undefined);
});
