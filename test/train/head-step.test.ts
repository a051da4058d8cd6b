import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/train/backend.js';
import { oneHot } from '../../src/train/fit.js';
import { buildHead, compileHead } from '../../src/train/head.js';
import { headForward, headStep, rmspropWithoutMomentum } from '../../src/train/head-step.js';
import { mulberry32 } from '../../src/train/rng.js';

// Small fixtures: the tutorial's head (1024 → 1024 → 512) on 24 features, 5 classes.
const FEATURES = 24;
const CLASSES = 5;

function batch(seed: number, size: number): { x: tf.Tensor2D; y: tf.Tensor2D } {
  const rng = mulberry32(seed);
  const x = tf.tensor2d(
    Float32Array.from({ length: size * FEATURES }, () => rng() * 4 - 2),
    [size, FEATURES],
  );
  const y = oneHot(
    Array.from({ length: size }, () => Math.floor(rng() * CLASSES)),
    CLASSES,
  );
  return { x, y };
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  const u = a.dataSync();
  const v = b.dataSync();
  let m = 0;
  for (let i = 0; i < u.length; i++) m = Math.max(m, Math.abs((u[i] ?? 0) - (v[i] ?? 0)));
  return m;
}

function maxAbs(a: tf.Tensor): number {
  return (a.dataSync() as Float32Array).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

test("the fast head's forward pass and gradients equal TF.js's own", async () => {
  await initBackend('wasm');
  const head = buildHead(FEATURES, CLASSES, 3, 0.001);
  const vars = head.trainableWeights.map((w) => w.read() as tf.Variable);
  const forward = headForward(head);
  for (const size of [9, 5]) {
    const { x, y } = batch(size, size);
    const standard = tf.variableGrads(
      () => tf.mean<tf.Scalar>(tf.metrics.categoricalCrossentropy(y, head.apply(x, { training: true }) as tf.Tensor2D)),
      vars,
    );
    const fast = tf.variableGrads(() => tf.mean<tf.Scalar>(tf.metrics.categoricalCrossentropy(y, forward(x))), vars);
    // The forward pass runs the same kernels: the loss is bit for bit the same, in
    // training (recorded) and in inference.
    assert.equal(fast.value.dataSync()[0], standard.value.dataSync()[0]);
    const [p, q] = tf.tidy(() => [forward(x), head.predict(x) as tf.Tensor2D]);
    assert.equal(maxAbsDiff(p, q), 0);
    tf.dispose([p, q]);
    assert.equal(Object.keys(fast.grads).length, vars.length);
    for (const v of vars) {
      const g = fast.grads[v.name];
      const s = standard.grads[v.name];
      assert.ok(g && s, `gradient of ${v.name}`);
      // Same sums in another order: equal to float rounding, relative to the gradient's size.
      assert.ok(maxAbs(s) > 0, `${v.name}: the fixture gives a non-zero gradient`);
      assert.ok(maxAbsDiff(g, s) <= 1e-5 * maxAbs(s), `${v.name}: ${maxAbsDiff(g, s)} vs scale ${maxAbs(s)}`);
    }
    tf.dispose([x, y, standard.value, fast.value, ...Object.values(standard.grads), ...Object.values(fast.grads)]);
  }
  head.dispose();
});

test('a few RMSprop steps of the fast step equal trainOnBatch: loss, accuracy and weights', async () => {
  await initBackend('wasm');
  const reference = buildHead(FEATURES, CLASSES, 7, 0.001);
  const head = buildHead(FEATURES, CLASSES, 7, 0.001);
  const step = headStep(head);
  for (let i = 0; i < 6; i++) {
    const { x, y } = batch(100 + i, i === 5 ? 4 : 9);
    const r = (await reference.trainOnBatch(x, y)) as number[];
    const f = await step.step(x, y);
    assert.ok(
      Math.abs(f.loss - (r[0] ?? Number.NaN)) <= 1e-5 * Math.abs(r[0] ?? 1),
      `step ${i}: loss ${f.loss} vs ${r[0]}`,
    );
    assert.equal(f.accuracy, r[1], `step ${i}: accuracy`);
    tf.dispose([x, y]);
  }
  const a = reference.getWeights();
  const b = head.getWeights();
  a.forEach((w, k) => {
    const t = b[k] as tf.Tensor;
    // The weights moved (the steps did something) and moved the same way.
    assert.ok(maxAbs(w) > 0);
    assert.ok(maxAbsDiff(w, t) <= 1e-5 * maxAbs(w), `weight ${k}: ${maxAbsDiff(w, t)}`);
  });
  reference.dispose();
  head.dispose();
});

test("the head's RMSprop update gives TF.js's RMSprop values on the same gradients", async () => {
  await initBackend('wasm');
  const reference = buildHead(FEATURES, CLASSES, 11, 0.001);
  const head = buildHead(FEATURES, CLASSES, 11, 0.001);
  const refVars = reference.trainableWeights.map((w) => w.read() as tf.Variable);
  const vars = head.trainableWeights.map((w) => w.read() as tf.Variable);
  const update = rmspropWithoutMomentum(head.optimizer, vars);
  assert.ok(update, 'the compiled head (RMSprop, momentum 0) gets its own update');
  const optimizer = reference.optimizer;
  for (let i = 0; i < 5; i++) {
    const rng = mulberry32(300 + i);
    // The same gradients for both (a few exact zeros too), by each side's variable names.
    const grads = refVars.map((v) =>
      tf.tensor(
        Float32Array.from({ length: v.size }, () => (rng() < 0.05 ? 0 : (rng() - 0.5) * 10 ** (rng() * 6 - 4))),
        v.shape,
      ),
    );
    optimizer.applyGradients(Object.fromEntries(refVars.map((v, k) => [v.name, grads[k] as tf.Tensor])));
    update.apply(Object.fromEntries(vars.map((v, k) => [v.name, grads[k] as tf.Tensor])));
    tf.dispose(grads);
  }
  refVars.forEach((r, k) => {
    const v = vars[k] as tf.Variable;
    const a = r.dataSync();
    const b = v.dataSync();
    assert.ok(maxAbs(r) > 0);
    // The same float32 operations: equal values (a zero may differ in sign only).
    for (let i = 0; i < a.length; i++) assert.ok(a[i] === b[i], `${r.name}[${i}]: ${a[i]} vs ${b[i]}`);
  });
  update.dispose();
  reference.dispose();
  head.dispose();
});

test('other optimizers are left to TF.js', async () => {
  await initBackend('wasm');
  const v = tf.variable(tf.zeros([3]));
  assert.equal(rmspropWithoutMomentum(tf.train.rmsprop(0.001, 0.9, 0.5), [v]), null, 'momentum');
  assert.equal(rmspropWithoutMomentum(tf.train.rmsprop(0.001, 0.9, 0, 1e-7, true), [v]), null, 'centered');
  assert.equal(rmspropWithoutMomentum(tf.train.adam(0.001), [v]), null, 'adam');
  v.dispose();
});

test('the fast step refuses a head it would train differently', async () => {
  await initBackend('wasm');
  const withDropout = tf.sequential({
    layers: [
      tf.layers.dense({ units: 4, inputShape: [FEATURES], activation: 'relu' }),
      tf.layers.dropout({ rate: 0.5 }),
      tf.layers.dense({ units: CLASSES, activation: 'softmax' }),
    ],
  });
  compileHead(withDropout, 0.001);
  assert.throws(() => headStep(withDropout), /Dense layers only.*Dropout/);
  const regularised = tf.sequential({
    layers: [
      tf.layers.dense({
        units: CLASSES,
        inputShape: [FEATURES],
        activation: 'softmax',
        kernelRegularizer: tf.regularizers.l2(),
      }),
    ],
  });
  compileHead(regularised, 0.001);
  assert.throws(() => headStep(regularised), /kernelRegularizer/);
  const bare = tf.sequential({ layers: [tf.layers.dense({ units: CLASSES, inputShape: [FEATURES] })] });
  assert.throws(() => headStep(bare), /not compiled/);
  for (const m of [withDropout, regularised, bare]) m.dispose();
});
