import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  alignFace,
  alignmentTransform,
  applyAffine,
  canonicalTemplate,
  cropSquare,
  DLIB_CHIP_POINTS,
  DLIB_FACE,
  dlibChipTemplate,
  eyeAngle,
  faceTransform,
  meshChipTransform,
  warpAffine,
} from '../../src/detect/align.js';
import type { RgbImage } from '../../src/shared/image.js';

function gradient(w: number, h: number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      data[o] = x * 10;
      data[o + 1] = y * 10;
      data[o + 2] = 7;
    }
  return { data, width: w, height: h };
}

test('eye angle: level eyes give 0, order of the keypoints does not matter', () => {
  assert.equal(
    eyeAngle([
      { x: 10, y: 20 },
      { x: 30, y: 20 },
    ]),
    0,
  );
  assert.equal(
    eyeAngle([
      { x: 30, y: 20 },
      { x: 10, y: 20 },
    ]),
    0,
  );
  assert.ok(
    Math.abs(
      eyeAngle([
        { x: 10, y: 10 },
        { x: 20, y: 20 },
      ])! -
        Math.PI / 4,
    ) < 1e-12,
  );
  assert.equal(eyeAngle([]), null);
});

test('identity crop: whole image at its own size gives the image back', () => {
  const img = gradient(8, 8);
  const m = alignmentTransform({ cx: 4, cy: 4, side: 8, angle: 0 }, 8);
  assert.deepEqual(applyAffine(m, 0, 0), { x: 0, y: 0 });
  assert.deepEqual(applyAffine(m, 7, 7), { x: 7, y: 7 });
  assert.deepEqual(warpAffine(img, m, 8, 8).data, img.data);
});

test('rotation by 90°: the output row is the input column', () => {
  const img = gradient(8, 8);
  const out = warpAffine(img, alignmentTransform({ cx: 4, cy: 4, side: 8, angle: Math.PI / 2 }, 8), 8, 8);
  // output (u, v) samples source (7 − v, u): red = x·10, green = y·10
  for (let v = 0; v < 8; v++)
    for (let u = 0; u < 8; u++) {
      const o = (v * 8 + u) * 3;
      assert.equal(out.data[o], (7 - v) * 10);
      assert.equal(out.data[o + 1], u * 10);
    }
});

test('tilted eyes are levelled: after alignment the eye keypoints map to one row', () => {
  const box = { x: 40, y: 40, width: 40, height: 40 };
  const eyes = [
    { x: 50, y: 50 },
    { x: 70, y: 60 },
  ];
  const sq = cropSquare(box, eyes, { margin: 1.5, rotate: true });
  assert.equal(sq.side, 60);
  const m = alignmentTransform(sq, 120);
  // invert numerically: find output coordinates of each eye
  const det = m.a * m.e - m.b * m.d;
  const inv = (p: { x: number; y: number }) => ({
    u: (m.e * (p.x - m.c) - m.b * (p.y - m.f)) / det,
    v: (-m.d * (p.x - m.c) + m.a * (p.y - m.f)) / det,
  });
  const l = inv({ x: eyes[0]!.x - 0.5, y: eyes[0]!.y - 0.5 });
  const r = inv({ x: eyes[1]!.x - 0.5, y: eyes[1]!.y - 0.5 });
  assert.ok(Math.abs(l.v - r.v) < 1e-9, `eyes at rows ${l.v} and ${r.v}`);
  assert.ok(r.u > l.u);
  // no rotation when asked not to, or when the angle is implausible
  assert.equal(cropSquare(box, eyes, { margin: 1, rotate: false }).angle, 0);
  assert.equal(
    cropSquare(
      box,
      [
        { x: 0, y: 0 },
        { x: 1, y: 5 },
      ],
      { margin: 1, rotate: true },
    ).angle,
    0,
  );
});

test('alignFace output has the requested size and clamps at the border', () => {
  const img = gradient(8, 8);
  const out = alignFace(img, { x: -4, y: -4, width: 8, height: 8 }, [], 4, { margin: 1, rotate: true });
  assert.equal(out.width, 4);
  assert.equal(out.data.length, 48);
  assert.equal(out.data[0], 0); // clamped to pixel (0,0)
});

test("the dlib template: a face's keypoints land where dlib's face chip puts the eyes, nose and mouth", () => {
  // dlib's chip (padding 0.25): eyes about a third of the way down, 0.35 of the side apart.
  const [l, r, nose, mouth] = DLIB_FACE;
  assert.ok(l && r && nose && mouth);
  assert.ok(Math.abs(l.y - 0.31) < 0.01 && Math.abs(r.y - l.y) < 1e-9, 'eyes level, at 0.31 of the height');
  assert.ok(Math.abs(r.x - l.x - 0.353) < 0.01, 'eye distance 0.353 of the side');
  assert.ok(l.y < nose.y && nose.y < mouth.y && mouth.y < 0.75, 'nose and mouth below, inside the crop');
  // A tilted face in a frame: output pixel of each template point → the frame keypoint.
  const angle = 0.2;
  const kp = [
    { x: 100, y: 100 },
    { x: 100 + 60 * Math.cos(angle), y: 100 + 60 * Math.sin(angle) },
  ];
  const centre = { x: 100 + 30 * Math.cos(angle), y: 100 + 30 * Math.sin(angle) };
  const down = (d: number): { x: number; y: number } => ({
    x: centre.x - d * Math.sin(angle),
    y: centre.y + d * Math.cos(angle),
  });
  const eyeGap = r.x - l.x;
  const keypoints = [...kp, down(((nose.y - l.y) / eyeGap) * 60), down(((mouth.y - l.y) / eyeGap) * 60)];
  const box = { x: 70, y: 70, width: 120, height: 120 };
  const S = 150;
  const m = faceTransform(box, keypoints, S, {
    method: 'landmarks',
    template: 'dlib',
    zoom: 1,
    margin: 1.3,
    rotate: true,
  });
  canonicalTemplate(1, 'dlib').forEach((p, i) => {
    const at = applyAffine(m, p.x * S - 0.5, p.y * S - 0.5);
    const want = keypoints[i]!;
    assert.ok(Math.hypot(at.x + 0.5 - want.x, at.y + 0.5 - want.y) < 0.5, `point ${i} at ${JSON.stringify(at)}`);
  });
  // The ArcFace template puts the same face elsewhere: the two crops differ.
  const arc = faceTransform(box, keypoints, S, { method: 'landmarks', zoom: 1, margin: 1.3, rotate: true });
  assert.ok(Math.abs(arc.c - m.c) > 1 || Math.abs(arc.f - m.f) > 1);
});

test("dlib chip template: dlib's mean face shape padded by 0.25 (get_face_chip_details), in pixel-index coordinates", () => {
  const t = dlibChipTemplate(150);
  assert.equal(t.length, DLIB_CHIP_POINTS.length);
  assert.deepEqual(DLIB_CHIP_POINTS.slice(0, 3), [27, 28, 29]);
  assert.deepEqual(DLIB_CHIP_POINTS.slice(-5), [60, 61, 62, 63, 64]);
  // Point 30 (nose tip) of the mean shape is (0.490127, 0.515625): ((0.25 + p) / 1.5) · 150 − 0.5.
  const tip = t[DLIB_CHIP_POINTS.indexOf(30)]!;
  assert.ok(Math.abs(tip.x - ((0.25 + 0.490127) / 1.5) * 150 + 0.5) < 1e-9);
  assert.ok(Math.abs(tip.y - ((0.25 + 0.515625) / 1.5) * 150 + 0.5) < 1e-9);
  // The eyes' centres agree with the four-point dlib template (DLIB_FACE).
  const eye = (from: number): { x: number; y: number } => {
    const ps = t.slice(DLIB_CHIP_POINTS.indexOf(from), DLIB_CHIP_POINTS.indexOf(from) + 6);
    return { x: ps.reduce((s, p) => s + p.x, 0) / 6, y: ps.reduce((s, p) => s + p.y, 0) / 6 };
  };
  for (const [i, from] of [
    [0, 36],
    [1, 42],
  ] as const) {
    const e = eye(from);
    assert.ok(Math.abs(e.x + 0.5 - DLIB_FACE[i]!.x * 150) < 1e-3, `eye ${from}`);
    assert.ok(Math.abs(e.y + 0.5 - DLIB_FACE[i]!.y * 150) < 1e-3, `eye ${from}`);
  }
});

test('mesh chip: landmarks that are the template moved by a similarity give that similarity back', () => {
  const S = 150;
  // Output pixel → frame: rotate 0.2 rad, scale 1.7, shift (40, 25).
  const want = {
    a: 1.7 * Math.cos(0.2),
    b: -1.7 * Math.sin(0.2),
    c: 40,
    d: 1.7 * Math.sin(0.2),
    e: 1.7 * Math.cos(0.2),
    f: 25,
  };
  // Landmarks are in frame pixels (centres at .5), as Face keypoints are.
  const landmarks = dlibChipTemplate(S).map((p) => {
    const q = applyAffine(want, p.x, p.y);
    return { x: q.x + 0.5, y: q.y + 0.5 };
  });
  const m = meshChipTransform(landmarks, S)!;
  for (const k of ['a', 'b', 'c', 'd', 'e', 'f'] as const) assert.ok(Math.abs(m[k] - want[k]) < 1e-9, k);
  // faceTransform uses them for the mesh method, and falls back to the keypoint chip without them.
  const box = { x: 0, y: 0, width: 200, height: 200 };
  const keypoints = [
    { x: 60, y: 80 },
    { x: 140, y: 80 },
    { x: 100, y: 120 },
    { x: 100, y: 150 },
  ];
  const mesh = { method: 'mesh', template: 'dlib', zoom: 1, margin: 1.3, rotate: true } as const;
  assert.deepEqual(faceTransform(box, keypoints, S, mesh, landmarks), m);
  assert.deepEqual(
    faceTransform(box, keypoints, S, mesh),
    faceTransform(box, keypoints, S, { ...mesh, method: 'landmarks' }),
  );
  assert.equal(meshChipTransform(landmarks.slice(1), S), null);
});
