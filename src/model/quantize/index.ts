/**
 * `quantizeModel`: fp32 ONNX → int8 QDQ ONNX, calibrated on real images, and
 * `compareModels`: how far the int8 model strays from the fp32 one.
 *
 * Works on ONNX with onnxruntime only (no TF.js), so it runs wherever the device
 * runtime runs. Steps: decode and check the graph → plan which nodes run in int8
 * (graph.ts) → run the fp32 graph on the calibration images with the planned tensors
 * as extra outputs and collect their ranges (calibrate.ts) → per-tensor uint8
 * parameters and per-channel int8 weights (params.ts) → QDQ graph.
 */
import type { OnnxTypes } from '../onnx/proto.js';
import { onnx } from '../onnx/proto.js';
import { decodeModel, encodeModel, metadataOf, tensorProto, tensorValues } from '../onnx/builder.js';
import { OnnxModel } from '../../runtime/ort.js';
import { DataError, ModelError } from '../../shared/errors.js';
import type { RgbImage } from '../../shared/image.js';
import { moduleLogger } from '../../shared/logger.js';
import {
  Histogram, RangeCollector, calibrationMethods, entropyRange, histogramFor, percentileRange,
  type CalibrationMethod, type Range,
} from './calibrate.js';
import { decodeOnnx, pixelBatch, pixelInput, spread, type PixelInput } from './io.js';
import { applyQdq, planQuantization, type FloatNode } from './graph.js';
import { activationParams, type ActivationParams } from './params.js';

export { decodeOnnx, pixelBatch, pixelInput, spread } from './io.js';
export { compareModels, type Comparison } from './compare.js';
export { calibrationMethods, type CalibrationMethod } from './calibrate.js';
export type { FloatNode } from './graph.js';

const log = moduleLogger('quantize');

/** The minimum default-domain opset: per-channel DequantizeLinear (`axis`) needs 13. */
export const MIN_OPSET = 13;
/** Images run through the fp32 graph at once while calibrating (bounds memory). */
const CALIBRATION_BATCH = 4;

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
}

export interface QuantizeResult {
  readonly model: Uint8Array;
  readonly report: QuantizeReport;
}

function checkOpset(model: OnnxTypes.IModelProto): void {
  const opset = Number((model.opsetImport ?? []).find((o) => !o.domain)?.version ?? 0);
  if (opset < MIN_OPSET) {
    throw new ModelError(`the model uses ONNX opset ${opset}; quantisation needs opset ${MIN_OPSET} or later (per-channel DequantizeLinear): export it again with facegate export`);
  }
}

/** The fp32 graph with `tensors` added as outputs, so a run returns them. */
function withOutputs(model: OnnxTypes.IModelProto, tensors: readonly string[]): Uint8Array {
  const copy = decodeModel(encodeModel(model));
  const g = copy.graph as OnnxTypes.GraphProto;
  const have = new Set((g.output ?? []).map((o) => o.name));
  for (const t of tensors) {
    if (!have.has(t)) g.output.push(onnx.ValueInfoProto.fromObject({ name: t, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT } } }));
  }
  return encodeModel(copy);
}

/** Runs the augmented fp32 graph over the images, passing each tensor's values to `visit`. */
async function forEachActivation(
  session: OnnxModel,
  input: PixelInput,
  images: readonly RgbImage[],
  tensors: readonly string[],
  visit: (tensor: string, values: Float32Array) => void,
): Promise<void> {
  await forEachActivationDims(session, input, images, tensors, (t, v) => visit(t, v));
}

async function forEachActivationDims(
  session: OnnxModel,
  input: PixelInput,
  images: readonly RgbImage[],
  tensors: readonly string[],
  visit: (tensor: string, values: Float32Array, dims: readonly number[]) => void,
): Promise<void> {
  for (let i = 0; i < images.length; i += CALIBRATION_BATCH) {
    const batch = images.slice(i, i + CALIBRATION_BATCH);
    const feeds = { [input.name]: { data: pixelBatch(batch, input.height, input.width), dims: [batch.length, input.height, input.width, 3] } };
    const out = await session.run(feeds, tensors);
    for (const t of tensors) {
      const v = out[t];
      if (!v || !(v.data instanceof Float32Array)) throw new ModelError(`calibration: tensor ${t} is not float32`);
      visit(t, v.data, v.dims);
    }
  }
}

/** Calibrated range of every tensor, by the chosen method. */
export async function calibrate(
  model: OnnxTypes.IModelProto,
  tensors: readonly string[],
  images: readonly RgbImage[],
  method: CalibrationMethod,
  percentile = 99.999,
): Promise<Map<string, Range>> {
  const input = pixelInput(model);
  const session = await OnnxModel.load(withOutputs(model, tensors));
  try {
    const ranges = new Map(tensors.map((t) => [t, new RangeCollector()]));
    await forEachActivation(session, input, images, tensors, (t, v) => ranges.get(t)?.update(v));
    const observed = new Map([...ranges].map(([t, c]) => [t, c.range()]));
    if (method === 'minmax') return observed;
    // Second pass: histograms over the observed ranges.
    const hists = new Map<string, Histogram>();
    for (const [t, r] of observed) { const h = histogramFor(method, r); if (h) hists.set(t, h); }
    const histTensors = [...hists.keys()];
    if (histTensors.length > 0) await forEachActivation(session, input, images, histTensors, (t, v) => hists.get(t)?.update(v));
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

/** Calibration images the bias correction averages over (the first ones of the spread). */
const BIAS_CORRECTION_IMAGES = 32;

/** Per-channel means of tensors ([N, C, ...]) over the images. */
async function channelMeans(model: OnnxTypes.IModelProto, input: PixelInput, images: readonly RgbImage[], tensors: readonly string[]): Promise<Map<string, Float64Array>> {
  const session = await OnnxModel.load(withOutputs(model, tensors));
  const sums = new Map<string, Float64Array>();
  try {
    await forEachActivationDims(session, input, images, tensors, (t, v, dims) => {
      const n = dims[0] ?? 1;
      const c = dims[1] ?? 1;
      const inner = v.length / (n * c);
      const acc = sums.get(t) ?? new Float64Array(c);
      for (let b = 0; b < n; b++) {
        for (let k = 0; k < c; k++) {
          let s = 0;
          const base = (b * c + k) * inner;
          for (let i = 0; i < inner; i++) s += v[base + i] as number;
          acc[k] = (acc[k] as number) + s / inner / images.length;
        }
      }
      sums.set(t, acc);
    });
  } finally {
    await session.release();
  }
  return sums;
}

/**
 * Empirical bias correction (Nagel et al. 2019, "Data-Free Quantization", section 4.2,
 * measured on data as in Finkelstein et al. 2019): int8 weight rounding shifts the mean
 * of a conv's output; subtracting the measured shift from its bias removes it. Done
 * one conv at a time in graph order, each measured with all earlier corrections in
 * place, because corrections propagate (correcting all at once overshoots and, measured
 * on MobileNet 0.25, destroys the model). Returns an fp32 copy with corrected biases.
 */
async function correctBiases(
  fp32: OnnxTypes.IModelProto,
  plan: ReturnType<typeof planQuantization>,
  params: ReadonlyMap<string, ActivationParams>,
  images: readonly RgbImage[],
): Promise<{ model: OnnxTypes.ModelProto; nodes: number }> {
  const work = decodeModel(encodeModel(fp32));
  const g = work.graph as OnnxTypes.GraphProto;
  const input = pixelInput(work);
  const inits = new Map(g.initializer.map((t) => [t.name ?? '', t]));
  const consumers = new Map<string, OnnxTypes.INodeProto[]>();
  for (const n of g.node) for (const x of n.input ?? []) consumers.set(x, [...(consumers.get(x) ?? []), n]);
  const absorbed = new Set(plan.absorbed);
  const targets: { bias: OnnxTypes.ITensorProto; tensor: string }[] = [];
  for (const n of g.node) {
    const [, , b] = n.input ?? [];
    const bias = b ? inits.get(b) : undefined;
    if (n.opType !== 'Conv' || !plan.intNodes.includes(n.name ?? '') || !bias) continue;
    const out = n.output?.[0] ?? '';
    const act = consumers.get(out)?.find((c) => absorbed.has(c.name ?? ''));
    const tensor = (act ? act.output?.[0] : out) ?? '';
    if (plan.tensors.includes(tensor)) targets.push({ bias, tensor });
  }
  if (targets.length === 0) return { model: work, nodes: 0 };
  const reference = await channelMeans(fp32, input, images, targets.map((x) => x.tensor));
  for (const { bias, tensor } of targets) {
    const names = new Map<string, string>();
    const int8 = applyQdq(work, plan, params, names);
    const dq = names.get(tensor);
    if (!dq) continue;
    const got = (await channelMeans(int8, input, images, [dq])).get(dq);
    const want = reference.get(tensor);
    if (!got || !want) continue;
    const values = Float32Array.from(tensorValues(bias) as Float32Array);
    if (values.length !== got.length) continue;
    for (let c = 0; c < values.length; c++) values[c] = (values[c] as number) - ((got[c] as number) - (want[c] as number));
    const replacement = tensorProto(bias.name ?? 'bias', (bias.dims ?? []).map(Number), values);
    bias.rawData = replacement.rawData;
    bias.floatData = [];
  }
  log.debug({ nodes: targets.length }, 'bias correction');
  return { model: work, nodes: targets.length };
}

/** Quantises an fp32 facegate ONNX model to int8 QDQ, calibrated on `calibration`. */
export async function quantizeModel(options: QuantizeOptions): Promise<QuantizeResult> {
  const { method } = options;
  if (!calibrationMethods.includes(method)) {
    throw new DataError(`unsupported calibration method "${String(method)}". Should be one of: ${calibrationMethods.join(', ')}`);
  }
  const fp32 = decodeOnnx(options.model);
  checkOpset(fp32);
  const input = pixelInput(fp32);
  const samples = options.samples ?? options.calibration.length;
  if (!Number.isInteger(samples) || samples < 1) throw new DataError(`samples must be a positive integer, got ${samples}`);
  const images = spread(options.calibration, samples);
  if (images.length === 0) throw new DataError('no calibration images: give a folder of face images like the ones the kiosk will see (the training images will do)');
  pixelBatch(images, input.height, input.width); // size check before any work

  const plan = planQuantization(fp32, new Set(options.keepFloat ?? []));
  if (plan.intNodes.length === 0) throw new ModelError('the model has no Conv or Gemm node that can run in int8: nothing to quantise');
  const toCalibrate = plan.tensors.filter((t) => !plan.sharesWith.has(t));
  log.info({ method, samples: images.length, tensors: toCalibrate.length, intNodes: plan.intNodes.length }, 'calibrating');
  const ranges = await calibrate(fp32, toCalibrate, images, method, options.percentile);
  const params = new Map<string, ActivationParams>();
  for (const [t, r] of ranges) params.set(t, activationParams(r.min, r.max));

  const corrected = options.biasCorrection === false
    ? { model: fp32, nodes: 0 }
    : await correctBiases(fp32, plan, params, images.slice(0, BIAS_CORRECTION_IMAGES));
  const int8 = applyQdq(corrected.model, plan, params);
  const report: QuantizeReport = {
    method,
    ...(method === 'percentile' ? { percentile: options.percentile ?? 99.999 } : {}),
    samples: images.length,
    tensorsCalibrated: toCalibrate.length,
    intNodes: plan.intNodes,
    absorbedActivations: plan.absorbed,
    floatNodes: plan.floatNodes,
    biasCorrected: corrected.nodes,
  };
  const meta = {
    ...metadataOf(fp32),
    'facegate.quantization': JSON.stringify({ format: 'QDQ', weights: 'int8 symmetric per-channel', activations: 'uint8 asymmetric per-tensor', method, samples: images.length, floatNodes: plan.floatNodes.map((f) => f.name) }),
  };
  int8.metadataProps = Object.entries(meta).map(([key, value]) => ({ key, value }));
  return { model: encodeModel(int8), report };
}
