import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildIndex,
  decisionScore,
  DLIB_FLIP_CENTROID_IMPOSTOR_TAIL,
  DLIB_FLIP_CENTROID_MARGIN,
  fitImpostorTail,
  galleryDecision,
  marginScore,
  marginThreshold,
  personScores,
  search,
  tailQuantile,
  thresholdForGallery,
  type GalleryEntry,
} from '../../src/gallery/match.js';

const v = (...xs: number[]): Float32Array => Float32Array.from(xs);

// Two people in 3-d: alice has templates along x and along y; bob one along z.
const entries: GalleryEntry[] = [
  { personId: 'alice', templates: [v(2, 0, 0), v(0, 3, 0)] },
  { personId: 'bob', templates: [v(0, 0, 5)] },
];

test('best: a person scores the best cosine over their templates (templates and probe normalised)', () => {
  const index = buildIndex(entries);
  assert.equal(index.people, 2);
  assert.equal(index.stride, 16);
  assert.equal(index.matrix.length, 3 * 16);
  const s = personScores(index, v(10, 0, 0));
  assert.ok(Math.abs(s[0]! - 1) < 1e-6);
  assert.ok(Math.abs(s[1]! - 0) < 1e-6);
  const r = search(index, v(1, 1, 1));
  // cos((1,1,1),(1,0,0)) = 1/√3 for both of alice's; bob's also 1/√3: tie → first wins
  assert.equal(r.best?.personId, 'alice');
  assert.ok(Math.abs(r.best.score - 1 / Math.sqrt(3)) < 1e-6);
  assert.equal(r.second?.personId, 'bob');
});

test('centroid: the cosine to the unit mean of the unit templates', () => {
  const index = buildIndex(entries, { rule: 'centroid' });
  assert.equal(index.matrix.length, 2 * index.stride);
  const s = personScores(index, v(1, 0, 0));
  // centroid of (1,0,0),(0,1,0) is (1,1,0)/√2 → cosine 1/√2
  assert.ok(Math.abs(s[0]! - Math.SQRT1_2) < 1e-6);
});

test('top-k: the mean of the k best template scores (k larger than a person has: all of them)', () => {
  const three: GalleryEntry[] = [{ personId: 'a', templates: [v(1, 0), v(0, 1), v(-1, 0)] }];
  const probe = v(3, 4); // cosines 0.6, 0.8, −0.6
  const k2 = personScores(buildIndex(three, { rule: 'top-k', k: 2 }), probe);
  assert.ok(Math.abs(k2[0]! - 0.7) < 1e-6);
  const k5 = personScores(buildIndex(three, { rule: 'top-k', k: 5 }), probe);
  assert.ok(Math.abs(k5[0]! - (0.6 + 0.8 - 0.6) / 3) < 1e-6);
  const k1 = personScores(buildIndex(three, { rule: 'top-k', k: 1 }), probe);
  assert.ok(Math.abs(k1[0]! - 0.8) < 1e-6);
});

test('search ranks people, not templates: a person with two close templates is counted once', () => {
  const index = buildIndex([
    { personId: 'a', templates: [v(1, 0), v(0.99, 0.1)] },
    { personId: 'b', templates: [v(0.6, 0.8)] },
  ]);
  const r = search(index, v(1, 0));
  assert.equal(r.best?.personId, 'a');
  assert.equal(r.second?.personId, 'b');
  assert.ok(Math.abs(r.second.score - 0.6) < 1e-6);
});

test('an empty gallery finds nobody; people without templates are left out; one person has no second', () => {
  assert.deepEqual(search(buildIndex([]), v(1, 0)), { best: null, second: null });
  const index = buildIndex([
    { personId: 'none', templates: [] },
    { personId: 'x', templates: [v(0, 1)] },
  ]);
  assert.deepEqual(index.personIds, ['x']);
  const r = search(index, v(0, 2));
  assert.equal(r.best?.personId, 'x');
  assert.equal(r.second, null);
});

test('descriptors of another length are refused with what to do', () => {
  assert.throws(() => buildIndex([{ personId: 'a', templates: [v(1, 0), v(1, 0, 0)] }]), /one descriptor model/);
  assert.throws(() => search(buildIndex(entries), v(1, 0)), /describe it with the gallery's model/);
});

test('the tail fit: t0 is the (1 − q0) quantile and beta the mean excess above it', () => {
  // 0, 1, …, 999: the top 1 % are 990…999; t0 = 989, mean excess = 5.5
  const scores = Array.from({ length: 1000 }, (_, i) => i);
  const tail = fitImpostorTail(scores, 0.01);
  assert.equal(tail.t0, 989);
  assert.equal(tail.q0, 0.01);
  assert.ok(Math.abs(tail.beta - 5.5) < 1e-9);
  assert.throws(() => fitImpostorTail([1, 2, 3]), /needs/);
});

test('tailQuantile inverts the exponential tail', () => {
  const tail = { t0: 0.5, q0: 0.01, beta: 0.05 };
  assert.equal(tailQuantile(tail, 0.01), 0.5);
  assert.ok(Math.abs(tailQuantile(tail, 0.001) - (0.5 + 0.05 * Math.log(10))) < 1e-12);
});

test('thresholdForGallery: one person at the target FAR is t0; it rises by beta·ln(10) per tenfold gallery', () => {
  const tail = { t0: 0.5, q0: 0.01, beta: 0.05 };
  assert.ok(Math.abs(thresholdForGallery(1, { targetFar: 0.01, tail }) - 0.5) < 1e-12);
  const t10 = thresholdForGallery(10, { targetFar: 0.01, tail });
  const t100 = thresholdForGallery(100, { targetFar: 0.01, tail });
  const t1000 = thresholdForGallery(1000, { targetFar: 0.01, tail });
  assert.ok(t10 > 0.5 && t100 > t10 && t1000 > t100);
  // per-person rate 1 − 0.99^(1/n) ≈ 0.01/n, so each tenfold step adds ≈ beta·ln 10
  assert.ok(Math.abs(t1000 - t100 - 0.05 * Math.log(10)) < 1e-3);
  // a stricter target means a higher threshold; no people counts as one
  assert.ok(thresholdForGallery(100, { targetFar: 0.001, tail }) > t100);
  assert.equal(thresholdForGallery(0, { tail }), thresholdForGallery(1, { tail }));
  assert.throws(() => thresholdForGallery(10, { targetFar: 0 }), /targetFar/);
});

test('the WebAssembly kernel gives the dot products of a plain loop (odd sizes, many rows)', () => {
  const dims = 37;
  const rows = 50;
  let seed = 7;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const entries: GalleryEntry[] = Array.from({ length: rows }, (_, i) => ({
    personId: `p${i}`,
    templates: [Float32Array.from({ length: dims }, rnd)],
  }));
  const index = buildIndex(entries);
  assert.ok(index.kernel, 'WebAssembly SIMD is available in Node 20');
  const probe = Float32Array.from({ length: dims }, rnd);
  const got = personScores(index, probe);
  const pn = Math.hypot(...probe);
  entries.forEach((e, i) => {
    const t = e.templates[0]!;
    let d = 0;
    for (let j = 0; j < dims; j++) d += t[j]! * probe[j]!;
    const want = d / (Math.hypot(...t) * pn);
    assert.ok(Math.abs(got[i]! - want) < 1e-5, `row ${i}: ${got[i]} vs ${want}`);
  });
});

test('marginScore: the best score plus the weighted lead over the runner-up', () => {
  assert.equal(marginScore(0.96, 0.9, 0.5), 0.96 + 0.5 * 0.06);
  assert.equal(marginScore(0.95, 0.95, 0.5), 0.95, 'no lead: the plain score');
  assert.equal(marginScore(0.97, 0.5, 0), 0.97);
});

const cal = { weight: 0.5, targetFar: 0.01, people: [200, 300, 1000], thresholds: [0.96, 0.97, 0.99] };

test('marginThreshold: the table at its sizes, linear in log size between, null outside it', () => {
  assert.equal(marginThreshold(200, cal), 0.96);
  assert.equal(marginThreshold(300, cal), 0.97);
  assert.equal(marginThreshold(1000, cal), 0.99);
  // √(200·300) is half-way in log size
  assert.ok(Math.abs(marginThreshold(Math.sqrt(200 * 300), cal)! - 0.965) < 1e-12);
  assert.ok(Math.abs(marginThreshold(Math.sqrt(300 * 1000), cal)! - 0.98) < 1e-12);
  assert.equal(marginThreshold(199, cal), null);
  assert.equal(marginThreshold(1001, cal), null);
  assert.equal(marginThreshold(500, { ...cal, people: [500], thresholds: [0.95] }), 0.95);
  const t = DLIB_FLIP_CENTROID_MARGIN;
  assert.equal(t.people.length, t.thresholds.length);
  for (let i = 1; i < t.people.length; i++) {
    assert.ok(t.people[i]! > t.people[i - 1]!);
    assert.ok(t.thresholds[i]! >= t.thresholds[i - 1]!, 'a larger gallery never gets a lower threshold');
  }
});

test('galleryDecision: the margin threshold inside the table, the tail threshold outside it or without a calibration', () => {
  const tail = DLIB_FLIP_CENTROID_IMPOSTOR_TAIL;
  assert.deepEqual(galleryDecision(300, { tail, margin: cal }), { threshold: 0.97, weight: 0.5 });
  for (const n of [1, 10, 199, 1001])
    assert.deepEqual(galleryDecision(n, { tail, margin: cal }), {
      threshold: thresholdForGallery(n, { tail }),
      weight: null,
    });
  assert.deepEqual(galleryDecision(300, { tail }), { threshold: thresholdForGallery(300, { tail }), weight: null });
  // fitted for 1 %: another target falls back to the tail
  assert.equal(galleryDecision(300, { tail, margin: cal, targetFar: 0.001 }).weight, null);
});

test('decisionScore: the best score, or its margin score when a weight is in force', () => {
  const r = { best: { personId: 'a', score: 0.97 }, second: { personId: 'b', score: 0.93 } };
  assert.equal(decisionScore(r, null), 0.97);
  assert.equal(decisionScore(r, 0.5), 0.97 + 0.5 * 0.04);
  assert.equal(decisionScore({ best: r.best, second: null }, 0.5), 0.97, 'one person: no runner-up to lead');
  assert.equal(decisionScore({ best: null, second: null }, 0.5), -Infinity);
});
