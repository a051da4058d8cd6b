/**
 * Graph clean-up after conversion, so the fp32 file is already in the form the int8
 * quantiser wants (Conv/Gemm + bias followed by at most one Relu/Clip):
 * - a per-channel Mul / Add after a Conv or Gemm is folded into its weights and bias
 *   (BatchNormalization, and the `mul`/`add` pairs TF's converter leaves in GraphModels);
 * - a zero Pad on the spatial axes before a Conv becomes the Conv's pads;
 * - chains of Relu / Clip become one Clip;
 * - Identity nodes disappear, and so do unused nodes and initializers.
 * Every rewrite keeps the arithmetic exact up to float rounding.
 */
import { attr, readAttr, tensorValues, type GraphBuilder } from '../onnx/builder.js';
import type { OnnxTypes } from '../onnx/proto.js';

type INodeProto = OnnxTypes.INodeProto;

class GraphView {
  constructor(readonly g: GraphBuilder) {}

  consumers(name: string): INodeProto[] {
    return this.g.nodes.filter((n) => (n.input ?? []).includes(name));
  }

  isOutput(name: string): boolean {
    return this.g.outputs.some((o) => o.name === name);
  }

  /** The single consumer of `name`, if it has exactly one and is not a graph output. */
  soleConsumer(name: string): INodeProto | undefined {
    if (this.isOutput(name)) return undefined;
    const c = this.consumers(name);
    return c.length === 1 ? c[0] : undefined;
  }

  init(name: string | undefined): { dims: number[]; data: Float32Array } | undefined {
    if (!name) return undefined;
    const t = this.g.initializers.find((i) => i.name === name);
    if (!t) return undefined;
    const values = tensorValues(t);
    if (!(values instanceof Float32Array)) return undefined;
    return { dims: (t.dims ?? []).map(Number), data: values };
  }

  ints(name: string | undefined): number[] | undefined {
    if (!name) return undefined;
    const t = this.g.initializers.find((i) => i.name === name);
    if (!t) return undefined;
    const values = tensorValues(t);
    return Array.from(values as ArrayLike<number | bigint>, Number);
  }

  /** Adds a fresh initializer (old ones may be shared; unused ones are dropped later). */
  addInit(base: string, dims: readonly number[], data: Float32Array): string {
    return this.g.initializer(base, dims, data);
  }

  remove(node: INodeProto): void {
    const i = this.g.nodes.indexOf(node);
    if (i >= 0) this.g.nodes.splice(i, 1);
  }

  /** Rewires every use of tensor `from` to `to`. */
  replaceUses(from: string, to: string): void {
    for (const n of this.g.nodes) if (n.input) n.input = n.input.map((x) => (x === from ? to : x));
  }

  setAttr(n: INodeProto, key: string, value: ReturnType<typeof attr.ints>): void {
    const others = (n.attribute ?? []).filter((x) => x.name !== key);
    if (value.kind !== 'ints') throw new Error('only ints attributes are rewritten');
    n.attribute = [...others, { name: key, type: 7, ints: [...value.value] }];
  }
}

/**
 * A per-output-channel vector from a constant that broadcasts against a Conv output
 * [N,C,H,W] (shape [C,1,1], [1,C,1,1] or scalar) or a Gemm output [N,C] ([C], [1,C]).
 */
function channelVector(
  c: { dims: number[]; data: Float32Array },
  channels: number,
  op: 'Conv' | 'Gemm',
): Float32Array | undefined {
  if (c.data.length === 1) return new Float32Array(channels).fill(c.data[0] ?? 0);
  if (c.data.length !== channels) return undefined;
  const dims = c.dims;
  if (op === 'Conv') {
    if (dims.length < 3 || dims[dims.length - 3] !== channels) return undefined;
  } else if (dims[dims.length - 1] !== channels) {
    return undefined;
  }
  return c.data;
}

function foldAffine(v: GraphView): boolean {
  for (const n of v.g.nodes) {
    if ((n.opType !== 'Conv' && n.opType !== 'Gemm') || !n.output?.[0] || !n.input) continue;
    if (n.opType === 'Gemm' && readAttr.i(n, 'transB') !== 1) continue;
    const next = v.soleConsumer(n.output[0]);
    if (!next || (next.opType !== 'Mul' && next.opType !== 'Add') || !next.input || !next.output?.[0]) continue;
    const other = next.input[0] === n.output[0] ? next.input[1] : next.input[0];
    const c = v.init(other);
    const w = v.init(n.input[1]);
    if (!c || !w) continue;
    const channels = w.dims[0] ?? 0;
    const vec = channelVector(c, channels, n.opType);
    if (!vec) continue;
    const bias = v.init(n.input[2]);
    const b = bias ? Float32Array.from(bias.data) : new Float32Array(channels);
    const name = n.name ?? n.opType;
    if (next.opType === 'Mul') {
      const per = w.data.length / channels;
      const weights = Float32Array.from(w.data);
      for (let o = 0; o < channels; o++) {
        for (let k = 0; k < per; k++) weights[o * per + k] = (weights[o * per + k] ?? 0) * (vec[o] ?? 0);
        b[o] = (b[o] ?? 0) * (vec[o] ?? 0);
      }
      n.input[1] = v.addInit(`${name}/W`, w.dims, weights);
      if (bias) n.input[2] = v.addInit(`${name}/B`, [channels], b);
    } else {
      for (let o = 0; o < channels; o++) b[o] = (b[o] ?? 0) + (vec[o] ?? 0);
      n.input[2] = v.addInit(`${name}/B`, [channels], b);
    }
    // The folded node now produces what the Mul/Add produced.
    n.output = [next.output[0]];
    v.remove(next);
    return true;
  }
  return false;
}

function foldPad(v: GraphView): boolean {
  for (const n of v.g.nodes) {
    if (n.opType !== 'Pad' || !n.input || !n.output?.[0]) continue;
    if ((readAttr.s(n, 'mode') ?? 'constant') !== 'constant') continue;
    const value = n.input[2] ? v.init(n.input[2]) : undefined;
    if (n.input[2] && (!value || (value.data[0] ?? 0) !== 0)) continue;
    const pads = v.ints(n.input[1]);
    if (!pads || pads.length !== 8 || pads.some((p) => p < 0)) continue;
    // Only H and W may be padded (NCHW: axes 2 and 3).
    if (pads[0] !== 0 || pads[1] !== 0 || pads[4] !== 0 || pads[5] !== 0) continue;
    const conv = v.soleConsumer(n.output[0]);
    if (!conv || conv.opType !== 'Conv' || conv.input?.[0] !== n.output[0]) continue;
    const convPads = readAttr.ints(conv, 'pads') ?? [0, 0, 0, 0];
    if ((readAttr.s(conv, 'auto_pad') ?? 'NOTSET') !== 'NOTSET') continue;
    const [t = 0, l = 0, b = 0, r = 0] = convPads;
    v.setAttr(
      conv,
      'pads',
      attr.ints([t + (pads[2] ?? 0), l + (pads[3] ?? 0), b + (pads[6] ?? 0), r + (pads[7] ?? 0)]),
    );
    conv.input[0] = n.input[0] ?? '';
    v.remove(n);
    return true;
  }
  return false;
}

/** Relu → Clip(a,b) → Clip(c,d) … becomes one Clip with the intersected range. */
function mergeClips(v: GraphView): boolean {
  const bounds = (n: INodeProto): [number, number] | undefined => {
    if (n.opType === 'Relu') return [0, Number.POSITIVE_INFINITY];
    if (n.opType !== 'Clip' || !n.input) return undefined;
    const lo = n.input[1] ? v.init(n.input[1]) : undefined;
    const hi = n.input[2] ? v.init(n.input[2]) : undefined;
    if ((n.input[1] && !lo) || (n.input[2] && !hi)) return undefined;
    return [lo?.data[0] ?? Number.NEGATIVE_INFINITY, hi?.data[0] ?? Number.POSITIVE_INFINITY];
  };
  for (const n of v.g.nodes) {
    const first = bounds(n);
    if (!first || !n.output?.[0] || !n.input?.[0]) continue;
    const next = v.soleConsumer(n.output[0]);
    const second = next ? bounds(next) : undefined;
    if (!next || !second || !next.output?.[0]) continue;
    const lo = Math.max(first[0], second[0]);
    const hi = Math.min(first[1], second[1]);
    const name = n.name ?? 'Clip';
    if (lo === 0 && hi === Number.POSITIVE_INFINITY) {
      n.opType = 'Relu';
      n.input = [n.input[0]];
    } else {
      n.opType = 'Clip';
      n.input = [
        n.input[0],
        Number.isFinite(lo) ? v.g.initializer(`${name}/min`, [], Float32Array.of(lo)) : '',
        ...(Number.isFinite(hi) ? [v.g.initializer(`${name}/max`, [], Float32Array.of(hi))] : []),
      ];
    }
    n.attribute = [];
    n.output = [next.output[0]];
    v.remove(next);
    return true;
  }
  return false;
}

function removeIdentities(v: GraphView): boolean {
  for (const n of v.g.nodes) {
    if (n.opType !== 'Identity' || !n.input?.[0] || !n.output?.[0]) continue;
    const src = n.input[0];
    const dst = n.output[0];
    if (!v.isOutput(dst)) {
      v.replaceUses(dst, src);
      v.remove(n);
      return true;
    }
    // Identity feeding a graph output: let the producer write the output name directly.
    const producer = v.g.nodes.find((p) => p.output?.includes(src));
    if (!producer || v.isOutput(src)) continue;
    producer.output = (producer.output ?? []).map((o) => (o === src ? dst : o));
    v.replaceUses(src, dst);
    v.remove(n);
    return true;
  }
  return false;
}

function removeDead(v: GraphView): void {
  const g = v.g;
  let changed = true;
  while (changed) {
    changed = false;
    const used = new Set<string>(g.outputs.map((o) => o.name ?? ''));
    for (const n of g.nodes) for (const i of n.input ?? []) used.add(i);
    for (let k = g.nodes.length - 1; k >= 0; k--) {
      const n = g.nodes[k];
      if (n && !(n.output ?? []).some((o) => used.has(o))) {
        g.nodes.splice(k, 1);
        changed = true;
      }
    }
  }
  const used = new Set<string>();
  for (const n of g.nodes) for (const i of n.input ?? []) used.add(i);
  for (let k = g.initializers.length - 1; k >= 0; k--) {
    const t = g.initializers[k];
    if (t && !used.has(t.name ?? '')) g.initializers.splice(k, 1);
  }
}

/** Runs the rewrites to a fixed point, then drops what nothing uses. */
export function optimiseGraph(g: GraphBuilder): void {
  const v = new GraphView(g);
  for (;;) {
    if (removeIdentities(v) || foldAffine(v) || foldPad(v) || mergeClips(v)) continue;
    break;
  }
  removeDead(v);
}
