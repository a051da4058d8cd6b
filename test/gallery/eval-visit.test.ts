import { test } from 'node:test';
import assert from 'node:assert/strict';
import { combinations, decideVisit, visitRates, type ScoredFrame } from '../../src/gallery/eval.js';
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
// ann's frames, each off her axis in another direction: 0.9, 0.9 and 0.8; the first two cancel off-axis, so the mean of the three is 2.6/√7.12 ≈ 0.974
const ann = [v(0.9, 0, 0.4359, 0), v(0.9, 0, -0.4359, 0), v(0.8, 0, 0, 0.6)].map((d) => frame(0, d));

test('combinations: every choice of m, in order', () => {
  assert.deepEqual(combinations([1, 2, 3], 2), [
    [1, 2],
    [1, 3],
    [2, 3],
  ]);
  assert.deepEqual(combinations([1, 2], 3), []);
});

test('a visit: two frames of three over the threshold are refused by the vote, named by the pool at its own threshold', () => {
  const settings = { k: 3, n: 5 };
  assert.equal(decideVisit(ann, { threshold: 0.85 }, settings), null);
  assert.equal(decideVisit(ann, { threshold: 0.85, pool: { index, threshold: 0.97 } }, settings), 0);
  assert.equal(decideVisit(ann, { threshold: 0.85, pool: { index, threshold: 0.98 } }, settings), null);
  // no more than one frame over the frame threshold: the mean does not stand in for two votes
  assert.equal(decideVisit(ann, { threshold: 0.95, pool: { index, threshold: 0.97 } }, settings), null);
  // the vote still names where it can; with ann left out her frames name nobody
  assert.equal(decideVisit(ann, { threshold: 0.75, pool: { index, threshold: 0.98 } }, settings), 0);
  assert.equal(decideVisit(ann, { threshold: 0.75, pool: { index, threshold: 0.9 } }, settings, 0), null);
  assert.throws(
    () =>
      decideVisit(
        [{ truth: 0, scores: new Float32Array(2) }],
        { threshold: 0.85, pool: { index, threshold: 0.9 } },
        settings,
      ),
    /descriptors/,
  );
  const plain = visitRates(ann, { threshold: 0.85 }, settings);
  const pooled = visitRates(ann, { threshold: 0.85, pool: { index, threshold: 0.97 } }, settings);
  const none = { otherVisits: 0, otherFar: 0 };
  assert.deepEqual(plain, { genuineVisits: 1, strangerVisits: 1, frr: 1, far: 0, ...none });
  assert.deepEqual(pooled, { genuineVisits: 1, strangerVisits: 1, frr: 0, far: 0, ...none });
});

test('a visit goes on after "unknown", as a kiosk track does: a later window may name someone', () => {
  const settings = { k: 3, n: 5 };
  // three frames far off ann's axis (0.6 each: the vote says unknown at the third), then two on it
  const off = [v(0.6, 0, 0.8, 0), v(0.6, 0, -0.8, 0), v(0.6, 0, 0, 0.8)].map((d) => frame(0, d));
  const on = [v(1, 0, 0, 0), v(1, 0, 0, 0)].map((d) => frame(0, d));
  // the vote alone: unknown after three frames, and 3 of the last 5 never agree
  assert.equal(decideVisit([...off, ...on], { threshold: 0.85 }, settings), null);
  // pooled at 0.97: the mean of the first three scores 1.8/√3.88 ≈ 0.91, of four 2.8/√8.48 ≈ 0.96, of five 3.8/√15.08 ≈ 0.98
  const pool = { index, threshold: 0.97 };
  assert.equal(decideVisit([...off, ...on], { threshold: 0.85, pool }, settings), 0);
  assert.equal(decideVisit([...off, on[0]!], { threshold: 0.85, pool }, settings), null);
  // and a third frame on the axis: the vote names her too, after its "unknown"
  assert.equal(decideVisit([...off, ...on, on[0]!], { threshold: 0.85 }, settings), 0);
});

test('strangers of one folder make visits of their own, decided against the whole gallery', () => {
  const settings = { k: 3, n: 5 };
  const stranger = (d: Float32Array, group: string): ScoredFrame => ({ ...frame(-1, d), group });
  const near = [v(0.9, 0.1, 0.4, 0), v(0.9, 0.1, -0.4, 0), v(0.9, 0.1, 0, 0.4)];
  const frames = [...near.map((d) => stranger(d, 'x')), stranger(v(0, 0, 1, 0), 'y')];
  // one visit (folder y has too few photos), named ann by the vote at 0.85
  assert.deepEqual(
    [visitRates(frames, { threshold: 0.85 }, settings)].map((r) => [r.otherVisits, r.otherFar]),
    [[1, 1]],
  );
  assert.equal(visitRates(frames, { threshold: 0.95 }, settings).otherFar, 0);
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
