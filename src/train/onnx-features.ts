/**
 * ONNX feature extractor: the backbone-only graph from the exporter (input `pixels`
 * uint8 NHWC, output `features`), run by onnxruntime (FACTS.md: ~10 ms an image for
 * MobileNet 1.0 against ~125 ms for TF.js wasm).
 */
import { exportModel, OUTPUT_NAMES, PIXELS_INPUT } from '../model/export/index.js';
import { readTfjsModel } from '../model/export/tfjs.js';
import { OnnxModel } from '../runtime/ort.js';
import { ModelError } from '../shared/errors.js';
import type { RgbImage } from '../shared/image.js';
import { INPUT_SIZE, type BackboneSpec } from './backbone.js';
import { packPixels, type FeatureExtractor } from './features.js';

/** Backbone-only ONNX bytes for a backbone. */
export function backboneOnnx(spec: BackboneSpec): Uint8Array {
  return exportModel({
    backbone: {
      name: spec.name,
      artifacts: readTfjsModel(spec.modelJsonPath),
      ...(spec.alpha !== undefined ? { alpha: spec.alpha } : {}),
    },
    preprocessing: spec.preprocessing,
  });
}

export async function onnxExtractor(spec: BackboneSpec, batchSize = 16): Promise<FeatureExtractor> {
  const model = await OnnxModel.load(backboneOnnx(spec));
  model.assertSignature({
    inputs: [{ name: PIXELS_INPUT, dtype: 'uint8', shape: [null, INPUT_SIZE, INPUT_SIZE, 3] }],
    outputs: [{ name: OUTPUT_NAMES.features, dtype: 'float32', shape: [null, spec.featureSize] }],
  });
  const size = spec.featureSize;
  return {
    kind: 'onnx',
    spec,
    async extract(images: readonly RgbImage[]) {
      const out = new Float32Array(images.length * size);
      for (let i = 0; i < images.length; i += batchSize) {
        const batch = images.slice(i, i + batchSize);
        const r = await model.run(
          { [PIXELS_INPUT]: { data: packPixels(batch), dims: [batch.length, INPUT_SIZE, INPUT_SIZE, 3] } },
          [OUTPUT_NAMES.features],
        );
        const f = r[OUTPUT_NAMES.features];
        if (!f || !(f.data instanceof Float32Array) || f.data.length !== batch.length * size) {
          throw new ModelError(`the backbone graph returned no [${batch.length}, ${size}] float features`);
        }
        out.set(f.data, i * size);
      }
      return out;
    },
    dispose: () => model.release(),
  };
}
