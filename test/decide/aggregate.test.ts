import { test } from 'node:test';
import assert from 'node:assert/strict';
import { meanDescriptor } from '../../src/decide/aggregate.js';
import { decideWindow, framesBack, kOfN } from '../../src/decide/voting.js';
import { Decider } from '../../src/decide/decider.js';
import type { Match, PoolableFace } from '../../src/shared/messages.js';

const close = (a: ArrayLike<number>, b: readonly number[]): void =>
  assert.deepEqual(
    Array.from(a, (x) => Math.round(x * 1e4) / 1e4),
    b.map((x) => Math.round(x * 1e4) / 1e4),
  );

test('mean descriptor: the unit mean of the unit vectors (lengths do not weigh)', () => {
  close(meanDescriptor([Float32Array.of(2, 0), Float32Array.of(0, 5)]), [Math.SQRT1_2, Math.SQRT1_2]);
  close(meanDescriptor([Float32Array.of(3, 4)]), [0.6, 0.8]);
  close(meanDescriptor([Float32Array.of(1, 0), Float32Array.of(-1, 0)]), [0, 0]);
  assert.throws(() => meanDescriptor([]), /at least one frame/);
  assert.throws(() => meanDescriptor([Float32Array.of(1, 0), Float32Array.of(1, 0, 0)]), /one descriptor model/);
});

test('decideWindow: an aggregate of ≥ k frames that names someone the frames back wins; otherwise the vote decides', () => {
  const v = (label: string | null) => ({ label, score: 0.9, margin: 0.1, faceSize: 80 });
  const votes = [v('ann'), v(null), v('ann')];
  const named = { label: 'ann', score: 0.97, margin: 0.05, frames: 3, faceSize: 70 };
  assert.deepEqual(decideWindow(votes, 3, 5, named), {
    kind: 'recognized',
    label: 'ann',
    score: 0.97,
    votes: 3,
    margin: 0.05,
    faceSize: 70,
  });
  // too few frames pooled, or the aggregate under its threshold: the vote as before
  assert.deepEqual(decideWindow(votes, 3, 5, { ...named, frames: 2 }), kOfN(votes, 3, 5));
  assert.deepEqual(decideWindow(votes, 3, 5, { ...named, label: null }), { kind: 'undecided' });
  // fewer than k − 1 frames name her at the frame threshold: the mean does not stand in for two votes
  const short = [v(null), v(null), v(null), v('ann')];
  assert.deepEqual(decideWindow(short, 3, 5, named), { kind: 'unknown', votes: 3 });
  // only the last n votes count: two that named her have left the window
  assert.deepEqual(decideWindow([v('ann'), v('ann'), v(null), v(null), v(null)], 3, 3, named).kind, 'unknown');
  assert.deepEqual(decideWindow([v('bob'), v('bob'), v(null)], 3, 5, named), kOfN([v('bob'), v('bob'), v(null)], 3, 5));
  assert.deepEqual(decideWindow([v('bob'), v('bob'), v('bob')], 3, 5), kOfN([v('bob'), v('bob'), v('bob')], 3, 5));
});

test('framesBack: k − 1 of the last n frames name the person', () => {
  const v = (label: string | null) => ({ label, score: 0.9 });
  assert.equal(framesBack([v('ann'), v(null), v('ann')], 'ann', 3, 5), true);
  assert.equal(framesBack([v('ann'), v(null), v('bob')], 'ann', 3, 5), false);
  assert.equal(framesBack([v('ann'), v('ann'), v(null), v(null), v(null)], 'ann', 3, 3), false);
  assert.equal(framesBack([v(null)], 'ann', 1, 5), true);
});

/** A face whose pooled score names `who` only when the mean has pooled ≥ 3 distinct directions. */
function poolable(descriptor: Float32Array, source = 'dlib'): PoolableFace {
  return {
    descriptor,
    source,
    score: (mean) => {
      const score = mean[0]!; // the mean's first component: higher as the frames agree on it
      return { label: score >= 0.9 ? 'ann' : null, score, margin: 0.2 };
    },
  };
}

function match(descriptor: Float32Array | null, source = 'dlib', label: string | null = null): Match {
  return {
    face: { frameId: 0, box: { x: 0, y: 0, width: 60, height: 50 }, score: 0.9, keypoints: [] },
    label, // by default no single frame reaches the threshold
    candidate: 'ann',
    similarity: 0.94,
    probability: 0,
    margin: 0.1,
    ...(descriptor ? { pool: poolable(descriptor, source) } : {}),
  };
}

// Three frames, each off the person's direction in a different way; their mean is close to it.
const frames = [Float32Array.of(0.8, 0.6, 0), Float32Array.of(0.8, -0.6, 0), Float32Array.of(0.8, 0, 0.6)];

test('decider with pool: the mean of the track names a person two frames name, the vote wanting three', () => {
  const d = new Decider({ k: 3, n: 5, cooldownMs: 0 });
  assert.deepEqual(d.update(1, 0, [match(frames[0]!, 'dlib', 'ann')]), []);
  assert.deepEqual(d.update(2, 10, [match(frames[1]!)]), []);
  const out = d.update(3, 20, [match(frames[2]!, 'dlib', 'ann')]);
  assert.equal(out.length, 1);
  assert.equal(out[0]!.kind, 'recognized');
  assert.equal(out[0]!.name, 'ann');
  assert.equal(out[0]!.margin, 0.2);
  assert.equal(out[0]!.faceSize, 50);
  assert.ok(out[0]!.score > 0.9);
});

test('decider with pool: a mean no more than one frame backs names nobody', () => {
  const d = new Decider({ k: 3, n: 5, cooldownMs: 0 });
  const out = frames.flatMap((f, i) => d.update(i, i * 10, [match(f, 'dlib', i === 0 ? 'ann' : null)]));
  assert.deepEqual(
    out.map((x) => x.kind),
    [],
  );
});

test('decider without pool, or frames of different models, or frames without descriptors: the vote alone', () => {
  // two frames of three name ann: the pooled mean would name her (above); the vote alone names nobody
  const labels = ['ann', null, 'ann'];
  const off = new Decider({ k: 3, n: 5, cooldownMs: 0, pool: false });
  assert.deepEqual(
    frames.flatMap((f, i) => off.update(i, i * 10, [match(f, 'dlib', labels[i])])),
    [],
  );
  const mixed = new Decider({ k: 3, n: 5, cooldownMs: 0 });
  const sources = ['dlib', 'other', 'other'];
  assert.deepEqual(
    frames.flatMap((f, i) => mixed.update(i, i * 10, [match(f, sources[i], labels[i])])),
    [],
  );
  const gap = new Decider({ k: 3, n: 5, cooldownMs: 0 });
  const seq = [match(frames[0]!, 'dlib', 'ann'), match(null), match(frames[1]!), match(frames[2]!, 'dlib', 'ann')];
  assert.deepEqual(
    seq.flatMap((m, i) => gap.update(i, i * 10, [m])),
    [],
  );
});

test('decider: a track reported unknown goes on being decided, and a later window names the person', () => {
  const d = new Decider({ k: 3, n: 5, cooldownMs: 0 });
  // three frames far off ann (no pooled mean reaches 0.9), then two that name her: the mean of five reaches it
  const off = [Float32Array.of(0.3, 0.95, 0), Float32Array.of(0.3, -0.95, 0), Float32Array.of(0.3, 0, 0.95)];
  const on = [Float32Array.of(1, 0, 0), Float32Array.of(1, 0, 0)];
  const out = [...off, ...on].flatMap((f, i) => d.update(i, i * 10, [match(f, 'dlib', i < 3 ? null : 'ann')]));
  assert.deepEqual(
    out.map((x) => [x.kind, x.name, x.frameId]),
    [
      ['unknown', null, 2],
      ['recognized', 'ann', 4],
    ],
  );
});
