import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeModel, encodeModel, tensorValues, GraphBuilder, attr } from '../../../src/model/onnx/builder.js';
import { onnx, type OnnxTypes } from '../../../src/model/onnx/proto.js';
import { applyQdq, planQuantization } from '../../../src/model/quantize/graph.js';
import { activationParams } from '../../../src/model/quantize/params.js';
import { ModelError } from '../../../src/shared/errors.js';
import { mobileNetGraph } from '../../support/mobilenet-graph.js';

interface NodeView {
  name: string;
  opType: string;
  input: string[];
  output: string[];
}
interface View {
  node: NodeView[];
  initializer: OnnxTypes.ITensorProto[];
  output: { name: string }[];
}
/** The decoded graph with the optional protobuf fields filled in. */
function view(m: OnnxTypes.IModelProto): View {
  const g = m.graph ?? {};
  return {
    node: (g.node ?? []).map((n) => ({
      name: n.name ?? '',
      opType: n.opType ?? '',
      input: n.input ?? [],
      output: n.output ?? [],
    })),
    initializer: g.initializer ?? [],
    output: (g.output ?? []).map((o) => ({ name: o.name ?? '' })),
  };
}

const smallModel = decodeModel(mobileNetGraph({ blocks: 2, head: [16, 8], classes: 3 }));
const small = { graph: view(smallModel) };
const convs = small.graph.node.filter((n) => n.opType === 'Conv').map((n) => n.name);
const gemms = small.graph.node.filter((n) => n.opType === 'Gemm').map((n) => n.name);

test('plan: every Conv and Gemm runs in int8, every Clip/Relu after them is absorbed, Softmax stays float', () => {
  const plan = planQuantization(smallModel);
  assert.deepEqual([...plan.intNodes].sort(), [...convs, ...gemms].sort());
  const acts = small.graph.node.filter((n) => n.opType === 'Clip' || n.opType === 'Relu').map((n) => n.name);
  assert.deepEqual([...plan.absorbed].sort(), acts.sort());
  const softmax = plan.floatNodes.find((f) => f.opType === 'Softmax');
  assert.match(softmax?.reason ?? '', /probabilities/);
  // the logits Gemm feeds only Softmax: its output is not quantised (QGemm writes float)
  const logits = small.graph.node.find((n) => n.name === 'logits');
  assert.ok(!plan.tensors.includes(logits?.output[0] ?? ''));
  // the Transpose of the preprocessing runs on uint8 and shares its input's scale
  const transpose = small.graph.node.find((n) => n.opType === 'Transpose');
  assert.equal(plan.sharesWith.get(transpose?.output[0] ?? ''), transpose?.input[0]);
  // embedding (a Relu output, absorbed) is quantised so its Q does the ReLU
  assert.ok(plan.tensors.includes('embedding'));
});

function paramsFor(tensors: readonly string[]): Map<string, ReturnType<typeof activationParams>> {
  return new Map(tensors.map((t) => [t, activationParams(0, 6)]));
}

test('applyQdq: int8 weights with per-channel DQ, int32 bias, no Clip/Relu left, outputs kept', () => {
  const plan = planQuantization(smallModel);
  const q = { graph: view(decodeModel(encodeModel(applyQdq(smallModel, plan, paramsFor(plan.tensors))))) };
  const ops = (t: string): number => q.graph.node.filter((n) => n.opType === t).length;
  assert.equal(ops('Clip') + ops('Relu'), 0);
  assert.equal(ops('Conv'), convs.length);
  assert.equal(ops('QuantizeLinear'), plan.tensors.length);
  const inits = new Map(q.graph.initializer.map((t) => [t.name, t]));
  for (const n of q.graph.node.filter((x) => x.opType === 'Conv' || x.opType === 'Gemm')) {
    const wdq = q.graph.node.find((x) => x.output[0] === n.input[1]);
    assert.equal(wdq?.opType, 'DequantizeLinear', `${n.name} weights come from a DQ`);
    assert.equal(inits.get(wdq?.input[0] ?? '')?.dataType, onnx.TensorProto.DataType.INT8);
    const scales = tensorValues(inits.get(wdq?.input[1] ?? '') ?? {});
    assert.ok(scales.length > 1, 'per-channel scales');
    const bdq = q.graph.node.find((x) => x.output[0] === n.input[2]);
    assert.equal(inits.get(bdq?.input[0] ?? '')?.dataType, onnx.TensorProto.DataType.INT32);
    const xdq = q.graph.node.find((x) => x.output[0] === n.input[0]);
    assert.equal(xdq?.opType, 'DequantizeLinear', `${n.name} input comes from a DQ`);
  }
  // no float weights left behind
  assert.ok(
    !q.graph.initializer.some((t) => /kernel$/.test(t.name ?? '') && t.dataType === onnx.TensorProto.DataType.FLOAT),
  );
  assert.deepEqual(
    q.graph.output.map((o) => o.name),
    small.graph.output.map((o) => o.name),
  );
  const embProducer = q.graph.node.find((n) => n.output.includes('embedding'));
  assert.equal(embProducer?.opType, 'DequantizeLinear');
  // each DQ of an activation feeds exactly one node (onnxruntime fuses node units only then)
  for (const dq of q.graph.node.filter((n) => n.opType === 'DequantizeLinear')) {
    assert.ok(q.graph.node.filter((n) => n.input.includes(dq.output[0] ?? '')).length <= 1);
  }
  // the original is untouched
  assert.equal(small.graph.node.filter((n) => n.opType === 'Clip').length, convs.length);
});

test('keepFloat: the node keeps float weights and reads a per-channel DQ; unknown names are refused', () => {
  const keep = convs[2] as string;
  const plan = planQuantization(smallModel, new Set([keep]));
  assert.ok(!plan.intNodes.includes(keep));
  assert.match(plan.floatNodes.find((f) => f.name === keep)?.reason ?? '', /keepFloat/);
  const act = smallModel.graph?.node?.find(
    (n) => n.input?.[0] === smallModel.graph?.node?.find((c) => c.name === keep)?.output?.[0],
  );
  assert.match(
    plan.floatNodes.find((f) => f.name === act?.name)?.reason ?? '',
    /activation of a Conv \/ Gemm left in float/,
  );
  const q = view(applyQdq(smallModel, plan, paramsFor(plan.tensors)));
  const node = q.node.find((n) => n.name === keep);
  const w = q.initializer.find((t) => t.name === node?.input[1]);
  assert.equal(w?.dataType, onnx.TensorProto.DataType.FLOAT);
  const dq = q.node.find((n) => n.output[0] === node?.input[0]);
  assert.equal(dq?.opType, 'DequantizeLinear');
  assert.equal(q.initializer.find((t) => t.name === dq?.input[1])?.dims?.length, 1, 'per-channel scale');
  assert.throws(() => planQuantization(smallModel, new Set(['no_such_node'])), ModelError);
});

test('plan: Gemm with alpha ≠ 1 and a Conv with computed weights stay float, with the reason', () => {
  const g = new GraphBuilder();
  const x = g.input('x', 'float32', [1, 4]);
  const w = g.initializer('w', [4, 2], new Float32Array(8).fill(0.5));
  const y = g.op('Gemm', [x, w], { alpha: attr.f(2) }, { name: 'scaled' });
  const w2 = g.op('Relu', [w]);
  g.node('Gemm', [y, w2], ['out'], {}, { name: 'computed' });
  g.output('out', 'float32', [1, 2]);
  const plan = planQuantization(g.build());
  assert.deepEqual(plan.intNodes, []);
  assert.match(plan.floatNodes.find((f) => f.name === 'scaled')?.reason ?? '', /alpha/);
  assert.match(plan.floatNodes.find((f) => f.name === 'computed')?.reason ?? '', /constant/);
});
