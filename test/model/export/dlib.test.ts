/**
 * The dlib descriptor's ONNX graph (built in src/model/export/dlib.ts from the weights of
 * `@vladmandic/face-api`) against face-api's own forward pass in TF.js (wasm backend, the
 * same weights file) on real faces: cosine ≥ 0.9999 each.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import { before, test } from 'node:test';
import { DLIB_FEATURES, DLIB_INPUT, exportDlibDescriptor } from '../../../src/model/export/dlib.js';
import { decodeRgb, type RgbImage } from '../../../src/shared/image.js';
import { requireShared, sharedPaths } from '../../support/shared.js';
import { runOnnx, tf, useBackend } from './tfjs-reference.js';

const require = createRequire(import.meta.url);

interface FaceApiNet {
  loadFromDisk(dir: string): Promise<void>;
  computeFaceDescriptor(input: unknown): Promise<Float32Array | Float32Array[]>;
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    d += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return d / Math.sqrt(na * nb);
}

/** The central 150×150 of an LFW photo (250×250, the face roughly centred). */
function centre(img: RgbImage, S: number): RgbImage {
  const x0 = Math.floor((img.width - S) / 2);
  const y0 = Math.floor((img.height - S) / 2);
  const data = new Uint8Array(S * S * 3);
  for (let y = 0; y < S; y++)
    data.set(img.data.subarray(((y0 + y) * img.width + x0) * 3, ((y0 + y) * img.width + x0 + S) * 3), y * S * 3);
  return { data, width: S, height: S };
}

before(async () => {
  await useBackend('wasm');
});

test('the dlib ONNX descriptor matches face-api on real faces (cosine ≥ 0.9999)', async (t) => {
  if (!requireShared(t)) return;
  const S = DLIB_INPUT;
  const faces = [
    await decodeRgb(path.join(sharedPaths.bbt, 'amy', 'amy1.png'), { width: S, height: S }),
    await decodeRgb(path.join(sharedPaths.bbt, 'raj', 'raj2.png'), { width: S, height: S }),
    centre(await decodeRgb(path.join(sharedPaths.lfwDev, 'people', 'George_Ryan', 'George_Ryan_0001.jpg')), S),
  ];
  const pixels = new Uint8Array(faces.length * S * S * 3);
  faces.forEach((f, i) => pixels.set(f.data, i * S * S * 3));
  const out = await runOnnx(exportDlibDescriptor(), { pixels: { data: pixels, dims: [faces.length, S, S, 3] } });
  const got = out.features;
  assert.ok(got && got.data instanceof Float32Array, 'features output');
  assert.deepEqual(got.dims, [faces.length, DLIB_FEATURES]);

  // face-api's Node build on the project's TF.js: its FaceRecognitionNet, loaded from the package's files.
  const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js') as {
    nets: { faceRecognitionNet: FaceApiNet };
  };
  const net = faceapi.nets.faceRecognitionNet;
  await net.loadFromDisk(path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'model'));
  const descriptors: Float32Array[] = [];
  for (const [i, f] of faces.entries()) {
    const x = tf.tensor4d(f.data, [1, S, S, 3], 'int32');
    const want = (await net.computeFaceDescriptor(x)) as Float32Array;
    x.dispose();
    const have = got.data.subarray(i * DLIB_FEATURES, (i + 1) * DLIB_FEATURES);
    const c = cosine(have, want);
    t.diagnostic(`face ${i}: cosine ${c.toFixed(8)}`);
    assert.ok(c >= 0.9999, `face ${i}: cosine ${c} < 0.9999`);
    descriptors.push(Float32Array.from(have));
  }
  // Different people stay apart (the graph is not a constant).
  assert.ok(cosine(descriptors[0]!, descriptors[1]!) < 0.95, 'two people give different descriptors');
});
