/**
 * The one use-case "quantise a model directory's fp32 graph": `facegate train` (after
 * export) and `facegate quantize` both call `quantizeModelDir`. It quantises, checks the
 * int8 graph against fp32 on the images given, and returns the int8 bytes with the
 * manifest's `quantization` section; given `write`, it also writes the int8 file
 * atomically and records it in the directory's manifest.
 */
import { writeFileAtomic } from '../../shared/fs.js';
import type { RgbImage } from '../../shared/image.js';
import type { Manifest } from '../manifest.js';
import {
  compareModels,
  quantizeModel,
  type FeatureDecision,
  type QuantizeOptions,
  type QuantizeReport,
} from '../quantize/index.js';
import { updateQuantization } from './directory.js';
import { meetsTarget, type Int8Check, type QuantizationSection } from './sections.js';

/** Calibration images used when the caller does not say (onnxruntime's examples use ~100). */
export const CALIBRATION_SAMPLES = 100;

export interface QuantizeModelDirInput {
  /** The fp32 graph. */
  readonly fp32: Uint8Array;
  /** Quantiser options; `samples` defaults to CALIBRATION_SAMPLES. */
  readonly quantize: Omit<QuantizeOptions, 'model'>;
  /** Images the int8 graph is checked on against fp32, and which they are. */
  readonly check?: {
    readonly images: readonly RgbImage[];
    readonly labels?: readonly number[];
    readonly on: NonNullable<Int8Check['on']>;
  };
  /** The kiosk's decision on `features` (and the margin): the search and the check record how often int8 decides alike. */
  readonly decide?: FeatureDecision;
  /** Extra facts for the section (e.g. unreadable calibration images skipped). */
  readonly skippedImages?: number;
  /** Write the int8 file here and record it in `manifest` (the directory holding the file). */
  readonly write?: { readonly dir: string; readonly file: string; readonly manifest?: Manifest };
}

export interface QuantizedModelDir {
  readonly model: Uint8Array;
  readonly report: QuantizeReport;
  readonly section: QuantizationSection;
}

export async function quantizeModelDir(i: QuantizeModelDirInput): Promise<QuantizedModelDir> {
  const { model, report } = await quantizeModel({
    ...i.quantize,
    samples: i.quantize.samples ?? CALIBRATION_SAMPLES,
    ...(i.decide ? { decide: i.decide } : {}),
    model: i.fp32,
  });
  let check: Int8Check | undefined;
  if (i.check && i.check.images.length > 0) {
    const c = await compareModels(i.fp32, model, i.check.images, i.check.labels, i.decide ? { decide: i.decide } : {});
    const figures: Int8Check = { on: i.check.on, ...c };
    check = { ...figures, meetsTarget: meetsTarget(figures) };
  }
  const section: QuantizationSection = {
    method: report.method,
    ...(report.percentile !== undefined ? { percentile: report.percentile } : {}),
    samples: report.samples,
    ...(i.skippedImages !== undefined ? { skippedImages: i.skippedImages } : {}),
    tensorsCalibrated: report.tensorsCalibrated,
    biasCorrected: report.biasCorrected,
    rounding: { ...report.rounding },
    intNodes: report.intNodes.length,
    floatNodes: report.floatNodes.map((f) => ({ ...f })),
    ...(report.mixedPrecision ? { mixedPrecision: { ...report.mixedPrecision } } : {}),
    ...(check ? { check } : {}),
    createdAt: new Date().toISOString(),
  };
  if (i.write) {
    await writeFileAtomic(i.write.file, model);
    if (i.write.manifest) await updateQuantization(i.write.dir, i.write.manifest, i.write.file, model, section);
  }
  return { model, report, section };
}
