/**
 * `quantizeModel`: fp32 ONNX → int8 QDQ ONNX, calibrated on real images, and
 * `compareModels`: how far the int8 model strays from the fp32 one.
 *
 * Works on ONNX with onnxruntime only (no TF.js), so it runs wherever the device
 * runtime runs. Steps, each in its own module:
 * 1. decode and check the graph, pick the calibration images (io.ts);
 * 2. plan which nodes run in int8 and which tensors get Q/DQ (plan.ts);
 * 3. calibrate the planned activations on the fp32 graph: ranges and uint8
 *    parameters (calibration.ts, ranges.ts, params.ts);
 * 4. round the int8 weights, GPTQ by default (gptq.ts, rounding.ts);
 * 5. correct the int8 convs' biases for the mean shift rounding causes (bias.ts);
 * 6. keep in float the nodes the mixed-precision search picks, then plan, calibrate
 *    and correct again (search.ts, mixed.ts);
 * 7. rewrite the graph into QDQ form (qdq.ts) and record how in its metadata.
 * Every run of the fp32 graph over images goes through batch.ts.
 */
import type { OnnxTypes } from '../onnx/proto.js';
import { encodeModel, metadataOf } from '../onnx/builder.js';
import { DataError, ModelError } from '../../shared/errors.js';
import type { RgbImage } from '../../shared/image.js';
import { moduleLogger } from '../../shared/logger.js';
import { calibrationMethods, type CalibrationMethod } from './ranges.js';
import { decodeOnnx, pixelBatch, pixelInput, spread } from './io.js';
import { applyQdq, planQuantization, type FloatNode } from './graph.js';
import { weightRoundings, type WeightRounding } from './rounding.js';
import type { KioskDecision, MixedPrecisionTarget } from './mixed.js';
import { ActivationCalibration, DEFAULT_PERCENTILE, calibratedTensors } from './calibration.js';
import { roundWeightsBy, type RoundingReport } from './gptq.js';
import { BIAS_CORRECTION_IMAGES, correctBiases, type CorrectedModel } from './bias.js';
import { explainFloatNodes, mixedPrecision, type MixedPrecisionReport } from './search.js';

export { decodeOnnx, pixelBatch, pixelInput, spread } from './io.js';
export { compareModels, type Comparison, type FeatureDecision } from './compare.js';
export { calibrationMethods, type CalibrationMethod } from './ranges.js';
export { weightRoundings, type WeightRounding } from './rounding.js';
export type { FloatNode } from './graph.js';
export type { Deviation, KioskDecision, MixedPrecisionTarget, NodeSensitivity } from './mixed.js';
export { calibrate } from './calibration.js';
export type { RoundingReport } from './gptq.js';
export type { MixedPrecisionReport } from './search.js';

const log = moduleLogger('quantize');

/** The minimum default-domain opset: per-channel DequantizeLinear (`axis`) needs 13. */
export const MIN_OPSET = 13;

export interface QuantizeOptions {
  /** The fp32 ONNX model. */
  readonly model: Uint8Array;
  /** Calibration images, RGB at the model's input size (decodeRgb with the input size). */
  readonly calibration: readonly RgbImage[];
  readonly method: CalibrationMethod;
  /** Use this many of the calibration images (evenly spread); all of them by default. */
  readonly samples?: number;
  /** Node names to keep in float. */
  readonly keepFloat?: readonly string[];
  /** Percentile for method 'percentile' (onnxruntime's default 99.999). */
  readonly percentile?: number;
  /**
   * Empirical bias correction (on by default): after quantising, shift each int8 conv's
   * bias so that the mean of its output per channel matches fp32 on the calibration
   * images, layer by layer in graph order.
   */
  readonly biasCorrection?: boolean;
  /**
   * Automatic mixed precision (on by default; false to turn off): keep int8 nodes in
   * float, chosen by greedy forward selection over node groups (search.ts), until the
   * int8 model's deviation from fp32 on held-out images meets the target (mixed.ts).
   */
  readonly mixedPrecision?: boolean | MixedPrecisionTarget;
  /**
   * Images the mixed-precision search measures on (RGB at the input size). Default: the
   * calibration images that `samples` did not pick, else the calibration images. Never
   * pass the images the model is validated on.
   */
  readonly heldOut?: readonly RgbImage[];
  /** Calibration images the bias correction averages over (the first ones picked; default 32). */
  readonly biasCorrectionImages?: number;
  /**
   * How int8 weights are rounded: 'gptq' (default) picks each weight's step to cancel
   * the layer's output error on the calibration images (rounding.ts); 'nearest' rounds
   * each weight on its own.
   */
  readonly rounding?: WeightRounding;
  /**
   * The kiosk's decision on `features` and probabilities (nearest reference at the
   * threshold, and the margin): the mixed-precision search also requires int8 to decide
   * as fp32 does on its held-out images.
   */
  readonly decide?: KioskDecision;
}

export interface QuantizeReport {
  readonly method: CalibrationMethod;
  readonly percentile?: number;
  /** Calibration images used. */
  readonly samples: number;
  /** Activation tensors calibrated (each got a uint8 scale and zero point). */
  readonly tensorsCalibrated: number;
  /** Conv / Gemm nodes running with int8 weights. */
  readonly intNodes: readonly string[];
  /** Relu / Clip nodes folded into the quantisation range of the node before them. */
  readonly absorbedActivations: readonly string[];
  /** Nodes left in float and why. */
  readonly floatNodes: readonly FloatNode[];
  /** Conv nodes whose bias was corrected (0 when bias correction is off). */
  readonly biasCorrected: number;
  readonly rounding: RoundingReport;
  /** The mixed-precision search, when it ran. */
  readonly mixedPrecision?: MixedPrecisionReport;
}

export interface QuantizeResult {
  readonly model: Uint8Array;
  readonly report: QuantizeReport;
}

function checkOpset(model: OnnxTypes.IModelProto): void {
  const opset = Number((model.opsetImport ?? []).find((o) => !o.domain)?.version ?? 0);
  if (opset < MIN_OPSET) {
    throw new ModelError(
      `the model uses ONNX opset ${opset}; quantisation needs opset ${MIN_OPSET} or later (per-channel DequantizeLinear): export it again with facegate export`,
    );
  }
}

/** Quantises an fp32 facegate ONNX model to int8 QDQ, calibrated on `calibration`. */
export async function quantizeModel(options: QuantizeOptions): Promise<QuantizeResult> {
  const { method } = options;
  if (!calibrationMethods.includes(method)) {
    throw new DataError(
      `unsupported calibration method "${String(method)}". Should be one of: ${calibrationMethods.join(', ')}`,
    );
  }
  const fp32 = decodeOnnx(options.model);
  checkOpset(fp32);
  const input = pixelInput(fp32);
  const samples = options.samples ?? options.calibration.length;
  if (!Number.isInteger(samples) || samples < 1)
    throw new DataError(`samples must be a positive integer, got ${samples}`);
  const images = spread(options.calibration, samples);
  if (images.length === 0)
    throw new DataError(
      'no calibration images: give a folder of face images like the ones the kiosk will see (the training images will do)',
    );
  pixelBatch(images, input.height, input.width); // size check before any work

  const keep = new Set(options.keepFloat ?? []);
  let plan = planQuantization(fp32, keep); // also checks the keepFloat names before any work
  if (plan.intNodes.length === 0)
    throw new ModelError('the model has no Conv or Gemm node that can run in int8: nothing to quantise');
  const toCalibrate = calibratedTensors(plan);
  log.info(
    { method, samples: images.length, tensors: toCalibrate.length, intNodes: plan.intNodes.length },
    'calibrating',
  );
  const calibration = new ActivationCalibration(fp32, images, method, options.percentile);
  await calibration.ensure(plan);
  const roundingMethod = options.rounding ?? 'gptq';
  if (!weightRoundings.includes(roundingMethod)) {
    throw new DataError(
      `unsupported weight rounding "${String(roundingMethod)}". Should be one of: ${weightRoundings.join(', ')}`,
    );
  }
  const { rounded, report: rounding } = await roundWeightsBy(roundingMethod, fp32, plan, images);
  const biasImages = images.slice(0, options.biasCorrectionImages ?? BIAS_CORRECTION_IMAGES);
  const correct = (p: typeof plan): Promise<CorrectedModel> =>
    options.biasCorrection !== false
      ? correctBiases(fp32, p, calibration.params, biasImages, rounded)
      : Promise.resolve({ model: fp32, nodes: 0 });

  let corrected = await correct(plan);
  let mixed: MixedPrecisionReport | undefined;
  let floatNodes: FloatNode[] = [...plan.floatNodes];
  if (options.mixedPrecision !== false) {
    const result = await mixedPrecision({
      fp32,
      keep,
      plan,
      corrected,
      calibration,
      correct,
      rounded,
      given: options.calibration,
      picked: images,
      ...(options.heldOut ? { heldOut: options.heldOut } : {}),
      ...(options.decide ? { decide: options.decide } : {}),
      ...(options.mixedPrecision === true || options.mixedPrecision === undefined
        ? {}
        : { target: options.mixedPrecision }),
    });
    ({ plan, corrected, report: mixed } = result);
    floatNodes = explainFloatNodes(plan.floatNodes, result.report, result.logits);
  }
  const int8 = applyQdq(corrected.model, plan, calibration.params, undefined, rounded);
  const report: QuantizeReport = {
    method,
    ...(method === 'percentile' ? { percentile: options.percentile ?? DEFAULT_PERCENTILE } : {}),
    samples: images.length,
    tensorsCalibrated: toCalibrate.length,
    intNodes: plan.intNodes,
    absorbedActivations: plan.absorbed,
    floatNodes,
    biasCorrected: corrected.nodes,
    rounding,
    ...(mixed ? { mixedPrecision: mixed } : {}),
  };
  const meta = {
    ...metadataOf(fp32),
    'facegate.quantization': JSON.stringify({
      format: 'QDQ',
      weights: 'int8 symmetric per-channel',
      rounding: rounding.method,
      activations: 'uint8 asymmetric per-tensor',
      method,
      samples: images.length,
      floatNodes: floatNodes.map((f) => f.name),
    }),
  };
  int8.metadataProps = Object.entries(meta).map(([key, value]) => ({ key, value }));
  return { model: encodeModel(int8), report };
}
