import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  generateAnchors,
  blazefaceAnchorSpec,
  decodeBlazeface,
  decodeBlazefaceBlocks,
  sigmoid,
  BLAZEFACE_VALUES_PER_ANCHOR,
} from '../../src/detect/anchors.js';
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

/** The anchors as the square-only generator computed them before inputs could be 256×192 (the reference). */
function squareAnchors(inputSize: number): { x: number; y: number }[] {
  const out: { x: number; y: number }[] = [];
  [
    [inputSize / 16, 2],
    [inputSize / 8, 6],
  ].forEach(([stride, perCell]) => {
    const cells = Math.ceil(inputSize / stride!);
    for (let gy = 0; gy < cells; gy++)
      for (let gx = 0; gx < cells; gx++)
        for (let n = 0; n < perCell!; n++) out.push({ x: stride! * (gx + 0.5), y: stride! * (gy + 0.5) });
  });
  return out;
}

test('per-axis anchors for 256×256 (and 128×128) equal the square generator exactly', () => {
  assert.deepEqual(generateAnchors(256, 256), squareAnchors(256));
  assert.deepEqual(generateAnchors(256), squareAnchors(256));
  assert.deepEqual(generateAnchors(128, 128), squareAnchors(128));
});

test('per-axis anchors for 256 wide × 192 high: 16×12×2 at stride 16, then 8×6×6 at stride 32', () => {
  const spec = blazefaceAnchorSpec(256);
  const a = generateAnchors(256, 192, spec);
  assert.equal(a.length, 16 * 12 * 2 + 8 * 6 * 6);
  assert.equal(a.length, 672);
  assert.deepEqual(a[0], { x: 8, y: 8 });
  assert.deepEqual(a[31], { x: 248, y: 8 }, 'a row is 16 cells wide');
  assert.deepEqual(a[32], { x: 8, y: 24 });
  assert.deepEqual(a[383], { x: 248, y: 184 });
  assert.deepEqual(a[384], { x: 16, y: 16 });
  assert.deepEqual(a[384 + 48], { x: 16, y: 48 }, 'stride 32: 8 cells × 6 anchors a row');
  assert.deepEqual(a[671], { x: 240, y: 176 });
  // portrait: 192 wide × 256 high
  const p = generateAnchors(192, 256, spec);
  assert.equal(p.length, 672);
  assert.deepEqual(p[23], { x: 184, y: 8 });
  assert.deepEqual(p[24], { x: 8, y: 24 });
  assert.deepEqual(p[671], { x: 176, y: 240 });
  // the default spec follows the longer side
  assert.deepEqual(generateAnchors(256, 192), a);
  // a tiny fixture written out: 32×64 at strides 16 and 32, one anchor a cell
  assert.deepEqual(generateAnchors(32, 64, { strides: [16, 32], anchorsPerCell: [1, 1] }), [
    { x: 8, y: 8 },
    { x: 24, y: 8 },
    { x: 8, y: 24 },
    { x: 24, y: 24 },
    { x: 8, y: 40 },
    { x: 24, y: 40 },
    { x: 8, y: 56 },
    { x: 24, y: 56 },
    { x: 16, y: 16 },
    { x: 16, y: 48 },
  ]);
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

test('decoding from blocks (logits and regressors apart) gives what decoding the interleaved array gives', () => {
  const anchors = generateAnchors(64, 32, { strides: [16, 32], anchorsPerCell: [2, 6] }); // 16 + 12 anchors
  assert.equal(anchors.length, 28);
  const V = BLAZEFACE_VALUES_PER_ANCHOR;
  const raw = Float32Array.from({ length: anchors.length * V }, (_, i) => Math.sin(i * 1.7) * (i % V === 0 ? 3 : 20));
  const block = (from: number, n: number): { logits: Float32Array; regressors: Float32Array } => ({
    logits: Float32Array.from({ length: n }, (_, i) => raw[(from + i) * V]!),
    regressors: Float32Array.from(
      { length: n * (V - 1) },
      (_, j) => raw[(from + Math.floor(j / (V - 1))) * V + 1 + (j % (V - 1))]!,
    ),
  });
  const blocks = [block(0, 16), block(16, 12)];
  for (const minScore of [0, 0.3, 0.5, 0.9]) {
    const a = decodeBlazeface(raw, anchors, minScore);
    assert.deepEqual(decodeBlazefaceBlocks(blocks, anchors, minScore), a);
    if (minScore === 0.5) assert.ok(a.length > 0 && a.length < anchors.length, 'some anchors pass, some do not');
  }
  assert.throws(() => decodeBlazefaceBlocks([block(0, 16)], anchors, 0.5), RangeError);
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
