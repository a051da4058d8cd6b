import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import os from 'node:os';
import { assembleBlazefaceOutputs, letterbox, toFrameFace } from '../../src/detect/blazeface.js';
import { loadDetector } from '../../src/detect/model.js';
import { prepareBuiltinModels } from '../../src/model/export/builtin.js';
import { decodeRgb } from '../../src/shared/image.js';
import { requireShared, sharedPaths } from '../support/shared.js';

test("BlazeFace outputs: human's four tensors are put in anchor order (stride 16 first)", () => {
  // 2 + 1 anchors: scores [1] and [2] per stride, regressors 16 values each
  const s384 = { data: new Float32Array([30]), dims: [1, 1, 1] };
  const s512 = { data: new Float32Array([10, 20]), dims: [1, 2, 1] };
  const r384 = { data: new Float32Array(16).fill(3), dims: [1, 1, 16] };
  const r512 = { data: new Float32Array(32).map((_, i) => (i < 16 ? 1 : 2)), dims: [1, 2, 16] };
  const out = assembleBlazefaceOutputs([r512, s384, r384, s512], 3);
  assert.equal(out.length, 3 * 17);
  assert.deepEqual([out[0], out[1], out[16], out[17], out[18], out[34], out[35]], [10, 1, 1, 20, 2, 30, 3]);
  assert.throws(() => assembleBlazefaceOutputs([s384, s512], 3));
});

test('letterbox maps detector pixels back to the frame', () => {
  const lb = letterbox(640, 480, 256);
  assert.deepEqual(lb, { width: 256, height: 192, left: 0, top: 32, sx: 2.5, sy: 2.5 });
  assert.deepEqual(letterbox(92, 112, 256), { width: 210, height: 256, left: 23, top: 0, sx: 92 / 210, sy: 112 / 256 });
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
