/**
 * The QDQ rewrite: an fp32 ONNX graph and a plan (plan.ts) with calibrated activation
 * parameters become a graph in QDQ form: each quantised activation goes through
 * QuantizeLinear and one DequantizeLinear per consumer, each int8 node reads per-channel
 * int8 weights and an int32 bias through DequantizeLinear, and absorbed Relu / Clip
 * nodes are dropped. This is the form onnxruntime's graph optimiser fuses into
 * QLinearConv, QGemm and QLinearGlobalAveragePool.
 */
import type { OnnxTypes } from '../onnx/proto.js';
import { onnx } from '../onnx/proto.js';
import { tensorProto, tensorValues, attr } from '../onnx/builder.js';
import { quantizeWeightsAndBias, type ActivationParams, type ChannelQuantized } from './params.js';
import { graphOf, index, intAttr, type Indexed } from './indexed.js';
import type { QuantPlan } from './plan.js';

type INodeProto = OnnxTypes.INodeProto;
type ITensorProto = OnnxTypes.ITensorProto;
type IModelProto = OnnxTypes.IModelProto;

/**
 * Input channels of a Conv / Gemm that stays float and reads `t` as its data input;
 * undefined for any other consumer.
 */
function floatConsumerChannels(
  ix: Indexed,
  n: INodeProto,
  t: string,
  intNodes: ReadonlySet<string>,
): number | undefined {
  if ((n.opType !== 'Conv' && n.opType !== 'Gemm') || intNodes.has(n.name ?? '') || n.input?.[0] !== t)
    return undefined;
  const w = ix.inits.get(n.input?.[1] ?? '');
  const dims = (w?.dims ?? []).map(Number);
  if (dims.length < 2) return undefined;
  if (n.opType === 'Conv') return (dims[1] as number) * intAttr(n, 'group', 1);
  return intAttr(n, 'transB', 0) ? dims[1] : dims[0];
}

/**
 * Rewrites the graph into QDQ form with the given activation parameters (one per
 * `plan.tensors` entry). Returns a new model; the input is not modified.
 */
export function applyQdq(
  model: IModelProto,
  plan: QuantPlan,
  params: ReadonlyMap<string, ActivationParams>,
  /** Filled with, for each quantised tensor, the name of one of its dequantised copies. */
  dequantizedNames?: Map<string, string>,
  /** Int8 weights already rounded (GPTQ, rounding.ts), by node name; others are rounded to nearest. */
  rounded?: ReadonlyMap<string, ChannelQuantized>,
): OnnxTypes.IModelProto {
  const copy = onnx.ModelProto.decode(onnx.ModelProto.encode(onnx.ModelProto.fromObject(model)).finish());
  const g = graphOf(copy);
  const ix = index(copy);
  const nameOf = (n: INodeProto, i: number): string => n.name ?? `#${i}`;
  const intNodes = new Set(plan.intNodes);
  const absorbed = new Set(plan.absorbed);
  const used = new Set<string>([
    ...ix.producer.keys(),
    ...ix.inits.keys(),
    ...ix.graphInputs,
    ...ix.nodes.map((n) => n.name ?? ''),
  ]);
  const unique = (base: string): string => {
    let name = base.replace(/[^A-Za-z0-9_./:-]/g, '_');
    for (let k = 1; used.has(name); k++) name = `${base}_${k}`;
    used.add(name);
    return name;
  };
  const newInits: ITensorProto[] = [];
  const addInit = (
    base: string,
    dims: readonly number[],
    data: Float32Array | Int8Array | Uint8Array | Int32Array,
  ): string => {
    const name = unique(base);
    newInits.push(tensorProto(name, dims, data));
    return name;
  };
  const paramsOf = (t: string): ActivationParams => {
    const p = params.get(plan.sharesWith.get(t) ?? t);
    if (!p) throw new Error(`no quantisation parameters for tensor ${t}`);
    return p;
  };

  // source tensor (what QuantizeLinear reads) for each quantised tensor
  const sourceOf = new Map<string, string>();
  for (const t of plan.tensors) sourceOf.set(t, t);
  ix.nodes.forEach((n) => {
    if (!absorbed.has(n.name ?? '')) return;
    const pre = n.input?.[0] ?? '';
    sourceOf.set(n.output?.[0] ?? '', pre);
  });
  const bySource = new Map<string, string[]>();
  for (const t of plan.tensors) {
    const s = sourceOf.get(t) ?? t;
    bySource.set(s, [...(bySource.get(s) ?? []), t]);
  }

  // Each consumer of a quantised tensor gets its own DequantizeLinear (onnxruntime
  // fuses a node unit only when its DQ feeds nothing else).
  const out: INodeProto[] = [];
  const node = (
    opType: string,
    inputs: string[],
    outputs: string[],
    attrs: Record<string, ReturnType<typeof attr.i>> = {},
  ): void => {
    const T = onnx.AttributeProto.AttributeType;
    out.push({
      name: unique(`${opType}_${outputs[0] ?? ''}`),
      opType,
      input: inputs,
      output: outputs,
      attribute: Object.entries(attrs).map(([k, a]) =>
        a.kind === 'i' ? { name: k, type: T.INT, i: a.value } : { name: k },
      ),
    });
  };
  const rename = new Map<number, Map<string, string>>(); // consumer index -> tensor -> dq output
  const emitQdq = (t: string): void => {
    const p = paramsOf(t);
    const scale = addInit(`${t}_scale`, [], new Float32Array([p.scale]));
    const zp = addInit(`${t}_zero_point`, [], new Uint8Array([p.zeroPoint]));
    const q = unique(`${t}_quantized`);
    node('QuantizeLinear', [sourceOf.get(t) ?? t, scale, zp], [q]);
    const consumers = (ix.consumers.get(t) ?? []).filter((c) => !absorbed.has(ix.nodes[c]?.name ?? ''));
    consumers.forEach((c) => {
      const dq = unique(`${t}_dequantized`);
      const channels = floatConsumerChannels(ix, ix.nodes[c] as INodeProto, t, intNodes);
      if (channels !== undefined) {
        // onnxruntime's WeightBiasQuantization rewrites any Conv / Gemm fed by a per-tensor
        // DequantizeLinear to per-tensor int8 weights, which ruins a depthwise conv (its
        // channels differ by orders of magnitude). The same scale repeated per channel
        // is numerically identical and keeps the node float, as asked.
        const cs = addInit(`${t}_scale_per_channel`, [channels], new Float32Array(channels).fill(p.scale));
        const cz = addInit(`${t}_zero_point_per_channel`, [channels], new Uint8Array(channels).fill(p.zeroPoint));
        node('DequantizeLinear', [q, cs, cz], [dq], { axis: attr.i(1) });
      } else {
        node('DequantizeLinear', [q, scale, zp], [dq]);
      }
      if (!dequantizedNames?.has(t)) dequantizedNames?.set(t, dq);
      const m = rename.get(c) ?? new Map<string, string>();
      m.set(t, dq);
      rename.set(c, m);
    });
    // A graph output whose producer was absorbed is rebuilt by its own DQ.
    if (ix.graphOutputs.has(t) && sourceOf.get(t) !== t) {
      node('DequantizeLinear', [q, scale, zp], [t]);
      dequantizedNames?.set(t, t);
    }
  };

  for (const s of ix.graphInputs) for (const t of bySource.get(s) ?? []) emitQdq(t);
  ix.nodes.forEach((n, i) => {
    const name = nameOf(n, i);
    if (absorbed.has(name)) return;
    const inputs = [...(n.input ?? [])].map((x) => rename.get(i)?.get(x) ?? x);
    if (intNodes.has(name)) {
      const x = n.input?.[0] ?? '';
      const inScale = paramsOf(x).scale;
      const w = ix.inits.get(n.input?.[1] ?? '') as ITensorProto;
      const wDims = (w.dims ?? []).map(Number);
      const axis = n.opType === 'Gemm' && intAttr(n, 'transB', 0) === 0 ? 1 : 0;
      const bName = n.input?.[2];
      const b = bName ? ix.inits.get(bName) : undefined;
      const q = quantizeWeightsAndBias(
        tensorValues(w) as Float32Array,
        wDims,
        axis,
        b ? (tensorValues(b) as Float32Array) : undefined,
        inScale,
        rounded?.get(name),
      );
      const channels = q.weights.scales.length;
      const wq = addInit(`${w.name ?? 'W'}_quantized`, wDims, q.weights.values);
      const ws = addInit(`${w.name ?? 'W'}_scale`, [channels], q.weights.scales);
      const wz = addInit(`${w.name ?? 'W'}_zero_point`, [channels], new Int8Array(channels));
      const wdq = unique(`${w.name ?? 'W'}_dequantized`);
      node('DequantizeLinear', [wq, ws, wz], [wdq], { axis: attr.i(axis) });
      inputs[1] = wdq;
      if (b && q.bias) {
        const bq = addInit(`${b.name ?? 'B'}_quantized`, [channels], q.bias.values);
        const bs = addInit(`${b.name ?? 'B'}_scale`, [channels], q.bias.scales);
        const bz = addInit(`${b.name ?? 'B'}_zero_point`, [channels], new Int32Array(channels));
        const bdq = unique(`${b.name ?? 'B'}_dequantized`);
        node('DequantizeLinear', [bq, bs, bz], [bdq], { axis: attr.i(0) });
        inputs[2] = bdq;
      }
    }
    out.push({ ...n, input: inputs });
    for (const o of n.output ?? []) for (const t of bySource.get(o) ?? []) emitQdq(t);
  });

  // Drop float initializers nothing reads any more (the weights now stored as int8).
  const read = new Set<string>();
  for (const n of out) for (const x of n.input ?? []) read.add(x);
  for (const o of g.output ?? []) read.add(o.name ?? '');
  g.initializer = [...(g.initializer ?? []).filter((t) => read.has(t.name ?? '')), ...newInits];
  g.input = (g.input ?? []).filter((v) => !ix.inits.has(v.name ?? '') || read.has(v.name ?? ''));
  g.node = out;
  // value_info of removed or renamed tensors would mislead shape inference.
  const live = new Set<string>();
  for (const n of out) for (const o of n.output ?? []) live.add(o);
  g.valueInfo = (g.valueInfo ?? []).filter((v) => live.has(v.name ?? ''));
  return copy;
}
