/**
 * Builds ONNX graphs in memory and serialises them with the official schema.
 * Used by the exporters (TF.js → ONNX) and the quantiser (fp32 → QDQ int8).
 */
import type { OnnxTypes } from './proto.js';
import { onnx } from './proto.js';

type INodeProto = OnnxTypes.INodeProto;
type ITensorProto = OnnxTypes.ITensorProto;
type IValueInfoProto = OnnxTypes.IValueInfoProto;
type IAttributeProto = OnnxTypes.IAttributeProto;

export type DType = 'float32' | 'int8' | 'uint8' | 'int32' | 'int64';
export type TypedArray = Float32Array | Int8Array | Uint8Array | Int32Array | BigInt64Array;
/** A dimension: a number, or a symbolic name such as 'batch'. */
export type Dim = number | string;

const { DataType } = onnx.TensorProto;
const elemType: Record<DType, number> = {
  float32: DataType.FLOAT,
  int8: DataType.INT8,
  uint8: DataType.UINT8,
  int32: DataType.INT32,
  int64: DataType.INT64,
};

export function dtypeOf(elem: number): DType {
  for (const [k, v] of Object.entries(elemType)) if (v === elem) return k as DType;
  throw new Error(`unsupported ONNX element type ${elem}`);
}

/** Attribute constructors: ONNX distinguishes ints from floats, JavaScript does not. */
export type Attr =
  | { kind: 'i'; value: number }
  | { kind: 'f'; value: number }
  | { kind: 's'; value: string }
  | { kind: 'ints'; value: readonly number[] }
  | { kind: 'floats'; value: readonly number[] }
  | { kind: 't'; value: ITensorProto };
export const attr = {
  i: (value: number): Attr => ({ kind: 'i', value }),
  f: (value: number): Attr => ({ kind: 'f', value }),
  s: (value: string): Attr => ({ kind: 's', value }),
  ints: (value: readonly number[]): Attr => ({ kind: 'ints', value }),
  floats: (value: readonly number[]): Attr => ({ kind: 'floats', value }),
  t: (value: ITensorProto): Attr => ({ kind: 't', value }),
};

/** Reading a node's attributes: each getter gives undefined when the attribute is absent. */
export const readAttr = {
  get: (n: INodeProto, name: string): IAttributeProto | undefined => (n.attribute ?? []).find((a) => a.name === name),
  i: (n: INodeProto, name: string): number | undefined => {
    const a = readAttr.get(n, name);
    return a?.i === undefined || a.i === null ? undefined : Number(a.i);
  },
  f: (n: INodeProto, name: string): number | undefined => {
    const a = readAttr.get(n, name);
    return a?.f === undefined || a.f === null ? undefined : a.f;
  },
  /** Also undefined when the list is empty. */
  ints: (n: INodeProto, name: string): number[] | undefined => {
    const a = readAttr.get(n, name);
    return a?.ints && a.ints.length > 0 ? a.ints.map(Number) : undefined;
  },
  s: (n: INodeProto, name: string): string | undefined => {
    const a = readAttr.get(n, name);
    return a?.s && a.s.length > 0 ? new TextDecoder().decode(a.s) : undefined;
  },
};

function toAttributeProto(name: string, a: Attr): IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.kind) {
    case 'i':
      return { name, type: T.INT, i: a.value };
    case 'f':
      return { name, type: T.FLOAT, f: a.value };
    case 's':
      return { name, type: T.STRING, s: new TextEncoder().encode(a.value) };
    case 'ints':
      return { name, type: T.INTS, ints: [...a.value] };
    case 'floats':
      return { name, type: T.FLOATS, floats: [...a.value] };
    case 't':
      return { name, type: T.TENSOR, t: a.value };
  }
}

function dtypeOfArray(data: TypedArray): DType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Int32Array) return 'int32';
  return 'int64';
}

/** A tensor proto with raw little-endian data (the compact form onnxruntime reads fastest). */
export function tensorProto(name: string, dims: readonly number[], data: TypedArray): ITensorProto {
  const size = dims.reduce((a, b) => a * b, 1);
  if (size !== data.length) {
    throw new Error(`tensor ${name}: ${data.length} values do not fill shape [${dims.join(',')}]`);
  }
  return {
    name,
    dims: [...dims],
    dataType: elemType[dtypeOfArray(data)],
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice(),
  };
}

/** Reads a tensor proto's values (raw or typed fields) as a typed array. */
export function tensorValues(t: ITensorProto): TypedArray {
  const dtype = dtypeOf(t.dataType ?? 0);
  const dims = (t.dims ?? []).map(Number);
  const size = dims.reduce((a, b) => a * b, 1);
  if (t.rawData && t.rawData.length > 0) {
    // Copy into a fresh buffer: decoded bytes may be a Buffer view at an unaligned offset,
    // and Float32Array / Int32Array views need an offset that is a multiple of their size.
    const bytes = new Uint8Array(t.rawData);
    switch (dtype) {
      case 'float32':
        return new Float32Array(bytes.buffer, bytes.byteOffset, size);
      case 'int8':
        return new Int8Array(bytes.buffer, bytes.byteOffset, size);
      case 'uint8':
        return new Uint8Array(bytes.buffer, bytes.byteOffset, size);
      case 'int32':
        return new Int32Array(bytes.buffer, bytes.byteOffset, size);
      case 'int64':
        return new BigInt64Array(bytes.buffer, bytes.byteOffset, size);
    }
  }
  switch (dtype) {
    case 'float32':
      return Float32Array.from(t.floatData ?? []);
    case 'int8':
      return Int8Array.from(t.int32Data ?? []);
    case 'uint8':
      return Uint8Array.from(t.int32Data ?? []);
    case 'int32':
      return Int32Array.from(t.int32Data ?? []);
    case 'int64':
      return BigInt64Array.from((t.int64Data ?? []).map((v) => BigInt(String(v))));
  }
}

export function valueInfo(name: string, dtype: DType, shape: readonly Dim[]): IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: elemType[dtype],
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

export interface NodeOptions {
  /** Node name; generated from the op type when omitted. */
  name?: string;
  /** Operator domain, e.g. 'com.microsoft'; the default ONNX domain when omitted. */
  domain?: string;
}

/** Collects nodes, initializers, inputs and outputs; `build()` returns a ModelProto. */
export class GraphBuilder {
  readonly nodes: INodeProto[] = [];
  readonly initializers: ITensorProto[] = [];
  readonly inputs: IValueInfoProto[] = [];
  readonly outputs: IValueInfoProto[] = [];
  private readonly used = new Set<string>();
  private counter = 0;

  constructor(readonly graphName = 'facegate') {}

  /** A name not used yet in this graph, derived from `base` (ONNX names must be unique). */
  unique(base: string): string {
    const clean = base.replace(/[^A-Za-z0-9_./:-]/g, '_');
    let name = clean;
    while (this.used.has(name)) name = `${clean}_${++this.counter}`;
    this.used.add(name);
    return name;
  }

  /** Adds a constant tensor and returns its (unique) name. */
  initializer(base: string, dims: readonly number[], data: TypedArray): string {
    const name = this.unique(base);
    this.initializers.push(tensorProto(name, dims, data));
    return name;
  }

  input(name: string, dtype: DType, shape: readonly Dim[]): string {
    this.used.add(name);
    this.inputs.push(valueInfo(name, dtype, shape));
    return name;
  }

  output(name: string, dtype: DType, shape: readonly Dim[]): string {
    this.outputs.push(valueInfo(name, dtype, shape));
    return name;
  }

  /**
   * Adds a node. `outputs` is either explicit names or a count of outputs to name
   * after the node. Returns the output names.
   */
  node(
    opType: string,
    inputs: readonly string[],
    outputs: readonly string[] | number = 1,
    attrs: Record<string, Attr> = {},
    options: NodeOptions = {},
  ): string[] {
    const name = this.unique(options.name ?? opType);
    const outs =
      typeof outputs === 'number'
        ? Array.from({ length: outputs }, (_, i) => this.unique(outputs === 1 ? `${name}:out` : `${name}:out${i}`))
        : outputs.map((o) => {
            this.used.add(o);
            return o;
          });
    this.nodes.push({
      name,
      opType,
      input: [...inputs],
      output: outs,
      attribute: Object.entries(attrs).map(([k, v]) => toAttributeProto(k, v)),
      ...(options.domain ? { domain: options.domain } : {}),
    });
    return outs;
  }

  /** Single-output convenience for `node`. */
  op(opType: string, inputs: readonly string[], attrs: Record<string, Attr> = {}, options: NodeOptions = {}): string {
    const [out] = this.node(opType, inputs, 1, attrs, options);
    return out as string;
  }

  build(
    options: { opset?: number; metadata?: Record<string, string>; producerVersion?: string; docString?: string } = {},
  ): OnnxTypes.IModelProto {
    const opsetImport: OnnxTypes.IOperatorSetIdProto[] = [{ domain: '', version: options.opset ?? 17 }];
    if (this.nodes.some((n) => n.domain === 'com.microsoft')) opsetImport.push({ domain: 'com.microsoft', version: 1 });
    return {
      irVersion: 8,
      opsetImport,
      producerName: 'facegate',
      producerVersion: options.producerVersion ?? '0',
      docString: options.docString ?? '',
      graph: {
        name: this.graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
      metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
    };
  }
}

export function encodeModel(model: OnnxTypes.IModelProto): Uint8Array {
  return onnx.ModelProto.encode(onnx.ModelProto.fromObject(model)).finish();
}

export function decodeModel(bytes: Uint8Array): OnnxTypes.ModelProto {
  return onnx.ModelProto.decode(bytes);
}

/** metadata_props as a plain record. */
export function metadataOf(model: OnnxTypes.IModelProto): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of model.metadataProps ?? []) if (p.key) out[p.key] = p.value ?? '';
  return out;
}
