/**
 * The acceptance check on real models: int8 against fp32 on ORL validation
 * (the 8 + 2 split), for both backbones exported by `exportModel`, with a
 * nearest-centroid head (cosine to each person's mean feature vector, fitted on the
 * fp32 features of ORL train) standing in for the trained head. Calibration: ORL train.
 * Target: top-1 agreement ≥ 99 %, accuracy drop ≤ 0.5 point.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exportModel, humanModelJson, readTfjsModel } from '../../../src/model/export/index.js';
import { compareModels, quantizeModel } from '../../../src/model/quantize/index.js';
import { OnnxModel, type TensorData } from '../../../src/runtime/ort.js';
import { withCentroidHead } from '../../support/heads.js';
import { orlSplit, type LabelledImages } from '../../support/orl.js';
import { requireShared, sharedPaths } from '../../support/shared.js';

/** Mean of the L2-normalised fp32 features of each class. */
async function centroids(backbone: Uint8Array, train: LabelledImages): Promise<Float32Array[]> {
  const m = await OnnxModel.load(backbone);
  try {
    const sums: Float32Array[] = [];
    for (let i = 0; i < train.images.length; i++) {
      const img = train.images[i];
      if (!img) continue;
      const r = await m.run({ pixels: { data: img.data, dims: [1, img.height, img.width, 3] } }, ['features']);
      const f = (r.features as TensorData).data as Float32Array;
      let n = 0;
      for (const x of f) n += x * x;
      n = Math.sqrt(n) || 1;
      const label = train.labels[i] as number;
      const s = (sums[label] ??= new Float32Array(f.length));
      for (let k = 0; k < f.length; k++) s[k] = (s[k] as number) + (f[k] as number) / n;
    }
    return sums;
  } finally {
    await m.release();
  }
}

const backbones = {
  mobilenet025: (): Uint8Array => exportModel({
    backbone: { name: 'mobilenet_v1', alpha: 0.25, artifacts: readTfjsModel(sharedPaths.mobilenet025) },
    preprocessing: { scale: 2 / 255, offset: -1 },
  }),
  faceres: (): Uint8Array => exportModel({
    backbone: { name: 'faceres', artifacts: readTfjsModel(humanModelJson('faceres')) },
    preprocessing: { scale: 1, offset: 0 },
  }),
};

for (const name of ['faceres', 'mobilenet025'] as const) {
  test(`${name}: int8 agrees with fp32 on ORL validation (≥ 99 %, accuracy drop ≤ 0.5 point)`, async (t) => {
    if (!requireShared(t)) return;
    const [train, val] = [await orlSplit('train'), await orlSplit('validation')];
    const backbone = backbones[name]();
    const fp32 = withCentroidHead(backbone, await centroids(backbone, train));
    const { model, report } = await quantizeModel({ model: fp32, calibration: train.images, method: 'minmax', samples: 100 });
    const c = await compareModels(fp32, model, val.images, val.labels);
    t.diagnostic(`${name}: ${JSON.stringify(c)}; int8 nodes ${report.intNodes.length}, float ${report.floatNodes.map((f) => f.name).join(', ')}`);
    assert.equal(c.images, 80);
    assert.ok(report.biasCorrected > 0, 'bias correction ran');
    assert.ok(c.top1Agreement >= 0.99, `top-1 agreement ${c.top1Agreement}`);
    assert.ok((c.accuracyFp32 ?? 0) - (c.accuracyInt8 ?? 0) <= 0.005, `accuracy ${c.accuracyFp32} → ${c.accuracyInt8}`);
  });
}
