/**
 * The quantiser end to end on onnxruntime: a MobileNet-shaped graph calibrated on real
 * ORL faces, checked for kernel fusion (the optimised graph onnxruntime saves) and for
 * closeness to fp32; and every way the input can be wrong.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decodeModel, encodeModel, GraphBuilder, tensorValues } from '../../../src/model/onnx/builder.js';
import { compareModels, quantizeModel, type CalibrationMethod } from '../../../src/model/quantize/index.js';
import { OnnxModel } from '../../../src/runtime/ort.js';
import { DataError, ModelError } from '../../../src/shared/errors.js';
import { mobileNetGraph } from '../../support/mobilenet-graph.js';
import { orlSplit, type LabelledImages } from '../../support/orl.js';
import { requireShared } from '../../support/shared.js';

/** Op counts of the graph onnxruntime actually runs (optimised and saved to disk). */
async function optimisedOps(model: Uint8Array): Promise<Record<string, number>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'facegate-q-'));
  try {
    const file = path.join(dir, 'optimised.onnx');
    const m = await OnnxModel.load(model, { optimizedModelFilePath: file, threads: 1 });
    await m.release();
    const counts: Record<string, number> = {};
    for (const n of decodeModel(readFileSync(file)).graph?.node ?? [])
      counts[n.opType ?? ''] = (counts[n.opType ?? ''] ?? 0) + 1;
    return counts;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

let data: { train: LabelledImages; val: LabelledImages } | undefined;
async function orl(): Promise<{ train: LabelledImages; val: LabelledImages }> {
  data ??= { train: await orlSplit('train', 224, 1), val: await orlSplit('validation', 224, 1) };
  return data;
}

const fp32 = mobileNetGraph({ alpha: 0.25, head: [256, 128, 64], classes: 40 });

test('MobileNet-shaped graph: onnxruntime fuses every Conv into QLinearConv and every Gemm into QGemm', async (t) => {
  if (!requireShared(t)) return;
  const { train, val } = await orl();
  const { model, report } = await quantizeModel({
    model: fp32,
    calibration: train.images,
    method: 'minmax',
    samples: 16,
    mixedPrecision: false,
  });
  assert.equal(report.samples, 16);
  assert.equal(report.intNodes.length, 27 + 4);
  assert.equal(report.absorbedActivations.length, 27 + 3);
  const ops = await optimisedOps(model);
  assert.equal(ops.QLinearConv, 27, `ops: ${JSON.stringify(ops)}`);
  assert.equal(ops.QGemm, 4, `ops: ${JSON.stringify(ops)}`);
  assert.equal(ops.Conv ?? 0, 0, 'no float convolution left');
  assert.equal(ops.Gemm ?? 0, 0, 'no float Gemm left');
  assert.ok(model.length < fp32.length / 3, 'int8 weights are a quarter of the size');

  const c = await compareModels(fp32, model, val.images);
  assert.ok(c.top1Agreement >= 0.95, `agreement ${c.top1Agreement}`);
  assert.ok(c.maxAbsDiffProbability < 0.05, `max |Δp| ${c.maxAbsDiffProbability}`);
  assert.ok((c.minEmbeddingCosine ?? 0) > 0.99, `embedding cosine ${c.minEmbeddingCosine}`);
  assert.equal(c.accuracyFp32, undefined);
});

test('Gemm weights stored [out, in] (transB=1) fuse too', async (t) => {
  if (!requireShared(t)) return;
  const { train } = await orl();
  const m = mobileNetGraph({ alpha: 0.25, blocks: 2, head: [32, 16], classes: 5, transB: true });
  const { model } = await quantizeModel({
    model: m,
    calibration: train.images,
    method: 'minmax',
    samples: 4,
    mixedPrecision: false,
  });
  const ops = await optimisedOps(model);
  assert.equal(ops.QGemm, 3, JSON.stringify(ops));
});

test('keepFloat: the named conv runs in float (not re-quantised by onnxruntime), the rest stay fused', async (t) => {
  if (!requireShared(t)) return;
  const { train, val } = await orl();
  const { model, report } = await quantizeModel({
    model: fp32,
    calibration: train.images,
    method: 'minmax',
    samples: 8,
    keepFloat: ['conv_dw_1', 'logits'],
    mixedPrecision: false,
  });
  assert.deepEqual(
    report.floatNodes
      .filter((f) => f.reason.includes('keepFloat'))
      .map((f) => f.name)
      .sort(),
    ['conv_dw_1', 'logits'],
  );
  const ops = await optimisedOps(model);
  assert.equal(ops.QLinearConv, 26, JSON.stringify(ops));
  assert.equal((ops.Conv ?? 0) + (ops.FusedConv ?? 0), 1, JSON.stringify(ops));
  assert.equal(ops.QGemm, 3, JSON.stringify(ops));
  const c = await compareModels(fp32, model, val.images.slice(0, 8));
  assert.ok(c.maxAbsDiffProbability < 0.05, `max |Δp| ${c.maxAbsDiffProbability}`);
});

/** scale of every QuantizeLinear, by the tensor it quantises. */
function activationScales(model: Uint8Array): Map<string, number> {
  const m = decodeModel(model);
  const inits = new Map((m.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
  const out = new Map<string, number>();
  for (const n of m.graph?.node ?? []) {
    if (n.opType !== 'QuantizeLinear') continue;
    const s = inits.get(n.input?.[1] ?? '');
    out.set(n.input?.[0] ?? '', Number(tensorValues(s ?? {})[0]));
  }
  return out;
}

test('percentile and entropy clip ranges inside min/max, and the models still run close to fp32', async (t) => {
  if (!requireShared(t)) return;
  const { train, val } = await orl();
  const m = mobileNetGraph({ alpha: 0.25, blocks: 4, head: [64, 32], classes: 10 });
  const calibration = train.images.slice(0, 8);
  const base = activationScales(
    (await quantizeModel({ model: m, calibration, method: 'minmax', mixedPrecision: false })).model,
  );
  for (const method of ['percentile', 'entropy'] as const) {
    const { model, report } = await quantizeModel({ model: m, calibration, method, mixedPrecision: false });
    assert.equal(report.method, method);
    const scales = activationScales(model);
    assert.deepEqual([...scales.keys()].sort(), [...base.keys()].sort());
    let narrower = 0;
    for (const [tensor, s] of scales) {
      const b = base.get(tensor) as number;
      assert.ok(s <= b * (1 + 1e-6), `${method}: ${tensor} scale ${s} wider than min/max ${b}`);
      if (s < b * 0.999) narrower++;
    }
    assert.ok(narrower > 0, `${method} clipped nothing`);
    const c = await compareModels(m, model, val.images.slice(0, 16));
    // entropy clips ReLU6 outputs hard (see docs/measurements/quantisation.md), so the bound is loose for it
    const floor = method === 'percentile' ? 0.95 : 0.5;
    assert.ok((c.minEmbeddingCosine ?? 0) > floor, `${method}: embedding cosine ${c.minEmbeddingCosine}`);
  }
});

test('compareModels: a model against itself agrees fully; against another network it does not', async (t) => {
  if (!requireShared(t)) return;
  const { val } = await orl();
  const images = val.images.slice(0, 16);
  const labels = val.labels.slice(0, 16);
  const same = await compareModels(fp32, fp32, images, labels);
  assert.equal(same.top1Agreement, 1);
  assert.equal(same.maxAbsDiffProbability, 0);
  assert.equal(same.accuracyFp32, same.accuracyInt8);
  const other = mobileNetGraph({ alpha: 0.25, head: [256, 128, 64], classes: 40, seed: 99 });
  const diff = await compareModels(fp32, other, images, labels);
  assert.ok(diff.top1Agreement < 0.5);
  await assert.rejects(compareModels(fp32, fp32, images, [1]), DataError);
});

test('corrupt, truncated or foreign input fails with a clear ModelError / DataError', async () => {
  const img = { data: new Uint8Array(224 * 224 * 3), width: 224, height: 224 };
  const q = (model: Uint8Array, extra: Partial<Parameters<typeof quantizeModel>[0]> = {}): Promise<unknown> =>
    quantizeModel({ model, calibration: [img], method: 'minmax', ...extra });
  await assert.rejects(
    q(fp32.slice(0, Math.floor(fp32.length / 2))),
    (e) => e instanceof ModelError && /truncated|corrupt/.test(e.message),
  );
  await assert.rejects(q(new TextEncoder().encode('this is not an onnx file at all')), ModelError);
  await assert.rejects(q(new Uint8Array(0)), ModelError);
  await assert.rejects(
    q(fp32, { method: 'kmeans' as CalibrationMethod }),
    (e) => e instanceof DataError && /minmax, percentile, entropy/.test(e.message),
  );
  await assert.rejects(
    q(fp32, { calibration: [{ data: new Uint8Array(12), width: 2, height: 2 }] }),
    (e) => e instanceof DataError && /224×224/.test(e.message),
  );
  await assert.rejects(q(fp32, { calibration: [] }), DataError);
  // a float NCHW input is not the facegate contract
  const g = new GraphBuilder();
  g.input('x', 'float32', [1, 3, 8, 8]);
  g.node('Relu', ['x'], ['y']);
  g.output('y', 'float32', [1, 3, 8, 8]);
  await assert.rejects(q(encodeModel(g.build())), (e) => e instanceof ModelError && /uint8 NHWC/.test(e.message));
  // an opset without per-channel DequantizeLinear
  const old = decodeModel(fp32);
  for (const o of old.opsetImport) if (!o.domain) o.version = 11;
  await assert.rejects(q(encodeModel(old)), (e) => e instanceof ModelError && /opset 11/.test(e.message));
});

test('mixed precision: nodes the search keeps float run as float Conv, the rest stays fused; off when all-int8 meets the target', async (t) => {
  if (!requireShared(t)) return;
  const { train } = await orl();
  const m = mobileNetGraph({ alpha: 0.25, blocks: 4, head: [64, 32], classes: 10 });
  // A target no model meets: the search spends its budget (3 nodes) on the most sensitive units.
  const { model, report } = await quantizeModel({
    model: m,
    calibration: train.images,
    method: 'minmax',
    samples: 8,
    mixedPrecision: { maxRelativeError: 0, maxFloatNodes: 3, images: 8 },
  });
  const mp = report.mixedPrecision;
  assert.ok(mp);
  assert.equal(mp.heldOut, true);
  assert.equal(mp.meetsTarget, false);
  const kept = [...new Set(mp.keptFloat.flatMap((k) => k.nodes))];
  assert.ok(kept.length >= 1 && kept.length <= 3, JSON.stringify(kept));
  assert.ok(mp.after.relativeError <= mp.before.relativeError, JSON.stringify(mp));
  for (const n of kept)
    assert.match(report.floatNodes.find((f) => f.name === n)?.reason ?? '', /automatic mixed precision/);
  const ops = await optimisedOps(model);
  const convs = report.intNodes.filter((n) => n.startsWith('conv')).length;
  assert.equal(ops.QLinearConv, convs, JSON.stringify(ops));
  const floatConvs = kept.filter((n) => n.startsWith('conv')).length;
  assert.equal(
    (ops.Conv ?? 0) + (ops.FusedConv ?? 0),
    floatConvs,
    `kept convs stay float (not re-quantised): ${JSON.stringify(ops)}`,
  );
  // A target every model meets: nothing kept, the graph is the all-int8 one.
  const easy = await quantizeModel({
    model: m,
    calibration: train.images,
    method: 'minmax',
    samples: 8,
    mixedPrecision: { maxRelativeError: 10, images: 8 },
  });
  assert.deepEqual(easy.report.mixedPrecision?.keptFloat, []);
  assert.equal(easy.report.intNodes.length, report.intNodes.length + kept.length);
});
