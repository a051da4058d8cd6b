/**
 * How far an int8 model strays from its fp32 original on the same images: top-1
 * agreement, accuracy of each against labels, the largest probability difference, and
 * (when the graphs have an `embedding` output) the lowest cosine similarity between the
 * two embeddings of an image; with a `features` output, the same for the features and
 * the share of images the kiosk's decision (on the features and the probabilities) takes
 * alike.
 */
import { OnnxModel, type TensorData } from '../../runtime/ort.js';
import { DataError, ModelError } from '../../shared/errors.js';
import type { RgbImage } from '../../shared/image.js';
import { decodeOnnx, pixelInput } from './io.js';
import { DECISION_BATCH, forEachBatch } from './batch.js';

export interface Comparison {
  readonly images: number;
  /** Share of images where both models pick the same class. */
  readonly top1Agreement: number;
  readonly accuracyFp32?: number;
  readonly accuracyInt8?: number;
  /** max over images and classes of |p_fp32 − p_int8|. */
  readonly maxAbsDiffProbability: number;
  /** min over images of cos(embedding_fp32, embedding_int8), when there is an `embedding` output. */
  readonly minEmbeddingCosine?: number;
  /** When both graphs have a `features` output: how close, and how often a decision on it agrees. */
  readonly features?: { readonly minCosine: number; readonly meanCosine: number; readonly decisionAgreement?: number };
}

/**
 * A decision taken on one image's `features` and softmax probabilities (the kiosk's: a name,
 * or null for refused).
 */
export type FeatureDecision = (features: Float32Array, probabilities: Float32Array) => string | null;

function argmax(v: Float32Array, start: number, n: number): number {
  let best = 0;
  for (let k = 1; k < n; k++) if ((v[start + k] as number) > (v[start + best] as number)) best = k;
  return best;
}

function cosine(a: Float32Array, b: Float32Array, start: number, n: number): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let k = start; k < start + n; k++) {
    const x = a[k] as number;
    const y = b[k] as number;
    ab += x * y;
    aa += x * x;
    bb += y * y;
  }
  return aa === 0 && bb === 0 ? 1 : ab / Math.sqrt(aa * bb || 1e-30);
}

function pickOutput(model: OnnxModel, which: string): string {
  const names = model.outputNames;
  if (names.includes('probabilities')) return 'probabilities';
  if (names.length === 1) return names[0] as string;
  throw new ModelError(`${which} model has no 'probabilities' output (outputs: ${names.join(', ')})`);
}

/** Runs both models on `images` (RGB at the input size); `labels[i]` is image i's class index. */
export async function compareModels(
  fp32Bytes: Uint8Array,
  int8Bytes: Uint8Array,
  images: readonly RgbImage[],
  labels?: readonly number[],
  options: { readonly decide?: FeatureDecision } = {},
): Promise<Comparison> {
  if (images.length === 0) throw new DataError('compareModels needs at least one image');
  if (labels && labels.length !== images.length)
    throw new DataError(`${labels.length} labels for ${images.length} images`);
  const input = pixelInput(decodeOnnx(fp32Bytes, 'fp32 model'));
  const inputInt8 = pixelInput(decodeOnnx(int8Bytes, 'int8 model'));
  if (inputInt8.height !== input.height || inputInt8.width !== input.width) {
    throw new ModelError(
      `the int8 model takes ${inputInt8.width}×${inputInt8.height}, the fp32 model ${input.width}×${input.height}: they are not the same network`,
    );
  }
  const [a, b] = [await OnnxModel.load(fp32Bytes), await OnnxModel.load(int8Bytes)];
  try {
    const outA = pickOutput(a, 'fp32');
    const outB = pickOutput(b, 'int8');
    const withEmbedding = a.outputNames.includes('embedding') && b.outputNames.includes('embedding');
    const withFeatures =
      a.outputNames.includes('features') && b.outputNames.includes('features') && outA !== 'features';
    let minFeat = 1;
    let sumFeat = 0;
    let sameDecision = 0;
    let agree = 0;
    let correctA = 0;
    let correctB = 0;
    let maxDiff = 0;
    let minCos = 1;
    await forEachBatch(images, input, DECISION_BATCH, async (feed, batch, i) => {
      const want = (m: string): string[] => [
        m,
        ...(withEmbedding ? ['embedding'] : []),
        ...(withFeatures ? ['features'] : []),
      ];
      const ra = await a.run({ [input.name]: feed }, want(outA));
      const rb = await b.run({ [inputInt8.name]: feed }, want(outB));
      const pa = (ra[outA] as TensorData).data as Float32Array;
      const pb = (rb[outB] as TensorData).data as Float32Array;
      if (pa.length !== pb.length)
        throw new ModelError(
          `the models give ${pa.length / batch.length} and ${pb.length / batch.length} classes: they are not the same network`,
        );
      const n = pa.length / batch.length;
      for (let j = 0; j < batch.length; j++) {
        const ia = argmax(pa, j * n, n);
        const ib = argmax(pb, j * n, n);
        if (ia === ib) agree++;
        const label = labels?.[i + j];
        if (label !== undefined) {
          if (ia === label) correctA++;
          if (ib === label) correctB++;
        }
        for (let k = j * n; k < (j + 1) * n; k++)
          maxDiff = Math.max(maxDiff, Math.abs((pa[k] as number) - (pb[k] as number)));
      }
      if (withEmbedding) {
        const ea = (ra.embedding as TensorData).data as Float32Array;
        const eb = (rb.embedding as TensorData).data as Float32Array;
        const d = ea.length / batch.length;
        for (let j = 0; j < batch.length; j++) minCos = Math.min(minCos, cosine(ea, eb, j * d, d));
      }
      if (withFeatures) {
        const fa = (ra.features as TensorData).data as Float32Array;
        const fb = (rb.features as TensorData).data as Float32Array;
        const d = fa.length / batch.length;
        for (let j = 0; j < batch.length; j++) {
          const c = cosine(fa, fb, j * d, d);
          minFeat = Math.min(minFeat, c);
          sumFeat += c;
          if (
            options.decide &&
            options.decide(fa.subarray(j * d, (j + 1) * d), pa.subarray(j * n, (j + 1) * n)) ===
              options.decide(fb.subarray(j * d, (j + 1) * d), pb.subarray(j * n, (j + 1) * n))
          )
            sameDecision++;
        }
      }
    });
    const count = images.length;
    return {
      images: count,
      top1Agreement: agree / count,
      ...(labels ? { accuracyFp32: correctA / count, accuracyInt8: correctB / count } : {}),
      maxAbsDiffProbability: maxDiff,
      ...(withEmbedding ? { minEmbeddingCosine: minCos } : {}),
      ...(withFeatures
        ? {
            features: {
              minCosine: minFeat,
              meanCosine: sumFeat / count,
              ...(options.decide ? { decisionAgreement: sameDecision / count } : {}),
            },
          }
        : {}),
    };
  } finally {
    await a.release();
    await b.release();
  }
}
