/**
 * Real models against TF.js (wasm backend) on real faces from ../shared:
 * - MobileNet v1 0.25 backbone (LayersModel cut at conv_pw_13_relu) and faceres
 *   (GraphModel cut at global_pooling/Mean), alone and with a random dense head;
 * - @vladmandic/human's blazeface, antispoof and liveness with their native inputs.
 * The observed max |Δ| of each is printed as a test diagnostic.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, test, type TestContext } from 'node:test';
import {
  convertGraphModel,
  exportModelDetailed,
  humanModelJson,
  readTfjsModel,
} from '../../../src/model/export/index.js';
import { decodeModel, metadataOf } from '../../../src/model/onnx/builder.js';
import { OnnxModel, type TensorData } from '../../../src/runtime/ort.js';
import { decodeRgb } from '../../../src/shared/image.js';
import { requireShared, sharedPaths } from '../../support/shared.js';
import { diskHandler, layersArtifacts, maxAbs, maxAbsDiff, tf, useBackend } from './tfjs-reference.js';

const TOL = 1e-4;
const faces = (): string[] => [
  path.join(sharedPaths.orl, 'train', 's1', '1.png'),
  path.join(sharedPaths.orl, 'validation', 's17', '9.png'),
  path.join(sharedPaths.yale, 'subject03', 'leftlight.gif'),
  path.join(sharedPaths.yale, 'subject11', 'happy.gif'),
];

/** The faces as one uint8 NHWC batch at size×size. */
async function batch(size: number): Promise<{ data: Uint8Array; dims: number[] }> {
  const images = await Promise.all(faces().map((f) => decodeRgb(f, { width: size, height: size })));
  const data = new Uint8Array(images.length * size * size * 3);
  images.forEach((im, i) => data.set(im.data, i * size * size * 3));
  return { data, dims: [images.length, size, size, 3] };
}

async function runOnnx(bytes: Uint8Array, feeds: Record<string, TensorData>): Promise<Record<string, TensorData>> {
  const model = await OnnxModel.load(bytes);
  try {
    return await model.run(feeds);
  } finally {
    await model.release();
  }
}

function compare(t: TestContext, what: string, got: TensorData | undefined, want: tf.Tensor, tol = TOL): number {
  assert.ok(got, `${what}: missing output`);
  assert.deepEqual(got.dims, want.shape, `${what}: shape`);
  const d = maxAbsDiff(got.data as Float32Array, want.dataSync());
  t.diagnostic(`${what}: max |Δ| ${d.toExponential(2)} (max |value| ${maxAbs(want.dataSync()).toPrecision(3)})`);
  assert.ok(d <= tol, `${what}: max |Δ| ${d} > ${tol}`);
  return d;
}

/** The tutorial's head on `features` inputs, randomly initialised (seeded by TF.js's initialisers). */
function randomHead(features: number, classes: number): tf.Sequential {
  const head = tf.sequential({ name: 'head' });
  head.add(
    tf.layers.dense({
      inputShape: [features],
      units: 1024,
      activation: 'relu',
      kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
    }),
  );
  head.add(
    tf.layers.dense({ units: 1024, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
  );
  head.add(
    tf.layers.dense({
      units: 512,
      activation: 'relu',
      name: 'embedding',
      kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }),
    }),
  );
  head.add(
    tf.layers.dense({
      units: classes,
      activation: 'softmax',
      name: 'probabilities',
      kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }),
    }),
  );
  return head;
}

describe('real models against TF.js', () => {
  before(async () => {
    await useBackend('wasm');
  });

  test('MobileNet v1 0.25: backbone features and the full model with a dense head', async (t) => {
    if (!requireShared(t)) return;
    const mobilenet = await tf.loadLayersModel(diskHandler(sharedPaths.mobilenet025));
    const cut = tf.model({ inputs: mobilenet.inputs, outputs: mobilenet.getLayer('conv_pw_13_relu').output });
    const px = await batch(224);
    const features = tf.tidy(() =>
      (cut.predict(tf.tensor(px.data, px.dims, 'float32').div(127.5).sub(1)) as tf.Tensor).mean([1, 2]),
    );

    const backbone = { name: 'mobilenet_v1' as const, artifacts: readTfjsModel(sharedPaths.mobilenet025), alpha: 0.25 };
    const preprocessing = { scale: 1 / 127.5, offset: -1 };
    const alone = exportModelDetailed({ backbone, preprocessing });
    assert.equal(alone.info.featureSize, 256);
    assert.deepEqual(alone.info.outputs, ['features']);
    const out = await runOnnx(alone.bytes, { pixels: px });
    compare(t, 'mobilenet features', out.features, features);

    const classes = 7;
    const head = randomHead(256, classes);
    const embeddingModel = tf.model({ inputs: head.inputs, outputs: head.getLayer('embedding').output });
    const probs = head.predict(features) as tf.Tensor;
    const emb = embeddingModel.predict(features) as tf.Tensor;
    const labels = Array.from({ length: classes }, (_, i) => `person ${i}`);
    const full = exportModelDetailed({
      backbone,
      preprocessing,
      head: await layersArtifacts(head, 'head'),
      metadata: { labels: JSON.stringify(labels), version: '20260101.000000', thresholds: '{"threshold":0.5}' },
    });
    assert.equal(full.info.classes, classes);
    assert.equal(full.info.embeddingSize, 512);
    const got = await runOnnx(full.bytes, { pixels: px });
    compare(t, 'mobilenet+head probabilities', got.probabilities, probs);
    compare(t, 'mobilenet+head embedding', got.embedding, emb, TOL * Math.max(1, maxAbs(emb.dataSync())));
    compare(t, 'mobilenet+head features', got.features, features);

    const model = decodeModel(full.bytes);
    const meta = metadataOf(model);
    assert.deepEqual(JSON.parse(meta.labels ?? '[]'), labels);
    assert.equal(meta.backbone, 'mobilenet_v1');
    assert.equal(meta.version, '20260101.000000');
    assert.deepEqual(JSON.parse(meta.preprocessing ?? '{}'), preprocessing);
    assert.equal(meta.thresholds, '{"threshold":0.5}');
    assert.deepEqual(
      model.graph?.output?.map((o) => o.name),
      ['probabilities', 'embedding', 'features'],
    );
    const ops = new Set(model.graph?.node?.map((n) => n.opType));
    assert.ok(!ops.has('BatchNormalization') && !ops.has('Pad'), 'BN and padding folded into the convolutions');
    assert.equal(model.graph?.node?.filter((n) => n.opType === 'Mul').length, 1, 'one Mul: the preprocessing scale');
    tf.dispose([features, probs, emb]);
  });

  test('faceres: backbone features (raw 0..255 input) and the full model with a dense head', async (t) => {
    if (!requireShared(t)) return;
    const file = humanModelJson('faceres');
    const graph = await tf.loadGraphModel(diskHandler(file));
    const px = await batch(224);
    const features = tf.tidy(
      () => graph.execute(tf.tensor(px.data, px.dims, 'float32'), 'global_pooling/Mean') as tf.Tensor,
    );
    const head = randomHead(1024, 5);
    const probs = head.predict(features) as tf.Tensor;
    const { bytes, info } = exportModelDetailed({
      backbone: { name: 'faceres', artifacts: readTfjsModel(file) },
      head: await layersArtifacts(head, 'head'),
      preprocessing: { scale: 1, offset: 0 },
    });
    assert.equal(info.featureSize, 1024);
    const got = await runOnnx(bytes, { pixels: px });
    compare(t, 'faceres features', got.features, features, TOL * Math.max(1, maxAbs(features.dataSync())));
    compare(t, 'faceres+head probabilities', got.probabilities, probs);
    tf.dispose([features, probs]);
  });

  for (const spec of [
    // blazeface: RGB scaled to [-1, 1] (human: x / 127.5 - 1); outputs are box regressors
    // in pixels and score logits, compared relative to their magnitude and as sigmoids.
    { name: 'blazeface', size: 256, scale: 1 / 127.5, offset: -1 },
    // antispoof and liveness: the face crop as 0..1 RGB (human's crops are 0..1).
    { name: 'antispoof', size: 128, scale: 1 / 255, offset: 0 },
    { name: 'liveness', size: 32, scale: 1 / 255, offset: 0 },
    // Beyond the four the kiosk uses: facemesh and iris (landmarks in pixels, Prelu
    // activations) and emotion (one grey channel).
    { name: 'facemesh', size: 192, scale: 1 / 255, offset: 0, relative: true },
    { name: 'iris', size: 64, scale: 1 / 255, offset: 0, relative: true },
    { name: 'emotion', size: 64, scale: 1 / 255, offset: 0, channels: 1 },
  ]) {
    test(`${spec.name}: converted GraphModel with its native input and outputs`, async (t) => {
      if (!requireShared(t)) return;
      const file = humanModelJson(spec.name);
      const graph = await tf.loadGraphModel(diskHandler(file));
      const px = await batch(spec.size);
      const n = spec.name === 'blazeface' ? 1 : (px.dims[0] ?? 1); // blazeface's input has batch 1
      const channels = spec.channels ?? 3;
      // Grey models get the first channel (the faces are greyscale anyway).
      const rgb = px.data.subarray(0, n * spec.size * spec.size * 3);
      const x = Float32Array.from(
        { length: (rgb.length / 3) * channels },
        (_, i) => (rgb[channels === 3 ? i : i * 3] ?? 0) * spec.scale + spec.offset,
      );
      const dims = [n, spec.size, spec.size, channels];
      const outputNames = graph.outputs.map((o) => o.name);
      const expected = tf.tidy(() => {
        const r = graph.execute(tf.tensor(x, dims), outputNames);
        return Array.isArray(r) ? r : [r];
      });
      const bytes = convertGraphModel(readTfjsModel(file));
      const onnx = await OnnxModel.load(bytes);
      const input = onnx.signature().inputs[0];
      assert.ok(input);
      assert.equal(input.dtype, 'float32');
      assert.deepEqual(input.shape.slice(1), [spec.size, spec.size, channels], 'native NHWC input kept');
      const got = await onnx.run({ [input.name]: { data: x, dims } });
      await onnx.release();
      outputNames.forEach((name, i) => {
        const want = expected[i] as tf.Tensor;
        const key = name.replace(/:0$/, '');
        if (spec.name === 'blazeface' || spec.relative) {
          const mag = maxAbs(want.dataSync());
          compare(t, `${spec.name} ${key} (relative to ${mag.toFixed(0)})`, got[key], want, TOL * Math.max(1, mag));
          if (spec.name === 'blazeface' && want.shape[2] === 1) {
            const sig = (a: ArrayLike<number>): Float32Array => Float32Array.from(a, (v) => 1 / (1 + Math.exp(-v)));
            const d = maxAbsDiff(sig(got[key]?.data as Float32Array), sig(want.dataSync()));
            t.diagnostic(`${spec.name} ${key} scores (sigmoid): max |Δ| ${d.toExponential(2)}`);
            assert.ok(d <= TOL);
          }
        } else {
          compare(t, `${spec.name} ${key}`, got[key], want);
        }
      });
      tf.dispose(expected);
    });
  }
});
