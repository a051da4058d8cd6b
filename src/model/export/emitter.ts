/**
 * What both converters (LayersModel, GraphModel) share: a GraphBuilder plus a table of
 * values that remembers each tensor's TF.js shape and whether it is held in TF's NHWC
 * order ('native') or transposed to ONNX's NCHW ('nchw'). Convolutions and pools want
 * NCHW; reshapes, flattens and outputs want the TF.js order, so transposes are inserted
 * only at those boundaries (and cached), never around every op.
 */
import { UnsupportedError } from '../../shared/errors.js';
import { attr, type Attr, type Dim, type GraphBuilder } from '../onnx/builder.js';

export type Layout = 'native' | 'nchw';

/** A tensor in the ONNX graph. `shape` is in TF.js (NHWC) order; null = unknown. */
export interface Value {
  readonly name: string;
  readonly shape: readonly (number | null)[];
  readonly layout: Layout;
}

/** A float32 constant in TF.js order (weights, per-channel scales, biases). */
export interface Const {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export const NHWC_TO_NCHW = [0, 3, 1, 2] as const;
export const NCHW_TO_NHWC = [0, 2, 3, 1] as const;

/** Transposes a dense row-major array of shape `dims` by `perm` (like numpy.transpose). */
export function transposeData(data: Float32Array, dims: readonly number[], perm: readonly number[]): Float32Array {
  const rank = dims.length;
  const outDims = perm.map((p) => dims[p] ?? 1);
  const inStrides = new Array<number>(rank).fill(1);
  for (let i = rank - 2; i >= 0; i--) inStrides[i] = (inStrides[i + 1] ?? 1) * (dims[i + 1] ?? 1);
  const out = new Float32Array(data.length);
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let k = 0; k < rank; k++) src += (idx[k] ?? 0) * (inStrides[perm[k] ?? 0] ?? 0);
    out[o] = data[src] ?? 0;
    for (let k = rank - 1; k >= 0; k--) {
      idx[k] = (idx[k] ?? 0) + 1;
      if ((idx[k] ?? 0) < (outDims[k] ?? 1)) break;
      idx[k] = 0;
    }
  }
  return out;
}

/** TF.js kernel [kh,kw,in,out] → ONNX Conv weight [out,in,kh,kw]. */
export function hwioToOihw(data: Float32Array, dims: readonly number[]): Float32Array {
  return transposeData(data, dims, [3, 2, 0, 1]);
}

/**
 * TF.js depthwise kernel [kh,kw,in,mult] → ONNX grouped Conv weight [in*mult,1,kh,kw]
 * (group = in). TF orders the outputs channel-major: output c*mult + m.
 */
export function depthwiseToOihw(data: Float32Array, dims: readonly number[]): Float32Array {
  const [kh = 1, kw = 1, cin = 1, mult = 1] = dims;
  return transposeData(data, [kh, kw, cin, mult], [2, 3, 0, 1]);
}

/**
 * TF 'SAME' padding for one spatial axis: TF puts the odd pixel at the end
 * (https://www.tensorflow.org/api_docs/python/tf/nn#notes_on_padding_2).
 */
export function samePadding(size: number, kernel: number, stride: number, dilation = 1): [number, number] {
  const effective = (kernel - 1) * dilation + 1;
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + effective - size, 0);
  const begin = Math.floor(total / 2);
  return [begin, total - begin];
}

/** Output length of a conv/pool axis with explicit pads. */
export function convOutSize(
  size: number | null,
  kernel: number,
  stride: number,
  dilation: number,
  pads: readonly [number, number],
): number | null {
  if (size === null) return null;
  const effective = (kernel - 1) * dilation + 1;
  return Math.floor((size + pads[0] + pads[1] - effective) / stride) + 1;
}

export type Padding =
  'same' | 'valid' | { readonly top: number; readonly bottom: number; readonly left: number; readonly right: number };

export interface Window {
  readonly kernel: readonly [number, number];
  readonly strides: readonly [number, number];
  readonly dilations: readonly [number, number];
  readonly padding: Padding;
}

/**
 * ONNX attributes for a conv/pool window on an NHWC input of `shape`, plus the output
 * spatial size. Explicit pads when the input size is known; otherwise SAME_UPPER,
 * which is TF's SAME.
 */
export function windowAttrs(
  shape: readonly (number | null)[],
  w: Window,
): { attrs: Record<string, Attr>; outH: number | null; outW: number | null } {
  const [h = null, wd = null] = [shape[1] ?? null, shape[2] ?? null];
  const attrs: Record<string, Attr> = {
    kernel_shape: attr.ints(w.kernel),
    strides: attr.ints(w.strides),
  };
  let padsH: [number, number] = [0, 0];
  let padsW: [number, number] = [0, 0];
  if (w.padding === 'same') {
    if (h === null || wd === null) {
      attrs.auto_pad = attr.s('SAME_UPPER');
      const outH = h === null ? null : Math.ceil(h / w.strides[0]);
      const outW = wd === null ? null : Math.ceil(wd / w.strides[1]);
      return { attrs, outH, outW };
    }
    padsH = samePadding(h, w.kernel[0], w.strides[0], w.dilations[0]);
    padsW = samePadding(wd, w.kernel[1], w.strides[1], w.dilations[1]);
  } else if (w.padding !== 'valid') {
    padsH = [w.padding.top, w.padding.bottom];
    padsW = [w.padding.left, w.padding.right];
  }
  attrs.pads = attr.ints([padsH[0], padsW[0], padsH[1], padsW[1]]);
  return {
    attrs,
    outH: convOutSize(h, w.kernel[0], w.strides[0], w.dilations[0], padsH),
    outW: convOutSize(wd, w.kernel[1], w.strides[1], w.dilations[1], padsW),
  };
}

/** Broadcast of two TF-order shapes (numpy rules); unknown dims stay unknown. */
export function broadcastShapes(a: readonly (number | null)[], b: readonly (number | null)[]): (number | null)[] {
  const rank = Math.max(a.length, b.length);
  const out: (number | null)[] = [];
  for (let i = 0; i < rank; i++) {
    const ia = a.length - rank + i;
    const ib = b.length - rank + i;
    const x = ia < 0 ? 1 : (a[ia] ?? null);
    const y = ib < 0 ? 1 : (b[ib] ?? null);
    out.push(x === 1 ? y : y === 1 ? x : x === null ? y : x);
  }
  return out;
}

export type Activation =
  | 'linear'
  | 'relu'
  | 'relu6'
  | 'sigmoid'
  | 'tanh'
  | 'softmax'
  | 'elu'
  | 'selu'
  | 'softplus'
  | 'softsign'
  | 'hard_sigmoid'
  | 'swish'
  | { kind: 'leakyrelu'; alpha: number }
  /** Learned slopes, in TF.js order (broadcast against the input like any constant). */
  | { kind: 'prelu'; slope: Const };

export const activationNames = [
  'linear',
  'relu',
  'relu6',
  'sigmoid',
  'tanh',
  'softmax',
  'elu',
  'selu',
  'softplus',
  'softsign',
  'hard_sigmoid',
  'swish',
] as const;

/** Builds the ONNX graph; converters call these helpers so transposes stay consistent. */
export class Emitter {
  private readonly transposed = new Map<string, string>();

  constructor(readonly g: GraphBuilder) {}

  constant(base: string, shape: readonly number[], data: Float32Array): string {
    return this.g.initializer(base, shape, data);
  }

  int64(base: string, values: readonly number[]): string {
    return this.g.initializer(base, [values.length], BigInt64Array.from(values.map((v) => BigInt(v))));
  }

  scalar(base: string, value: number): string {
    return this.g.initializer(base, [], Float32Array.of(value));
  }

  /** The value as an NCHW tensor name (rank 4 only). */
  nchw(v: Value): string {
    if (v.shape.length !== 4 || v.layout === 'nchw') return v.name;
    return this.transpose(v.name, NHWC_TO_NCHW, 'nchw');
  }

  /** The value in TF.js order. */
  native(v: Value): string {
    if (v.layout === 'native') return v.name;
    return this.transpose(v.name, NCHW_TO_NHWC, 'nhwc');
  }

  /** The same value, converted to `layout` (a new Value; the name may change). */
  as(v: Value, layout: Layout): Value {
    if (v.shape.length !== 4) return { ...v, layout: 'native' };
    return { name: layout === 'nchw' ? this.nchw(v) : this.native(v), shape: v.shape, layout };
  }

  private transpose(name: string, perm: readonly number[], suffix: string): string {
    const key = `${name}|${perm.join(',')}`;
    const cached = this.transposed.get(key);
    if (cached) return cached;
    const out = this.g.op('Transpose', [name], { perm: attr.ints(perm) }, { name: `${name}/to_${suffix}` });
    this.transposed.set(key, out);
    // Going back needs no second transpose: remember the original too.
    const back = perm.every((p, i) => p === NHWC_TO_NCHW[i]) ? NCHW_TO_NHWC : NHWC_TO_NCHW;
    this.transposed.set(`${out}|${back.join(',')}`, name);
    return out;
  }

  /**
   * A constant laid out to combine element-wise with `like`: for an NCHW value, the
   * TF-order constant is right-aligned to rank 4 and transposed to NCHW.
   */
  constantLike(base: string, c: Const, like: Value): string {
    if (c.data.length === 1 && c.shape.length <= 1)
      return this.g.initializer(base, [], Float32Array.of(c.data[0] ?? 0));
    if (like.layout === 'nchw' && like.shape.length === 4) {
      if (c.shape.length > 4)
        throw new UnsupportedError(`constant ${base} of rank ${c.shape.length} cannot broadcast to a rank-4 tensor`);
      const padded = [...new Array<number>(4 - c.shape.length).fill(1), ...c.shape];
      const data = transposeData(c.data, padded, NHWC_TO_NCHW);
      const dims = NHWC_TO_NCHW.map((p) => padded[p] ?? 1);
      // Drop leading ones: [1,C,1,1] → [C,1,1] (the form the quantiser and folding expect).
      while (dims.length > 1 && dims[0] === 1 && dims.length > 3) dims.shift();
      return this.g.initializer(base, dims, data);
    }
    return this.g.initializer(base, c.shape, c.data);
  }

  /** Applies an activation; returns the new value (same layout, except softmax → native). */
  activation(v: Value, act: Activation, name: string): Value {
    const g = this.g;
    const same = (out: string): Value => ({ name: out, shape: v.shape, layout: v.layout });
    if (act === 'linear') return v;
    if (typeof act === 'object') {
      if (act.kind === 'leakyrelu') return same(g.op('LeakyRelu', [v.name], { alpha: attr.f(act.alpha) }, { name }));
      return same(g.op('PRelu', [v.name, this.constantLike(`${name}/slope`, act.slope, v)], {}, { name }));
    }
    switch (act) {
      case 'relu':
        return same(g.op('Relu', [v.name], {}, { name }));
      case 'relu6':
        return same(this.clip(v.name, 0, 6, name));
      case 'sigmoid':
        return same(g.op('Sigmoid', [v.name], {}, { name }));
      case 'tanh':
        return same(g.op('Tanh', [v.name], {}, { name }));
      case 'elu':
        return same(g.op('Elu', [v.name], { alpha: attr.f(1) }, { name }));
      case 'selu':
        return same(g.op('Selu', [v.name], {}, { name }));
      case 'softplus':
        return same(g.op('Softplus', [v.name], {}, { name }));
      case 'softsign':
        return same(g.op('Softsign', [v.name], {}, { name }));
      // Keras/TF.js hard_sigmoid is clip(0.2x + 0.5, 0, 1): ONNX HardSigmoid's defaults.
      case 'hard_sigmoid':
        return same(g.op('HardSigmoid', [v.name], { alpha: attr.f(0.2), beta: attr.f(0.5) }, { name }));
      case 'swish': {
        const s = g.op('Sigmoid', [v.name], {}, { name: `${name}/sigmoid` });
        return same(g.op('Mul', [v.name, s], {}, { name }));
      }
      case 'softmax': {
        const x = this.as(v, 'native');
        return { name: g.op('Softmax', [x.name], { axis: attr.i(-1) }, { name }), shape: v.shape, layout: 'native' };
      }
    }
  }

  /** Clip(x, min, max); either bound may be infinite (then omitted). */
  clip(x: string, min: number, max: number, name: string): string {
    const lo = Number.isFinite(min) ? this.scalar(`${name}/min`, min) : '';
    const hi = Number.isFinite(max) ? this.scalar(`${name}/max`, max) : '';
    const inputs = hi ? [x, lo, hi] : lo ? [x, lo] : [x];
    return this.g.op('Clip', inputs, {}, { name });
  }

  /**
   * Conv (group = channels for depthwise) with optional bias, on an NCHW input.
   * `kernel` is TF.js's [kh,kw,in,out] (or [kh,kw,in,mult] when depthwise).
   */
  conv(
    x: Value,
    opts: {
      name: string;
      kernel: Const;
      bias?: Float32Array | undefined;
      depthwise: boolean;
      window: Omit<Window, 'kernel'>;
    },
  ): Value {
    const [kh = 1, kw = 1, cin = 1, last = 1] = opts.kernel.shape;
    if (opts.kernel.shape.length !== 4)
      throw new UnsupportedError(`${opts.name}: kernel of rank ${opts.kernel.shape.length}, expected 4`);
    const xin = x.shape[3];
    if (xin !== undefined && xin !== null && xin !== cin && !(opts.depthwise === false && xin % cin === 0)) {
      throw new UnsupportedError(`${opts.name}: kernel expects ${cin} input channels, input has ${xin}`);
    }
    const cout = opts.depthwise ? cin * last : last;
    const weights = opts.depthwise
      ? depthwiseToOihw(opts.kernel.data, opts.kernel.shape)
      : hwioToOihw(opts.kernel.data, opts.kernel.shape);
    const wShape = opts.depthwise ? [cout, 1, kh, kw] : [cout, cin, kh, kw];
    const inputs = [this.nchw(x), this.constant(`${opts.name}/W`, wShape, weights)];
    if (opts.bias) {
      if (opts.bias.length !== cout)
        throw new UnsupportedError(`${opts.name}: bias has ${opts.bias.length} values for ${cout} channels`);
      inputs.push(this.constant(`${opts.name}/B`, [cout], opts.bias));
    }
    const { attrs, outH, outW } = windowAttrs(x.shape, { ...opts.window, kernel: [kh, kw] });
    const out = this.g.op(
      'Conv',
      inputs,
      {
        ...attrs,
        dilations: attr.ints(opts.window.dilations),
        group: attr.i(opts.depthwise ? cin : 1),
      },
      { name: opts.name },
    );
    return { name: out, shape: [x.shape[0] ?? null, outH, outW, cout], layout: 'nchw' };
  }

  /**
   * Gemm for a Dense / MatMul with a constant [in,out] kernel: the weight is stored
   * as [out,in] with transB = 1 (output channels on axis 0, like Conv, which the
   * quantiser's per-channel scales rely on).
   */
  dense(x: Value, opts: { name: string; kernel: Const; bias?: Float32Array | undefined }): Value {
    const [cin = 1, cout = 1] = opts.kernel.shape;
    if (x.shape.length !== 2) {
      // Keras applies Dense to the last axis of any rank: MatMul + Add in TF order.
      const nat = this.as(x, 'native');
      let out = this.g.op(
        'MatMul',
        [nat.name, this.constant(`${opts.name}/W`, [cin, cout], opts.kernel.data)],
        {},
        { name: opts.name },
      );
      if (opts.bias)
        out = this.g.op(
          'Add',
          [out, this.constant(`${opts.name}/B`, [cout], opts.bias)],
          {},
          { name: `${opts.name}/bias` },
        );
      return { name: out, shape: [...x.shape.slice(0, -1), cout], layout: 'native' };
    }
    const xin = x.shape[1];
    if (xin !== undefined && xin !== null && xin !== cin) {
      throw new UnsupportedError(`${opts.name}: kernel expects ${cin} inputs, the input has ${xin}`);
    }
    const inputs = [
      x.name,
      this.constant(`${opts.name}/W`, [cout, cin], transposeData(opts.kernel.data, [cin, cout], [1, 0])),
    ];
    if (opts.bias) inputs.push(this.constant(`${opts.name}/B`, [cout], opts.bias));
    const out = this.g.op('Gemm', inputs, { transB: attr.i(1) }, { name: opts.name });
    return { name: out, shape: [x.shape[0] ?? null, cout], layout: 'native' };
  }

  /** MaxPool / AveragePool with TF semantics (a SAME average excludes the padding). */
  pool(
    x: Value,
    op: 'MaxPool' | 'AveragePool',
    name: string,
    kernel: readonly [number, number],
    strides: readonly [number, number],
    padding: Padding,
  ): Value {
    if (x.shape.length !== 4)
      throw new UnsupportedError(`${name}: pooling needs a rank-4 input, got rank ${x.shape.length}`);
    const { attrs, outH, outW } = windowAttrs(x.shape, { kernel, strides, dilations: [1, 1], padding });
    const extra: Record<string, Attr> = op === 'AveragePool' ? { count_include_pad: attr.i(0) } : {};
    // Pools get auto_pad (VALID or SAME_UPPER, which is TF's SAME), not explicit pads:
    // onnxruntime's PadFusion (onnxruntime/core/optimizer/pad_fusion.cc, since
    // https://github.com/microsoft/onnxruntime/pull/18136) moves a preceding zero Pad into
    // a pool whose auto_pad is NOTSET. That is wrong for MaxPool (its padding acts as
    // -inf) and for AveragePool without count_include_pad, and can make pads ≥ kernel,
    // which then fails to load. Explicit pads stay only for TF's rare EXPLICIT padding.
    const poolAttrs: Record<string, Attr> = { kernel_shape: attr.ints(kernel), strides: attr.ints(strides) };
    const pads = attrs.pads?.kind === 'ints' ? attrs.pads.value : [];
    if (padding === 'same') poolAttrs.auto_pad = attr.s('SAME_UPPER');
    else if (pads.some((p) => p !== 0)) poolAttrs.pads = attr.ints(pads);
    else poolAttrs.auto_pad = attr.s('VALID');
    const out = this.g.op(op, [this.nchw(x)], { ...poolAttrs, ...extra }, { name });
    return { name: out, shape: [x.shape[0] ?? null, outH, outW, x.shape[3] ?? null], layout: 'nchw' };
  }

  /** Global average pool over H and W: [b,C] (or [b,1,1,C] with keepDims). */
  globalAveragePool(x: Value, name: string, keepDims = false): Value {
    if (x.shape.length !== 4)
      throw new UnsupportedError(`${name}: global pooling needs a rank-4 input, got rank ${x.shape.length}`);
    const pooled = this.g.op('GlobalAveragePool', [this.nchw(x)], {}, { name });
    const c = x.shape[3] ?? null;
    if (keepDims) return { name: pooled, shape: [x.shape[0] ?? null, 1, 1, c], layout: 'nchw' };
    return {
      name: this.g.op('Flatten', [pooled], { axis: attr.i(1) }, { name: `${name}/flatten` }),
      shape: [x.shape[0] ?? null, c],
      layout: 'native',
    };
  }

  /**
   * Declares a graph output called `name` (in TF.js order). An Identity carries the
   * name; optimiseGraph then lets the producing node write it directly.
   */
  output(v: Value, name: string): void {
    const src = this.native(v);
    if (src !== name) {
      const taken =
        this.g.nodes.some((n) => n.output?.includes(name)) ||
        this.g.initializers.some((t) => t.name === name) ||
        this.g.inputs.some((i) => i.name === name);
      if (taken) throw new Error(`output name ${name} is already used by another tensor`);
      this.g.node('Identity', [src], [name], {}, { name: `${name}/identity` });
    }
    this.g.output(
      name,
      'float32',
      v.shape.map((d, i): Dim => (d === null ? (i === 0 ? 'batch' : `${name}_dim${i}`) : d)),
    );
  }
}
