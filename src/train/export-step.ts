/**
 * model.onnx and model.int8.onnx at the end of training: the exporter (src/model/export)
 * builds the full graph (pixels → probabilities, embedding, features) from the backbone
 * and the trained head; `quantizeModelDir` (src/model/dir/quantize.ts, the same use-case
 * as `facegate quantize`) calibrates it on the training images (or --calibration) and
 * checks the int8 graph against fp32 on the validation images, including the stranger
 * refusal's decisions on `features`.
 */
import { MODEL_FP32_FILE, MODEL_INT8_FILE } from '../model/manifest.js';
import { artifactsFromMemory, exportModel } from '../model/export/index.js';
import { readTfjsModel } from '../model/export/tfjs.js';
import { CALIBRATION_SAMPLES, quantizeModelDir } from '../model/dir/quantize.js';
import type { CalibrationMethod } from '../model/quantize/index.js';
import { kioskDecision } from '../recognise/recogniser.js';
import { moduleLogger } from '../shared/logger.js';
import type { ExportStep } from './output.js';
import { joinWeightData } from './tfjs-io.js';

const log = moduleLogger('train.export');

/** Calibration method the quantiser uses; how many images is CALIBRATION_SAMPLES (evenly spread). */
export const CALIBRATION_METHOD: CalibrationMethod = 'minmax';
export { CALIBRATION_SAMPLES };

export const defaultExportStep: ExportStep = async (input) => {
  const { spec } = input;
  const fp32 = exportModel({
    backbone: {
      name: spec.name,
      artifacts: readTfjsModel(spec.modelJsonPath),
      ...(spec.alpha !== undefined ? { alpha: spec.alpha } : {}),
    },
    head: artifactsFromMemory(
      {
        modelTopology: input.head.modelTopology,
        weightSpecs: input.head.weightSpecs ?? [],
        weightData: joinWeightData(input.head.weightData),
        format: 'layers-model',
      },
      'trained head',
    ),
    preprocessing: spec.preprocessing,
    metadata: input.metadata,
  });
  const files: Record<string, Uint8Array> = {};
  if (input.export) files[MODEL_FP32_FILE] = fp32;
  if (!input.quantize) return { files };
  const calibration = await input.calibration();
  const recognition = input.recognition;
  const q = await quantizeModelDir({
    fp32,
    quantize: { calibration, method: CALIBRATION_METHOD, samples: Math.min(CALIBRATION_SAMPLES, calibration.length) },
    check: { images: input.validation.images, labels: input.validation.labels, on: 'validation' },
    ...(recognition?.source === 'features' ? { decide: kioskDecision(recognition, input.classes) } : {}),
  });
  files[MODEL_INT8_FILE] = q.model;
  const cmp = q.section.check;
  log.debug({ ...cmp }, 'int8 against fp32 on the validation images');
  const mixed = q.report.mixedPrecision;
  return {
    files,
    quantization: q.section,
    notes: [
      `int8 model: ${q.report.intNodes.length} int8 nodes` +
        (cmp?.top1Agreement !== undefined
          ? `, top-1 agreement with fp32 ${cmp.top1Agreement.toFixed(4)} on ${cmp.images} validation images`
          : '') +
        (cmp?.accuracyInt8 !== undefined
          ? `, accuracy fp32 ${cmp.accuracyFp32?.toFixed(4)} / int8 ${cmp.accuracyInt8.toFixed(4)}`
          : '') +
        (cmp?.features?.decisionAgreement !== undefined
          ? `, kiosk decisions alike ${cmp.features.decisionAgreement.toFixed(4)}`
          : '') +
        (mixed?.keptFloat.length
          ? `; kept float by mixed precision: ${mixed.keptFloat.map((k) => k.name).join(', ')}`
          : ''),
    ],
  };
};
