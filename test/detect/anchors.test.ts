import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateAnchors, decodeBlazeface, sigmoid, BLAZEFACE_VALUES_PER_ANCHOR } from '../../src/detect/anchors.js';
import { iou } from '../../src/shared/geometry.js';
import { nonMaxSuppression } from '../../src/detect/nms.js';

test('BlazeFace 256 has 896 anchors: 16×16×2 at stride 16, then 8×8×6 at stride 32', () => {
  const a = generateAnchors(256);
  assert.equal(a.length, 896);
  assert.deepEqual(a[0], { x: 8, y: 8 });
  assert.deepEqual(a[1], { x: 8, y: 8 });
  assert.deepEqual(a[2], { x: 24, y: 8 });
  assert.deepEqual(a[511], { x: 248, y: 248 });
  assert.deepEqual(a[512], { x: 16, y: 16 });
  assert.deepEqual(a[517], { x: 16, y: 16 });
  assert.deepEqual(a[518], { x: 48, y: 16 });
  assert.deepEqual(a[895], { x: 240, y: 240 });
});

test('decoding: centre = anchor + offset, size as given, keypoints = anchor + offset, score = sigmoid', () => {
  const anchors = [
    { x: 8, y: 8 },
    { x: 100, y: 50 },
  ];
  const raw = new Float32Array(2 * BLAZEFACE_VALUES_PER_ANCHOR);
  raw[0] = -10; // anchor 0: below threshold
  const o = BLAZEFACE_VALUES_PER_ANCHOR;
  raw.set([2, 4, -6, 40, 60, -10, -12, 10, -12, 0, 0, 0, 15, -20, -5, 20, -5], o);
  const c = decodeBlazeface(raw, anchors, 0.5);
  assert.equal(c.length, 1);
  const f = c[0]!;
  assert.equal(f.x1, 104 - 20);
  assert.equal(f.x2, 104 + 20);
  assert.equal(f.y1, 44 - 30);
  assert.equal(f.y2, 44 + 30);
  assert.ok(Math.abs(f.score - sigmoid(2)) < 1e-6);
  assert.deepEqual(f.keypoints[0], { x: 90, y: 38 });
  assert.deepEqual(f.keypoints[1], { x: 110, y: 38 });
  assert.deepEqual(f.keypoints[3], { x: 100, y: 65 });
  assert.equal(f.keypoints.length, 6);
  assert.throws(() => decodeBlazeface(new Float32Array(5), anchors, 0.5), RangeError);
});

test('IoU of known boxes', () => {
  assert.equal(iou({ x1: 0, y1: 0, x2: 10, y2: 10 }, { x1: 0, y1: 0, x2: 10, y2: 10 }), 1);
  assert.equal(iou({ x1: 0, y1: 0, x2: 10, y2: 10 }, { x1: 10, y1: 0, x2: 20, y2: 10 }), 0);
  assert.equal(iou({ x1: 0, y1: 0, x2: 10, y2: 10 }, { x1: 5, y1: 0, x2: 15, y2: 10 }), 50 / 150);
});

test('NMS keeps the best of overlapping boxes and separate faces', () => {
  const boxes = [
    { x1: 0, y1: 0, x2: 10, y2: 10, score: 0.8, id: 'a' },
    { x1: 1, y1: 1, x2: 11, y2: 11, score: 0.9, id: 'b' }, // overlaps a (IoU 0.68)
    { x1: 50, y1: 50, x2: 60, y2: 60, score: 0.7, id: 'c' },
    { x1: 5, y1: 0, x2: 15, y2: 10, score: 0.6, id: 'd' }, // IoU with b = 54/146 = 0.37
  ];
  assert.deepEqual(
    nonMaxSuppression(boxes, 0.3).map((b) => b.id),
    ['b', 'c'],
  );
  assert.deepEqual(
    nonMaxSuppression(boxes, 0.5).map((b) => b.id),
    ['b', 'c', 'd'],
  );
  assert.deepEqual(
    nonMaxSuppression(boxes, 0.3, 1).map((b) => b.id),
    ['b'],
  );
  assert.deepEqual(nonMaxSuppression([], 0.3), []);
});
