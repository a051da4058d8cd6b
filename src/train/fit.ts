/**
 * The training loop on features: per epoch, augment every training image (seeded by
 * seed, epoch and image), extract its features once, shuffle, train the head batch by
 * batch, then evaluate on the validation features (extracted once, never augmented).
 * Callbacks as Keras: ModelCheckpoint(save_best_only on val_loss) and
 * EarlyStopping(val_loss, patience, restore_best_weights) — TF.js's own earlyStopping
 * does not restore (FACTS.md), so both are written here.
 *
 * The head trains on standardised features (per-feature z-score from the un-augmented
 * training images): pooled backbone features have very different scales per channel, and
 * on raw features the tutorial's RMSprop settings make val_loss jump from epoch to epoch
 * so that patience 3 stops early (ORL, MobileNet 0.25: val accuracy 0.91–0.94 raw,
 * 0.95–0.975 standardised, same seeds). The standardisation is folded into the first
 * Dense layer whenever the head is saved or returned, so the saved head (and the exported
 * graph) still takes raw pooled features.
 */
import * as tf from '@tensorflow/tfjs';
import type { RgbImage } from '../shared/image.js';
import { moduleLogger } from '../shared/logger.js';
import { augment, type AugmentConfig } from './augment.js';
import type { FeatureExtractor } from './features.js';
import { cloneWeights } from './head.js';
import { headStep } from './head-step.js';
import { deriveSeed, mulberry32, permutation } from './rng.js';
import { saveLayersModel } from './tfjs-io.js';

const log = moduleLogger('train.fit');

export interface EpochLogs {
  readonly epoch: number;
  readonly loss: number;
  readonly accuracy: number;
  readonly val_loss: number;
  readonly val_accuracy: number;
  readonly seconds: number;
}

export interface LabelledImage {
  readonly image: RgbImage;
  readonly label: number;
}

export interface FitOptions {
  readonly head: tf.LayersModel;
  readonly extractor: FeatureExtractor;
  readonly train: readonly LabelledImage[];
  readonly validation: readonly LabelledImage[];
  readonly numClasses: number;
  readonly epochs: number;
  readonly batchSize: number;
  readonly patience: number;
  /** An epoch counts as better only when val_loss drops by more than this (Keras min_delta). */
  readonly minDelta?: number;
  readonly seed: number;
  /** null: no augmentation (features of the training images are then extracted once). */
  readonly augment: AugmentConfig | null;
  /** Best-val_loss checkpoint folder (model.json + weights.bin), written during training. */
  readonly checkpointDir?: string;
  readonly onEpochStart?: (epoch: number, batches: number) => void;
  readonly onBatch?: (epoch: number, batch: number, loss: number, accuracy: number) => void;
  readonly onEpochEnd?: (logs: EpochLogs, improved: boolean) => void;
}

export interface FitResult {
  readonly history: EpochLogs[];
  /** 1-based epoch whose weights the head now holds. */
  readonly bestEpoch: number;
  readonly epochsRun: number;
  readonly stoppedEarly: boolean;
  /** Features the head was evaluated on (validation), for later stages. */
  readonly validationFeatures: Float32Array;
  /** Features of the un-augmented training images (for references / thresholds). */
  readonly trainFeatures: Float32Array;
}

/** float32 one-hot rows; the int32 intermediates are freed (this runs once per batch). */
export function oneHot(labels: readonly number[], n: number): tf.Tensor2D {
  return tf.tidy(() => tf.oneHot(tf.tensor1d(labels as number[], 'int32'), n).toFloat() as tf.Tensor2D);
}

/** Mean categorical cross-entropy and accuracy of the head on features. */
export function evaluate(
  head: tf.LayersModel,
  features: Float32Array,
  labels: readonly number[],
  featureSize: number,
  numClasses: number,
): { loss: number; accuracy: number } {
  return tf.tidy(() => {
    const x = tf.tensor2d(features, [labels.length, featureSize]);
    const y = oneHot(labels, numClasses);
    const p = head.predict(x) as tf.Tensor2D;
    const loss = tf.metrics.categoricalCrossentropy(y, p).mean().dataSync()[0] ?? Number.NaN;
    const acc = tf.metrics.categoricalAccuracy(y, p).mean().dataSync()[0] ?? Number.NaN;
    return { loss, accuracy: acc };
  });
}

/** Per-feature mean and spread; the spread has a floor (10 % of the average) so near-constant features cannot blow up. */
export interface Standardisation {
  readonly mean: Float32Array;
  readonly sd: Float32Array;
}

export function fitStandardisation(features: Float32Array, size: number): Standardisation {
  const n = features.length / size;
  const mean = new Float32Array(size);
  const variance = new Float64Array(size);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < size; k++) mean[k] = (mean[k] ?? 0) + (features[i * size + k] ?? 0) / n;
  for (let i = 0; i < n; i++)
    for (let k = 0; k < size; k++)
      variance[k] = (variance[k] ?? 0) + ((features[i * size + k] ?? 0) - (mean[k] ?? 0)) ** 2 / n;
  const avg = variance.reduce((a, v) => a + v, 0) / size;
  const sd = Float32Array.from(variance, (v) => Math.sqrt(v + 0.01 * avg) || 1);
  return { mean, sd };
}

export function standardise(features: Float32Array, st: Standardisation): Float32Array {
  const size = st.mean.length;
  return features.map((v, j) => (v - (st.mean[j % size] ?? 0)) / (st.sd[j % size] ?? 1));
}

/**
 * The head's weights with the standardisation folded into the first Dense layer:
 * W'[k,j] = W[k,j] / sd[k], b'[j] = b[j] − Σk mean[k] / sd[k] · W[k,j].
 */
export function foldedWeights(head: tf.LayersModel, st: Standardisation): tf.Tensor[] {
  const weights = head.getWeights();
  const [kernel, bias, ...rest] = weights;
  if (!kernel || !bias) throw new Error('the head has no first Dense layer');
  return tf.tidy(() => {
    const inv = tf.tensor1d(Float32Array.from(st.sd, (v) => 1 / v)).reshape([-1, 1]);
    const k2 = tf.mul(kernel, inv);
    const shift = tf.matMul(tf.tensor2d(st.mean, [1, st.mean.length]), k2).reshape([-1]);
    return [k2, tf.sub(bias, shift), ...rest.map((w) => w.clone())];
  });
}

export async function fitHead(o: FitOptions): Promise<FitResult> {
  const size = o.extractor.spec.featureSize;
  const trainLabels = o.train.map((s) => s.label);
  const valLabels = o.validation.map((s) => s.label);
  const rawValidation = await o.extractor.extract(o.validation.map((s) => s.image));
  const rawTrain = await o.extractor.extract(o.train.map((s) => s.image));
  const st = fitStandardisation(rawTrain, size);
  const validationFeatures = standardise(rawValidation, st);
  const plainTrain = standardise(rawTrain, st);
  const history: EpochLogs[] = [];
  let best = Number.POSITIVE_INFINITY;
  let bestEpoch = 0;
  let bestWeights: tf.Tensor[] | null = null;
  let wait = 0;
  let stoppedEarly = false;
  const n = o.train.length;
  const batches = Math.ceil(n / o.batchSize);
  // trainOnBatch's computation with faster gradients (see head-step.ts).
  const trainStep = headStep(o.head);
  try {
    for (let epoch = 1; epoch <= o.epochs; epoch++) {
      const t0 = performance.now();
      let feats = plainTrain;
      if (o.augment) {
        const cfg = o.augment;
        const images = o.train.map(
          (s, i) => augment(s.image, mulberry32(deriveSeed(o.seed, 0xa09, epoch, i)), cfg).image,
        );
        feats = standardise(await o.extractor.extract(images), st);
      }
      const order = permutation(n, mulberry32(deriveSeed(o.seed, 0x5f1e, epoch)));
      o.onEpochStart?.(epoch, batches);
      let lossSum = 0;
      let accSum = 0;
      for (let b = 0; b < batches; b++) {
        const idx = order.slice(b * o.batchSize, (b + 1) * o.batchSize);
        const xb = new Float32Array(idx.length * size);
        idx.forEach((j, k) => xb.set(feats.subarray(j * size, (j + 1) * size), k * size));
        const x = tf.tensor2d(xb, [idx.length, size]);
        const y = oneHot(
          idx.map((j) => trainLabels[j] ?? 0),
          o.numClasses,
        );
        const { loss, accuracy: acc } = await trainStep.step(x, y);
        tf.dispose([x, y]);
        lossSum += loss * idx.length;
        accSum += acc * idx.length;
        o.onBatch?.(
          epoch,
          b + 1,
          lossSum / Math.min(n, (b + 1) * o.batchSize),
          accSum / Math.min(n, (b + 1) * o.batchSize),
        );
      }
      const val = evaluate(o.head, validationFeatures, valLabels, size, o.numClasses);
      const logs: EpochLogs = {
        epoch,
        loss: lossSum / n,
        accuracy: accSum / n,
        val_loss: val.loss,
        val_accuracy: val.accuracy,
        seconds: (performance.now() - t0) / 1000,
      };
      history.push(logs);
      // One notion of "better" for the checkpoint and for early stopping, so the restored
      // epoch is the checkpointed one.
      const improved = val.loss < best - (o.minDelta ?? 0);
      if (improved) {
        best = val.loss;
        bestEpoch = epoch;
        wait = 0;
        if (bestWeights) tf.dispose(bestWeights);
        bestWeights = cloneWeights(o.head);
        if (o.checkpointDir) {
          // The checkpoint takes raw features, like the final head: save the folded weights.
          const folded = foldedWeights(o.head, st);
          o.head.setWeights(folded);
          await saveLayersModel(o.head, o.checkpointDir);
          o.head.setWeights(bestWeights);
          tf.dispose(folded);
        }
      } else {
        wait++;
      }
      o.onEpochEnd?.(logs, improved);
      log.debug({ ...logs, improved }, 'epoch done');
      if (!improved && wait >= o.patience) {
        stoppedEarly = true;
        break;
      }
    }
    // restore_best_weights: the head leaves with the best epoch's weights, whether
    // early stopping fired or the epochs ran out.
    if (bestWeights && bestEpoch !== history.length) o.head.setWeights(bestWeights);
    const folded = foldedWeights(o.head, st);
    o.head.setWeights(folded);
    tf.dispose(folded);
  } finally {
    if (bestWeights) tf.dispose(bestWeights);
    trainStep.dispose();
  }
  return {
    history,
    bestEpoch,
    epochsRun: history.length,
    stoppedEarly,
    validationFeatures: rawValidation,
    trainFeatures: rawTrain,
  };
}
