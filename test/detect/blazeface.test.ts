import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import os from 'node:os';
import { blazefaceBlocks, letterbox, toFrameFace } from '../../src/detect/blazeface.js';
import { loadDetector } from '../../src/detect/model.js';
import { builtinModelPath } from '../../src/model/builtin.js';
import { prepareBuiltinModels } from '../../src/model/export/builtin.js';
import { convertGraphModel, humanModelJson, readTfjsModel } from '../../src/model/export/index.js';
import { OnnxModel } from '../../src/runtime/ort.js';
import { decodeRgb } from '../../src/shared/image.js';
import { requireShared, sharedPaths } from '../support/shared.js';

test("BlazeFace outputs: human's four tensors are put in anchor order (stride 16 first)", () => {
  // 2 + 1 anchors: scores [1] and [2] per stride, regressors 16 values each
  const s384 = { data: new Float32Array([30]), dims: [1, 1, 1] };
  const s512 = { data: new Float32Array([10, 20]), dims: [1, 2, 1] };
  const r384 = { data: new Float32Array(16).fill(3), dims: [1, 1, 16] };
  const r512 = { data: new Float32Array(32).map((_, i) => (i < 16 ? 1 : 2)), dims: [1, 2, 16] };
  const blocks = blazefaceBlocks([r512, s384, r384, s512], 3);
  assert.deepEqual(
    blocks.map((b) => [...b.logits]),
    [[10, 20], [30]],
  );
  assert.equal(blocks[0]!.regressors, r512.data, 'no copy');
  assert.equal(blocks[1]!.regressors, r384.data);
  assert.throws(() => blazefaceBlocks([s384, s512], 3));
  assert.throws(() => blazefaceBlocks([r512, s384, r384, s512], 4), /do not fit 4 anchors/);
  // the TF Hub model's single [1, N, 17] output: its columns split
  const single = { data: Float32Array.from({ length: 2 * 17 }, (_, i) => i), dims: [1, 2, 17] };
  const [one] = blazefaceBlocks([single], 2);
  assert.deepEqual([...one!.logits], [0, 17]);
  assert.deepEqual([...one!.regressors.subarray(14, 18)], [15, 16, 18, 19]);
});

test('letterbox maps detector pixels back to the frame', () => {
  const lb = letterbox(640, 480, 256);
  assert.deepEqual(lb, {
    width: 256,
    height: 192,
    left: 0,
    top: 32,
    inputWidth: 256,
    inputHeight: 256,
    sx: 2.5,
    sy: 2.5,
  });
  assert.deepEqual(letterbox(92, 112, 256), {
    width: 210,
    height: 256,
    left: 23,
    top: 0,
    inputWidth: 256,
    inputHeight: 256,
    sx: 92 / 210,
    sy: 112 / 256,
  });
  const f = toFrameFace(
    { x1: 100, y1: 100, x2: 140, y2: 150, score: 0.9, keypoints: [{ x: 110, y: 120 }] },
    lb,
    { width: 640, height: 480 },
    7,
  );
  assert.deepEqual(f.box, { x: 250, y: 170, width: 100, height: 125 });
  assert.deepEqual(f.keypoints[0], { x: 275, y: 220 });
  assert.equal(f.frameId, 7);
});

test('letterbox to a multiple of the stride: no padding for 4:3, the shorter side rounded up to 32', () => {
  assert.deepEqual(letterbox(640, 480, 256, 32), {
    width: 256,
    height: 192,
    left: 0,
    top: 0,
    inputWidth: 256,
    inputHeight: 192,
    sx: 2.5,
    sy: 2.5,
  });
  // portrait 3:4: the width is the shorter side
  const portrait = letterbox(480, 640, 256, 32);
  assert.deepEqual([portrait.inputWidth, portrait.inputHeight, portrait.left, portrait.top], [192, 256, 0, 0]);
  // 16:9: 144 rows padded to 160, the frame centred (8 rows above, 8 below)
  const wide = letterbox(1280, 720, 256, 32);
  assert.deepEqual([wide.width, wide.height, wide.inputWidth, wide.inputHeight, wide.top], [256, 144, 256, 160, 8]);
  // Yale's 320×243: 256×194 (rounded) padded to 224, top 15
  const yale = letterbox(320, 243, 256, 32);
  assert.deepEqual([yale.height, yale.inputHeight, yale.top], [194, 224, 15]);
  // square frames keep the square input
  assert.deepEqual([letterbox(500, 500, 256, 32).inputWidth, letterbox(500, 500, 256, 32).inputHeight], [256, 256]);
  // toFrameFace undoes the offset of the padding
  const f = toFrameFace(
    { x1: 100, y1: 108, x2: 140, y2: 148, score: 0.9, keypoints: [{ x: 110, y: 128 }] },
    wide,
    { width: 1280, height: 720 },
    0,
  );
  assert.deepEqual(f.box, { x: 500, y: 500, width: 200, height: 200 });
  assert.deepEqual(f.keypoints[0], { x: 550, y: 600 });
  assert.throws(() => letterbox(640, 480, 256, 48), RangeError);
});

test('BlazeFace via onnxruntime finds the face in a Yale photo and nothing in a flat image', async (t) => {
  if (!requireShared(t)) return;
  const cacheDir = path.join(os.tmpdir(), 'facegate-test-cache');
  await prepareBuiltinModels({ cacheDir, names: ['blazeface'] });
  const detector = await loadDetector({ cacheDir });
  try {
    const img = await decodeRgb(path.join(sharedPaths.yale, 'subject01', 'normal.gif'));
    const faces = await detector.detect(img, 3);
    assert.equal(faces.length, 1);
    const f = faces[0]!;
    assert.ok(f.score > 0.7);
    // the face is in the middle of the 320×243 photo, 100–180 px wide
    assert.ok(f.box.width > 100 && f.box.width < 180, `width ${f.box.width}`);
    assert.ok(f.box.x > 60 && f.box.x + f.box.width < 280);
    const [e0, e1] = f.keypoints;
    assert.ok(e0 && e1 && Math.abs(e0.y - e1.y) < 15 && Math.abs(e0.x - e1.x) > 30, 'two eyes, about level');
    assert.ok(e0.y > f.box.y && e0.y < f.box.y + f.box.height / 2, 'eyes in the upper half of the box');
    const flat = { data: new Uint8Array(320 * 240 * 3).fill(128), width: 320, height: 240 };
    assert.deepEqual(await detector.detect(flat), []);
  } finally {
    await detector.close();
  }
});

test('the built-in detector takes 256×192 and, at 256×256, gives exactly what the fixed-size conversion gives', async () => {
  const cacheDir = path.join(os.tmpdir(), 'facegate-test-cache');
  await prepareBuiltinModels({ cacheDir, names: ['blazeface'] });
  const free = await OnnxModel.load(await builtinModelPath('blazeface', { cacheDir }), { threads: 1 });
  const fixed = await OnnxModel.load(convertGraphModel(readTfjsModel(humanModelJson('blazeface'))), { threads: 1 });
  try {
    assert.deepEqual(free.signature().inputs[0]?.shape, [1, null, null, 3]);
    assert.deepEqual(fixed.signature().inputs[0]?.shape, [1, 256, 256, 3]);
    const input = (h: number): Float32Array => Float32Array.from({ length: h * 256 * 3 }, (_, i) => Math.sin(i * 0.37));
    const square = { input: { data: input(256), dims: [1, 256, 256, 3] } };
    const a = Object.values(await free.run(square));
    const b = Object.values(await fixed.run(square));
    assert.deepEqual(
      a.map((t) => t.data),
      b.map((t) => t.data),
    );
    const short = Object.values(await free.run({ input: { data: input(192), dims: [1, 192, 256, 3] } }));
    const sizes = short.map((t) => t.data.length).sort((x, y) => x - y);
    // stride 32: 8×6×6 = 288 anchors; stride 16: 16×12×2 = 384 (scores, then 16 regressors each)
    assert.deepEqual(sizes, [288, 384, 288 * 16, 384 * 16]);
    assert.deepEqual(
      blazefaceBlocks(short, 672).map((b) => b.logits.length),
      [384, 288],
    );
  } finally {
    await free.release();
    await fixed.release();
  }
});

test("a smaller detector input (model.detectorSize) keeps the network's strides and finds the same Yale face", async (t) => {
  if (!requireShared(t)) return;
  const cacheDir = path.join(os.tmpdir(), 'facegate-test-cache');
  await prepareBuiltinModels({ cacheDir, names: ['blazeface'] });
  const full = await loadDetector({ cacheDir });
  const small = await loadDetector({ cacheDir, longSide: 192 });
  try {
    assert.equal(full.inputSize, 256);
    assert.equal(small.inputSize, 192);
    // 640×480 → 192×144, padded to 192×160 (the largest stride stays 32)
    assert.deepEqual([small.letterboxFor(640, 480).inputWidth, small.letterboxFor(640, 480).inputHeight], [192, 160]);
    const img = await decodeRgb(path.join(sharedPaths.yale, 'subject01', 'normal.gif'));
    const [a] = await full.detect(img);
    const faces = await small.detect(img);
    assert.equal(faces.length, 1);
    const b = faces[0]!;
    assert.ok(a && b.score > 0.7);
    const x1 = Math.max(a.box.x, b.box.x);
    const y1 = Math.max(a.box.y, b.box.y);
    const x2 = Math.min(a.box.x + a.box.width, b.box.x + b.box.width);
    const y2 = Math.min(a.box.y + a.box.height, b.box.y + b.box.height);
    const inter = Math.max(0, x2 - x1) * Math.max(0, y2 - y1);
    const iou = inter / (a.box.width * a.box.height + b.box.width * b.box.height - inter);
    assert.ok(iou > 0.8, `IoU with the 256 detector ${iou}`);
    const side = Math.max(a.box.width, a.box.height);
    a.keypoints.forEach((p, i) => {
      const q = b.keypoints[i]!;
      assert.ok(Math.hypot(p.x - q.x, p.y - q.y) < 0.1 * side, `keypoint ${i} moved`);
    });
  } finally {
    await full.close();
    await small.close();
  }
  await assert.rejects(loadDetector({ cacheDir, longSide: 200 }), /multiple of 32/);
});
