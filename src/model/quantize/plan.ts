/**
 * Quantisation planning: which nodes of an fp32 ONNX graph run in int8 and which
 * activation tensors get a QuantizeLinear / DequantizeLinear pair (qdq.ts does the
 * rewrite).
 *
 * Decisions, after onnxruntime's QDQ quantiser:
 * - Conv and Gemm with constant weights run in int8 (per-channel int8 weights, int32 bias).
 * - A Relu, or a Clip whose lower bound is 0 (ReLU6), that alone follows a Conv / Gemm is
 *   absorbed: it is removed and the node's output is quantised with the activation's
 *   calibrated range, whose uint8 saturation at zero point 0 and at the top of the range
 *   does the clipping. This is what lets onnxruntime fuse DQ → Conv → Q.
 * - Layout and pooling ops between int8 nodes (Transpose, Reshape, Flatten, Squeeze,
 *   Unsqueeze, MaxPool, GlobalAveragePool, AveragePool) get quantised inputs too, and
 *   the layout ones share their input's scale so onnxruntime can drop the Q/DQ around
 *   them and move uint8 data.
 * - Everything else stays float behind a DequantizeLinear (preprocessing, Softmax,
 *   ReduceMean, normalisation), and a Gemm that feeds only float ops keeps a float output
 *   (QGemm writes float), so logits reach Softmax unrounded.
 */
import type { OnnxTypes } from '../onnx/proto.js';
import { tensorValues, readAttr } from '../onnx/builder.js';
import { ModelError } from '../../shared/errors.js';
import { FLOAT, floatAttr, graphOf, index, intAttr, type Indexed } from './indexed.js';

type INodeProto = OnnxTypes.INodeProto;
type ITensorProto = OnnxTypes.ITensorProto;
type IModelProto = OnnxTypes.IModelProto;

/** Ops whose output takes its input's quantisation parameters unchanged. */
const LAYOUT_OPS = new Set(['Transpose', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'MaxPool']);
/** Ops that pass a quantised tensor through (their input is quantised when their output is). */
const PASS_OPS = new Set([...LAYOUT_OPS, 'GlobalAveragePool', 'AveragePool']);

/** Why a node stays in float; reported to the user. */
export interface FloatNode {
  readonly name: string;
  readonly opType: string;
  readonly reason: string;
}

/** The quantisation plan of a graph, before calibration. */
export interface QuantPlan {
  /** Nodes that run with int8 weights (Conv, Gemm). */
  readonly intNodes: readonly string[];
  /** Relu / Clip nodes absorbed into the range of the node before them. */
  readonly absorbed: readonly string[];
  /** Activation tensors that get a QuantizeLinear / DequantizeLinear pair. */
  readonly tensors: readonly string[];
  /** Compute nodes left in float, with the reason. */
  readonly floatNodes: readonly FloatNode[];
  /** For a tensor whose params copy another's (layout ops), the tensor copied. */
  readonly sharesWith: ReadonlyMap<string, string>;
}

function floatInit(ix: Indexed, name: string | undefined): ITensorProto | undefined {
  if (!name) return undefined;
  const t = ix.inits.get(name);
  return t && t.dataType === FLOAT ? t : undefined;
}

/** A scalar from an initializer or a Constant node (Clip's min/max since opset 11). */
function scalarOf(ix: Indexed, name: string | undefined): number | undefined {
  if (!name) return undefined;
  const init = ix.inits.get(name);
  if (init) {
    const v = tensorValues(init);
    return v.length === 1 ? Number(v[0]) : undefined;
  }
  const p = ix.producer.get(name);
  const node = p === undefined ? undefined : ix.nodes[p];
  if (node?.opType === 'Constant') {
    const t = readAttr.get(node, 'value')?.t;
    if (t) {
      const v = tensorValues(t);
      return v.length === 1 ? Number(v[0]) : undefined;
    }
  }
  return undefined;
}

/** Lower bound of a Relu (0) or Clip (its min), or undefined for other ops. */
function activationFloor(ix: Indexed, n: INodeProto): number | undefined {
  if (n.opType === 'Relu') return 0;
  if (n.opType !== 'Clip') return undefined;
  if (readAttr.get(n, 'min')) return floatAttr(n, 'min', -Infinity);
  return scalarOf(ix, n.input?.[1]) ?? -Infinity;
}

/** Why Conv/Gemm node `n` cannot run in int8, or undefined if it can. */
function intBlocker(ix: Indexed, n: INodeProto): string | undefined {
  const inputs = n.input ?? [];
  if (n.opType === 'Conv') {
    if (!floatInit(ix, inputs[1])) return 'weights are not a float constant';
    if (inputs[2] && !floatInit(ix, inputs[2])) return 'bias is not a float constant';
    return undefined;
  }
  if (n.opType === 'Gemm') {
    const b = floatInit(ix, inputs[1]);
    if (!b || (b.dims ?? []).length !== 2) return 'B is not a 2-D float constant';
    if (intAttr(n, 'transA', 0) !== 0) return 'transA=1 is not supported by QGemm fusion';
    if (floatAttr(n, 'alpha', 1) !== 1 || (inputs[2] && floatAttr(n, 'beta', 1) !== 1))
      return 'alpha/beta other than 1';
    if (inputs[2]) {
      const c = floatInit(ix, inputs[2]);
      const n0 = Number((b.dims ?? [])[intAttr(n, 'transB', 0) ? 0 : 1]);
      if (!c) return 'bias C is not a float constant';
      const size = (c.dims ?? []).map(Number).reduce((a, v) => a * v, 1);
      if (size !== n0) return 'bias C is not one value per output';
    }
    return undefined;
  }
  return 'not an integer op';
}

/** Plans which nodes run in int8 and which tensors get Q/DQ. `keepFloat`: node names to leave alone. */
export function planQuantization(model: IModelProto, keepFloat: ReadonlySet<string> = new Set()): QuantPlan {
  const ix = index(model);
  const names = new Set(ix.nodes.map((n) => n.name ?? ''));
  for (const k of keepFloat) {
    if (!names.has(k)) {
      const sample = ix.nodes
        .filter((n) => n.opType === 'Conv' || n.opType === 'Gemm')
        .slice(0, 5)
        .map((n) => n.name)
        .join(', ');
      throw new ModelError(`keep-float node "${k}" is not in the model (Conv/Gemm nodes include: ${sample || 'none'})`);
    }
  }
  const floatNodes: FloatNode[] = [];
  const intNodes = new Set<number>();
  ix.nodes.forEach((n, i) => {
    if (n.opType !== 'Conv' && n.opType !== 'Gemm') return;
    const name = n.name ?? `#${i}`;
    if (keepFloat.has(name)) {
      floatNodes.push({ name, opType: n.opType, reason: 'kept float on request (keepFloat)' });
      return;
    }
    const blocker = intBlocker(ix, n);
    if (blocker) {
      floatNodes.push({ name, opType: n.opType, reason: blocker });
      return;
    }
    intNodes.add(i);
  });

  // Relu / Clip(0, x) alone after an int node: absorb into the output range.
  const absorbedBy = new Map<number, number>(); // int node -> activation node
  for (const i of intNodes) {
    const out = ix.nodes[i]?.output?.[0];
    if (!out || ix.graphOutputs.has(out)) continue;
    const cons = ix.consumers.get(out) ?? [];
    if (cons.length !== 1) continue;
    const a = cons[0] as number;
    const act = ix.nodes[a];
    if (act && act.input?.[0] === out && activationFloor(ix, act) === 0 && !keepFloat.has(act.name ?? ''))
      absorbedBy.set(i, a);
  }
  const removed = new Set(absorbedBy.values());
  const logicalOut = (i: number): string => {
    const a = absorbedBy.get(i);
    return (a === undefined ? ix.nodes[i] : ix.nodes[a])?.output?.[0] ?? '';
  };

  const isFloatActivation = (t: string): boolean => {
    if (!t || ix.inits.has(t)) return false;
    if (ix.graphInputs.has(t)) {
      const vi = (graphOf(model).input ?? []).find((v) => v.name === t);
      return vi?.type?.tensorType?.elemType === FLOAT;
    }
    const p = ix.producer.get(t);
    return p !== undefined && ix.nodes[p]?.opType !== 'Constant' && ix.nodes[p]?.opType !== 'Cast';
  };

  const tensors = new Set<string>();
  for (const i of intNodes) {
    const n = ix.nodes[i] as INodeProto;
    const x = n.input?.[0] ?? '';
    if (isFloatActivation(x)) tensors.add(x);
    const out = logicalOut(i);
    const feedsInt = (ix.consumers.get(out) ?? []).some((c) => intNodes.has(c));
    if (n.opType === 'Conv' || absorbedBy.has(i) || feedsInt) tensors.add(out);
  }
  // Backwards through pass-through ops: quantise their input when their output is.
  for (let i = ix.nodes.length - 1; i >= 0; i--) {
    const n = ix.nodes[i] as INodeProto;
    if (!PASS_OPS.has(n.opType ?? '') || keepFloat.has(n.name ?? '')) continue;
    const out = n.output?.[0] ?? '';
    const x = n.input?.[0] ?? '';
    if (tensors.has(out) && isFloatActivation(x)) tensors.add(x);
  }
  // Forwards: a layout op's output copies its input's scale (same values, same range).
  const sharesWith = new Map<string, string>();
  for (const n of ix.nodes) {
    if (!LAYOUT_OPS.has(n.opType ?? '')) continue;
    const out = n.output?.[0] ?? '';
    const x = n.input?.[0] ?? '';
    if (tensors.has(out) && tensors.has(x)) sharesWith.set(out, sharesWith.get(x) ?? x);
  }

  // Nodes that only transform the pixel input (Cast, scale, offset): preprocessing.
  const pre = new Set<string>(ix.graphInputs);
  ix.nodes.forEach((n, i) => {
    if (intNodes.has(i)) return;
    const data = (n.input ?? []).filter((x) => x && !ix.inits.has(x));
    if (data.length > 0 && data.every((x) => pre.has(x))) for (const o of n.output ?? []) pre.add(o);
  });
  /** Whether a node reads the output of a Conv / Gemm that stays float. */
  const floatProducer = (a: INodeProto): boolean => {
    const p = ix.producer.get(a.input?.[0] ?? '');
    const op = p === undefined ? undefined : ix.nodes[p]?.opType;
    return p !== undefined && !intNodes.has(p) && (op === 'Conv' || op === 'Gemm');
  };
  ix.nodes.forEach((n, i) => {
    if (intNodes.has(i) || removed.has(i) || n.opType === 'Conv' || n.opType === 'Gemm') return;
    if (n.opType === 'Constant') return;
    const name = n.name ?? `#${i}`;
    const op = n.opType ?? '?';
    const out = n.output?.[0] ?? '';
    if (PASS_OPS.has(op) && tensors.has(out)) return; // runs on uint8 / fused
    const reason = keepFloat.has(name)
      ? 'kept float on request (keepFloat)'
      : op === 'Softmax'
        ? 'Softmax stays float: probabilities are compared with thresholds, uint8 would round them to steps of 1/255'
        : pre.has(out)
          ? 'preprocessing of the uint8 pixels (scale, offset) stays float; its result is quantised for the first conv'
          : PASS_OPS.has(op)
            ? 'feeds only float consumers (e.g. the features output): quantising it would add rounding and save nothing'
            : activationFloor(ix, n) !== undefined && floatProducer(n)
              ? 'activation of a Conv / Gemm left in float: runs in float with it (only an int8 node absorbs its Relu / Clip)'
              : `no int8 kernel for ${op} in onnxruntime's QDQ fusion`;
    floatNodes.push({ name, opType: op, reason });
  });

  return {
    intNodes: [...intNodes].map((i) => ix.nodes[i]?.name ?? `#${i}`),
    absorbed: [...removed].map((i) => ix.nodes[i]?.name ?? `#${i}`),
    tensors: [...tensors],
    floatNodes,
    sharesWith,
  };
}
