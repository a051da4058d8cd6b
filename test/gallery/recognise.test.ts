/** The kiosk's gallery verdict (pure): the threshold is compared with the score gallery.norm says. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { combine } from '../../src/gallery/recognise.js';
import type { Face } from '../../src/shared/messages.js';

const face: Face = { frameId: 1, box: { x: 0, y: 0, width: 100, height: 100 }, score: 0.99, keypoints: [] };
const names = new Map([
  ['p1', 'alice'],
  ['p2', 'bob'],
]);
const hit = (s1: number, s2: number) => ({
  best: { personId: 'p1', score: s1 },
  second: { personId: 'p2', score: s2 },
});

test('cosine: the best score against the threshold', () => {
  assert.equal(combine(face, { threshold: 0.96, names, weight: null }, hit(0.961, 0.96), undefined).label, 'alice');
  assert.equal(combine(face, { threshold: 0.96, names }, hit(0.959, 0.8), undefined).label, null);
});

test('margin: the best score plus half its lead must reach the threshold; similarity stays the cosine', () => {
  const snap = { threshold: 0.97, names, weight: 0.5 };
  // 0.961 + 0.5 · 0.001 < 0.97: a face barely ahead of the runner-up is refused
  const close = combine(face, snap, hit(0.961, 0.96), undefined);
  assert.equal(close.label, null);
  assert.equal(close.candidate, 'alice');
  // 0.961 + 0.5 · 0.061 ≥ 0.97: one that stands clear is named
  const clear = combine(face, snap, hit(0.961, 0.9), undefined);
  assert.equal(clear.label, 'alice');
  assert.equal(clear.similarity, 0.961);
  assert.ok(Math.abs(clear.margin - 0.061) < 1e-12);
});
