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
