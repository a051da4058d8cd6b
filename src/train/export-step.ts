/**
 * model.onnx and model.int8.onnx at the end of training, from the exporter
 * (src/model/export) and the quantiser (src/model/quantize).
 */
import type { ExportStep } from './output.js';

export const defaultExportStep: ExportStep | undefined = undefined;
