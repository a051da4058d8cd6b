/**
 * The training side of refusing strangers (issue 4): the face step as training's image
 * preparer, and the default `afterTraining` step that enrols every person and calibrates
 * the threshold to `--target-far`. The maths live in src/recognise (device side); this file
 * only adapts training's types to them.
 */
import type { CropSettings, RecognitionSection } from '../model/manifest.js';
import { DEFAULT_TARGET_FAR } from '../recognise/calibrate.js';
import { onnxFeatureDescriber, recognitionFromSamples } from '../recognise/enrol.js';
import { DEFAULT_CROP, FaceExtractor, facePreparer } from '../recognise/faces.js';
import type { ImagePreparer } from './data.js';
import type { TrainedContext } from './index.js';

export { DEFAULT_TARGET_FAR };

/**
 * The image step for `facegate train`: detection + alignment by default, whole images with
 * `--crops`. Same code as `facegate eval` and the device. Close it after loading the data.
 */
export async function trainingFaceStep(o: { crops: boolean; size: number; crop?: CropSettings }): Promise<{ preparer: ImagePreparer; close: () => Promise<void> }> {
  const extractor = await FaceExtractor.load({ detect: !o.crops, crop: o.crop ?? DEFAULT_CROP, size: { width: o.size, height: o.size } });
  return { preparer: facePreparer(extractor), close: () => extractor.close() };
}

/**
 * The default `afterTraining` hook: references from the training images' backbone features
 * (computed by the same ONNX graph as model.onnx's `features`), threshold calibrated
 * leave-one-person-out on training + validation images to `targetFar`.
 */
export function recognitionStep(o: { targetFar?: number; crop?: CropSettings } = {}): (ctx: TrainedContext) => Promise<RecognitionSection> {
  return async (ctx) => {
    const { describe, close } = await onnxFeatureDescriber(ctx.backbone);
    try {
      const named = (samples: TrainedContext['dataset']['train']): { label: string; image: typeof samples[number]['image'] }[] =>
        samples.map((s) => ({ label: ctx.dataset.classes[s.label] ?? String(s.label), image: s.image }));
      return await recognitionFromSamples({
        train: named(ctx.dataset.train), validation: named(ctx.dataset.validation), describe,
        source: 'features', crop: o.crop ?? DEFAULT_CROP, targetFar: o.targetFar ?? DEFAULT_TARGET_FAR,
      });
    } finally {
      await close();
    }
  };
}
