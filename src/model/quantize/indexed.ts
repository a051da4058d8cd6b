/**
 * An indexed view of an ONNX graph for the quantiser's planning (plan.ts) and rewriting
 * (qdq.ts): nodes, float initializers by name, each tensor's producer and consumers,
 * and the graph's data inputs and outputs.
 */
import type { OnnxTypes } from '../onnx/proto.js';
import { onnx } from '../onnx/proto.js';
import { readAttr } from '../onnx/builder.js';
import { ModelError } from '../../shared/errors.js';

type INodeProto = OnnxTypes.INodeProto;
type ITensorProto = OnnxTypes.ITensorProto;
type IModelProto = OnnxTypes.IModelProto;

export const FLOAT = onnx.TensorProto.DataType.FLOAT;

export interface Indexed {
  readonly nodes: INodeProto[];
  readonly inits: Map<string, ITensorProto>;
  readonly producer: Map<string, number>;
  readonly consumers: Map<string, number[]>;
  readonly graphInputs: Set<string>;
  readonly graphOutputs: Set<string>;
}

export function graphOf(model: IModelProto): OnnxTypes.IGraphProto {
  if (!model.graph) throw new ModelError('the ONNX model has no graph: export it again (facegate export)');
  return model.graph;
}

export function index(model: IModelProto): Indexed {
  const g = graphOf(model);
  const nodes = g.node ?? [];
  const inits = new Map<string, ITensorProto>();
  for (const t of g.initializer ?? []) if (t.name) inits.set(t.name, t);
  const producer = new Map<string, number>();
  const consumers = new Map<string, number[]>();
  nodes.forEach((n, i) => {
    for (const o of n.output ?? []) if (o) producer.set(o, i);
    for (const x of n.input ?? []) {
      if (!x) continue;
      const list = consumers.get(x) ?? [];
      if (!list.includes(i)) list.push(i);
      consumers.set(x, list);
    }
  });
  return {
    nodes,
    inits,
    producer,
    consumers,
    graphInputs: new Set((g.input ?? []).map((v) => v.name ?? '').filter((n) => n && !inits.has(n))),
    graphOutputs: new Set((g.output ?? []).map((v) => v.name ?? '')),
  };
}

export function intAttr(n: INodeProto, name: string, dflt: number): number {
  return readAttr.i(n, name) ?? dflt;
}
export function floatAttr(n: INodeProto, name: string, dflt: number): number {
  return readAttr.f(n, name) ?? dflt;
}
