/**
 * Activation range equalisation (a data-driven variant of the cross-layer equalisation
 * of Nagel et al. 2019, "Data-Free Quantization", section 4.1).
 *
 * Problem: a tensor is quantised to uint8 with one scale, but after BatchNorm folding its
 * channels have very different ranges (in ImageNet MobileNet 0.25 some channels of a
 * ReLU6 output reach 6, others stay below 0.1), so the small channels get a handful of
 * levels and their rounding noise adds up over the network.
 *
 * Fix: for a Conv P whose output (after an optional Relu / Clip(0, x)) feeds exactly one
 * Conv C, channel c of P's output is multiplied by s_c ≥ 1 (P's weights and bias of
 * channel c) and C's weights that read channel c are divided by s_c: the same function
 * (Relu and the linear part commute with a positive scale). s_c = min(R / m_c, cap) where
 * m_c is the channel's largest value on the calibration images and R the tensor's, so
 * every channel then spans close to the full range. With a Clip(0, x) the scaled channel
 * still stays ≤ R ≤ x on data like the calibration images, so the clip does not change;
 * beyond them a scaled channel saturates at R / s_c instead of x (the int8 model
 * saturates at the calibrated range anyway).
 *
 * Only the graph the int8 model is built from is changed; the fp32 model is not.
 */
import type { OnnxTypes } from '../onnx/proto.js';
import { onnx } from '../onnx/proto.js';
import { decodeModel, encodeModel, tensorProto, tensorValues } from '../onnx/builder.js';
import { OnnxModel, type TensorData } from '../../runtime/ort.js';
import type { RgbImage } from '../../shared/image.js';
import { pixelBatch, pixelInput, withOutputs } from './io.js';

/** Largest scale applied to a channel (bounds the precision lost by C's weights of that channel). */
export const DEFAULT_EQUALIZE_CAP = 16;

interface Pair {
  readonly producer: OnnxTypes.INodeProto;
  readonly consumer: OnnxTypes.INodeProto;
  /** The tensor between them (after the activation, if any). */
  readonly tensor: string;
}

function floatInit(inits: Map<string, OnnxTypes.ITensorProto>, name: string | undefined): OnnxTypes.ITensorProto | undefined {
  const t = name ? inits.get(name) : undefined;
  return t && t.dataType === onnx.TensorProto.DataType.FLOAT ? t : undefined;
}

function clipFloorIsZero(n: OnnxTypes.INodeProto, inits: Map<string, OnnxTypes.ITensorProto>, nodes: readonly OnnxTypes.INodeProto[]): boolean {
  if (n.opType === 'Relu') return true;
  if (n.opType !== 'Clip') return false;
  const a = (n.attribute ?? []).find((x) => x.name === 'min');
  if (a) return (a.f ?? 0) === 0;
  const name = n.input?.[1];
  if (!name) return false;
  const init = inits.get(name);
  const t = init ?? (nodes.find((c) => c.opType === 'Constant' && c.output?.[0] === name)?.attribute ?? []).find((x) => x.name === 'value')?.t;
  if (!t) return false;
  const v = tensorValues(t);
  return v.length === 1 && Number(v[0]) === 0;
}

/** Conv → [Relu | Clip(0, x)] → Conv chains where the scale can move from one to the other. */
function findPairs(model: OnnxTypes.IModelProto, skip: ReadonlySet<string>): Pair[] {
  const g = model.graph;
  const nodes = g?.node ?? [];
  const inits = new Map((g?.initializer ?? []).map((t) => [t.name ?? '', t]));
  const outputs = new Set((g?.output ?? []).map((o) => o.name ?? ''));
  const consumers = (t: string): OnnxTypes.INodeProto[] => nodes.filter((n) => (n.input ?? []).includes(t));
  const pairs: Pair[] = [];
  for (const p of nodes) {
    if (p.opType !== 'Conv' || skip.has(p.name ?? '') || !floatInit(inits, p.input?.[1])) continue;
    if (p.input?.[2] && !floatInit(inits, p.input[2])) continue;
    let tensor = p.output?.[0] ?? '';
    if (outputs.has(tensor)) continue;
    let next = consumers(tensor);
    if (next.length === 1 && next[0] && next[0].opType !== 'Conv') {
      const act = next[0];
      if (!clipFloorIsZero(act, inits, nodes) || act.input?.[0] !== tensor) continue;
      tensor = act.output?.[0] ?? '';
      if (outputs.has(tensor)) continue;
      next = consumers(tensor);
    }
    const c = next[0];
    if (next.length !== 1 || !c || c.opType !== 'Conv' || c.input?.[0] !== tensor || skip.has(c.name ?? '')) continue;
    if (!floatInit(inits, c.input?.[1]) || (c.input ?? []).slice(1).includes(tensor)) continue;
    pairs.push({ producer: p, consumer: c, tensor });
  }
  return pairs;
}

/** Per-channel maxima of NCHW tensors over the images. */
async function channelMax(model: OnnxTypes.IModelProto, images: readonly RgbImage[], tensors: readonly string[]): Promise<Map<string, Float64Array>> {
  const input = pixelInput(model);
  const session = await OnnxModel.load(withOutputs(model, tensors));
  const out = new Map<string, Float64Array>();
  try {
    for (let i = 0; i < images.length; i += 4) {
      const batch = images.slice(i, i + 4);
      const r = await session.run({ [input.name]: { data: pixelBatch(batch, input.height, input.width), dims: [batch.length, input.height, input.width, 3] } }, [...tensors]);
      for (const t of tensors) {
        const v = r[t] as TensorData;
        const data = v.data as Float32Array;
        const [n = 1, c = 1] = v.dims;
        const inner = data.length / (n * c);
        const acc = out.get(t) ?? new Float64Array(c);
        for (let b = 0; b < n; b++) {
          for (let k = 0; k < c; k++) {
            const base = (b * c + k) * inner;
            let m = acc[k] as number;
            for (let j = 0; j < inner; j++) if ((data[base + j] as number) > m) m = data[base + j] as number;
            acc[k] = m;
          }
        }
        out.set(t, acc);
      }
    }
  } finally {
    await session.release();
  }
  return out;
}

function replace(t: OnnxTypes.ITensorProto, values: Float32Array): void {
  const r = tensorProto(t.name ?? '', (t.dims ?? []).map(Number), values);
  t.rawData = r.rawData;
  t.floatData = [];
}

export interface EqualizeResult {
  readonly model: OnnxTypes.ModelProto;
  /** Tensors whose channels were rescaled. */
  readonly tensors: readonly string[];
}

/** Returns a copy of `model` with activation ranges equalised on `images`; `skip`: nodes not to touch. */
export async function equalizeActivations(
  model: OnnxTypes.IModelProto,
  images: readonly RgbImage[],
  skip: ReadonlySet<string> = new Set(),
  cap = DEFAULT_EQUALIZE_CAP,
): Promise<EqualizeResult> {
  const work = decodeModel(encodeModel(model));
  const pairs = findPairs(work, skip);
  if (pairs.length === 0 || cap <= 1) return { model: work, tensors: [] };
  const maxima = await channelMax(work, images, pairs.map((p) => p.tensor));
  const inits = new Map((work.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
  const done: string[] = [];
  for (const { producer, consumer, tensor } of pairs) {
    const m = maxima.get(tensor);
    const pw = inits.get(producer.input?.[1] ?? '');
    const cw = inits.get(consumer.input?.[1] ?? '');
    if (!m || !pw || !cw) continue;
    const channels = m.length;
    const range = Math.max(...m);
    if (!(range > 0)) continue;
    const s = Array.from(m, (x) => (x > 0 ? Math.min(Math.max(range / x, 1), cap) : 1));
    const pDims = (pw.dims ?? []).map(Number);
    const cDims = (cw.dims ?? []).map(Number);
    if (pDims[0] !== channels) continue;
    const group = Number((consumer.attribute ?? []).find((a) => a.name === 'group')?.i ?? 1);
    const cOut = cDims[0] ?? 0;
    const cIn = cDims[1] ?? 0; // input channels per group
    if (cIn * group !== channels || cOut % group !== 0) continue;
    const pv = Float32Array.from(tensorValues(pw) as Float32Array);
    const perP = pv.length / channels;
    for (let c = 0; c < channels; c++) for (let j = 0; j < perP; j++) pv[c * perP + j] = (pv[c * perP + j] as number) * (s[c] as number);
    replace(pw, pv);
    const pb = producer.input?.[2] ? inits.get(producer.input[2]) : undefined;
    if (pb) {
      const bv = Float32Array.from(tensorValues(pb) as Float32Array);
      for (let c = 0; c < channels; c++) bv[c] = (bv[c] as number) * (s[c] as number);
      replace(pb, bv);
    }
    const cv = Float32Array.from(tensorValues(cw) as Float32Array);
    const kernel = cv.length / (cOut * cIn);
    const outPerGroup = cOut / group;
    for (let o = 0; o < cOut; o++) {
      const gi = Math.floor(o / outPerGroup);
      for (let i = 0; i < cIn; i++) {
        const ch = gi * cIn + i;
        const base = (o * cIn + i) * kernel;
        for (let k = 0; k < kernel; k++) cv[base + k] = (cv[base + k] as number) / (s[ch] as number);
      }
    }
    replace(cw, cv);
    done.push(tensor);
  }
  return { model: work, tensors: done };
}
