/**
 * LayersModel → ONNX, layer by layer: each tiny model is built and run in TF.js (cpu
 * backend, the golden reference), converted, and run in onnxruntime: max |Δ| ≤ 1e-5.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { convertLayersModel } from '../../../src/model/export/index.js';
import { decodeModel } from '../../../src/model/onnx/builder.js';
import { UnsupportedError } from '../../../src/shared/errors.js';
import { OnnxModel } from '../../../src/runtime/ort.js';
import { layersArtifacts, maxAbsDiff, randomiseWeights, randomTensorData, tf, useBackend } from './tfjs-reference.js';

const TOL = 1e-5;

function opCounts(bytes: Uint8Array): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const n of decodeModel(bytes).graph?.node ?? []) counts[n.opType ?? ''] = (counts[n.opType ?? ''] ?? 0) + 1;
  return counts;
}

/** Converts `model`, runs both on a seeded input, asserts max |Δ| ≤ TOL; returns the ONNX op counts. */
async function check(model: tf.LayersModel, seed: number, scale = 1): Promise<Record<string, number>> {
  randomiseWeights(model, seed);
  const inputs = model.inputs.map((inp, i) => {
    const dims = [2, ...inp.shape.slice(1).map((d) => d ?? 1)];
    return { dims, data: randomTensorData(seed * 31 + i, dims, scale) };
  });
  const expected = tf.tidy(() => {
    const out = model.predict(inputs.map((x) => tf.tensor(x.data, x.dims)));
    return (Array.isArray(out) ? out : [out]).map((t) => ({ data: t.dataSync(), shape: t.shape }));
  });
  const bytes = convertLayersModel(await layersArtifacts(model));
  // Inputs and outputs by position: ONNX names them after the input/output layers.
  const onnx = await OnnxModel.load(bytes);
  const got = await onnx.run(
    Object.fromEntries(inputs.map((x, i) => [onnx.inputNames[i] ?? '', { data: x.data, dims: x.dims }])),
  );
  assert.equal(onnx.outputNames.length, expected.length);
  onnx.outputNames.forEach((name, i) => {
    const out = got[name];
    const want = expected[i];
    assert.ok(out && want, `output ${name} missing`);
    assert.deepEqual(out.dims, want.shape, `shape of ${name}`);
    const d = maxAbsDiff(out.data as Float32Array, want.data);
    assert.ok(d <= TOL, `${model.name}/${name}: max |Δ| ${d} > ${TOL}`);
  });
  await onnx.release();
  return opCounts(bytes);
}

function seq(name: string, layers: tf.layers.Layer[]): tf.Sequential {
  const m = tf.sequential({ name });
  for (const l of layers) m.add(l);
  return m;
}

describe('LayersModel converter, layer by layer against TF.js', () => {
  before(async () => {
    await useBackend('cpu');
  });

  test('Conv2D SAME stride 2 on an even input (asymmetric padding), bias, relu', async () => {
    const ops = await check(
      seq('conv_same_s2', [
        tf.layers.conv2d({
          inputShape: [8, 10, 3],
          filters: 4,
          kernelSize: 3,
          strides: 2,
          padding: 'same',
          activation: 'relu',
        }),
      ]),
      1,
    );
    assert.deepEqual(ops, { Transpose: 2, Conv: 1, Relu: 1 });
  });

  test('Conv2D VALID with a 5×3 kernel, dilation 2, no bias', async () => {
    await check(
      seq('conv_valid_dil', [
        tf.layers.conv2d({
          inputShape: [13, 11, 2],
          filters: 3,
          kernelSize: [5, 3],
          dilationRate: 2,
          padding: 'valid',
          useBias: false,
        }),
      ]),
      2,
    );
  });

  test('DepthwiseConv2D with depth multiplier 2, SAME, stride 2, odd input', async () => {
    const ops = await check(
      seq('dw_mult', [
        tf.layers.depthwiseConv2d({
          inputShape: [9, 7, 3],
          kernelSize: 3,
          depthMultiplier: 2,
          strides: 2,
          padding: 'same',
        }),
      ]),
      3,
    );
    assert.equal(ops.Conv, 1);
  });

  test('BatchNormalization after Conv2D and DepthwiseConv2D is folded into the convolutions', async () => {
    const ops = await check(
      seq('bn_fold', [
        tf.layers.conv2d({ inputShape: [8, 8, 3], filters: 6, kernelSize: 3, padding: 'same', useBias: false }),
        tf.layers.batchNormalization({ epsilon: 1e-3 }),
        tf.layers.reLU({ maxValue: 6 }),
        tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same' }),
        tf.layers.batchNormalization({ epsilon: 1e-3 }),
        tf.layers.activation({ activation: 'relu6' }),
      ]),
      4,
    );
    assert.deepEqual(ops, { Transpose: 2, Conv: 2, Clip: 2 }, 'BN folded, ReLU6 as Clip');
  });

  test('BatchNormalization that cannot be folded (on the input, after an activation) stays exact', async () => {
    const ops = await check(
      seq('bn_unfoldable', [
        tf.layers.batchNormalization({ inputShape: [5, 6, 3] }),
        tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }),
        tf.layers.batchNormalization({ epsilon: 0.01 }),
      ]),
      12,
    );
    assert.equal(ops.Mul, 2, 'two BN scales left as Mul');
  });

  test('BatchNormalization after Dense is folded into the Gemm', async () => {
    const ops = await check(
      seq('bn_dense', [
        tf.layers.dense({ inputShape: [10], units: 7 }),
        tf.layers.batchNormalization(),
        tf.layers.activation({ activation: 'tanh' }),
      ]),
      5,
    );
    assert.deepEqual(ops, { Gemm: 1, Tanh: 1 });
  });

  test('ZeroPadding2D is folded into the next convolution; before a pool it stays a Pad', async () => {
    const ops = await check(
      seq('zeropad', [
        tf.layers.zeroPadding2d({
          inputShape: [7, 7, 2],
          padding: [
            [0, 1],
            [2, 1],
          ],
        }),
        tf.layers.conv2d({ filters: 3, kernelSize: 3, strides: 2, padding: 'valid' }),
        tf.layers.zeroPadding2d({ padding: 1 }),
        tf.layers.maxPooling2d({ poolSize: 2 }),
      ]),
      6,
    );
    assert.equal(ops.Pad, 1, 'one Pad left (before the pool)');
    assert.equal(ops.Conv, 1);
  });

  test('ZeroPadding2D before MaxPooling2D and AveragePooling2D keeps zero-padding semantics (negative inputs)', async () => {
    for (const [i, pool] of [
      tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }),
      tf.layers.maxPooling2d({ poolSize: 2, padding: 'valid' }),
      tf.layers.averagePooling2d({ poolSize: 3, strides: 2, padding: 'same' }),
    ].entries()) {
      const model = seq(`zeropad_pool_${i}`, [
        tf.layers.zeroPadding2d({
          inputShape: [6, 7, 2],
          padding: [
            [1, 2],
            [2, 0],
          ],
        }),
        pool,
        tf.layers.dense({ units: 3, activation: 'linear' }),
      ]);
      // Dense with no activation after the pool: negative inputs must still see the zero padding.
      await check(model, 20 + i, 1);
    }
  });

  test('pooling: MaxPooling2D and AveragePooling2D SAME (the average excludes padding), GlobalAveragePooling2D, GlobalMaxPooling2D', async () => {
    const input = tf.input({ shape: [7, 9, 3] });
    const a = tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }).apply(input) as tf.SymbolicTensor;
    const b = tf.layers.averagePooling2d({ poolSize: 3, strides: 2, padding: 'same' }).apply(a) as tf.SymbolicTensor;
    const g1 = tf.layers.globalAveragePooling2d({}).apply(b) as tf.SymbolicTensor;
    const g2 = tf.layers.globalMaxPooling2d({}).apply(b) as tf.SymbolicTensor;
    await check(tf.model({ name: 'pools', inputs: input, outputs: [g1, g2] }), 7);
  });

  test('Dense, Dropout, Activation (sigmoid, elu, softplus, selu, hard_sigmoid, softsign, linear), Softmax', async () => {
    await check(
      seq('dense_acts', [
        tf.layers.dense({ inputShape: [12], units: 16, activation: 'sigmoid' }),
        tf.layers.dropout({ rate: 0.5 }),
        tf.layers.dense({ units: 16, activation: 'elu' }),
        tf.layers.activation({ activation: 'softplus' }),
        tf.layers.activation({ activation: 'selu' }),
        tf.layers.activation({ activation: 'hardSigmoid' }),
        tf.layers.activation({ activation: 'softsign' }),
        tf.layers.dense({ units: 5, activation: 'linear' }),
        tf.layers.softmax(),
      ]),
      8,
      3,
    );
  });

  test('PReLU per position and channel, and with shared spatial axes', async () => {
    await check(
      seq('prelu', [
        tf.layers.conv2d({ inputShape: [5, 4, 2], filters: 3, kernelSize: 3, padding: 'same' }),
        tf.layers.prelu({}),
        tf.layers.conv2d({ filters: 3, kernelSize: 1 }),
        tf.layers.prelu({ sharedAxes: [1, 2] }),
      ]),
      13,
    );
  });

  test('LeakyReLU, Flatten after convolutions, Reshape, dense softmax', async () => {
    await check(
      seq('flatten_reshape', [
        tf.layers.conv2d({ inputShape: [6, 5, 2], filters: 3, kernelSize: 2, padding: 'valid' }),
        tf.layers.leakyReLU({ alpha: 0.2 }),
        tf.layers.flatten(),
        tf.layers.reshape({ targetShape: [4, 15] }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 4, activation: 'softmax' }),
      ]),
      9,
    );
  });

  test('functional model: Add, Multiply, Concatenate across convolutions, Reshape to 4-D then Conv', async () => {
    const input = tf.input({ shape: [6, 6, 4] });
    const c1 = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same' }).apply(input) as tf.SymbolicTensor;
    const c2 = tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same' }).apply(input) as tf.SymbolicTensor;
    const sum = tf.layers.add().apply([c1, c2]) as tf.SymbolicTensor;
    const prod = tf.layers.multiply().apply([sum, input]) as tf.SymbolicTensor;
    const cat = tf.layers.concatenate({ axis: -1 }).apply([prod, c1]) as tf.SymbolicTensor;
    const pooled = tf.layers.globalAveragePooling2d({}).apply(cat) as tf.SymbolicTensor;
    const r = tf.layers.reshape({ targetShape: [1, 1, 8] }).apply(pooled) as tf.SymbolicTensor;
    const c3 = tf.layers.conv2d({ filters: 5, kernelSize: 1 }).apply(r) as tf.SymbolicTensor;
    await check(tf.model({ name: 'functional', inputs: input, outputs: c3 }), 10);
  });

  test('Reshape with -1, then Dense on a rank-3 tensor (MatMul on the last axis) and softmax', async () => {
    await check(
      seq('reshape_free', [
        tf.layers.reshape({ inputShape: [6, 5], targetShape: [-1, 3] }),
        tf.layers.dense({ units: 2, activation: 'softmax' }),
      ]),
      15,
      2,
    );
  });

  test('a model nested as a layer (backbone inside a Sequential) is converted inline', async () => {
    const inputs = tf.input({ shape: [8, 8, 3] });
    const c = tf.layers
      .conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', name: 'inner_conv' })
      .apply(inputs) as tf.SymbolicTensor;
    const bn = tf.layers.batchNormalization({ name: 'inner_bn' }).apply(c) as tf.SymbolicTensor;
    const backbone = tf.model({
      inputs,
      outputs: tf.layers.reLU({ maxValue: 6 }).apply(bn) as tf.SymbolicTensor,
      name: 'backbone',
    });
    const model = tf.sequential({
      name: 'outer',
      layers: [backbone, tf.layers.globalAveragePooling2d({}), tf.layers.dense({ units: 3, activation: 'softmax' })],
    });
    const ops = await check(model, 14);
    assert.equal(ops.Conv, 1);
  });

  test('an unsupported layer stops the export with its class and layer name', async () => {
    const model = seq('lstm_model', [tf.layers.simpleRNN({ inputShape: [3, 4], units: 2, name: 'my_rnn' })]);
    const artifacts = await layersArtifacts(model);
    assert.throws(
      () => convertLayersModel(artifacts),
      (err: unknown) => err instanceof UnsupportedError && /SimpleRNN/.test(err.message) && /my_rnn/.test(err.message),
    );
  });

  test('an unsupported activation names the activation and the layer', async () => {
    const model = seq('gelu_model', [
      tf.layers.dense({ inputShape: [3], units: 2, activation: 'mish', name: 'odd_dense' }),
    ]);
    const artifacts = await layersArtifacts(model);
    assert.throws(
      () => convertLayersModel(artifacts),
      (err: unknown) => err instanceof UnsupportedError && /mish/.test(err.message) && /odd_dense/.test(err.message),
    );
  });
});
