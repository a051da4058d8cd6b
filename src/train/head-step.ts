/**
 * One training step of the head, computing what `model.trainOnBatch` computes (same
 * forward kernels, same loss and accuracy, the same optimizer update) but with cheaper
 * matrix products in the backward pass and, for the head's RMSprop (momentum 0), an
 * update without TF.js's wasted passes (`rmspropWithoutMomentum`; the same values).
 *
 * Why: on the wasm backend, TF.js's gradient of a Dense layer asks for
 * `matMul(x, dy, transposeA)` (weight gradient) and `matMul(dy, W, transposeB)` (input
 * gradient). The first falls back to a plain loop and the second repacks W for XNNPACK
 * on every step; together they took most of a head step. Here the weight gradient is
 * `transpose(x) · dy` (both operands small) and the input gradient `(W · transpose(dy))ᵀ`
 * (W as the left operand, which XNNPACK reads without packing). The products are the same
 * sums, so gradients agree with TF.js's to float rounding (a test checks).
 *
 * Only what the head uses is supported: Dense layers (relu, linear or softmax, with or
 * without bias, no regularisers or constraints), categorical cross-entropy, an optimizer
 * from `compile`. Anything else is refused when the step is built, so a head that grows a
 * Dropout layer or a regulariser fails loudly instead of training differently.
 */
import * as tf from '@tensorflow/tfjs';
import { FacegateError } from '../shared/errors.js';

export interface HeadStep {
  /** Trains on one batch (x: features, y: one-hot rows); returns the batch's mean loss and accuracy before the update. */
  step(x: tf.Tensor2D, y: tf.Tensor2D): Promise<{ loss: number; accuracy: number }>;
  /** Frees the step's own optimizer state (the model's variables stay). */
  dispose(): void;
}

type Activation = 'relu' | 'linear' | 'softmax';

interface DenseSpec {
  readonly name: string;
  readonly activation: Activation;
  readonly kernel: tf.Variable;
  readonly bias: tf.Variable | null;
}

/** The Dense layers of `model` in order, or an error naming what is not supported. */
function denseLayers(model: tf.LayersModel): DenseSpec[] {
  const specs: DenseSpec[] = [];
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    if (cls === 'InputLayer') continue;
    const c = layer.getConfig();
    if (cls !== 'Dense')
      throw new FacegateError(
        `the fast head step supports Dense layers only, and layer "${layer.name}" is ${cls}; ` +
          'train this head with model.trainOnBatch instead, or extend src/train/head-step.ts',
      );
    const activation = c['activation'];
    if (activation !== 'relu' && activation !== 'linear' && activation !== 'softmax')
      throw new FacegateError(
        `the fast head step supports relu, linear and softmax activations, and layer "${layer.name}" uses ${JSON.stringify(activation)}`,
      );
    for (const key of [
      'kernelRegularizer',
      'biasRegularizer',
      'activityRegularizer',
      'kernelConstraint',
      'biasConstraint',
    ])
      if (c[key] != null)
        throw new FacegateError(
          `the fast head step does not apply ${key} (layer "${layer.name}" has one); train this head with model.trainOnBatch`,
        );
    const [kernel, bias] = layer.trainableWeights.map((w) => w.read() as tf.Variable);
    if (!kernel) throw new FacegateError(`layer "${layer.name}" has no trainable kernel`);
    specs.push({ name: layer.name, activation, kernel, bias: bias ?? null });
  }
  if (specs.length === 0) throw new FacegateError('the head has no Dense layers');
  return specs;
}

/**
 * The Dense layer's forward exactly as tfjs-layers computes it (fused matMul with bias and
 * relu; softmax layers add the bias after the product), with a gradient that avoids the
 * slow products. `inputGradient: false` for the first layer, whose input is data: its
 * gradient is never used, so it is returned as zeros instead of computed.
 */
function denseOp(activation: Activation, hasBias: boolean, inputGradient: boolean) {
  const fuse = activation === 'relu' ? 'relu' : 'linear';
  return tf.customGrad((...args: (tf.Tensor | ((tensors: tf.Tensor[]) => void))[]) => {
    const x = args[0] as tf.Tensor2D;
    const kernel = args[1] as tf.Tensor2D;
    const bias = hasBias ? (args[2] as tf.Tensor1D) : null;
    const save = args[args.length - 1] as (tensors: tf.Tensor[]) => void;
    // As tfjs-layers' Dense: a rank-1 bias, fused into the product for relu layers and
    // added after it otherwise. (While gradients are recorded TF.js runs the relu variant
    // unfused — matMul, add, relu — in both paths alike.)
    let value: tf.Tensor2D;
    if (fuse === 'relu')
      value = tf.fused.matMul({ a: x, b: kernel, bias: bias ?? undefined, activation: 'relu' }) as tf.Tensor2D;
    else {
      value = tf.fused.matMul({ a: x, b: kernel }) as tf.Tensor2D;
      if (bias) value = tf.add(value, bias);
    }
    save([x, kernel, value]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ks, ys] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
        // relu: as TF.js's fused gradient, dy · step(y).
        const dz = fuse === 'relu' ? tf.mul(dy, tf.step(ys)) : (dy as tf.Tensor2D);
        const dx = inputGradient ? tf.transpose(tf.matMul(ks, tf.transpose(dz))) : tf.zerosLike(xs);
        const dk = tf.matMul(tf.transpose(xs), dz);
        return hasBias ? [dx, dk, tf.sum(dz, 0)] : [dx, dk];
      },
    };
  });
}

/**
 * The head's forward pass (training mode) with the fast gradients: the same values as
 * `model.apply(x)`, differentiable with respect to the model's own variables.
 */
export function headForward(model: tf.LayersModel): (x: tf.Tensor2D) => tf.Tensor2D {
  const layers = denseLayers(model);
  const ops = layers.map((l, i) => denseOp(l.activation, l.bias !== null, i > 0));
  return (x) => {
    let h = x;
    layers.forEach((l, i) => {
      const op = ops[i];
      if (!op) return;
      h = l.bias ? op(h, l.kernel, l.bias) : op(h, l.kernel);
      if (l.activation === 'softmax') h = tf.softmax(h);
    });
    return h;
  };
}

/** Applies one optimizer update to the variables, given their gradients (by variable name). */
export interface Update {
  apply(grads: tf.NamedTensorMap): void;
  dispose(): void;
}

/**
 * RMSprop without momentum, written for the head: the same operations as TF.js's
 * `RMSPropOptimizer.applyGradients` (tfjs-core 4.22) on the same float32 constants, so
 * the same values, minus its wasted work. TF.js computes the new mean square twice (once
 * outside its `centered` branch, once inside) and, with momentum 0, still multiplies the
 * moment accumulator by 0 and adds it: 15 element-wise passes over every weight per step
 * where 9 give the same result (`0 · m + u` is `u`, up to the sign of a zero). A test
 * compares the two on the same gradients.
 *
 * Returns null for any other optimizer (momentum, centered, not RMSprop): the caller
 * then uses the optimizer itself. The model's optimizer keeps no state of its own then;
 * the mean squares live here.
 */
export function rmspropWithoutMomentum(optimizer: tf.Optimizer, variables: readonly tf.Variable[]): Update | null {
  if (!(optimizer instanceof tf.RMSPropOptimizer)) return null;
  const c = optimizer.getConfig() as {
    learningRate: number;
    decay: number;
    momentum: number;
    epsilon: number;
    centered: boolean;
  };
  if (c.momentum !== 0 || c.centered) return null;
  // JS numbers become float32 scalars exactly as in TF.js's mul(t, number) / add(t, number).
  const decay = tf.keep(tf.scalar(c.decay));
  const oneMinusDecay = tf.keep(tf.scalar(1 - c.decay));
  const learningRate = tf.keep(tf.scalar(c.learningRate));
  const epsilon = tf.keep(tf.scalar(c.epsilon));
  const meanSquares = variables.map((v) => tf.tidy(() => tf.zerosLike(v).variable(false)));
  return {
    apply(grads) {
      variables.forEach((v, i) => {
        const g = grads[v.name];
        const ms = meanSquares[i];
        if (!g || !ms) return;
        tf.tidy(() => {
          const newMeanSquare = tf.add(tf.mul(ms, decay), tf.mul(tf.square(g), oneMinusDecay));
          const step = tf.div(tf.mul(g, learningRate), tf.sqrt(tf.add(newMeanSquare, epsilon)));
          ms.assign(newMeanSquare);
          v.assign(tf.sub(v, step));
        });
      });
    },
    dispose() {
      tf.dispose([decay, oneMinusDecay, learningRate, epsilon, ...meanSquares]);
    },
  };
}

/** Builds the step for a compiled head. The model's own variables are used, so the model always holds the trained weights. */
export function headStep(model: tf.LayersModel): HeadStep {
  const forward = headForward(model);
  const optimizer = model.optimizer as tf.Optimizer | undefined;
  if (!optimizer) throw new FacegateError('the head is not compiled; call compileHead first');
  const loss = (model as unknown as { loss: unknown }).loss;
  if (loss !== 'categoricalCrossentropy')
    throw new FacegateError(
      `the fast head step computes categorical cross-entropy, and the head is compiled with ${String(loss)}`,
    );
  // The same variables, in the same order, as trainOnBatch passes to the optimizer.
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  // The head's RMSprop (momentum 0) without TF.js's wasted passes; any other optimizer as compiled.
  const update = rmspropWithoutMomentum(optimizer, variables);
  return {
    async step(x, y) {
      let accuracy: tf.Scalar | null = null;
      // As trainOnBatch: the mean loss is minimised; accuracy is measured on the same forward pass.
      const f = (): tf.Scalar => {
        const p = forward(x);
        accuracy = tf.keep(tf.mean<tf.Scalar>(tf.metrics.categoricalAccuracy(y, p)));
        return tf.mean<tf.Scalar>(tf.metrics.categoricalCrossentropy(y, p));
      };
      let lossValue: tf.Scalar | null;
      if (update) {
        const { value, grads } = tf.variableGrads(f, variables);
        update.apply(grads);
        tf.dispose(Object.values(grads));
        lossValue = value;
      } else lossValue = optimizer.minimize(f, true, variables);
      const acc = accuracy as tf.Scalar | null;
      try {
        return {
          loss: (await lossValue?.data())?.[0] ?? Number.NaN,
          accuracy: (await acc?.data())?.[0] ?? Number.NaN,
        };
      } finally {
        tf.dispose([lossValue ?? [], acc ?? []]);
      }
    },
    dispose() {
      update?.dispose();
    },
  };
}
