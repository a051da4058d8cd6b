/**
 * `quantizeModel`: fp32 ONNX → int8 QDQ ONNX, calibrated on real images, and
 * `compareModels`: how far the int8 model strays from the fp32 one.
 *
 * Works on ONNX with onnxruntime only (no TF.js), so it runs wherever the device
 * runtime runs. Steps: decode and check the graph → plan which nodes run in int8
 * (graph.ts) → run the fp32 graph on the calibration images with the planned tensors
 * as extra outputs and collect their ranges (ranges.ts) → per-tensor uint8
 * parameters and per-channel int8 weights (params.ts) → QDQ graph.
 */
import type { OnnxTypes } from '../onnx/proto.js';
import { decodeModel, encodeModel, metadataOf, readAttr, tensorProto, tensorValues } from '../onnx/builder.js';
import { OnnxModel } from '../../runtime/ort.js';
import { DataError, ModelError } from '../../shared/errors.js';
import type { RgbImage } from '../../shared/image.js';
import { moduleLogger } from '../../shared/logger.js';
import {
  Histogram,
  RangeCollector,
  calibrationMethods,
  entropyRange,
  histogramFor,
  percentileRange,
  type CalibrationMethod,
  type Range,
} from './ranges.js';
import { decodeOnnx, pixelBatch, pixelInput, spread, withOutputs, type PixelInput } from './io.js';
import { applyQdq, planQuantization, type FloatNode, type QuantPlan } from './graph.js';
import { activationParams, weightScales, type ActivationParams, type ChannelQuantized } from './params.js';
import {
  InputStatistics,
  forEachPatch,
  outputPositions,
  roundWeights,
  weightRoundings,
  type ConvGeometry,
  type WeightRounding,
} from './rounding.js';
import {
  DEFAULT_TARGET,
  decisionTensor,
  decisionValues,
  deviation,
  meets,
  type Deviation,
  type MixedPrecisionTarget,
  type NodeSensitivity,
} from './mixed.js';

export { decodeOnnx, pixelBatch, pixelInput, spread } from './io.js';
export { compareModels, type Comparison, type FeatureDecision } from './compare.js';
export { calibrationMethods, type CalibrationMethod } from './ranges.js';
export { weightRoundings, type WeightRounding } from './rounding.js';
export type { FloatNode } from './graph.js';
export type { Deviation, MixedPrecisionTarget, NodeSensitivity } from './mixed.js';

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
  /**
   * Automatic mixed precision (on by default; false to turn off): keep in float the
   * fewest most sensitive int8 nodes until the int8 model's deviation from fp32 on
   * held-out images meets the target (mixed.ts).
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
}

/** What the weight rounding did. */
export interface RoundingReport {
  readonly method: WeightRounding;
  /** Nodes whose weights GPTQ rounded. */
  readonly optimised: number;
  /** Input samples (receptive fields) per node, at most. */
  readonly samples: number;
  /** Nodes rounded to nearest instead, and why. */
  readonly nearest: readonly { readonly name: string; readonly reason: string }[];
}

/** What the automatic mixed-precision search measured and chose. */
export interface MixedPrecisionReport {
  /** Held-out images measured on, and whether they were disjoint from the calibration images. */
  readonly images: number;
  readonly heldOut: boolean;
  /** The tensor compared (logits, embedding or the first output). */
  readonly tensor: string;
  readonly target: Required<MixedPrecisionTarget>;
  /** All nodes int8 (after bias correction). */
  readonly before: Deviation;
  /** With `keptFloat` in float (after bias correction again). */
  readonly after: Deviation;
  readonly meetsTarget: boolean;
  /** Nodes the search kept float, most sensitive first. */
  readonly keptFloat: readonly NodeSensitivity[];
  /** The most sensitive nodes measured (up to 8), for the record. */
  readonly mostSensitive: readonly NodeSensitivity[];
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

/** Runs the augmented fp32 graph over the images, passing each tensor's values to `visit`. */
async function forEachActivation(
  session: OnnxModel,
  input: PixelInput,
  images: readonly RgbImage[],
  tensors: readonly string[],
  visit: (tensor: string, values: Float32Array, dims: readonly number[]) => void,
): Promise<void> {
  for (let i = 0; i < images.length; i += CALIBRATION_BATCH) {
    const batch = images.slice(i, i + CALIBRATION_BATCH);
    const feeds = {
      [input.name]: {
        data: pixelBatch(batch, input.height, input.width),
        dims: [batch.length, input.height, input.width, 3],
      },
    };
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
    for (const [t, r] of observed) {
      const h = histogramFor(method, r);
      if (h) hists.set(t, h);
    }
    const histTensors = [...hists.keys()];
    if (histTensors.length > 0)
      await forEachActivation(session, input, images, histTensors, (t, v) => hists.get(t)?.update(v));
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
async function channelMeans(
  model: OnnxTypes.IModelProto,
  input: PixelInput,
  images: readonly RgbImage[],
  tensors: readonly string[],
): Promise<Map<string, Float64Array>> {
  const session = await OnnxModel.load(withOutputs(model, tensors));
  const sums = new Map<string, Float64Array>();
  try {
    await forEachActivation(session, input, images, tensors, (t, v, dims) => {
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
  rounded: ReadonlyMap<string, ChannelQuantized>,
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
  const reference = await channelMeans(
    fp32,
    input,
    images,
    targets.map((x) => x.tensor),
  );
  for (const { bias, tensor } of targets) {
    const names = new Map<string, string>();
    const int8 = applyQdq(work, plan, params, names, rounded);
    const dq = names.get(tensor);
    if (!dq) continue;
    const got = (await channelMeans(int8, input, images, [dq])).get(dq);
    const want = reference.get(tensor);
    if (!got || !want) continue;
    const values = Float32Array.from(tensorValues(bias) as Float32Array);
    if (values.length !== got.length) continue;
    for (let c = 0; c < values.length; c++)
      values[c] = (values[c] as number) - ((got[c] as number) - (want[c] as number));
    const replacement = tensorProto(bias.name ?? 'bias', (bias.dims ?? []).map(Number), values);
    bias.rawData = replacement.rawData;
    bias.floatData = [];
  }
  log.debug({ nodes: targets.length }, 'bias correction');
  return { model: work, nodes: targets.length };
}

/** Calibration images GPTQ's input statistics come from (the first ones of the spread). */
const ROUNDING_IMAGES = 32;
/**
 * Most multiply-adds one node's input statistics may cost (groups × K² × samples,
 * ~2·10⁹): output positions are subsampled evenly to stay under it, and a node that
 * cannot get 2K samples within it is rounded to nearest (reported).
 */
const ROUNDING_COST = 2 ** 31;

interface RoundingTarget {
  readonly name: string;
  readonly w: Float32Array;
  readonly dims: readonly number[];
  readonly axis: number;
  readonly rows: number;
  readonly k: number;
  readonly at: (row: number, col: number) => number;
  readonly groupOf: (row: number) => number;
  readonly stats: InputStatistics[];
  /** Conv geometry; undefined for a Gemm. */
  readonly geo?: ConvGeometry;
  readonly maxSamples: number;
}

/**
 * GPTQ rounding (rounding.ts) of every int8 node's weights, on the statistics of its
 * fp32 inputs over the first ROUNDING_IMAGES calibration images. Returns the rounded
 * weights by node name (scales: round-to-nearest's) and the nodes left to nearest.
 */
async function optimiseRounding(
  fp32: OnnxTypes.IModelProto,
  plan: QuantPlan,
  images: readonly RgbImage[],
): Promise<{ rounded: Map<string, ChannelQuantized>; report: RoundingReport }> {
  const g = fp32.graph as OnnxTypes.IGraphProto;
  const inits = new Map((g.initializer ?? []).map((t) => [t.name ?? '', t]));
  const ints8 = new Set(plan.intNodes);
  const nearest: { name: string; reason: string }[] = [];
  const targets = new Map<string, RoundingTarget[]>(); // input tensor -> nodes reading it
  const used = images.slice(0, ROUNDING_IMAGES);
  for (const n of g.node ?? []) {
    const name = n.name ?? '';
    if (!ints8.has(name)) continue;
    const wInit = inits.get(n.input?.[1] ?? '');
    if (!wInit) continue;
    const w = tensorValues(wInit) as Float32Array;
    const dims = (wInit.dims ?? []).map(Number);
    let t: Omit<RoundingTarget, 'stats' | 'maxSamples'> & { groups: number };
    if (n.opType === 'Conv') {
      const [co = 1, cpg = 1, kh = 1, kw = 1] = dims;
      const group = readAttr.i(n, 'group') ?? 1;
      const autoPad = readAttr.s(n, 'auto_pad') ?? 'NOTSET';
      if (dims.length !== 4 || autoPad !== 'NOTSET') {
        nearest.push({ name, reason: 'not a 2-D conv with explicit pads' });
        continue;
      }
      const k = cpg * kh * kw;
      const per = co / group;
      const [pt = 0, pl = 0, pb = 0, pr = 0] = readAttr.ints(n, 'pads') ?? [];
      const [sy = 1, sx = 1] = readAttr.ints(n, 'strides') ?? [];
      const [dy = 1, dx = 1] = readAttr.ints(n, 'dilations') ?? [];
      t = {
        name,
        w,
        dims,
        axis: 0,
        rows: co,
        k,
        groups: group,
        at: (r, c) => r * k + c,
        groupOf: (r) => Math.floor(r / per),
        geo: { group, kernel: [kh, kw], strides: [sy, sx], pads: [pt, pl, pb, pr], dilations: [dy, dx] },
      };
    } else {
      const transB = readAttr.i(n, 'transB') === 1;
      const [d0 = 1, d1 = 1] = dims;
      const k = transB ? d1 : d0;
      const rows = transB ? d0 : d1;
      t = {
        name,
        w,
        dims,
        axis: transB ? 0 : 1,
        rows,
        k,
        groups: 1,
        at: transB ? (r, c) => r * k + c : (r, c) => c * rows + r,
        groupOf: () => 0,
      };
    }
    const maxSamples = Math.floor(ROUNDING_COST / (t.groups * t.k * t.k));
    if (maxSamples < 2 * t.k) {
      nearest.push({ name, reason: `${t.k} inputs per output: the statistics would cost too much` });
      continue;
    }
    const x = n.input?.[0] ?? '';
    targets.set(x, [
      ...(targets.get(x) ?? []),
      { ...t, maxSamples, stats: Array.from({ length: t.groups }, () => new InputStatistics(t.k)) },
    ]);
  }
  const tensors = [...targets.keys()];
  if (tensors.length > 0) {
    const session = await OnnxModel.load(withOutputs(fp32, tensors));
    try {
      await forEachActivation(session, pixelInput(fp32), used, tensors, (tensor, v, dims) => {
        const batch = dims[0] ?? 1;
        for (const t of targets.get(tensor) ?? []) {
          const { geo } = t;
          if (!geo) {
            for (let b = 0; b < batch; b++) t.stats[0]?.add(Float64Array.from(v.subarray(b * t.k, (b + 1) * t.k)));
            continue;
          }
          const patch = new Float64Array(t.k);
          // Evenly spread output positions, at most maxSamples over all the images.
          const perImage = Math.max(1, Math.ceil(t.maxSamples / used.length));
          const step = Math.max(1, Math.floor(outputPositions(dims, geo) / perImage));
          for (let b = 0; b < batch; b++) forEachPatch(v, dims, b, geo, step, patch, (grp) => t.stats[grp]?.add(patch));
        }
      });
    } finally {
      await session.release();
    }
  }
  const rounded = new Map<string, ChannelQuantized>();
  let samples = 0;
  for (const t of [...targets.values()].flat()) {
    const count = t.stats[0]?.count ?? 0;
    if (count < t.k) {
      nearest.push({ name: t.name, reason: `${count} input samples for ${t.k} inputs per output` });
      continue;
    }
    const scales = weightScales(t.w, t.dims, t.axis);
    const values = roundWeights(t.w, t.rows, t.k, t.at, scales, t.stats, t.groupOf);
    if (!values) {
      nearest.push({ name: t.name, reason: 'input covariance not positive definite' });
      continue;
    }
    rounded.set(t.name, { values, scales });
    samples = Math.max(samples, count);
  }
  log.debug({ optimised: rounded.size, nearest }, 'weight rounding');
  return { rounded, report: { method: 'gptq', optimised: rounded.size, samples, nearest } };
}

function resolveTarget(t: MixedPrecisionTarget | undefined): Required<MixedPrecisionTarget> {
  return {
    minAgreement: t?.minAgreement ?? 0.99,
    maxRelativeError: t?.maxRelativeError ?? DEFAULT_TARGET.maxRelativeError,
    maxFloatNodes: t?.maxFloatNodes ?? DEFAULT_TARGET.maxFloatNodes,
    images: t?.images ?? DEFAULT_TARGET.images,
  };
}

/** A copy of the bias-corrected model with the fp32 biases back on `nodes` (kept float: nothing to correct). */
function restoreBiases(
  corrected: OnnxTypes.IModelProto,
  fp32: OnnxTypes.IModelProto,
  nodes: ReadonlySet<string>,
): OnnxTypes.ModelProto {
  const copy = decodeModel(encodeModel(corrected));
  const g = copy.graph as OnnxTypes.GraphProto;
  const original = new Map((fp32.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
  const inits = new Map(g.initializer.map((t) => [t.name ?? '', t]));
  for (const n of g.node) {
    const b = n.input?.[2];
    if (!nodes.has(n.name ?? '') || !b) continue;
    const src = original.get(b);
    const dst = inits.get(b);
    if (src && dst) {
      dst.rawData = src.rawData ?? new Uint8Array();
      dst.floatData = [...(src.floatData ?? [])];
    }
  }
  return copy;
}

/** Candidates re-measured at each step of the greedy search (the best-ranked so far). */
const RESCORE = 8;

/**
 * Candidate units for the search: each int8 node alone (removes its weight rounding),
 * and each quantised activation between int8 nodes with its producer and int8 consumers
 * (keeping them float removes that tensor's uint8 rounding as well).
 */
function floatUnits(fp32: OnnxTypes.IModelProto, plan: QuantPlan, maxNodes: number): string[][] {
  const nodes = fp32.graph?.node ?? [];
  const ints = new Set(plan.intNodes);
  const absorbed = new Set(plan.absorbed);
  const units: string[][] = plan.intNodes.map((n) => [n]);
  for (const n of nodes) {
    if (!ints.has(n.name ?? '')) continue;
    let out = n.output?.[0] ?? '';
    const act = nodes.find((c) => absorbed.has(c.name ?? '') && c.input?.[0] === out);
    if (act) out = act.output?.[0] ?? out;
    const consumers = nodes
      .filter((c) => ints.has(c.name ?? '') && (c.input ?? []).includes(out))
      .map((c) => c.name ?? '');
    if (consumers.length > 0) units.push([n.name ?? '', ...consumers]);
  }
  // The stem: the first k int8 nodes in graph order. Early layers' rounding is amplified
  // by every later layer (in MobileNet 0.25 the first depthwise convs have gains up to
  // ~75), but one of them alone rarely helps: its neighbours' rounding remains.
  for (let k = 3; k <= Math.min(maxNodes, plan.intNodes.length - 1); k++) units.push(plan.intNodes.slice(0, k));
  return units;
}

/**
 * The mixed-precision search (mixed.ts): deviation with every node int8; if it misses
 * the target, each node's error when it alone is float; then the k most sensitive kept
 * float, k = 1, 2, … until the target is met (or the budget is spent: then the k with
 * the lowest error).
 */
async function searchFloatNodes(
  fp32: OnnxTypes.IModelProto,
  keep: ReadonlySet<string>,
  plan: QuantPlan,
  corrected: OnnxTypes.IModelProto,
  params: Map<string, ActivationParams>,
  ensureParams: (p: QuantPlan) => Promise<void>,
  held: readonly RgbImage[],
  target: Required<MixedPrecisionTarget>,
  rounded: ReadonlyMap<string, ChannelQuantized>,
): Promise<{
  tensor: string;
  logits: boolean;
  reference: Float32Array[];
  before: Deviation;
  keptFloat: NodeSensitivity[];
  sensitivities: NodeSensitivity[];
}> {
  const { name: tensor, logits } = decisionTensor(fp32);
  const reference = await decisionValues(fp32, tensor, held);
  const measure = async (extra: readonly string[]): Promise<Deviation> => {
    const p = extra.length ? planQuantization(fp32, new Set([...keep, ...extra])) : plan;
    await ensureParams(p);
    const model = applyQdq(
      extra.length ? restoreBiases(corrected, fp32, new Set(extra)) : corrected,
      p,
      params,
      undefined,
      rounded,
    );
    return deviation(reference, await decisionValues(model, tensor, held));
  };
  const before = await measure([]);
  if (meets(before, target, logits) || target.maxFloatNodes < 1)
    return { tensor, logits, reference, before, keptFloat: [], sensitivities: [] };
  const sensitivities: NodeSensitivity[] = [];
  for (const unit of floatUnits(fp32, plan, target.maxFloatNodes)) {
    sensitivities.push({
      name: unit.join('+'),
      nodes: unit,
      relativeErrorWhenFloat: (await measure(unit)).relativeError,
    });
  }
  sensitivities.sort((a, b) => a.relativeErrorWhenFloat - b.relativeErrorWhenFloat);
  // Greedy forward selection: each step adds the unit that lowers the error most with
  // the units already chosen (errors do not add up: bias correction of later layers
  // absorbs part of earlier layers' error), trying the RESCORE best-ranked candidates.
  const kept: NodeSensitivity[] = [];
  const nodesOf = (units: readonly NodeSensitivity[]): string[] => [...new Set(units.flatMap((u) => u.nodes))];
  let ranking = sensitivities;
  let current = before;
  let best: { kept: NodeSensitivity[]; d: Deviation } = { kept: [], d: before };
  while (!meets(current, target, logits)) {
    const chosen = new Set(nodesOf(kept));
    const open = ranking.filter(
      (u) => u.nodes.some((n) => !chosen.has(n)) && nodesOf([...kept, u]).length <= target.maxFloatNodes,
    );
    if (open.length === 0) break;
    const scored: { unit: NodeSensitivity; d: Deviation }[] = [];
    for (const unit of open.slice(0, RESCORE))
      scored.push({ unit, d: kept.length === 0 ? await measure(unit.nodes) : await measure(nodesOf([...kept, unit])) });
    scored.sort((x, y) => x.d.relativeError - y.d.relativeError);
    const step = scored[0];
    if (!step) break;
    kept.push({ ...step.unit, relativeErrorWhenFloat: step.d.relativeError });
    current = step.d;
    log.debug({ kept: kept.map((k) => k.name), ...current }, 'mixed precision: step');
    if (current.relativeError < best.d.relativeError) best = { kept: [...kept], d: current };
    const order = new Map(scored.map((x, i) => [x.unit.name, i]));
    ranking = [...open].sort(
      (x, y) => (order.get(x.name) ?? RESCORE + open.indexOf(x)) - (order.get(y.name) ?? RESCORE + open.indexOf(y)),
    );
  }
  if (meets(current, target, logits)) best = { kept, d: current };
  return { tensor, logits, reference, before, keptFloat: best.kept, sensitivities };
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
  planQuantization(fp32, keep); // checks keepFloat names before any work
  let plan = planQuantization(fp32, keep);
  if (plan.intNodes.length === 0)
    throw new ModelError('the model has no Conv or Gemm node that can run in int8: nothing to quantise');
  const toCalibrate = plan.tensors.filter((t) => !plan.sharesWith.has(t));
  log.info(
    { method, samples: images.length, tensors: toCalibrate.length, intNodes: plan.intNodes.length },
    'calibrating',
  );
  const ranges = await calibrate(fp32, toCalibrate, images, method, options.percentile);
  const params = new Map<string, ActivationParams>();
  for (const [t, r] of ranges) params.set(t, activationParams(r.min, r.max));
  /** Calibrates the tensors a changed plan quantises that the first plan did not. */
  const ensureParams = async (p: QuantPlan): Promise<void> => {
    const missing = p.tensors.filter((t) => !p.sharesWith.has(t) && !params.has(t));
    if (missing.length === 0) return;
    for (const [t, r] of await calibrate(fp32, missing, images, method, options.percentile))
      params.set(t, activationParams(r.min, r.max));
  };
  const roundingMethod = options.rounding ?? 'gptq';
  if (!weightRoundings.includes(roundingMethod)) {
    throw new DataError(
      `unsupported weight rounding "${String(roundingMethod)}". Should be one of: ${weightRoundings.join(', ')}`,
    );
  }
  const { rounded, report: rounding } =
    roundingMethod === 'gptq'
      ? await optimiseRounding(fp32, plan, images)
      : {
          rounded: new Map<string, ChannelQuantized>(),
          report: { method: 'nearest' as const, optimised: 0, samples: 0, nearest: [] },
        };
  const biasCorrection = options.biasCorrection !== false;
  const correct = (p: QuantPlan): Promise<{ model: OnnxTypes.IModelProto; nodes: number }> =>
    biasCorrection
      ? correctBiases(fp32, p, params, images.slice(0, options.biasCorrectionImages ?? BIAS_CORRECTION_IMAGES), rounded)
      : Promise.resolve({ model: fp32, nodes: 0 });

  let corrected = await correct(plan);
  let mixed: MixedPrecisionReport | undefined;
  let autoFloat: readonly NodeSensitivity[] = [];
  let onLogits = false;
  if (options.mixedPrecision !== false) {
    const picked = new Set(images);
    const unused = options.heldOut ?? options.calibration.filter((x) => !picked.has(x));
    const asked = resolveTarget(options.mixedPrecision === true ? undefined : options.mixedPrecision);
    // Never more than half of the int8 nodes: a model that needs more is reported
    // (meetsTarget false), not quietly turned back into a float model.
    const target = { ...asked, maxFloatNodes: Math.min(asked.maxFloatNodes, Math.floor(plan.intNodes.length / 2)) };
    const held = spread(unused.length > 0 ? unused : images, target.images);
    pixelBatch(held, input.height, input.width);
    const search = await searchFloatNodes(
      fp32,
      keep,
      plan,
      corrected.model,
      params,
      ensureParams,
      held,
      target,
      rounded,
    );
    autoFloat = search.keptFloat;
    onLogits = search.logits;
    let after = search.before;
    if (autoFloat.length > 0) {
      plan = planQuantization(fp32, new Set([...keep, ...autoFloat.flatMap((k) => k.nodes)]));
      await ensureParams(plan);
      corrected = await correct(plan);
      after = deviation(
        search.reference,
        await decisionValues(applyQdq(corrected.model, plan, params, undefined, rounded), search.tensor, held),
      );
    }
    mixed = {
      images: held.length,
      heldOut: unused.length > 0,
      tensor: search.tensor,
      target,
      before: search.before,
      after,
      meetsTarget: meets(after, target, search.logits),
      keptFloat: autoFloat,
      mostSensitive: search.sensitivities.slice(0, 8),
    };
    log.info({ keptFloat: autoFloat.map((k) => k.name), before: search.before, after }, 'mixed precision');
  }
  const floatNodes: FloatNode[] = plan.floatNodes.map((f) => {
    const k = autoFloat.find((a) => a.nodes.includes(f.name));
    return k && mixed
      ? {
          ...f,
          reason: `kept float by automatic mixed precision: relative ${onLogits ? 'logits' : mixed.tensor} error on ${mixed.images} ${mixed.heldOut ? 'held-out training' : 'calibration'} images ${mixed.before.relativeError.toFixed(4)} with every node int8, ${k.relativeErrorWhenFloat.toFixed(4)} once ${k.nodes.length > 1 ? `${k.name} (and the activations between them) were` : 'this node was'} float too; ${mixed.after.relativeError.toFixed(4)} in the end (target ${mixed.target.maxRelativeError})`,
        }
      : f;
  });
  const int8 = applyQdq(corrected.model, plan, params, undefined, rounded);
  const report: QuantizeReport = {
    method,
    ...(method === 'percentile' ? { percentile: options.percentile ?? 99.999 } : {}),
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
