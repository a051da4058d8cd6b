import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kOfN } from '../../src/decide/voting.js';
import { IouTracker } from '../../src/decide/tracker.js';
import { Decider } from '../../src/decide/decider.js';
import type { Box, Match } from '../../src/shared/messages.js';

test('k of n: a name needs k agreeing votes in the last n', () => {
  const v = (label: string | null, score = 0.8) => ({ label, score });
  assert.deepEqual(kOfN([v('a'), v('b'), v('a')], 3, 5), { kind: 'undecided' });
  assert.deepEqual(kOfN([v('a', 0.5), v('b'), v('a', 0.75), v('a', 1)], 3, 5), {
    kind: 'recognized',
    label: 'a',
    score: 0.75,
    votes: 3,
    margin: NaN, // these votes carry no margin or face size: a door never opens on them
    faceSize: NaN,
  });
  // only the last n count
  assert.deepEqual(kOfN([v('a'), v('a'), v('b'), v('b'), v('a')], 2, 3), {
    kind: 'recognized',
    label: 'b',
    score: 0.8,
    votes: 2,
    margin: NaN,
    faceSize: NaN,
  });
  // margin: mean over the agreeing frames; face size: the smallest of them
  const m = (label: string | null, margin: number, faceSize: number) => ({ label, score: 0.5, margin, faceSize });
  assert.deepEqual(kOfN([m('a', 0.2, 90), m('b', 0.1, 10), m('a', 0.6, 120), m('a', 0.7, 100)], 3, 5), {
    kind: 'recognized',
    label: 'a',
    score: 0.5,
    votes: 3,
    margin: 0.5,
    faceSize: 90,
  });
  assert.deepEqual(kOfN([v(null), v(null), v('a')], 2, 3), { kind: 'unknown', votes: 2 });
  // tie between names: the more recent wins
  assert.equal((kOfN([v('a'), v('b'), v('a'), v('b')], 2, 4) as { label: string }).label, 'b');
  assert.throws(() => kOfN([], 3, 2), RangeError);
});

const box = (x: number): Box => ({ x, y: 0, width: 10, height: 10 });

test('IoU tracker keeps ids for overlapping boxes, starts new ones, expires old ones', () => {
  const t = new IouTracker({ iouThreshold: 0.3, maxAgeFrames: 1 });
  assert.deepEqual(t.update(1, 0, [box(0), box(100)]).ids, [1, 2]);
  assert.deepEqual(t.update(2, 0, [box(101), box(2)]).ids, [2, 1]);
  assert.deepEqual(t.update(3, 0, [box(50)]).ids, [3]);
  assert.deepEqual(t.update(4, 0, [box(50)]).expired.sort(), [1, 2]);
  assert.equal(t.size, 1);
});

function match(x: number, label: string | null, similarity = 0.9): Match {
  return {
    face: { frameId: 0, box: box(x), score: 0.9, keypoints: [] },
    label,
    candidate: label ?? 'someone',
    similarity,
    probability: 0.9,
    margin: 0.8,
  };
}

test('decider: names after k of n frames, once per cooldown, unknown once per track', () => {
  const d = new Decider({ k: 2, n: 3, cooldownMs: 1000, iouThreshold: 0.3 });
  assert.deepEqual(d.update(1, 0, [match(0, 'ann')]), []);
  const named = d.update(2, 100, [match(1, 'ann', 0.7)]);
  assert.equal(named.length, 1);
  assert.deepEqual(
    { ...named[0], score: Math.round(named[0]!.score * 100) / 100 },
    { kind: 'recognized', name: 'ann', score: 0.8, trackId: 1, frameId: 2, timestamp: 100, margin: 0.8, faceSize: 10 },
  );
  assert.deepEqual(d.update(3, 200, [match(2, 'ann')]), [], 'cooldown');
  // a stranger on another track: unknown once
  assert.deepEqual(d.update(4, 300, [match(2, 'ann'), match(200, null, 0.2)]), []);
  const u = d.update(5, 400, [match(2, 'ann'), match(201, null, 0.3)]);
  assert.equal(u.length, 1);
  assert.equal(u[0]!.kind, 'unknown');
  assert.equal(u[0]!.name, null);
  assert.equal(u[0]!.trackId, 2);
  assert.deepEqual(d.update(6, 500, [match(2, 'ann'), match(202, null)]), []);
  // after the cooldown, still at the door: announced again
  const again = d.update(7, 1200, [match(2, 'ann'), match(203, null)]);
  assert.deepEqual(
    again.map((x) => [x.kind, x.name]),
    [['recognized', 'ann']],
  );
  // a frame without faces is fine
  assert.deepEqual(d.update(8, 1300, []), []);
  assert.throws(() => new Decider({ k: 4, n: 3 }));
});

test('decider: a face that flickers between people is never named', () => {
  const d = new Decider({ k: 3, n: 5, cooldownMs: 0 });
  const labels = ['a', 'b', 'a', 'b', null, 'b'];
  const out = labels.flatMap((l, i) => d.update(i, i * 10, [match(0, l)]));
  assert.deepEqual(
    out.map((x) => x.name),
    ['b'],
  );
  assert.equal(out[0]!.frameId, 5);
});
