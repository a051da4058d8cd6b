/**
 * exportModel on a tiny MobileNet-shaped backbone (a layer named conv_pw_13_relu):
 * uint8 pixels in, preprocessing in the graph, the head's outputs by name, and the
 * errors a wrong head or backbone gives. Fast: no real weights.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { exportModel, exportModelDetailed } from '../../../src/model/export/index.js';
import { OnnxModel } from '../../../src/runtime/ort.js';
import { ModelError } from '../../../src/shared/errors.js';
import { mulberry32 } from '../../../src/train/rng.js';
import { layersArtifacts, maxAbsDiff, randomiseWeights, tf, useBackend } from './tfjs-reference.js';

const SIZE = 32;

/** Conv (stride 2) → BN → ReLU6 named like MobileNet's last block, plus a top that must be dropped. */
function tinyBackbone(): tf.LayersModel {
  const input = tf.input({ shape: [SIZE, SIZE, 3], name: 'input_1' });
  let x = tf.layers
    .conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', useBias: false, name: 'conv1' })
    .apply(input) as tf.SymbolicTensor;
  x = tf.layers.batchNormalization({ name: 'conv1_bn' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.reLU({ maxValue: 6, name: 'conv_pw_13_relu' }).apply(x) as tf.SymbolicTensor;
  const top = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tf.SymbolicTensor;
  const preds = tf.layers.dense({ units: 10, activation: 'softmax', name: 'preds' }).apply(top) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: preds, name: 'tiny_mobilenet' });
  randomiseWeights(model, 11);
  return model;
}

function head(features: number, classes: number, embeddingName = 'embedding'): tf.Sequential {
  const h = tf.sequential();
  h.add(tf.layers.dense({ inputShape: [features], units: 12, activation: 'relu' }));
  h.add(tf.layers.dropout({ rate: 0.3 }));
  h.add(tf.layers.dense({ units: 6, activation: 'relu', name: embeddingName }));
  h.add(tf.layers.dense({ units: classes, activation: 'softmax', name: 'probabilities' }));
  randomiseWeights(h, 12);
  return h;
}

function pixels(n: number): Uint8Array {
  const r = mulberry32(5);
  return Uint8Array.from({ length: n * SIZE * SIZE * 3 }, () => Math.floor(r() * 256));
}

describe('exportModel', () => {
  before(async () => {
    await useBackend('cpu');
  });

  test('uint8 pixels → preprocessing → backbone cut → features → head, matching TF.js', async () => {
    const backbone = tinyBackbone();
    const h = head(8, 4);
    const px = pixels(3);
    const want = tf.tidy(() => {
      const x = tf.tensor(px, [3, SIZE, SIZE, 3], 'float32').div(127.5).sub(1);
      const cut = tf.model({ inputs: backbone.inputs, outputs: backbone.getLayer('conv_pw_13_relu').output });
      const features = (cut.predict(x) as tf.Tensor).mean([1, 2]);
      const emb = tf
        .model({ inputs: h.inputs, outputs: h.getLayer('embedding').output })
        .predict(features) as tf.Tensor;
      return {
        features: features.dataSync(),
        probs: (h.predict(features) as tf.Tensor).dataSync(),
        emb: emb.dataSync(),
      };
    });
    const { bytes, info } = exportModelDetailed({
      backbone: { name: 'mobilenet_v1', artifacts: await layersArtifacts(backbone) },
      head: await layersArtifacts(h),
      preprocessing: { scale: 1 / 127.5, offset: -1 },
    });
    assert.deepEqual(
      { h: info.height, w: info.width, f: info.featureSize, c: info.classes, e: info.embeddingSize },
      { h: SIZE, w: SIZE, f: 8, c: 4, e: 6 },
    );
    const model = await OnnxModel.load(bytes);
    model.assertSignature({
      inputs: [{ name: 'pixels', dtype: 'uint8', shape: [null, SIZE, SIZE, 3] }],
      outputs: [
        { name: 'probabilities', dtype: 'float32', shape: [null, 4] },
        { name: 'embedding', dtype: 'float32', shape: [null, 6] },
        { name: 'features', dtype: 'float32', shape: [null, 8] },
      ],
    });
    const got = await model.run({ pixels: { data: px, dims: [3, SIZE, SIZE, 3] } });
    await model.release();
    assert.ok(maxAbsDiff(got.features?.data as Float32Array, want.features) <= 1e-5);
    assert.ok(maxAbsDiff(got.embedding?.data as Float32Array, want.emb) <= 1e-5);
    assert.ok(maxAbsDiff(got.probabilities?.data as Float32Array, want.probs) <= 1e-5);
  });

  test('without a head: a backbone-only graph with just `features`; the 1000-class top is not in it', async () => {
    const bytes = exportModel({
      backbone: { name: 'mobilenet_v1', artifacts: await layersArtifacts(tinyBackbone()) },
      preprocessing: { scale: 1 / 127.5, offset: -1 },
    });
    const model = await OnnxModel.load(bytes);
    assert.deepEqual(model.outputNames, ['features']);
    await model.release();
  });

  test('a head without an `embedding` layer uses its last hidden layer', async () => {
    const { info } = exportModelDetailed({
      backbone: { name: 'mobilenet_v1', artifacts: await layersArtifacts(tinyBackbone()) },
      head: await layersArtifacts(head(8, 3, 'hidden')),
      preprocessing: { scale: 1 / 127.5, offset: -1 },
    });
    assert.equal(info.embeddingSize, 6);
  });

  test('a head trained on another backbone (feature size) is refused', async () => {
    const artifacts = await layersArtifacts(tinyBackbone());
    const wrong = await layersArtifacts(head(16, 3));
    assert.throws(
      () =>
        exportModel({
          backbone: { name: 'mobilenet_v1', artifacts },
          head: wrong,
          preprocessing: { scale: 1, offset: 0 },
        }),
      (err: unknown) =>
        err instanceof ModelError && /takes 16 features but the mobilenet_v1 backbone gives 8/.test(err.message),
    );
  });

  test('a backbone without the cut layer, or of the wrong kind, is refused with names', async () => {
    const plain = tf.sequential({
      layers: [tf.layers.conv2d({ inputShape: [8, 8, 3], filters: 2, kernelSize: 1, name: 'only_conv' })],
    });
    const artifacts = await layersArtifacts(plain);
    assert.throws(
      () => exportModel({ backbone: { name: 'mobilenet_v1', artifacts }, preprocessing: { scale: 1, offset: 0 } }),
      (err: unknown) =>
        err instanceof ModelError && /no layer "conv_pw_13_relu"/.test(err.message) && /only_conv/.test(err.message),
    );
    assert.throws(
      () => exportModel({ backbone: { name: 'faceres', artifacts }, preprocessing: { scale: 1, offset: 0 } }),
      (err: unknown) => err instanceof ModelError && /is a TF\.js LayersModel; expected a GraphModel/.test(err.message),
    );
  });
});
