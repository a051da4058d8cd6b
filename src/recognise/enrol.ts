/**
 * Enrolment at training time: describe every training and validation image with the model
 * output the references use, then build the manifest's `recognition` section (references
 * and a threshold calibrated leave-one-person-out to the target FAR). Training calls
 * `recognitionFromSamples` with its own describe function; nothing here imports training.
 */
import type { CropSettings, RecognitionSection } from '../model/manifest.js';
import type { RgbImage } from '../shared/image.js';
import { buildRecognitionSection, type LabelledVector } from './calibrate.js';

export interface EnrolSample {
  readonly label: string;
  readonly image: RgbImage;
}

export interface EnrolInput {
  readonly train: readonly EnrolSample[];
  readonly validation: readonly EnrolSample[];
  /** Images → row-major vectors [images.length, size]. */
  readonly describe: (images: readonly RgbImage[]) => Promise<Float32Array>;
  readonly source: 'features' | 'embedding';
  readonly crop: CropSettings;
  readonly targetFar?: number;
  readonly minMargin?: number;
  readonly batchSize?: number;
}

async function vectors(samples: readonly EnrolSample[], describe: EnrolInput['describe'], batchSize: number): Promise<LabelledVector[]> {
  const out: LabelledVector[] = [];
  for (let i = 0; i < samples.length; i += batchSize) {
    const chunk = samples.slice(i, i + batchSize);
    const rows = await describe(chunk.map((s) => s.image));
    const size = rows.length / chunk.length;
    chunk.forEach((s, k) => out.push({ label: s.label, vector: rows.slice(k * size, (k + 1) * size) }));
  }
  return out;
}

export async function recognitionFromSamples(input: EnrolInput): Promise<RecognitionSection> {
  const bs = input.batchSize ?? 16;
  const enrol = await vectors(input.train, input.describe, bs);
  const heldOut = await vectors(input.validation, input.describe, bs);
  return buildRecognitionSection({
    enrol, heldOut, source: input.source, crop: input.crop,
    ...(input.targetFar !== undefined ? { targetFar: input.targetFar } : {}),
    ...(input.minMargin !== undefined ? { minMargin: input.minMargin } : {}),
  });
}

/** What enrolment needs to know about the backbone (training's BackboneSpec has these fields). */
export interface BackboneSource {
  readonly name: 'mobilenet_v1' | 'faceres';
  readonly modelJsonPath: string;
  readonly alpha?: number;
  readonly preprocessing: { readonly scale: number; readonly offset: number };
}

/**
 * A describe function giving the backbone's pooled `features`, computed by the same ONNX
 * graph the exporter puts in model.onnx (so references match what the device computes).
 * Call `close` when done.
 */
export async function onnxFeatureDescriber(b: BackboneSource, threads?: number): Promise<{ describe: EnrolInput['describe']; close: () => Promise<void> }> {
  const { exportModel, readTfjsModel } = await import('../model/export/index.js');
  const { OnnxModel } = await import('../runtime/ort.js');
  const bytes = exportModel({
    backbone: { name: b.name, artifacts: readTfjsModel(b.modelJsonPath), ...(b.alpha !== undefined ? { alpha: b.alpha } : {}) },
    preprocessing: b.preprocessing,
  });
  const model = await OnnxModel.load(bytes, { threads });
  return {
    describe: async (images) => {
      const first = images[0];
      if (!first) return new Float32Array(0);
      const px = first.width * first.height * 3;
      const batch = new Uint8Array(px * images.length);
      images.forEach((img, i) => batch.set(img.data, i * px));
      const out = await model.run({ pixels: { data: batch, dims: [images.length, first.height, first.width, 3] } }, ['features']);
      return out.features?.data as Float32Array;
    },
    close: () => model.release(),
  };
}
