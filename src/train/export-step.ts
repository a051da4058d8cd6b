/**
 * model.onnx and model.int8.onnx at the end of training: the exporter (src/model/export)
 * builds the full graph (pixels → probabilities, embedding, features) from the backbone
 * and the trained head; the quantiser (src/model/quantize) calibrates it on the training
 * images (or --calibration) and the int8 graph is compared with fp32 on the validation
 * images.
 */
import { MODEL_FP32_FILE, MODEL_INT8_FILE } from '../model/manifest.js';
import { artifactsFromMemory, exportModel } from '../model/export/index.js';
import { readTfjsModel } from '../model/export/tfjs.js';
import { compareModels, quantizeModel, type CalibrationMethod } from '../model/quantize/index.js';
import { moduleLogger } from '../shared/logger.js';
import type { ExportStep } from './output.js';
import { joinWeightData } from './tfjs-io.js';

const log = moduleLogger('train.export');

/** Calibration method and how many images (evenly spread) the quantiser uses. */
export const CALIBRATION_METHOD: CalibrationMethod = 'minmax';
export const CALIBRATION_SAMPLES = 100;

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
  const samples = Math.min(CALIBRATION_SAMPLES, calibration.length);
  const q = await quantizeModel({ model: fp32, calibration, method: CALIBRATION_METHOD, samples });
  files[MODEL_INT8_FILE] = q.model;
  const cmp = await compareModels(fp32, q.model, input.validation.images, input.validation.labels);
  log.debug({ ...cmp }, 'int8 against fp32 on the validation images');
  return {
    files,
    quantization: {
      method: q.report.method,
      samples: q.report.samples,
      rounding: q.report.rounding,
      intNodes: q.report.intNodes.length,
      floatNodes: q.report.floatNodes,
      ...(q.report.mixedPrecision ? { mixedPrecision: q.report.mixedPrecision } : {}),
      comparedOn: 'validation',
      ...cmp,
    },
    notes: [
      `int8 model: ${q.report.intNodes.length} int8 nodes, top-1 agreement with fp32 ${cmp.top1Agreement.toFixed(4)} on ${cmp.images} validation images` +
        (cmp.accuracyInt8 !== undefined
          ? `, accuracy fp32 ${cmp.accuracyFp32?.toFixed(4)} / int8 ${cmp.accuracyInt8.toFixed(4)}`
          : '') +
        (q.report.mixedPrecision?.keptFloat.length
          ? `; kept float by mixed precision: ${q.report.mixedPrecision.keptFloat.map((k) => k.name).join(', ')}`
          : ''),
    ],
  };
};
