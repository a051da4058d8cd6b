import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { initBackend } from '../../src/train/backend.js';
import { loadTfjsBackbone, officialMobilenetUrl, resolveBackbone } from '../../src/train/backbone.js';
import { tfjsExtractor } from '../../src/train/features.js';
import { onnxExtractor } from '../../src/train/onnx-features.js';
import { decodeRgb } from '../../src/shared/image.js';
import { ModelError } from '../../src/shared/errors.js';
import { requireShared, sharedPaths } from '../support/shared.js';

test("official MobileNet URLs follow Google's naming", () => {
  assert.equal(
    officialMobilenetUrl(1),
    'https://storage.googleapis.com/tfjs-models/tfjs/mobilenet_v1_1.0_224/model.json',
  );
  assert.equal(
    officialMobilenetUrl(0.25),
    'https://storage.googleapis.com/tfjs-models/tfjs/mobilenet_v1_0.25_224/model.json',
  );
  assert.equal(
    officialMobilenetUrl(0.5),
    'https://storage.googleapis.com/tfjs-models/tfjs/mobilenet_v1_0.50_224/model.json',
  );
});

test('without --weights and offline, the download fails with a message that says to pass --weights', async () => {
  const cache = await mkdtemp(path.join(os.tmpdir(), 'fg-cache-'));
  try {
    await assert.rejects(
      resolveBackbone({
        name: 'mobilenet_v1',
        alpha: 0.25,
        cacheDir: cache,
        baseUrl: 'http://127.0.0.1:9/unreachable',
      }),
      (e: Error) => e instanceof ModelError && /--weights/.test(e.message) && /127\.0\.0\.1:9/.test(e.message),
    );
  } finally {
    await rm(cache, { recursive: true, force: true });
  }
});

test('without --weights the official model is downloaded once into the cache and reused (served locally)', async (t) => {
  if (!requireShared(t)) return;
  const { createServer } = await import('node:http');
  const { readFile } = await import('node:fs/promises');
  const served: string[] = [];
  const root = path.dirname(path.dirname(sharedPaths.mobilenet025)); // …/models, holding mobilenet_v1_0.25_224/
  const server = createServer((req, res) => {
    const rel = decodeURIComponent((req.url ?? '/').split('?')[0] ?? '/');
    served.push(rel);
    readFile(path.join(root, path.normalize(rel)))
      .then((b) => {
        res.writeHead(200);
        res.end(b);
      })
      .catch(() => {
        res.writeHead(404);
        res.end();
      });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as import('node:net').AddressInfo).port;
  const cache = await mkdtemp(path.join(os.tmpdir(), 'fg-cache-'));
  try {
    const a = await resolveBackbone({
      name: 'mobilenet_v1',
      alpha: 0.25,
      cacheDir: cache,
      baseUrl: `http://127.0.0.1:${port}`,
    });
    assert.equal(a.source, `http://127.0.0.1:${port}/mobilenet_v1_0.25_224/model.json`);
    assert.ok(a.modelJsonPath.startsWith(cache));
    assert.equal(a.featureSize, 256);
    assert.ok(
      served.includes('/mobilenet_v1_0.25_224/model.json') && served.length > 1,
      'model.json and its shards were fetched',
    );
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const b = await resolveBackbone({
      name: 'mobilenet_v1',
      alpha: 0.25,
      cacheDir: cache,
      baseUrl: `http://127.0.0.1:${port}`,
    });
    assert.equal(b.modelJsonPath, a.modelJsonPath, 'second call served from the cache with the server gone');
  } finally {
    server.close();
    await rm(cache, { recursive: true, force: true });
  }
});

test('--weights accepts the model.json or its folder; sizes come from the model', async (t) => {
  if (!requireShared(t)) return;
  const a = await resolveBackbone({ name: 'mobilenet_v1', weights: sharedPaths.mobilenet025 });
  const b = await resolveBackbone({ name: 'mobilenet_v1', weights: path.dirname(sharedPaths.mobilenet025) });
  assert.equal(a.modelJsonPath, b.modelJsonPath);
  assert.equal(a.alpha, 0.25);
  assert.equal(a.featureSize, 256);
  assert.deepEqual(a.preprocessing, { scale: 1 / 127.5, offset: -1 });
  await assert.rejects(resolveBackbone({ name: 'mobilenet_v1', weights: '/nonexistent/model.json' }), ModelError);
  const f = await resolveBackbone({ name: 'faceres' });
  assert.equal(f.featureSize, 1024);
  assert.deepEqual(f.preprocessing, { scale: 1, offset: 0 }, 'faceres takes raw 0..255 (human: crop 0..1 × 255)');
});

test('ONNX and TF.js feature extractors agree on real faces (both backbones)', async (t) => {
  if (!requireShared(t)) return;
  await initBackend();
  const images = await Promise.all(
    [1, 2, 3].map((i) => decodeRgb(path.join(sharedPaths.orl, 'train', 's5', `${i}.png`), { width: 224, height: 224 })),
  );
  for (const spec of [
    await resolveBackbone({ name: 'mobilenet_v1', weights: sharedPaths.mobilenet025 }),
    await resolveBackbone({ name: 'faceres' }),
  ]) {
    const tfb = await loadTfjsBackbone(spec);
    const a = await tfjsExtractor(tfb).extract(images);
    const onnx = await onnxExtractor(spec);
    const b = await onnx.extract(images);
    await onnx.dispose();
    tfb.dispose();
    assert.equal(a.length, 3 * spec.featureSize);
    let maxAbs = 0;
    let maxDiff = 0;
    for (let i = 0; i < a.length; i++) {
      maxAbs = Math.max(maxAbs, Math.abs(a[i] ?? 0));
      maxDiff = Math.max(maxDiff, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
    }
    assert.ok(maxAbs > 0.1, `${spec.name}: features are not all zero`);
    assert.ok(maxDiff < 1e-3 * Math.max(1, maxAbs), `${spec.name}: max difference ${maxDiff}`);
  }
});
