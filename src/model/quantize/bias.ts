/**
 * Empirical bias correction (Nagel et al. 2019, "Data-Free Quantization", section 4.2,
 * measured on data as in Finkelstein et al. 2019): int8 weight rounding shifts the mean
 * of a conv's output; subtracting the measured shift from its bias removes it.
 *
 * For each int8 Conv with a constant bias whose output (after an absorbed Relu / Clip)
 * is quantised, in graph order: the per-channel mean of that output over the images in
 * the fp32 graph, minus the same mean in the QDQ graph built with every earlier
 * correction in place, is subtracted from the fp32 bias. One conv at a time because
 * corrections propagate (correcting all at once overshoots and, measured on MobileNet
 * 0.25, destroys the model).
 */
import type { OnnxTypes } from '../onnx/proto.js';
import { decodeModel, encodeModel, tensorProto, tensorValues } from '../onnx/builder.js';
import { OnnxModel } from '../../runtime/ort.js';
import type { RgbImage } from '../../shared/image.js';
import { moduleLogger } from '../../shared/logger.js';
import { pixelInput, withOutputs, type PixelInput } from './io.js';
import { ACTIVATION_BATCH, runBatched } from './batch.js';
import { applyQdq, type QuantPlan } from './graph.js';
import type { ActivationParams, ChannelQuantized } from './params.js';

const log = moduleLogger('quantize');

/** Calibration images the bias correction averages over (the first ones of the spread). */
export const BIAS_CORRECTION_IMAGES = 32;

/** An fp32 model whose biases were corrected, and how many convs were. */
export interface CorrectedModel {
  readonly model: OnnxTypes.IModelProto;
  readonly nodes: number;
}

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
    await runBatched(session, input, images, tensors, ACTIVATION_BATCH, (values) => {
      for (const [t, { data: v, dims }] of values) {
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
      }
    });
  } finally {
    await session.release();
  }
  return sums;
}

/**
 * Corrects the biases of `plan`'s int8 convs (see the header) with the given activation
 * parameters and rounded weights. Returns an fp32 copy with corrected biases.
 */
export async function correctBiases(
  fp32: OnnxTypes.IModelProto,
  plan: QuantPlan,
  params: ReadonlyMap<string, ActivationParams>,
  images: readonly RgbImage[],
  rounded: ReadonlyMap<string, ChannelQuantized>,
): Promise<CorrectedModel> {
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

/**
 * A copy of the bias-corrected model with the fp32 biases back on `nodes`: a node kept
 * float has no rounding to correct.
 */
export function restoreBiases(
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
