/**
 * The options of `facegate train` (validated once by `train()`), and what the stages after
 * training receive. Types only flow out of here, so the steps need not import the runner.
 */
import type * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { backboneNames } from '../model/manifest.js';
import { DEFAULT_TARGET_FAR } from '../recognise/calibrate.js';
import { TUTORIAL_AUGMENTATION, augmentConfigSchema } from './augment.js';
import type { BackboneSpec } from './backbone.js';
import type { Dataset } from './data.js';
import type { FeatureExtractor } from './features.js';
import type { FitResult } from './fit.js';

/**
 * Default epochs: the tutorial's 3 stops long before the head converges. 50 is a ceiling
 * that early stopping (patience 3 on val_loss) ends first on every dataset we measured
 * (ORL stops between epochs 8 and 20), while a run that keeps improving is not cut short.
 */
export const DEFAULT_EPOCHS = 50;

/**
 * min_delta: the tutorial's 0 lets a head that already classifies every validation image
 * run on for dozens of epochs on val_loss drops of 1e-4 (faceres on ORL: val accuracy 1.0
 * from epoch 1, val_loss 0.0027 → 0.0009 → 0.0009 …). 0.001 ends those runs and changes
 * nothing while val_loss still falls by real amounts.
 */
export const DEFAULT_MIN_DELTA = 0.001;

export const trainOptionsSchema = z
  .object({
    data: z.string().min(1).describe('DIR with train/<class>/ (and validation/<class>/) images'),
    out: z.string().min(1).describe('output model directory'),
    backbone: z.enum(backboneNames).default('mobilenet_v1').describe('frozen feature extractor'),
    weights: z
      .string()
      .optional()
      .describe('mobilenet_v1 weights: TF.js model.json path, folder or URL; downloaded when absent'),
    alpha: z.number().default(1.0).describe('MobileNet width multiplier for the download'),
    epochs: z.number().int().positive().default(DEFAULT_EPOCHS),
    batchSize: z.number().int().positive().default(9).describe("the tutorial's batch size"),
    lr: z.number().positive().default(0.001).describe('RMSprop learning rate'),
    patience: z.number().int().nonnegative().default(3).describe('early stopping patience on val_loss'),
    minDelta: z
      .number()
      .nonnegative()
      .default(DEFAULT_MIN_DELTA)
      .describe('smallest val_loss drop that counts as better (checkpoint and early stopping)'),
    seed: z.number().int().nonnegative().optional().describe('random seed; drawn and recorded when absent'),
    augment: z.boolean().default(true).describe("the tutorial's augmentation"),
    augmentation: augmentConfigSchema.default(TUTORIAL_AUGMENTATION),
    validationSplit: z
      .number()
      .gt(0)
      .lt(1)
      .default(0.2)
      .describe('held out per class when there is no validation folder'),
    crops: z
      .boolean()
      .default(false)
      .describe(
        'the folders hold ready face crops: skip face detection (by default faces are detected and aligned as on the device; images without a face are skipped and counted)',
      ),
    targetFar: z
      .number()
      .min(0)
      .max(1)
      .default(DEFAULT_TARGET_FAR)
      .describe('false-accept rate the stranger threshold is calibrated to (leave-one-person-out)'),
    classes: z.array(z.string()).optional().describe('train on these classes only'),
    extractor: z.enum(['auto', 'onnx', 'tfjs']).default('auto').describe('how backbone features are computed'),
    backend: z.enum(['tensorflow', 'wasm', 'cpu']).optional().describe('TF.js backend; best available when absent'),
    export: z.boolean().default(true).describe('write model.onnx'),
    quantize: z.boolean().default(true).describe('write model.int8.onnx'),
    calibration: z.string().optional().describe('folder of calibration images; the training images by default'),
    force: z.boolean().default(false).describe('replace a non-empty output directory'),
    progress: z.boolean().default(true).describe('progress bars on stderr'),
    cacheDir: z.string().optional(),
    weightsBaseUrl: z.string().optional(),
  })
  .strict();
export type TrainOptions = z.input<typeof trainOptionsSchema>;
export type ResolvedTrainOptions = z.output<typeof trainOptionsSchema>;

/** What is available right after training, for later stages (references, thresholds: issue 4). */
export interface TrainedContext {
  readonly options: ResolvedTrainOptions;
  readonly dataset: Dataset;
  readonly backbone: BackboneSpec;
  readonly head: tf.LayersModel;
  readonly fit: FitResult;
  readonly extractor: FeatureExtractor;
}
