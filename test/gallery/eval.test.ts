/** The gallery evaluation's scoring (pure): the score each frame is decided by, with and without gallery.norm margin. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bestOf, impostorScores, leaveOneOutFar, type ScoredFrame } from '../../src/gallery/eval.js';
import { marginScore } from '../../src/gallery/match.js';

const s = (...xs: number[]): Float32Array => Float32Array.from(xs);

test('bestOf: the best person and score, the excluded one ignored; with a weight the margin score over the runner-up', () => {
  const scores = s(0.9, 0.97, 0.95, 0.5);
  assert.deepEqual(bestOf(scores), { who: 1, score: scores[1] });
  assert.deepEqual(bestOf(scores, 1), { who: 2, score: scores[2] });
  assert.deepEqual(bestOf(scores, -1, 0.5), { who: 1, score: marginScore(scores[1]!, scores[2]!, 0.5) });
  assert.deepEqual(bestOf(scores, 1, 0.5), { who: 2, score: marginScore(scores[2]!, scores[0]!, 0.5) });
  assert.deepEqual(bestOf(s(0.8), -1, 0.5), { who: 0, score: s(0.8)[0] }, 'no runner-up: the plain score');
});

test('leave-one-out FAR and impostor scores use the same decision score as the kiosk', () => {
  // Person 0's probe: without them the best is 0.96, the runner-up 0.95 — close, a stranger's pattern.
  const frames: ScoredFrame[] = [
    { truth: 0, scores: s(0.99, 0.96, 0.95) },
    { truth: 1, scores: s(0.7, 0.98, 0.6) },
  ];
  assert.equal(leaveOneOutFar(frames, 0.955), 0.5, 'cosine: 0.96 passes 0.955');
  const m = marginScore(s(0.96)[0]!, s(0.95)[0]!, 0.5);
  assert.equal(leaveOneOutFar(frames, m + 1e-6, 0.5), 0, 'margin: a lead of 0.01 adds too little');
  assert.deepEqual(impostorScores(frames, 0.5), [m, marginScore(s(0.7)[0]!, s(0.6)[0]!, 0.5)]);
});

test('fitMarginThresholds: seeded, monotone, every photo of the pool people left out a stranger; with weight 0 the raw threshold’s share', async () => {
  const { fitMarginThresholds } = await import('../../src/gallery/eval.js');
  const { thresholdForGallery } = await import('../../src/gallery/match.js');
  const { mulberry32 } = await import('../../src/train/rng.js');
  const rng = mulberry32(3);
  // 40 pool people, 3 photos each (the last 10: 2), 8-d vectors around a person's own direction
  const vectors = new Map<string, Float32Array>();
  const pool = Array.from({ length: 40 }, (_, p) => {
    const centre = Array.from({ length: 8 }, () => rng() - 0.5);
    const files = Array.from({ length: p < 30 ? 3 : 2 }, (_, k) => {
      const f = `p${p}/${k}.jpg`;
      vectors.set(
        f,
        Float32Array.from(centre, (c) => c + 0.3 * (rng() - 0.5)),
      );
      return f;
    });
    return { person: `p${p}`, files };
  });
  const protocol = { minPhotos: 6, enrolPerPerson: 3, enrolled: [], probes: [], pool, strangers: [] };
  const tail = { t0: 0.6, q0: 0.1, beta: 0.05 };
  const o = { scoring: { rule: 'centroid' as const }, enrol: 3, sizes: [5, 20], draws: () => 4, tail, targetFar: 0.01 };
  const fit = fitMarginThresholds(protocol, (f) => vectors.get(f) ?? null, { ...o, weight: 0.5, seed: 7 });
  assert.deepEqual(
    fit,
    fitMarginThresholds(protocol, (f) => vectors.get(f) ?? null, { ...o, weight: 0.5, seed: 7 }),
  );
  assert.deepEqual(fit.people, [5, 20]);
  assert.equal(fit.weight, 0.5);
  assert.ok(fit.thresholds[1]! >= fit.thresholds[0]!, 'a larger gallery never gets a lower threshold');
  // 5 people enrolled of 40 (those with 3 photos first): 35 left out, 25 × 3 + 10 × 2 photos, 4 draws
  assert.equal(fit.strangers[0], 4 * (25 * 3 + 10 * 2));
  assert.equal(fit.strangers[1], 4 * (10 * 3 + 10 * 2));
  // weight 0: the margin score is the cosine, so the threshold lets in what the raw one does and is no higher
  const raw = fitMarginThresholds(protocol, (f) => vectors.get(f) ?? null, { ...o, weight: 0, seed: 7 });
  assert.ok(raw.thresholds[0]! <= thresholdForGallery(5, { tail }));
  assert.ok(raw.rawFar[0]! > 0 && raw.rawFar[0]! < 1, 'the fixture lets some strangers in');
});

test('a gallery enrolled at another detector size: the templates (the pool galleries’ too) from their own descriptors, the probes from theirs', async () => {
  const { poolImpostorScores, templateFiles } = await import('../../src/gallery/eval.js');
  const pool = [
    { person: 'a', files: ['a1', 'a2', 'a3'] },
    { person: 'b', files: ['b1', 'b2', 'b3'] },
    { person: 'c', files: ['c1'] },
  ];
  const protocol = {
    minPhotos: 6,
    enrolPerPerson: 2,
    enrolled: [{ person: 'e', files: ['e1', 'e2'] }],
    probes: [{ person: 'e', files: ['e3'] }],
    pool,
    strangers: ['x1'],
  };
  assert.deepEqual(templateFiles(protocol, false), ['e1', 'e2']);
  assert.deepEqual(templateFiles(protocol, true), ['e1', 'e2', 'a1', 'a2', 'b1', 'b2'], 'c has too few photos');
  // Probe descriptors all point one way, the templates another: every impostor score is their cosine.
  const probe = (): Float32Array => s(1, 0);
  const template = (): Float32Array => s(0.6, 0.8);
  const scoring = { rule: 'centroid' as const };
  const mixed = poolImpostorScores(protocol, probe, scoring, 2, 1, template);
  assert.equal(mixed.people, 2);
  // a's gallery against b's 3 photos and c's 1, and b's against a's 3 and c's 1
  assert.equal(mixed.scores.length, 8);
  for (const x of mixed.scores) assert.ok(Math.abs(x - 0.6) < 1e-6);
  const same = poolImpostorScores(protocol, probe, scoring, 2);
  for (const x of same.scores) assert.ok(Math.abs(x - 1) < 1e-6, 'default: the templates from the probes’ descriptors');
});
