/**
 * TF.js GraphModel (a frozen TF GraphDef as JSON) → ONNX nodes. Covers the op set of
 * `@vladmandic/human`'s face models (blazeface, faceres, antispoof, liveness) and the
 * usual neighbours of those ops; anything else stops with the op and node names.
 */
import { z } from 'zod';
import { ModelError, UnsupportedError } from '../../shared/errors.js';
import { attr } from '../onnx/builder.js';
import { broadcastShapes, type Activation, type Const, type Emitter, type Padding, type Value } from './emitter.js';
import type { TfjsArtifacts } from './tfjs.js';

/** GraphModel ops this converter handles. */
export const supportedOps = [
  'Placeholder',
  'Const',
  'Identity',
  'StopGradient',
  'NoOp',
  'Conv2D',
  '_FusedConv2D',
  'DepthwiseConv2dNative',
  'FusedDepthwiseConv2dNative',
  'MatMul',
  '_FusedMatMul',
  'BiasAdd',
  'FusedBatchNorm',
  'FusedBatchNormV3',
  'Add',
  'AddV2',
  'Sub',
  'Mul',
  'RealDiv',
  'Maximum',
  'Minimum',
  'Relu',
  'Relu6',
  'Elu',
  'Selu',
  'LeakyRelu',
  'Prelu',
  'Sigmoid',
  'Tanh',
  'Softmax',
  'Mean',
  'MaxPool',
  'AvgPool',
  'Pad',
  'Reshape',
  'Squeeze',
  'ConcatV2',
] as const;

const attrValueSchema = z
  .object({
    s: z.string().optional(),
    i: z.union([z.string(), z.number()]).optional(),
    f: z.number().optional(),
    b: z.boolean().optional(),
    type: z.string().optional(),
    list: z
      .object({
        i: z.array(z.union([z.string(), z.number()])).optional(),
        s: z.array(z.string()).optional(),
        f: z.array(z.number()).optional(),
      })
      .loose()
      .optional(),
    tensor: z.unknown().optional(),
    shape: z.unknown().optional(),
  })
  .loose();

const nodeSchema = z
  .object({
    name: z.string(),
    op: z.string(),
    input: z.array(z.string()).optional(),
    attr: z.record(z.string(), attrValueSchema).optional(),
  })
  .loose();
type TfNode = z.infer<typeof nodeSchema>;

const graphSchema = z.object({ node: z.array(nodeSchema) }).loose();

const decodeB64 = (s: string): string => Buffer.from(s, 'base64').toString('utf8');

function attrString(n: TfNode, key: string): string | undefined {
  const s = n.attr?.[key]?.s;
  return s === undefined ? undefined : decodeB64(s);
}
function attrInts(n: TfNode, key: string): number[] | undefined {
  return n.attr?.[key]?.list?.i?.map(Number);
}
function attrBool(n: TfNode, key: string): boolean {
  return n.attr?.[key]?.b === true;
}
function attrFloat(n: TfNode, key: string, fallback: number): number {
  return n.attr?.[key]?.f ?? fallback;
}

/** A node's input reference without the output index and control-dependency marker. */
function refName(ref: string): { node: string; index: number } {
  const m = /^\^?(.*?)(?::(\d+))?$/.exec(ref);
  return { node: m?.[1] ?? ref, index: m?.[2] ? Number(m[2]) : 0 };
}

/** Constants keep their TF shape; int32 ones (shapes, axes, paddings) stay integers. */
type Tensor =
  { kind: 'value'; value: Value } | { kind: 'const'; shape: readonly number[]; data: Float32Array | Int32Array };

/** The model's signature outputs (node names) and inputs, when the model.json has them. */
export function signatureOf(artifacts: TfjsArtifacts): { inputs: string[]; outputs: string[] } | undefined {
  const sig = artifacts.signature as
    { inputs?: Record<string, { name?: string }>; outputs?: Record<string, { name?: string }> } | undefined;
  if (!sig || typeof sig !== 'object' || !sig.outputs) return undefined;
  const names = (r: Record<string, { name?: string }> | undefined): string[] =>
    Object.entries(r ?? {}).map(([k, v]) => refName(v.name ?? k).node);
  return { inputs: names(sig.inputs), outputs: names(sig.outputs) };
}

/**
 * A Reshape's target for an input whose size differs from the one the graph was frozen
 * with: a target of fixed sizes only (as converters write them for a fixed input) gets −1
 * for its largest dimension, the one that grows with the input, when the input has a free
 * size (the batch dimension aside) or a known element count the target does not fit. A
 * target that has a −1 already, or fits the input, is kept.
 */
export function freeReshapeTarget(input: readonly (number | null)[], target: readonly number[]): number[] {
  if (target.includes(-1) || target.length === 0) return [...target];
  const free = input.some((d, i) => i > 0 && d === null);
  const count = input.every((d) => d !== null) ? input.reduce<number>((a, d) => a * (d ?? 1), 1) : null;
  const fits = !free && (count === null || count === target.reduce((a, d) => a * d, 1));
  if (fits) return [...target];
  let largest = 0;
  target.forEach((d, i) => {
    if (d > (target[largest] ?? 0)) largest = i;
  });
  return target.map((d, i) => (i === largest ? -1 : d));
}

/** The graph's Placeholder nodes with their shapes (TF order, null = free). */
export function graphPlaceholders(artifacts: TfjsArtifacts): { name: string; shape: (number | null)[] }[] {
  const parsed = graphSchema.safeParse(artifacts.topology);
  if (!parsed.success)
    throw new ModelError(
      `${artifacts.source}: the GraphModel topology has no valid node list; the model.json is corrupt`,
    );
  return parsed.data.node
    .filter((n) => n.op === 'Placeholder')
    .map((n) => {
      const dims = (n.attr?.shape?.shape as { dim?: { size?: string | number }[] } | undefined)?.dim ?? [];
      return {
        name: n.name,
        shape: dims.map((d) => {
          const v = Number(d.size ?? -1);
          return Number.isFinite(v) && v >= 0 ? v : null;
        }),
      };
    });
}

export interface ConvertGraphOptions {
  /** Values to bind to Placeholder nodes, by node name. Unbound placeholders become graph inputs. */
  readonly inputs?: ReadonlyMap<string, Value>;
  /** Node names (optionally with `:0`) to compute; the signature outputs by default. */
  readonly outputs?: readonly string[];
  /**
   * Shapes (TF order, `null` = free) that replace the shapes stored on Placeholder nodes, by
   * node name: e.g. a detector's height and width left free so that one graph takes any
   * input size. A fixed-size Reshape downstream of a freed size then takes −1 for its
   * largest dimension (the one that grew with the input; BlazeFace's anchor count).
   */
  readonly inputShapes?: ReadonlyMap<string, readonly (number | null)[]>;
}

/** Converts the nodes needed for `outputs`; returns their values in order. */
export function convertGraph(
  e: Emitter,
  artifacts: TfjsArtifacts,
  options: ConvertGraphOptions = {},
): { names: string[]; values: Value[] } {
  const parsed = graphSchema.safeParse(artifacts.topology);
  if (!parsed.success)
    throw new ModelError(
      `${artifacts.source}: the GraphModel topology has no valid node list; the model.json is corrupt`,
    );
  const nodes = new Map(parsed.data.node.map((n) => [n.name, n]));
  const consumed = new Set(parsed.data.node.flatMap((n) => (n.input ?? []).map((i) => refName(i).node)));
  const defaultOutputs =
    signatureOf(artifacts)?.outputs ??
    parsed.data.node.filter((n) => n.op !== 'Const' && n.op !== 'NoOp' && !consumed.has(n.name)).map((n) => n.name);
  const wanted = (options.outputs ?? defaultOutputs).map((o) => refName(o).node);
  for (const w of wanted) {
    if (!nodes.has(w)) {
      const candidates = parsed.data.node.filter((n) => n.op !== 'Const').map((n) => n.name);
      throw new ModelError(
        `${artifacts.source} has no node "${w}". Outputs: ${defaultOutputs.join(', ')}; nodes include: ${candidates.slice(-20).join(', ')}`,
      );
    }
  }

  // Dependency order, only what the outputs need (iterative: graphs can be deep).
  const order: TfNode[] = [];
  const done = new Set<string>();
  const visiting = new Set<string>();
  const stack: { name: string; expanded: boolean }[] = wanted.map((name) => ({ name, expanded: false })).reverse();
  while (stack.length > 0) {
    const top = stack.pop() as { name: string; expanded: boolean };
    if (done.has(top.name)) continue;
    const node = nodes.get(top.name);
    if (!node) throw new ModelError(`${artifacts.source}: a node refers to a missing node "${top.name}"`);
    if (top.expanded) {
      visiting.delete(top.name);
      done.add(top.name);
      order.push(node);
      continue;
    }
    // Reached again while its own inputs are being visited: a loop (TF while_loop).
    if (visiting.has(top.name)) {
      throw new UnsupportedError(
        `node ${top.name} (${node.op}) is part of a loop (TF control flow); control flow is not supported`,
      );
    }
    visiting.add(top.name);
    stack.push({ name: top.name, expanded: true });
    for (const i of node.input ?? []) {
      if (i.startsWith('^')) continue;
      const dep = refName(i).node;
      if (!done.has(dep)) stack.push({ name: dep, expanded: false });
    }
  }

  // Name every unsupported op up front, with the nodes that use it.
  const known = new Set<string>(supportedOps);
  const unsupported = new Map<string, string[]>();
  for (const n of order) if (!known.has(n.op)) unsupported.set(n.op, [...(unsupported.get(n.op) ?? []), n.name]);
  if (unsupported.size > 0) {
    const list = [...unsupported].map(
      ([op, names]) =>
        `${op} (node ${names.slice(0, 3).join(', ')}${names.length > 3 ? ` and ${names.length - 3} more` : ''})`,
    );
    throw new UnsupportedError(
      `${artifacts.source}: op${unsupported.size > 1 ? 's' : ''} ${list.join('; ')} ${unsupported.size > 1 ? 'are' : 'is'} not supported by the ONNX exporter. ` +
        `Supported ops: ${supportedOps.join(', ')}`,
    );
  }

  const tensors = new Map<string, Tensor>();
  const fail = (n: TfNode, why: string): never => {
    throw new UnsupportedError(`node ${n.name} (${n.op}): ${why}`);
  };
  const get = (n: TfNode, i: number): Tensor => {
    const ref = (n.input ?? []).filter((x) => !x.startsWith('^'))[i];
    if (ref === undefined) throw new ModelError(`node ${n.name} (${n.op}) has no input ${i}`);
    const { node, index } = refName(ref);
    if (index !== 0) fail(n, `uses output ${index} of ${node}; only single-output producers are supported`);
    const t = tensors.get(node);
    if (!t) throw new ModelError(`node ${n.name} (${n.op}): input ${node} was not converted`);
    return t;
  };
  const value = (n: TfNode, i: number): Value => {
    const t = get(n, i);
    if (t.kind !== 'value') fail(n, `input ${i} is a constant; constant folding is not supported here`);
    return (t as { value: Value }).value;
  };
  const floatConst = (n: TfNode, i: number): Const => {
    const t = get(n, i);
    if (t.kind !== 'const' || !(t.data instanceof Float32Array))
      return fail(n, `input ${i} must be a float constant (weights)`);
    return { shape: t.shape, data: t.data };
  };
  const intConst = (n: TfNode, i: number): number[] => {
    const t = get(n, i);
    if (t.kind !== 'const') return fail(n, `input ${i} must be a constant`);
    return Array.from(t.data, (v) => Math.round(v));
  };
  const padding = (n: TfNode): Padding => {
    const p = attrString(n, 'padding') ?? 'VALID';
    if (p === 'SAME') return 'same';
    if (p === 'VALID') return 'valid';
    if (p === 'EXPLICIT') {
      const e4 = attrInts(n, 'explicit_paddings') ?? [];
      return { top: e4[2] ?? 0, bottom: e4[3] ?? 0, left: e4[4] ?? 0, right: e4[5] ?? 0 };
    }
    return fail(n, `padding ${p} is not supported`);
  };
  const nhwc = (n: TfNode): void => {
    const f = attrString(n, 'data_format');
    if (f && f !== 'NHWC') fail(n, `data_format ${f}; only NHWC is supported`);
  };
  const spatial = (list: number[] | undefined, fallback: number): [number, number] =>
    list && list.length === 4 ? [list[1] ?? fallback, list[2] ?? fallback] : [fallback, fallback];

  /** Element-wise binary op; a constant operand is laid out like the other one. */
  const binary = (n: TfNode, op: 'Add' | 'Sub' | 'Mul' | 'Div' | 'Max' | 'Min'): Value => {
    const a = get(n, 0);
    const b = get(n, 1);
    if (a.kind === 'const' && b.kind === 'const') return fail(n, 'both operands are constants');
    if (a.kind === 'value' && b.kind === 'value') {
      let x = a.value,
        y = b.value;
      const layout =
        x.shape.length === 4 && y.shape.length === 4 && (x.layout === 'nchw' || y.layout === 'nchw')
          ? 'nchw'
          : 'native';
      x = e.as(x, layout);
      y = e.as(y, layout);
      return {
        name: e.g.op(op, [x.name, y.name], {}, { name: n.name }),
        shape: broadcastShapes(x.shape, y.shape),
        layout,
      };
    }
    const v = a.kind === 'value' ? a.value : (b as { value: Value }).value;
    const c = (a.kind === 'const' ? a : b) as { shape: readonly number[]; data: Float32Array | Int32Array };
    const constFirst = a.kind === 'const';
    let data = Float32Array.from(c.data);
    let onnxOp: string = op;
    // x - c → x + (-c) and x / c → x * (1/c): the forms optimiseGraph folds into a Conv.
    if (op === 'Sub' && !constFirst) {
      data = data.map((d) => -d);
      onnxOp = 'Add';
    }
    if (op === 'Div' && !constFirst) {
      data = data.map((d) => 1 / d);
      onnxOp = 'Mul';
    }
    const x = v;
    if ((op === 'Max' || op === 'Min') && c.data.length === 1) {
      const bound = data[0] ?? 0;
      const out =
        op === 'Max'
          ? e.clip(x.name, bound, Number.POSITIVE_INFINITY, n.name)
          : e.clip(x.name, Number.NEGATIVE_INFINITY, bound, n.name);
      return { ...x, name: out };
    }
    const cName = e.constantLike(`${n.name}/const`, { shape: c.shape, data }, x);
    const inputs = constFirst && onnxOp === op ? [cName, x.name] : [x.name, cName];
    return {
      name: e.g.op(onnxOp, inputs, {}, { name: n.name }),
      shape: broadcastShapes(x.shape, c.shape),
      layout: x.layout,
    };
  };

  /** The fused activation list of _FusedConv2D / _FusedMatMul after BiasAdd / BatchNorm. */
  const fusedActivation = (n: TfNode, ops: string[]): Activation | undefined => {
    const act = ops.find((o) => o !== 'BiasAdd');
    if (!act) return undefined;
    switch (act) {
      case 'Relu':
        return 'relu';
      case 'Relu6':
        return 'relu6';
      case 'Elu':
        return 'elu';
      case 'Sigmoid':
        return 'sigmoid';
      case 'Tanh':
        return 'tanh';
      case 'LeakyRelu':
        return { kind: 'leakyrelu', alpha: attrFloat(n, 'leakyrelu_alpha', 0.2) };
      // Fused args are [bias, alpha] with BiasAdd, [alpha] without (tfjs-converter's convolution executor).
      case 'Prelu':
        return { kind: 'prelu', slope: floatConst(n, ops.includes('BiasAdd') ? 3 : 2) };
      default:
        return fail(
          n,
          `fused activation ${act} is not supported (BiasAdd, Relu, Relu6, Elu, Sigmoid, Tanh, LeakyRelu, Prelu are)`,
        );
    }
  };
  const fusedOps = (n: TfNode): string[] => (n.attr?.fused_ops?.list?.s ?? []).map(decodeB64);
  /** Bias of a fused op (BiasAdd). TF.js itself refuses FusedBatchNorm inside fused convolutions. */
  const fusedBias = (n: TfNode, ops: string[]): Float32Array | undefined => {
    if (ops.includes('FusedBatchNorm'))
      return fail(n, 'FusedBatchNorm inside a fused op is not supported (TF.js cannot run it either)');
    return ops.includes('BiasAdd') ? floatConst(n, 2).data : undefined;
  };

  for (const n of order) {
    let out: Value | undefined;
    switch (n.op) {
      case 'Const': {
        const w = artifacts.weights.get(n.name);
        if (w) {
          tensors.set(n.name, { kind: 'const', shape: w.shape, data: w.data });
          continue;
        }
        const inline = inlineTensor(n);
        if (!inline)
          throw new ModelError(
            `${artifacts.source}: constant ${n.name} has no weights in the manifest; the model.json and its .bin do not match`,
          );
        tensors.set(n.name, { kind: 'const', ...inline });
        continue;
      }
      case 'Placeholder': {
        const bound = options.inputs?.get(n.name);
        if (bound) {
          out = bound;
          break;
        }
        const parsedDims = z
          .array(z.object({ size: z.union([z.string(), z.number()]).optional() }).loose())
          .optional()
          .safeParse((n.attr?.shape?.shape as { dim?: unknown } | undefined)?.dim);
        if (!parsedDims.success) throw new ModelError(`${artifacts.source}: input ${n.name} has a malformed shape`);
        const dims = parsedDims.data ?? [];
        const dtype = n.attr?.dtype?.type ?? 'DT_FLOAT';
        if (dtype !== 'DT_FLOAT') fail(n, `input dtype ${dtype}; only DT_FLOAT inputs are supported`);
        const stored = dims.map((d) => {
          const v = Number(d.size ?? -1);
          return v < 0 ? null : v;
        });
        const override = options.inputShapes?.get(n.name);
        if (override && override.length !== stored.length)
          fail(n, `input shape override has rank ${override.length}, the input has rank ${stored.length}`);
        const shape = override ? [...override] : stored;
        const name = e.g.input(
          n.name,
          'float32',
          shape.map((d, i) => (d === null ? (i === 0 ? 'batch' : `${n.name}_dim${i}`) : d)),
        );
        out = { name, shape, layout: 'native' };
        break;
      }
      case 'Identity':
      case 'StopGradient':
        tensors.set(n.name, get(n, 0));
        continue;
      case 'NoOp':
        continue;
      case 'Conv2D':
      case '_FusedConv2D':
      case 'DepthwiseConv2dNative':
      case 'FusedDepthwiseConv2dNative': {
        nhwc(n);
        const depthwise = n.op.includes('Depthwise');
        const ops = n.op.startsWith('_Fused') || n.op.startsWith('Fused') ? fusedOps(n) : [];
        const conv = e.conv(value(n, 0), {
          name: n.name,
          kernel: floatConst(n, 1),
          bias: fusedBias(n, ops),
          depthwise,
          window: {
            strides: spatial(attrInts(n, 'strides'), 1),
            dilations: spatial(attrInts(n, 'dilations'), 1),
            padding: padding(n),
          },
        });
        const act = fusedActivation(n, ops);
        out = act ? e.activation(conv, act, `${n.name}/activation`) : conv;
        break;
      }
      case 'MatMul':
      case '_FusedMatMul': {
        if (attrBool(n, 'transpose_a')) fail(n, 'transpose_a is not supported');
        const ops = n.op === '_FusedMatMul' ? fusedOps(n) : [];
        let kernel = floatConst(n, 1);
        if (attrBool(n, 'transpose_b')) {
          const [o = 1, i = 1] = kernel.shape;
          const t = new Float32Array(kernel.data.length);
          for (let r = 0; r < o; r++) for (let k = 0; k < i; k++) t[k * o + r] = kernel.data[r * i + k] ?? 0;
          kernel = { shape: [i, o], data: t };
        }
        const x = e.as(value(n, 0), 'native');
        const dense = e.dense(x, { name: n.name, kernel, bias: fusedBias(n, ops) });
        const act = fusedActivation(n, ops);
        out = act ? e.activation(dense, act, `${n.name}/activation`) : dense;
        break;
      }
      case 'BiasAdd':
      case 'Add':
      case 'AddV2':
        out = binary(n, 'Add');
        break;
      case 'Sub':
        out = binary(n, 'Sub');
        break;
      case 'Mul':
        out = binary(n, 'Mul');
        break;
      case 'RealDiv':
        out = binary(n, 'Div');
        break;
      case 'Maximum':
        out = binary(n, 'Max');
        break;
      case 'Minimum':
        out = binary(n, 'Min');
        break;
      case 'FusedBatchNorm':
      case 'FusedBatchNormV3': {
        const x = value(n, 0);
        const [scale, offset, mean, variance] = [1, 2, 3, 4].map((i) => floatConst(n, i).data);
        const eps = attrFloat(n, 'epsilon', 1e-3);
        const ch = scale?.length ?? 0;
        const s = new Float32Array(ch);
        const b = new Float32Array(ch);
        for (let k = 0; k < ch; k++) {
          s[k] = (scale?.[k] ?? 1) / Math.sqrt((variance?.[k] ?? 0) + eps);
          b[k] = (offset?.[k] ?? 0) - (mean?.[k] ?? 0) * (s[k] ?? 0);
        }
        const mul = e.g.op(
          'Mul',
          [x.name, e.constantLike(`${n.name}/scale`, { shape: [ch], data: s }, x)],
          {},
          { name: `${n.name}/mul` },
        );
        out = {
          ...x,
          name: e.g.op(
            'Add',
            [mul, e.constantLike(`${n.name}/shift`, { shape: [ch], data: b }, x)],
            {},
            { name: n.name },
          ),
        };
        break;
      }
      case 'Relu':
        out = e.activation(value(n, 0), 'relu', n.name);
        break;
      case 'Relu6':
        out = e.activation(value(n, 0), 'relu6', n.name);
        break;
      case 'Elu':
        out = e.activation(value(n, 0), 'elu', n.name);
        break;
      case 'Selu':
        out = e.activation(value(n, 0), 'selu', n.name);
        break;
      case 'Sigmoid':
        out = e.activation(value(n, 0), 'sigmoid', n.name);
        break;
      case 'Tanh':
        out = e.activation(value(n, 0), 'tanh', n.name);
        break;
      case 'LeakyRelu':
        out = e.activation(value(n, 0), { kind: 'leakyrelu', alpha: attrFloat(n, 'alpha', 0.2) }, n.name);
        break;
      case 'Softmax':
        out = e.activation(value(n, 0), 'softmax', n.name);
        break;
      case 'Prelu':
        out = e.activation(value(n, 0), { kind: 'prelu', slope: floatConst(n, 1) }, n.name);
        break;
      case 'Mean': {
        const x = value(n, 0);
        const rank = x.shape.length;
        const axes = intConst(n, 1)
          .map((a) => (a < 0 ? a + rank : a))
          .sort();
        const keep = attrBool(n, 'keep_dims');
        if (rank === 4 && axes.length === 2 && axes[0] === 1 && axes[1] === 2) {
          out = e.globalAveragePool(x, n.name, keep);
          break;
        }
        const nat = e.as(x, 'native');
        const shape = keep
          ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d))
          : x.shape.filter((_, i) => !axes.includes(i));
        out = {
          name: e.g.op(
            'ReduceMean',
            [nat.name],
            { axes: attr.ints(axes), keepdims: attr.i(keep ? 1 : 0) },
            { name: n.name },
          ),
          shape,
          layout: 'native',
        };
        break;
      }
      case 'MaxPool':
      case 'AvgPool': {
        nhwc(n);
        out = e.pool(
          value(n, 0),
          n.op === 'MaxPool' ? 'MaxPool' : 'AveragePool',
          n.name,
          spatial(attrInts(n, 'ksize'), 1),
          spatial(attrInts(n, 'strides'), 1),
          padding(n),
        );
        break;
      }
      case 'Pad': {
        const x = value(n, 0);
        const p = intConst(n, 1);
        const rank = x.shape.length;
        if (p.length !== rank * 2) fail(n, `paddings for rank ${rank} must have ${rank * 2} values`);
        const begin = Array.from({ length: rank }, (_, i) => p[2 * i] ?? 0);
        const end = Array.from({ length: rank }, (_, i) => p[2 * i + 1] ?? 0);
        const perm = x.layout === 'nchw' && rank === 4 ? [0, 3, 1, 2] : Array.from({ length: rank }, (_, i) => i);
        const pads = e.int64(`${n.name}/pads`, [...perm.map((i) => begin[i] ?? 0), ...perm.map((i) => end[i] ?? 0)]);
        const shape = x.shape.map((d, i) => (d === null ? null : d + (begin[i] ?? 0) + (end[i] ?? 0)));
        out = {
          name: e.g.op('Pad', [x.name, pads], { mode: attr.s('constant') }, { name: n.name }),
          shape,
          layout: x.layout,
        };
        break;
      }
      case 'Reshape': {
        const x = e.as(value(n, 0), 'native');
        const target = freeReshapeTarget(x.shape, intConst(n, 1));
        const known = x.shape.every((d) => d !== null) ? x.shape.reduce<number>((a, d) => a * (d ?? 1), 1) : null;
        const rest = target.reduce((a, d) => (d === -1 ? a : a * d), 1);
        const shape = target.map((d) => (d === -1 ? (known === null ? null : known / rest) : d));
        out = {
          name: e.g.op('Reshape', [x.name, e.int64(`${n.name}/shape`, target)], {}, { name: n.name }),
          shape,
          layout: 'native',
        };
        break;
      }
      case 'Squeeze': {
        const x = e.as(value(n, 0), 'native');
        const rank = x.shape.length;
        let axes = (attrInts(n, 'squeeze_dims') ?? attrInts(n, 'axis') ?? []).map((a) => (a < 0 ? a + rank : a));
        if (axes.length === 0) axes = x.shape.flatMap((d, i) => (d === 1 ? [i] : []));
        const shape = x.shape.filter((_, i) => !axes.includes(i));
        out = {
          name: e.g.op('Squeeze', [x.name, e.int64(`${n.name}/axes`, axes)], {}, { name: n.name }),
          shape,
          layout: 'native',
        };
        break;
      }
      case 'ConcatV2': {
        const count = (n.input ?? []).filter((x) => !x.startsWith('^')).length - 1;
        const xs = Array.from({ length: count }, (_, i) => value(n, i));
        const rank = xs[0]?.shape.length ?? 0;
        let axis = intConst(n, count)[0] ?? 0;
        if (axis < 0) axis += rank;
        const nchw = rank === 4 && xs.some((x) => x.layout === 'nchw');
        const conv = xs.map((x) => e.as(x, nchw ? 'nchw' : 'native'));
        const shape = [...(xs[0]?.shape ?? [])];
        shape[axis] = xs.reduce<number | null>(
          (a, x) => (a === null || x.shape[axis] === null ? null : a + (x.shape[axis] ?? 0)),
          0,
        );
        const onnxAxis = nchw ? ([0, 2, 3, 1][axis] ?? axis) : axis;
        out = {
          name: e.g.op(
            'Concat',
            conv.map((x) => x.name),
            { axis: attr.i(onnxAxis) },
            { name: n.name },
          ),
          shape,
          layout: nchw ? 'nchw' : 'native',
        };
        break;
      }
      default:
        throw new UnsupportedError(
          `op ${n.op} (node ${n.name}) is not supported by the ONNX exporter. Supported ops: ${supportedOps.join(', ')}`,
        );
    }
    tensors.set(n.name, { kind: 'value', value: out });
  }
  const values = wanted.map((w) => {
    const t = tensors.get(w);
    if (!t || t.kind !== 'value') throw new UnsupportedError(`output ${w} is a constant; choose a computed node`);
    return t.value;
  });
  return { names: wanted, values };
}

const dtypeSizes: Record<string, 'float32' | 'int32'> = { DT_FLOAT: 'float32', DT_INT32: 'int32' };

/** A Const node's value written inline in the GraphDef (small constants sometimes are). */
function inlineTensor(n: TfNode): { shape: number[]; data: Float32Array | Int32Array } | undefined {
  const t = n.attr?.value?.tensor as
    | {
        dtype?: string;
        tensorShape?: { dim?: { size?: string | number }[] };
        floatVal?: number[];
        intVal?: number[];
        tensorContent?: string;
      }
    | undefined;
  if (!t) return undefined;
  const dtype = dtypeSizes[t.dtype ?? ''];
  if (!dtype)
    throw new UnsupportedError(
      `constant ${n.name} has dtype ${String(t.dtype)}; only DT_FLOAT and DT_INT32 are supported`,
    );
  const shape = (t.tensorShape?.dim ?? []).map((d) => Number(d.size ?? 1));
  const size = shape.reduce((a, b) => a * b, 1);
  let values: number[];
  if (t.tensorContent) {
    const bytes = Buffer.from(t.tensorContent, 'base64');
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    values = Array.from({ length: size }, (_, i) =>
      dtype === 'float32' ? view.getFloat32(4 * i, true) : view.getInt32(4 * i, true),
    );
  } else {
    const list = (dtype === 'float32' ? t.floatVal : t.intVal) ?? [];
    values = Array.from({ length: size }, (_, i) => Number(list[Math.min(i, list.length - 1)] ?? 0));
  }
  return { shape, data: dtype === 'float32' ? Float32Array.from(values) : Int32Array.from(values) };
}
