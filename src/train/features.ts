/**
 * Feature extraction: the frozen backbone runs forward only, once per (augmented) image,
 * and the head trains on the pooled features (FACTS.md: never train through a TF.js
 * "frozen" backbone, its BatchNorm statistics move). Two implementations:
 * - ONNX (fast, the default): the backbone-only graph from the exporter on onnxruntime;
 * - TF.js (the naive reference): the backbone in TF.js; bench:train and the frozen
 *   backbone test use it.
 */
import * as tf from '@tensorflow/tfjs';
import type { RgbImage } from '../shared/image.js';
import type { BackboneSpec, TfjsBackbone } from './backbone.js';
import { INPUT_SIZE } from './backbone.js';

export interface FeatureExtractor {
  /** `onnx` or `tfjs`, for the summary and the manifest. */
  readonly kind: 'onnx' | 'tfjs';
  readonly spec: BackboneSpec;
  /** 224×224 RGB images → features, row-major [images.length, featureSize]. */
  extract(images: readonly RgbImage[]): Promise<Float32Array>;
  dispose(): Promise<void>;
}

/** Packs images (each 224×224 RGB) into one NHWC uint8 buffer. */
export function packPixels(images: readonly RgbImage[]): Uint8Array {
  const per = INPUT_SIZE * INPUT_SIZE * 3;
  const out = new Uint8Array(images.length * per);
  images.forEach((img, i) => {
    if (img.width !== INPUT_SIZE || img.height !== INPUT_SIZE)
      throw new Error(`image ${i} is ${img.width}×${img.height}, expected ${INPUT_SIZE}×${INPUT_SIZE}`);
    out.set(img.data, i * per);
  });
  return out;
}

/** TF.js backbone, in batches. */
export function tfjsExtractor(backbone: TfjsBackbone, batchSize = 16): FeatureExtractor {
  const size = backbone.spec.featureSize;
  return {
    kind: 'tfjs',
    spec: backbone.spec,
    async extract(images) {
      const out = new Float32Array(images.length * size);
      for (let i = 0; i < images.length; i += batchSize) {
        const batch = images.slice(i, i + batchSize);
        const f = tf.tidy(() =>
          backbone.features(
            tf.tensor4d(packPixels(batch), [batch.length, INPUT_SIZE, INPUT_SIZE, 3], 'int32').toFloat(),
          ),
        );
        out.set(await f.data(), i * size);
        f.dispose();
      }
      return out;
    },
    dispose: () => Promise.resolve(),
  };
}
