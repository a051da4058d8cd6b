/**
 * `facegate train`: data → frozen backbone features → head → model directory.
 *
 *   load data (one "file → 224×224 RGB or skip" step per image)
 *   → resolve the backbone (path, download cache, or @vladmandic/human)
 *   → feature extractor (ONNX backbone graph, or TF.js)
 *   → fit the head (augmentation per epoch, checkpoint, early stopping that restores)
 *   → write the model directory (head, labels, history, plot, manifest; ONNX when exported)
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { RecognitionSection } from '../model/manifest.js';
import { FacegateError } from '../shared/errors.js';
import { moduleLogger } from '../shared/logger.js';
import { initBackend, type BackendName } from './backend.js';
import { INPUT_SIZE, loadTfjsBackbone, resolveBackbone, type BackboneSpec, type SummaryRow } from './backbone.js';
import { loadDataset, type Dataset, type ImagePreparer } from './data.js';
import { recognitionStep, trainingFaceStep } from './recognition-step.js';
import { tfjsExtractor, type FeatureExtractor } from './features.js';
import { fitHead, type EpochLogs, type FitResult } from './fit.js';
import { buildHead } from './head.js';
import { formatSummary, headRows, summaryTotals, type SummaryTotals } from './summary.js';
import { writeModelDir, type ExportStep } from './output.js';
import { trainOptionsSchema, type TrainOptions, type TrainedContext } from './options.js';

export {
  DEFAULT_EPOCHS,
  DEFAULT_MIN_DELTA,
  trainOptionsSchema,
  type ResolvedTrainOptions,
  type TrainOptions,
  type TrainedContext,
} from './options.js';

const log = moduleLogger('train');

export interface TrainHooks {
  /** Replace the image step (face detection and alignment, issue 4). */
  readonly preparer?: ImagePreparer;
  /** Replace the feature extractor (tests, bench). */
  readonly extractor?: (spec: BackboneSpec) => Promise<FeatureExtractor>;
  /** Export / quantise step (model.onnx, model.int8.onnx). */
  readonly exportStep?: ExportStep;
  /** Called after training, before the directory is written; may return manifest `recognition` data. */
  readonly afterTraining?: (ctx: TrainedContext) => Promise<RecognitionSection | undefined>;
  /** Prose output (summary, epoch lines); silent when absent. */
  readonly print?: (line: string) => void;
  readonly onDataProgress?: (done: number, total: number) => void;
  readonly onEpochStart?: (epoch: number, epochs: number, batches: number) => void;
  readonly onBatch?: (epoch: number, batch: number, loss: number, accuracy: number) => void;
  readonly onEpochEnd?: (logs: EpochLogs, improved: boolean) => void;
}

export interface TrainResult {
  readonly out: string;
  readonly classes: readonly string[];
  readonly trainImages: number;
  readonly validationImages: number;
  readonly skipped: readonly { file: string; reason: string }[];
  readonly epochsRun: number;
  readonly bestEpoch: number;
  readonly stoppedEarly: boolean;
  readonly valLoss: number;
  readonly valAccuracy: number;
  readonly seconds: number;
  readonly backend: BackendName;
  readonly extractor: 'onnx' | 'tfjs';
  readonly seed: number;
  readonly history: readonly EpochLogs[];
  readonly params: SummaryTotals;
  readonly files: readonly string[];
}

async function prepareOut(out: string, force: boolean): Promise<void> {
  let entries: string[] = [];
  try {
    entries = await readdir(out);
  } catch {
    /* does not exist */
  }
  if (entries.length > 0) {
    if (!force)
      throw new FacegateError(
        `output directory ${out} is not empty: choose another --out or pass --force to replace it`,
      );
    await rm(out, { recursive: true, force: true });
  }
  await mkdir(out, { recursive: true });
}

export async function train(input: TrainOptions, hooks: TrainHooks = {}): Promise<TrainResult> {
  const parsed = trainOptionsSchema.safeParse(input);
  if (!parsed.success)
    throw new FacegateError(
      `invalid training options: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  const o = parsed.data;
  const t0 = performance.now();
  const print = hooks.print ?? ((): void => undefined);
  const seed = o.seed ?? Math.floor(Math.random() * 2 ** 31);
  const out = path.resolve(o.out);
  await prepareOut(out, o.force);

  const backend = await initBackend(o.backend);
  print(
    `TF.js backend: ${backend}${backend === 'tensorflow' ? '' : ' (install @tensorflow/tfjs-node for the native backend)'}`,
  );
  const spec = await resolveBackbone({
    name: o.backbone,
    weights: o.weights,
    alpha: o.alpha,
    cacheDir: o.cacheDir,
    baseUrl: o.weightsBaseUrl,
    progress: o.progress,
  });

  // The same detect → crop → align step as the device (src/recognise/faces.ts), or whole crops.
  const faceStep = hooks.preparer ? null : await trainingFaceStep({ crops: o.crops, size: INPUT_SIZE });
  let dataset: Dataset;
  try {
    dataset = await loadDataset({
      dir: o.data,
      preparer: hooks.preparer ?? (faceStep as NonNullable<typeof faceStep>).preparer,
      validationSplit: o.validationSplit,
      seed,
      ...(o.classes ? { classes: o.classes } : {}),
      ...(hooks.onDataProgress ? { onProgress: hooks.onDataProgress } : {}),
    });
  } finally {
    await faceStep?.close();
  }
  print(
    `data: ${dataset.classes.length} classes, ${dataset.train.length} training and ${dataset.validation.length} validation images (${dataset.layout})` +
      (dataset.skipped.length ? `, ${dataset.skipped.length} skipped` : ''),
  );

  // The TF.js backbone gives the summary rows (and is the reference extractor).
  const tfBackbone = await loadTfjsBackbone(spec);
  const extractor = hooks.extractor
    ? await hooks.extractor(spec)
    : await defaultExtractor(o.extractor, spec, tfBackbone);
  const head = buildHead(spec.featureSize, dataset.classes.length, seed, o.lr);
  const backboneRows = tfBackbone.summaryRows();
  const pooling: SummaryRow | null =
    spec.name === 'mobilenet_v1'
      ? {
          name: 'global_average_pooling2d',
          type: 'GlobalAveragePooling2D',
          shape: `(None, ${spec.featureSize})`,
          params: 0,
        }
      : null;
  const hRows = headRows(head);
  print(formatSummary(`${spec.name} + head`, backboneRows, pooling, hRows));
  print(
    `features: ${extractor.kind}; training the head only (the backbone is frozen and runs forward once per image${o.augment ? ', and once per augmented image and epoch' : ''})`,
  );

  let fit: FitResult;
  try {
    fit = await fitHead({
      head,
      extractor,
      train: dataset.train,
      validation: dataset.validation,
      numClasses: dataset.classes.length,
      epochs: o.epochs,
      batchSize: o.batchSize,
      patience: o.patience,
      minDelta: o.minDelta,
      seed,
      augment: o.augment ? o.augmentation : null,
      checkpointDir: path.join(out, 'checkpoint'),
      onEpochStart: (e, b) => hooks.onEpochStart?.(e, o.epochs, b),
      ...(hooks.onBatch ? { onBatch: hooks.onBatch } : {}),
      ...(hooks.onEpochEnd ? { onEpochEnd: hooks.onEpochEnd } : {}),
    });
  } finally {
    tfBackbone.dispose();
  }
  const best = fit.history[fit.bestEpoch - 1];
  const ctx: TrainedContext = { options: o, dataset, backbone: spec, head, fit, extractor };
  const recognition = await (hooks.afterTraining ?? recognitionStep({ targetFar: o.targetFar }))(ctx);
  const seconds = (performance.now() - t0) / 1000;
  const params = summaryTotals(backboneRows, hRows);
  const files = await writeModelDir({
    out,
    options: o,
    seed,
    dataset,
    spec,
    head,
    fit,
    backend,
    extractorKind: extractor.kind,
    seconds,
    params,
    ...(hooks.exportStep ? { exportStep: hooks.exportStep } : {}),
    ...(recognition ? { recognition } : {}),
    print,
  });
  await extractor.dispose();
  head.dispose();
  if (dataset.skipped.length) {
    print(`skipped ${dataset.skipped.length} file(s):`);
    for (const s of dataset.skipped) print(`  ${s.file}: ${s.reason}`);
  }
  const result: TrainResult = {
    out,
    classes: dataset.classes,
    trainImages: dataset.train.length,
    validationImages: dataset.validation.length,
    skipped: dataset.skipped,
    epochsRun: fit.epochsRun,
    bestEpoch: fit.bestEpoch,
    stoppedEarly: fit.stoppedEarly,
    valLoss: best?.val_loss ?? Number.NaN,
    valAccuracy: best?.val_accuracy ?? Number.NaN,
    seconds: (performance.now() - t0) / 1000,
    backend,
    extractor: extractor.kind,
    seed,
    history: fit.history,
    params,
    files,
  };
  log.debug({ out, valAccuracy: result.valAccuracy, epochs: result.epochsRun }, 'training done');
  return result;
}

async function defaultExtractor(
  kind: 'auto' | 'onnx' | 'tfjs',
  spec: BackboneSpec,
  tfBackbone: Awaited<ReturnType<typeof loadTfjsBackbone>>,
): Promise<FeatureExtractor> {
  if (kind === 'onnx' || kind === 'auto') {
    const { onnxExtractor } = await import('./onnx-features.js');
    const ex = await onnxExtractor(spec).catch((err: unknown) => {
      if (kind === 'onnx') throw err;
      log.warn({ err: (err as Error).message }, 'ONNX feature extraction failed; using the TF.js backbone');
      return null;
    });
    if (ex) return ex;
  }
  return tfjsExtractor(tfBackbone);
}
