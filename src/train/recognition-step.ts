/**
 * The training side of refusing strangers (issue 4): the face step as training's image
 * preparer, and the default `afterTraining` step that enrols every person and calibrates
 * the threshold to `--target-far`. The maths live in src/recognise (device side); this file
 * only adapts training's types to them.
 */
import type { CropSettings, RecognitionSection } from '../model/manifest.js';
import { buildRecognitionSection, DEFAULT_TARGET_FAR, type LabelledVector } from '../recognise/calibrate.js';
import { DEFAULT_CROP, FaceExtractor, facePreparer } from '../recognise/faces.js';
import { prepareBuiltinModels } from '../model/export/builtin.js';
import type { Dataset, ImagePreparer } from './data.js';
import type { TrainedContext } from './options.js';

/**
 * The image step for `facegate train`: detection + alignment by default, whole images with
 * `--crops`. Same code as `facegate eval` and the device. Close it after loading the data.
 */
export async function trainingFaceStep(o: {
  crops: boolean;
  size: number;
  crop?: CropSettings;
}): Promise<{ preparer: ImagePreparer; close: () => Promise<void> }> {
  // The training machine has the exporter: prepare the detector here if npm install did not.
  if (!o.crops) await prepareBuiltinModels({ names: ['blazeface'] });
  const extractor = await FaceExtractor.load({
    detect: !o.crops,
    crop: o.crop ?? DEFAULT_CROP,
    size: { width: o.size, height: o.size },
  });
  return { preparer: facePreparer(extractor), close: () => extractor.close() };
}

/**
 * The default `afterTraining` hook: references from the training images' backbone features
 * (computed by the same ONNX graph as model.onnx's `features`), threshold calibrated
 * leave-one-person-out on training + validation images to `targetFar`. With the ONNX
 * extractor, training already ran every un-augmented training and validation image through
 * that graph (`fit.trainFeatures`, `fit.validationFeatures`): those are used as they are.
 */
export function recognitionStep(
  o: { targetFar?: number; crop?: CropSettings } = {},
): (ctx: TrainedContext) => Promise<RecognitionSection> {
  return async (ctx) => {
    const { classes, train, validation } = ctx.dataset;
    const size = ctx.backbone.featureSize;
    const onnx =
      ctx.extractor.kind === 'onnx' ? null : await (await import('./onnx-features.js')).onnxExtractor(ctx.backbone);
    try {
      const labelled = async (samples: Dataset['train'], computed: Float32Array): Promise<LabelledVector[]> => {
        const features = onnx ? await onnx.extract(samples.map((s) => s.image)) : computed;
        return samples.map((s, i) => ({
          label: classes[s.label] ?? String(s.label),
          vector: features.slice(i * size, (i + 1) * size),
        }));
      };
      return buildRecognitionSection({
        enrol: await labelled(train, ctx.fit.trainFeatures),
        heldOut: await labelled(validation, ctx.fit.validationFeatures),
        source: 'features',
        crop: o.crop ?? DEFAULT_CROP,
        targetFar: o.targetFar ?? DEFAULT_TARGET_FAR,
      });
    } finally {
      await onnx?.dispose();
    }
  };
}
