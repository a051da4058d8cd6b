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
import { augment, type AugmentConfig } from './augment.js';
import type { BackboneSpec, TfjsBackbone } from './backbone.js';
import { INPUT_SIZE } from './backbone.js';
import { mulberry32 } from './rng.js';

export interface FeatureExtractor {
  /** `onnx` or `tfjs`, for the summary and the manifest. */
  readonly kind: 'onnx' | 'tfjs';
  readonly spec: BackboneSpec;
  /** 224×224 RGB images → features, row-major [images.length, featureSize]. */
  extract(images: readonly RgbImage[]): Promise<Float32Array>;
  /**
   * Features of augmented copies: image i as `augment(image, mulberry32(seeds[i]), config)`,
   * the same values as augmenting first and calling `extract`. An aborted signal drops the
   * request (its promise then rejects).
   */
  extractAugmented(
    images: readonly RgbImage[],
    seeds: readonly number[],
    config: AugmentConfig,
    signal?: AbortSignal,
  ): Promise<Float32Array>;
  /** Whether extraction runs off the main thread (training then extracts the next epoch while the head trains). */
  readonly background: boolean;
  dispose(): Promise<void>;
}

/** `augment` of each image with its own seed (the in-thread half of `extractAugmented`). */
export function augmentAll(images: readonly RgbImage[], seeds: readonly number[], config: AugmentConfig): RgbImage[] {
  return images.map((img, i) => augment(img, mulberry32(seeds[i] ?? 0), config).image);
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
  const extractor: FeatureExtractor = {
    kind: 'tfjs',
    spec: backbone.spec,
    background: false,
    extractAugmented: (images, seeds, config) => extractor.extract(augmentAll(images, seeds, config)),
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
  return extractor;
}
