/**
 * GPTQ orchestration: for each int8 Conv / Gemm, gathers the statistics of its input
 * (E[x xᵀ] over receptive fields for a conv, one per group; over the input vector for a
 * Gemm) from one batched fp32 run over the first calibration images, then has
 * rounding.ts round its weights. Nodes whose statistics would cost too much, that got
 * too few samples or whose statistics are not positive definite are rounded to nearest
 * and reported; `applyQdq` rounds every node not in the returned map to nearest.
 */
import type { OnnxTypes } from '../onnx/proto.js';
import { readAttr, tensorValues } from '../onnx/builder.js';
import { OnnxModel } from '../../runtime/ort.js';
import type { RgbImage } from '../../shared/image.js';
import { moduleLogger } from '../../shared/logger.js';
import { pixelInput, withOutputs } from './io.js';
import { ACTIVATION_BATCH, runBatched } from './batch.js';
import type { QuantPlan } from './graph.js';
import { weightScales, type ChannelQuantized } from './params.js';
import {
  InputStatistics,
  forEachPatch,
  outputPositions,
  roundWeights,
  type ConvGeometry,
  type WeightRounding,
} from './rounding.js';

const log = moduleLogger('quantize');

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
export async function optimiseRounding(
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
      await runBatched(session, pixelInput(fp32), used, tensors, ACTIVATION_BATCH, (values) => {
        for (const [tensor, { data: v, dims }] of values) {
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
            for (let b = 0; b < batch; b++)
              forEachPatch(v, dims, b, geo, step, patch, (grp) => t.stats[grp]?.add(patch));
          }
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

/** The weights `method` rounds ahead of the QDQ rewrite: GPTQ's, or none for 'nearest'. */
export async function roundWeightsBy(
  method: WeightRounding,
  fp32: OnnxTypes.IModelProto,
  plan: QuantPlan,
  images: readonly RgbImage[],
): Promise<{ rounded: Map<string, ChannelQuantized>; report: RoundingReport }> {
  if (method === 'gptq') return optimiseRounding(fp32, plan, images);
  return { rounded: new Map(), report: { method: 'nearest', optimised: 0, samples: 0, nearest: [] } };
}
