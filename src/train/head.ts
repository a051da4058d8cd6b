/**
 * The tutorial's head on pooled backbone features: Dense 1024 relu → Dense 1024 relu →
 * Dense 512 relu (`embedding`) → Dense N softmax (`probabilities`). Global average
 * pooling happens in the feature extractor (and in the exported graph), so the head
 * starts at the pooled vector.
 */
import * as tf from '@tensorflow/tfjs';
import { deriveSeed } from './rng.js';

export const HEAD_LAYERS = [
  { name: 'fc1', units: 1024 },
  { name: 'fc2', units: 1024 },
  { name: 'embedding', units: 512 },
] as const;
export const PROBABILITIES_LAYER = 'probabilities';
export const EMBEDDING_LAYER = 'embedding';

/** Builds and compiles the head; weights are initialised from `seed` (Glorot uniform, as Keras). */
export function buildHead(featureSize: number, numClasses: number, seed: number, learningRate: number): tf.Sequential {
  const model = tf.sequential({ name: 'head' });
  HEAD_LAYERS.forEach((l, i) => {
    model.add(
      tf.layers.dense({
        name: l.name,
        units: l.units,
        activation: 'relu',
        kernelInitializer: tf.initializers.glorotUniform({ seed: deriveSeed(seed, 0x4ead, i) % 2147483647 }),
        biasInitializer: 'zeros',
        ...(i === 0 ? { inputShape: [featureSize] } : {}),
      }),
    );
  });
  model.add(
    tf.layers.dense({
      name: PROBABILITIES_LAYER,
      units: numClasses,
      activation: 'softmax',
      kernelInitializer: tf.initializers.glorotUniform({
        seed: deriveSeed(seed, 0x4ead, HEAD_LAYERS.length) % 2147483647,
      }),
    }),
  );
  compileHead(model, learningRate);
  return model;
}

/** RMSprop (Keras defaults: rho 0.9, epsilon 1e-7), categorical cross-entropy, accuracy. */
export function compileHead(model: tf.LayersModel, learningRate: number): void {
  model.compile({
    optimizer: tf.train.rmsprop(learningRate, 0.9, 0, 1e-7),
    loss: 'categoricalCrossentropy',
    metrics: ['accuracy'],
  });
}

/** Copies of all head weights (for restoring the best epoch). */
export function cloneWeights(model: tf.LayersModel): tf.Tensor[] {
  return model.getWeights().map((w) => w.clone());
}
