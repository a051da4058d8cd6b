/**
 * Automatic mixed precision: which int8 Conv / Gemm nodes to keep in float so that the
 * int8 model stays close enough to fp32.
 *
 * The error is measured on held-out training images (images the calibration did not
 * use; never the validation images), on the tensor the decision is taken from: the
 * logits (the input of the Softmax that writes `probabilities`) when the model has
 * them, else `embedding`, else its first output. Two numbers: top-1 agreement on those
 * images, and the relative error ‖z_int8 − z_fp32‖ / ‖z_fp32 − mean‖ summed over the
 * images (a classifier's decisions flip on images whose margin is below the error, so
 * the error, not the agreement on well-separated training images, is what predicts
 * flips on new faces).
 *
 * The search that picks the nodes (greedy forward selection over node groups) is
 * search.ts; this module holds the target and the measurement.
 */
import type { OnnxTypes } from '../onnx/proto.js';
import { OnnxModel, type TensorData } from '../../runtime/ort.js';
import type { RgbImage } from '../../shared/image.js';
import { pixelInput, withOutputs } from './io.js';
import { DECISION_BATCH, runBatched } from './batch.js';

/** What the search aims at, and its budget. */
export interface MixedPrecisionTarget {
  /** Top-1 agreement with fp32 on the held-out images (default 0.99). */
  readonly minAgreement?: number;
  /**
   * Largest relative error of the decision tensor (default 0.025). At 0.05, MobileNet
   * 0.25 with the trained dense head flipped 1–2 of 80 ORL validation images on two of
   * three seeds; at 0.025 (with GPTQ rounding) only seed 3's two fp32 near-ties flip
   * (README, "Automatic mixed precision").
   */
  readonly maxRelativeError?: number;
  /** At most this many nodes kept float by the search (default 14, and never more than half of the int8 nodes). */
  readonly maxFloatNodes?: number;
  /** Held-out images used (default 64, spread). */
  readonly images?: number;
}

export const DEFAULT_TARGET = { maxRelativeError: 0.025, maxFloatNodes: 14, images: 64 } as const;

/** Error of an int8 model against fp32 on the held-out images. */
export interface Deviation {
  readonly top1Agreement: number;
  readonly relativeError: number;
}

/** A unit's sensitivity: the error with its nodes float and every other node int8. */
export interface NodeSensitivity {
  /** The unit's nodes joined with '+'. */
  readonly name: string;
  /** A node alone, or an activation's producer with its consumers (that tensor then stays float too). */
  readonly nodes: readonly string[];
  readonly relativeErrorWhenFloat: number;
}

/** The tensor decisions are taken from, and whether it is a classifier's logits. */
export function decisionTensor(model: OnnxTypes.IModelProto): { name: string; logits: boolean } {
  const g = model.graph;
  const outputs = (g?.output ?? []).map((o) => o.name ?? '');
  if (outputs.includes('probabilities')) {
    const sm = (g?.node ?? []).find((n) => n.opType === 'Softmax' && n.output?.[0] === 'probabilities');
    const x = sm?.input?.[0];
    if (x) return { name: x, logits: true };
  }
  if (outputs.includes('embedding')) return { name: 'embedding', logits: false };
  return { name: outputs[0] ?? '', logits: false };
}

/** Values of the decision tensor for each image ([images][values]). */
export async function decisionValues(
  model: OnnxTypes.IModelProto,
  tensor: string,
  images: readonly RgbImage[],
): Promise<Float32Array[]> {
  const input = pixelInput(model);
  const session = await OnnxModel.load(withOutputs(model, [tensor]));
  const out: Float32Array[] = [];
  try {
    await runBatched(session, input, images, [tensor], DECISION_BATCH, (values, count) => {
      const v = (values.get(tensor) as TensorData<Float32Array>).data;
      const d = v.length / count;
      for (let j = 0; j < count; j++) out.push(v.slice(j * d, (j + 1) * d));
    });
  } finally {
    await session.release();
  }
  return out;
}

function argmax(v: Float32Array): number {
  let best = 0;
  for (let k = 1; k < v.length; k++) if ((v[k] as number) > (v[best] as number)) best = k;
  return best;
}

/** Agreement and relative error of `got` against `want` (same images, same order). */
export function deviation(want: readonly Float32Array[], got: readonly Float32Array[]): Deviation {
  let agree = 0;
  let err = 0;
  let energy = 0;
  want.forEach((w, i) => {
    const g = got[i] as Float32Array;
    if (argmax(w) === argmax(g)) agree++;
    let mean = 0;
    for (const x of w) mean += x;
    mean /= w.length || 1;
    for (let k = 0; k < w.length; k++) {
      const d = (g[k] as number) - (w[k] as number);
      const c = (w[k] as number) - mean;
      err += d * d;
      energy += c * c;
    }
  });
  return { top1Agreement: want.length ? agree / want.length : 1, relativeError: Math.sqrt(err / (energy || 1e-30)) };
}

/** Whether a deviation meets the target. `logits`: agreement only counts for a classifier. */
export function meets(d: Deviation, target: Required<MixedPrecisionTarget>, logits: boolean): boolean {
  return (!logits || d.top1Agreement >= target.minAgreement) && d.relativeError <= target.maxRelativeError;
}
