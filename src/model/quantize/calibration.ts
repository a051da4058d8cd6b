/**
 * Activation calibration: runs the fp32 graph on the calibration images with the
 * tensors a plan quantises as extra outputs, turns each tensor's values into a range by
 * the chosen method (ranges.ts) and the range into uint8 scale and zero point
 * (params.ts). 'minmax' needs one pass over the images; 'percentile' and 'entropy' a
 * second pass that fills a histogram over the range the first pass observed.
 */
import type { OnnxTypes } from '../onnx/proto.js';
import { OnnxModel } from '../../runtime/ort.js';
import type { RgbImage } from '../../shared/image.js';
import {
  Histogram,
  RangeCollector,
  entropyRange,
  histogramFor,
  percentileRange,
  type CalibrationMethod,
  type Range,
} from './ranges.js';
import { pixelInput, withOutputs } from './io.js';
import { ACTIVATION_BATCH, runBatched } from './batch.js';
import { activationParams, type ActivationParams } from './params.js';
import type { QuantPlan } from './graph.js';

/** onnxruntime's default percentile for method 'percentile'. */
export const DEFAULT_PERCENTILE = 99.999;

/** Calibrated range of every tensor, by the chosen method. */
export async function calibrate(
  model: OnnxTypes.IModelProto,
  tensors: readonly string[],
  images: readonly RgbImage[],
  method: CalibrationMethod,
  percentile = DEFAULT_PERCENTILE,
): Promise<Map<string, Range>> {
  const input = pixelInput(model);
  const session = await OnnxModel.load(withOutputs(model, tensors));
  try {
    const ranges = new Map(tensors.map((t) => [t, new RangeCollector()]));
    await runBatched(session, input, images, tensors, ACTIVATION_BATCH, (values) => {
      for (const [t, v] of values) ranges.get(t)?.update(v.data);
    });
    const observed = new Map([...ranges].map(([t, c]) => [t, c.range()]));
    if (method === 'minmax') return observed;
    // Second pass: histograms over the observed ranges.
    const hists = new Map<string, Histogram>();
    for (const [t, r] of observed) {
      const h = histogramFor(method, r);
      if (h) hists.set(t, h);
    }
    const histTensors = [...hists.keys()];
    if (histTensors.length > 0)
      await runBatched(session, input, images, histTensors, ACTIVATION_BATCH, (values) => {
        for (const [t, v] of values) hists.get(t)?.update(v.data);
      });
    const out = new Map<string, Range>();
    for (const [t, r] of observed) {
      const h = hists.get(t);
      out.set(t, !h ? r : method === 'percentile' ? percentileRange(h, r, percentile) : entropyRange(h, r));
    }
    return out;
  } finally {
    await session.release();
  }
}

/** The tensors of a plan that get their own parameters (layout ops share their input's). */
export function calibratedTensors(plan: QuantPlan): string[] {
  return plan.tensors.filter((t) => !plan.sharesWith.has(t));
}

/**
 * The uint8 parameters of every activation calibrated so far, on one fp32 model, image
 * set and method. A plan with nodes kept float quantises tensors an earlier plan did
 * not (the inputs of the nodes after them); `ensure` calibrates just those.
 */
export class ActivationCalibration {
  readonly params = new Map<string, ActivationParams>();

  constructor(
    private readonly fp32: OnnxTypes.IModelProto,
    private readonly images: readonly RgbImage[],
    private readonly method: CalibrationMethod,
    private readonly percentile?: number,
  ) {}

  /** Calibrates the tensors `plan` quantises that have no parameters yet. */
  async ensure(plan: QuantPlan): Promise<void> {
    const missing = calibratedTensors(plan).filter((t) => !this.params.has(t));
    if (missing.length === 0) return;
    for (const [t, r] of await calibrate(this.fp32, missing, this.images, this.method, this.percentile))
      this.params.set(t, activationParams(r.min, r.max));
  }
}
