/**
 * The model directory `facegate train` writes:
 *
 *   manifest.json      backbone, input contract, classes, metrics, seed, versions, file hashes
 *   labels.json        class names; index i is output i
 *   head/              the trained head (TF.js LayersModel: model.json + weights.bin)
 *   checkpoint/        best-val_loss head, written during training
 *   history.json/.png  loss and accuracy per epoch, train and validation
 *   model.onnx         full fp32 graph (pixels → probabilities, embedding, features)
 *   model.int8.onnx    quantised graph
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { LABELS_FILE, MANIFEST_FILE, type Manifest, type RecognitionSection } from '../model/manifest.js';
import { modelMetadata } from '../model/export/directory.js';
import { hashFiles, writeManifest } from '../model/dir/directory.js';
import type { QuantizationSection } from '../model/dir/sections.js';
import { ModelError } from '../shared/errors.js';
import { writeFileAtomic } from '../shared/fs.js';
import type { RgbImage } from '../shared/image.js';
import type { BackendName } from './backend.js';
import { INPUT_SIZE, type BackboneSpec } from './backbone.js';
import type { Dataset } from './data.js';
import type { FitResult } from './fit.js';
import { EMBEDDING_LAYER, HEAD_LAYERS, PROBABILITIES_LAYER } from './head.js';
import { historyPng } from './plot.js';
import type { SummaryTotals } from './summary.js';
import { modelToArtifacts, writeArtifacts } from './tfjs-io.js';
import type { ResolvedTrainOptions } from './options.js';

export const HEAD_DIR = 'head';
export const CHECKPOINT_DIR = 'checkpoint';
export const HISTORY_JSON = 'history.json';
export const HISTORY_PNG = 'history.png';

/** Export and quantisation, plugged in by the caller: returns files to write (name → bytes). */
export type ExportStep = (input: {
  readonly spec: BackboneSpec;
  readonly head: tf.io.ModelArtifacts;
  readonly export: boolean;
  readonly quantize: boolean;
  /** Calibration images (224×224 RGB) for the quantiser. */
  readonly calibration: () => Promise<readonly RgbImage[]>;
  /** Validation images and labels, to compare int8 with fp32. */
  readonly validation: { readonly images: readonly RgbImage[]; readonly labels: readonly number[] };
  /** metadata_props for the ONNX files (labels, version, backbone, preprocessing, thresholds). */
  readonly metadata: Readonly<Record<string, string>>;
  /** The stranger refusal's references and threshold, for the int8 check's `features` decisions. */
  readonly recognition?: RecognitionSection;
  /** Class names; index i is output i (the kiosk's decision reads the margin of the named person). */
  readonly classes: readonly string[];
}) => Promise<{ files: Record<string, Uint8Array>; quantization?: QuantizationSection; notes?: string[] }>;

export interface WriteInput {
  readonly out: string;
  readonly options: ResolvedTrainOptions;
  readonly seed: number;
  readonly dataset: Dataset;
  readonly spec: BackboneSpec;
  readonly head: tf.LayersModel;
  readonly fit: FitResult;
  readonly backend: BackendName;
  readonly extractorKind: 'onnx' | 'tfjs';
  readonly seconds: number;
  readonly params: SummaryTotals;
  readonly exportStep?: ExportStep;
  readonly recognition?: RecognitionSection;
  readonly print: (line: string) => void;
}

/** `YYYYMMDD.HHMMSS` in UTC: newer models sort later. */
export function modelVersion(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}.${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
}

function packageVersion(name: string): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    let dir = path.dirname(require.resolve(name));
    for (let i = 0; i < 6; i++) {
      try {
        const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
          name?: string;
          version?: string;
        };
        if (pkg.name === name) return pkg.version;
      } catch {
        /* keep climbing */
      }
      dir = path.dirname(dir);
    }
  } catch {
    /* not installed */
  }
  return undefined;
}

export async function writeModelDir(w: WriteInput): Promise<string[]> {
  const { out, dataset, fit, spec } = w;
  await writeFile(path.join(out, LABELS_FILE), JSON.stringify(dataset.classes, null, 2) + '\n');
  const headArtifacts = await modelToArtifacts(w.head);
  await writeArtifacts(path.join(out, HEAD_DIR), headArtifacts);
  const best = fit.history[fit.bestEpoch - 1];
  await writeFile(
    path.join(out, HISTORY_JSON),
    JSON.stringify({ bestEpoch: fit.bestEpoch, stoppedEarly: fit.stoppedEarly, epochs: fit.history }, null, 2) + '\n',
  );
  const title =
    `${spec.name}${spec.alpha ? ` ${spec.alpha}` : ''}: ${dataset.classes.length} classes, best epoch ${fit.bestEpoch}` +
    (best ? `, val accuracy ${best.val_accuracy.toFixed(4)}` : '');
  await writeFile(path.join(out, HISTORY_PNG), await historyPng(fit.history, fit.bestEpoch, title));

  const now = new Date();
  const version = modelVersion(now);
  const backboneSection: Manifest['backbone'] = {
    name: spec.name,
    ...(spec.alpha !== undefined ? { alpha: spec.alpha } : {}),
    source: spec.source,
    featureNode: spec.featureNode,
    featureSize: spec.featureSize,
  };
  const inputSection: Manifest['input'] = {
    name: 'pixels',
    dtype: 'uint8',
    layout: 'NHWC',
    height: INPUT_SIZE,
    width: INPUT_SIZE,
    channels: 3,
    preprocessing: { scale: spec.preprocessing.scale, offset: spec.preprocessing.offset },
  };
  let quantization: QuantizationSection | undefined;
  const notes: string[] = [];
  if (w.exportStep && (w.options.export || w.options.quantize)) {
    const calibration = async (): Promise<readonly RgbImage[]> => {
      if (!w.options.calibration) return dataset.train.map((s) => s.image);
      const { decodeRgb, listImages } = await import('../shared/image.js');
      const files = await listImages(w.options.calibration);
      if (files.length === 0) throw new ModelError(`--calibration ${w.options.calibration} holds no images`);
      return Promise.all(files.map((f) => decodeRgb(f, { width: INPUT_SIZE, height: INPUT_SIZE })));
    };
    const metadata = modelMetadata({
      classes: [...dataset.classes],
      version,
      createdAt: now.toISOString(),
      backbone: backboneSection,
      input: inputSection,
      ...(w.recognition ? { recognition: w.recognition } : {}),
    });
    const r = await w.exportStep({
      spec,
      head: headArtifacts,
      export: w.options.export,
      quantize: w.options.quantize,
      calibration,
      metadata,
      validation: { images: dataset.validation.map((v) => v.image), labels: dataset.validation.map((v) => v.label) },
      ...(w.recognition ? { recognition: w.recognition } : {}),
      classes: dataset.classes,
    });
    for (const [name, bytes] of Object.entries(r.files)) await writeFileAtomic(path.join(out, name), bytes);
    quantization = r.quantization;
    notes.push(...(r.notes ?? []));
  } else if (w.options.export || w.options.quantize) {
    notes.push(
      'ONNX export not available in this build: model.onnx not written (facegate export can make it from head/)',
    );
  }
  for (const n of notes) w.print(n);

  const manifest: Manifest = {
    format: 'facegate-model',
    formatVersion: 1,
    version,
    createdAt: now.toISOString(),
    backbone: backboneSection,
    input: inputSection,
    outputs: { probabilities: PROBABILITIES_LAYER, embedding: EMBEDDING_LAYER, embeddingSize: HEAD_LAYERS[2].units },
    classes: [...dataset.classes],
    files: await hashFiles(out),
    training: {
      metrics: best
        ? { val_loss: best.val_loss, val_accuracy: best.val_accuracy, loss: best.loss, accuracy: best.accuracy }
        : {},
      bestEpoch: fit.bestEpoch,
      epochsRun: fit.epochsRun,
      stoppedEarly: fit.stoppedEarly,
      seed: w.seed,
      epochs: w.options.epochs,
      batchSize: w.options.batchSize,
      optimizer: { name: 'rmsprop', learningRate: w.options.lr, rho: 0.9, epsilon: 1e-7 },
      loss: 'categorical_crossentropy',
      patience: w.options.patience,
      minDelta: w.options.minDelta,
      augmentation: w.options.augment ? w.options.augmentation : null,
      data: {
        path: path.resolve(w.options.data),
        layout: dataset.layout,
        validationSplit: dataset.validationSplit,
        trainImages: dataset.train.length,
        validationImages: dataset.validation.length,
        skipped: dataset.skipped.length,
        imageStep: w.options.crops ? 'crops' : 'detect',
      },
      params: w.params,
      head: {
        layers: [
          ...HEAD_LAYERS.map((l) => `${l.name}:dense(${l.units},relu)`),
          `${PROBABILITIES_LAYER}:dense(${dataset.classes.length},softmax)`,
        ],
        dir: HEAD_DIR,
      },
      backend: w.backend,
      featureExtractor: w.extractorKind,
      seconds: w.seconds,
      versions: {
        node: process.versions.node,
        '@tensorflow/tfjs': tf.version.tfjs,
        'onnxruntime-node': packageVersion('onnxruntime-node'),
        sharp: packageVersion('sharp'),
        '@vladmandic/human': spec.name === 'faceres' ? packageVersion('@vladmandic/human') : undefined,
        facegate: packageVersion('facegate'),
      },
    },
    ...(quantization ? { quantization } : {}),
    ...(w.recognition ? { recognition: w.recognition } : {}),
  };
  await writeManifest(out, manifest);
  return [MANIFEST_FILE, ...Object.keys(manifest.files)];
}
