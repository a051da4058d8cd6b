/**
 * GraphModel → ONNX, op by op: small GraphDefs written here are run by TF.js's own
 * graph executor (cpu backend, the golden reference), converted, and run in
 * onnxruntime: max |Δ| ≤ 1e-5.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { artifactsFromMemory, convertGraphModel } from '../../../src/model/export/index.js';
import { freeReshapeTarget } from '../../../src/model/export/graph.js';
import { decodeModel } from '../../../src/model/onnx/builder.js';
import { OnnxModel } from '../../../src/runtime/ort.js';
import { ModelError, UnsupportedError } from '../../../src/shared/errors.js';
import { maxAbsDiff, randomTensorData, tf, useBackend } from './tfjs-reference.js';

const TOL = 1e-5;
const b64 = (s: string): string => Buffer.from(s).toString('base64');

interface AttrValue {
  s?: string;
  i?: string;
  f?: number;
  b?: boolean;
  type?: string;
  list?: { i?: string[]; s?: string[] };
  shape?: unknown;
}
interface Node {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, AttrValue>;
}
interface ConstSpec {
  name: string;
  shape: number[];
  data: Float32Array | Int32Array;
}

/** A tiny GraphDef builder: nodes plus constants (stored as weights, as the TF.js converter does). */
class Fixture {
  readonly nodes: Node[] = [];
  readonly consts: ConstSpec[] = [];
  private seed = 1;

  input(name: string, shape: number[]): string {
    this.nodes.push({
      name,
      op: 'Placeholder',
      attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: { dim: shape.map((d) => ({ size: String(d) })) } } },
    });
    return name;
  }

  const(name: string, shape: number[], data?: Float32Array | Int32Array, scale = 0.5): string {
    const values = data ?? randomTensorData(this.seed++, shape, scale);
    const dtype = values instanceof Int32Array ? 'DT_INT32' : 'DT_FLOAT';
    this.nodes.push({ name, op: 'Const', attr: { dtype: { type: dtype }, value: { shape: {} } } });
    this.consts.push({ name, shape, data: values });
    return name;
  }

  op(name: string, op: string, input: string[], attr: Record<string, AttrValue> = {}): string {
    this.nodes.push({ name, op, input, attr: { T: { type: 'DT_FLOAT' }, ...attr } });
    return name;
  }

  artifacts(): {
    modelTopology: object;
    weightSpecs: tf.io.WeightsManifestEntry[];
    weightData: ArrayBuffer;
    format: string;
  } {
    const buffers = this.consts.map((c) => Buffer.from(c.data.buffer, c.data.byteOffset, c.data.byteLength));
    const data = Buffer.concat(buffers);
    return {
      modelTopology: { node: this.nodes, versions: { producer: 1 } },
      weightSpecs: this.consts.map((c) => ({
        name: c.name,
        shape: c.shape,
        dtype: c.data instanceof Int32Array ? 'int32' : 'float32',
      })),
      weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
      format: 'graph-model',
    };
  }
}

const conv = (
  strides: number[],
  padding: string,
  extra: Record<string, AttrValue> = {},
): Record<string, AttrValue> => ({
  strides: { list: { i: strides.map(String) } },
  padding: { s: b64(padding) },
  data_format: { s: b64('NHWC') },
  dilations: { list: { i: ['1', '1', '1', '1'] } },
  ...extra,
});
const fused = (...ops: string[]): Record<string, AttrValue> => ({
  fused_ops: { list: { s: ops.map(b64) } },
  num_args: { i: String(ops.includes('BiasAdd') ? 1 : 0) },
  epsilon: { f: 0 },
});
const pool = (k: number, s: number, padding: string): Record<string, AttrValue> => ({
  ksize: { list: { i: ['1', String(k), String(k), '1'] } },
  strides: { list: { i: ['1', String(s), String(s), '1'] } },
  padding: { s: b64(padding) },
  data_format: { s: b64('NHWC') },
});

function opCounts(bytes: Uint8Array): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const n of decodeModel(bytes).graph?.node ?? []) counts[n.opType ?? ''] = (counts[n.opType ?? ''] ?? 0) + 1;
  return counts;
}

/** Runs the fixture in TF.js and onnxruntime on the same input; returns the ONNX op counts. */
async function check(
  fx: Fixture,
  input: { name: string; dims: number[] },
  outputs: string[],
  seed: number,
  scale = 1,
): Promise<Record<string, number>> {
  const artifacts = fx.artifacts();
  const x = randomTensorData(seed, input.dims, scale);
  const model = await tf.loadGraphModel(tf.io.fromMemory(artifacts));
  const expected = tf.tidy(() => {
    const out = model.execute({ [input.name]: tf.tensor(x, input.dims) }, outputs);
    return (Array.isArray(out) ? out : [out]).map((t) => ({ data: t.dataSync(), shape: t.shape }));
  });
  const bytes = convertGraphModel(artifactsFromMemory(artifacts, '<fixture>'), { outputs });
  const onnx = await OnnxModel.load(bytes);
  const got = await onnx.run({ [input.name]: { data: x, dims: input.dims } });
  await onnx.release();
  outputs.forEach((name, i) => {
    const out = got[name];
    const want = expected[i];
    assert.ok(out && want, `output ${name} missing (have ${Object.keys(got).join(', ')})`);
    assert.deepEqual(out.dims, want.shape, `shape of ${name}`);
    const d = maxAbsDiff(out.data as Float32Array, want.data);
    assert.ok(d <= TOL, `${name}: max |Δ| ${d} > ${TOL}`);
  });
  return opCounts(bytes);
}

describe('GraphModel converter, op by op against TF.js', () => {
  before(async () => {
    await useBackend('cpu');
  });

  test('convolutions: _FusedConv2D SAME stride 2 (asymmetric pads), depthwise ×2, Mul/Add folded, Relu→Minimum→Maximum as one Clip', async () => {
    const fx = new Fixture();
    const x = fx.input('input', [-1, 10, 9, 3]);
    const c1 = fx.op('c1', '_FusedConv2D', [x, fx.const('w1', [3, 3, 3, 4]), fx.const('b1', [4])], {
      ...conv([1, 2, 2, 1], 'SAME'),
      ...fused('BiasAdd', 'Relu'),
    });
    const dw = fx.op('dw', 'DepthwiseConv2dNative', [c1, fx.const('wd', [3, 3, 4, 2])], conv([1, 1, 1, 1], 'SAME'));
    const mul = fx.op('bn/mul', 'Mul', [dw, fx.const('bn/scale', [8])]);
    const add = fx.op('bn/add', 'Add', [mul, fx.const('bn/shift', [8])]);
    const relu = fx.op('relu', 'Relu', [add]);
    const min = fx.op('clip/min', 'Minimum', [relu, fx.const('six', [], Float32Array.of(6))]);
    const max = fx.op('clip/max', 'Maximum', [min, fx.const('zero', [], Float32Array.of(0))]);
    const c2 = fx.op('c2', 'Conv2D', [max, fx.const('w2', [2, 2, 8, 5])], conv([1, 1, 1, 1], 'VALID'));
    const r6 = fx.op('r6', 'Relu6', [c2]);
    const ops = await check(fx, { name: 'input', dims: [2, 10, 9, 3] }, [r6], 1, 2);
    assert.equal(ops.Mul ?? 0, 0, 'Mul folded into the depthwise Conv');
    assert.equal(ops.Add ?? 0, 0, 'Add folded into the depthwise Conv bias');
    assert.equal(ops.Clip, 2, 'Relu+Minimum+Maximum → one Clip, Relu6 → Clip');
  });

  test('head ops: Mean over H,W, _FusedMatMul (BiasAdd+Relu), MatMul, BiasAdd, Sigmoid, Softmax, Tanh, Elu, LeakyRelu', async () => {
    const fx = new Fixture();
    const x = fx.input('input', [-1, 5, 4, 6]);
    const mean = fx.op('pool', 'Mean', [x, fx.const('axes', [2], Int32Array.of(1, 2))], { keep_dims: { b: false } });
    const fc = fx.op('fc', '_FusedMatMul', [mean, fx.const('fw', [6, 7]), fx.const('fb', [7])], {
      ...fused('BiasAdd', 'Relu'),
      transpose_a: { b: false },
      transpose_b: { b: false },
    });
    const mm = fx.op('mm', 'MatMul', [fc, fx.const('mw', [5, 7])], {
      transpose_a: { b: false },
      transpose_b: { b: true },
    });
    const ba = fx.op('ba', 'BiasAdd', [mm, fx.const('mb', [5])], { data_format: { s: b64('NHWC') } });
    const sig = fx.op('sig', 'Sigmoid', [ba]);
    const sm = fx.op('sm', 'Softmax', [ba]);
    const th = fx.op('th', 'Tanh', [ba]);
    const elu = fx.op('elu', 'Elu', [ba]);
    const lr = fx.op('lr', 'LeakyRelu', [ba], { alpha: { f: 0.1 } });
    await check(fx, { name: 'input', dims: [3, 5, 4, 6] }, [sig, sm, th, elu, lr], 2, 3);
  });

  test('pools and shapes: zero Pad (spatial) before MaxPool VALID, channel Pad, MaxPool/AvgPool SAME, AddV2, Sub, RealDiv, ConcatV2, Reshape, Squeeze, Identity', async () => {
    const fx = new Fixture();
    const x = fx.input('input', [1, 8, 7, 4]);
    const sp = fx.op('spad', 'Pad', [x, fx.const('sp/p', [4, 2], Int32Array.of(0, 0, 1, 2, 2, 0, 0, 0))]);
    const mp0 = fx.op('mp0', 'MaxPool', [sp], pool(2, 2, 'VALID'));
    const cp = fx.op('cpad', 'Pad', [x, fx.const('cp/p', [4, 2], Int32Array.of(0, 0, 0, 0, 0, 0, 0, 4))]);
    const mp = fx.op('mp', 'MaxPool', [cp], pool(3, 2, 'SAME'));
    const ap = fx.op('ap', 'AvgPool', [cp], pool(3, 2, 'SAME'));
    const sum = fx.op('sum', 'AddV2', [mp, ap]);
    const sub = fx.op('sub', 'Sub', [sum, fx.const('sub/c', [8])]);
    const div = fx.op('div', 'RealDiv', [sub, fx.const('div/c', [], Float32Array.of(4))]);
    const cat = fx.op('cat', 'ConcatV2', [div, sum, fx.const('cat/axis', [], Int32Array.of(-1))], { N: { i: '2' } });
    const rs = fx.op('rs', 'Reshape', [cat, fx.const('rs/shape', [3], Int32Array.of(1, -1, 16))]);
    const sq = fx.op('sq', 'Squeeze', [rs], { squeeze_dims: { list: { i: ['0'] } } });
    const id = fx.op('out', 'Identity', [sq]);
    await check(fx, { name: 'input', dims: [1, 8, 7, 4] }, [id, mp0], 3, 1);
  });

  test('FusedDepthwiseConv2dNative (BiasAdd + Relu6), stride 2 VALID, Selu', async () => {
    const fx = new Fixture();
    const x = fx.input('input', [-1, 9, 9, 3]);
    const dw = fx.op('fdw', 'FusedDepthwiseConv2dNative', [x, fx.const('w', [3, 3, 3, 1]), fx.const('b', [3])], {
      ...conv([1, 2, 2, 1], 'VALID'),
      ...fused('BiasAdd', 'Relu6'),
    });
    const se = fx.op('selu', 'Selu', [dw]);
    const ops = await check(fx, { name: 'input', dims: [2, 9, 9, 3] }, [se], 5, 3);
    assert.equal(ops.Conv, 1);
    assert.equal(ops.Clip, 1);
  });

  test('Prelu: fused into _FusedConv2D / FusedDepthwiseConv2dNative / _FusedMatMul (after BiasAdd) and standalone', async () => {
    const fx = new Fixture();
    const x = fx.input('input', [-1, 6, 5, 3]);
    const c = fx.op('c', '_FusedConv2D', [x, fx.const('w', [3, 3, 3, 4]), fx.const('b', [4]), fx.const('a', [4])], {
      ...conv([1, 1, 1, 1], 'SAME'),
      ...fused('BiasAdd', 'Prelu'),
      num_args: { i: '2' },
    });
    const d = fx.op(
      'd',
      'FusedDepthwiseConv2dNative',
      [c, fx.const('dw', [3, 3, 4, 1]), fx.const('db', [4]), fx.const('da', [4])],
      {
        ...conv([1, 2, 2, 1], 'SAME'),
        ...fused('BiasAdd', 'Prelu'),
        num_args: { i: '2' },
      },
    );
    const p = fx.op('p', 'Prelu', [d, fx.const('pa', [3, 3, 4])]);
    const m = fx.op('m', 'Mean', [p, fx.const('axes', [2], Int32Array.of(1, 2))], { keep_dims: { b: false } });
    const fc = fx.op('fc', '_FusedMatMul', [m, fx.const('fw', [4, 5]), fx.const('fb', [5]), fx.const('fa', [5])], {
      ...fused('BiasAdd', 'Prelu'),
      num_args: { i: '2' },
      transpose_a: { b: false },
      transpose_b: { b: false },
    });
    const ops = await check(fx, { name: 'input', dims: [2, 6, 5, 3] }, [fc], 6, 2);
    assert.equal(ops.PRelu, 4);
  });

  test('FusedBatchNormV3 standalone after a Conv2D is folded', async () => {
    const fx = new Fixture();
    const x = fx.input('input', [-1, 6, 6, 2]);
    const c = fx.op('c', 'Conv2D', [x, fx.const('w', [3, 3, 2, 3])], conv([1, 1, 1, 1], 'SAME'));
    const variance = Float32Array.of(0.5, 1.5, 0.2);
    const bn = fx.op(
      'bn',
      'FusedBatchNormV3',
      [c, fx.const('g', [3]), fx.const('b', [3]), fx.const('m', [3]), fx.const('v', [3], variance)],
      {
        epsilon: { f: 0.001 },
        data_format: { s: b64('NHWC') },
        is_training: { b: false },
      },
    );
    const ops = await check(fx, { name: 'input', dims: [2, 6, 6, 2] }, [bn], 4);
    assert.deepEqual(ops, { Transpose: 2, Conv: 1 });
  });

  test('unsupported ops stop the export, each named with the nodes that use it', () => {
    const fx = new Fixture();
    const x = fx.input('input', [1, 4]);
    const c = fx.op('my/cumsum', 'Cumsum', [x, fx.const('axis', [], Int32Array.of(1))]);
    const s = fx.op('ok/sigmoid', 'Sigmoid', [c]);
    fx.op('my/exp', 'Exp', [s]);
    const artifacts = artifactsFromMemory(fx.artifacts(), '<fixture>');
    assert.throws(
      () => convertGraphModel(artifacts, { outputs: ['my/exp'] }),
      (err: unknown) =>
        err instanceof UnsupportedError &&
        /Cumsum \(node my\/cumsum\)/.test(err.message) &&
        /Exp \(node my\/exp\)/.test(err.message),
    );
  });

  test('TF control flow (a while loop) is refused, not followed forever', () => {
    const fx = new Fixture();
    const x = fx.input('input', [1, 4]);
    fx.op('loop/merge', 'Merge', [x, 'loop/next']);
    fx.op('loop/next', 'NextIteration', ['loop/merge']);
    const artifacts = artifactsFromMemory(fx.artifacts(), '<fixture>');
    assert.throws(
      () => convertGraphModel(artifacts, { outputs: ['loop/next'] }),
      (err: unknown) => err instanceof UnsupportedError && /part of a loop/.test(err.message),
    );
  });

  test('an unknown output node is a ModelError that lists the model outputs', () => {
    const fx = new Fixture();
    const x = fx.input('input', [1, 4]);
    fx.op('s', 'Sigmoid', [x]);
    const artifacts = artifactsFromMemory(fx.artifacts(), '<fixture>');
    assert.throws(
      () => convertGraphModel(artifacts, { outputs: ['nope'] }),
      (err: unknown) => err instanceof ModelError && /nope/.test(err.message) && /Outputs: s/.test(err.message),
    );
  });
});

test('freeReshapeTarget: a fixed target gets −1 at its largest size when the input size is free or does not fit', () => {
  // BlazeFace's [1, 512, 16] after a freed height and width
  assert.deepEqual(freeReshapeTarget([1, null, null, 32], [1, 512, 16]), [1, -1, 16]);
  // a fixed input that still fits keeps its target
  assert.deepEqual(freeReshapeTarget([1, 16, 16, 32], [1, 512, 16]), [1, 512, 16]);
  // a fixed input of another size (256×192 → 12×16 cells) does not fit 512 anchors
  assert.deepEqual(freeReshapeTarget([1, 12, 16, 32], [1, 512, 16]), [1, -1, 16]);
  // a free batch alone, or a target with a −1 already, is left as it is
  assert.deepEqual(freeReshapeTarget([null, 16, 16, 32], [1, 512, 16]), [1, 512, 16]);
  assert.deepEqual(freeReshapeTarget([1, null, null, 32], [1, -1, 16]), [1, -1, 16]);
});
