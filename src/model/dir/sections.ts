/**
 * The typed sections of a model directory's manifest that stages after training write:
 * `training` (what `facegate train` did) and `quantization` (how model.int8.onnx was made
 * and its ONE check against fp32). The check records agreement on every output a decision
 * is taken from: `probabilities` (top-1), `embedding` (cosine) and `features` (cosine, and
 * the share of images on which the kiosk's decision, nearest reference at or above the
 * threshold with the softmax margin at or above `minMargin`, is the same as with fp32).
 *
 * Model directories written before this shape still load: `migrateQuantization` folds the
 * two older shapes (the figures at the top of the section from `facegate train`, a `check`
 * with `heldOut` and `meetsTarget` from `facegate quantize`) into the one `check`.
 */
import { z } from 'zod';

/** Agreement with fp32 below which an int8 model is not run unless asked for (top-1, and stranger decisions). */
export const INT8_MIN_AGREEMENT = 0.99;

export const int8CheckSchema = z
  .object({
    on: z
      .enum(['validation', 'held-out', 'calibration'])
      .optional()
      .describe('which images: validation (facegate train), held out from calibration, or the calibration images'),
    images: z.number().int().nonnegative().optional().describe('images compared'),
    top1Agreement: z.number().min(0).max(1).optional().describe('share of images where both pick the same class'),
    accuracyFp32: z.number().optional().describe('accuracy of model.onnx on the labelled check images'),
    accuracyInt8: z.number().optional().describe('accuracy of model.int8.onnx on the labelled check images'),
    maxAbsDiffProbability: z.number().optional().describe('largest |p_fp32 − p_int8| over images and classes'),
    minEmbeddingCosine: z.number().optional().describe('lowest cos(embedding_fp32, embedding_int8) over the images'),
    features: z
      .object({
        minCosine: z.number().describe('lowest cos(features_fp32, features_int8) over the images'),
        meanCosine: z.number().describe('mean cos(features_fp32, features_int8)'),
        decisionAgreement: z
          .number()
          .min(0)
          .max(1)
          .optional()
          .describe(
            "share of images the kiosk's decision (nearest reference at the threshold, and the margin) takes alike: same person named, or refused by both",
          ),
      })
      .strict()
      .optional()
      .describe('the output strangers are refused on'),
    meetsTarget: z.boolean().optional().describe(`every recorded agreement is at least ${INT8_MIN_AGREEMENT}`),
  })
  .strict();
export type Int8Check = z.infer<typeof int8CheckSchema>;

export const quantizationSectionSchema = z
  .object({
    file: z.string().optional().describe('the int8 file this section describes'),
    method: z.string().optional().describe('activation range calibration (minmax, percentile, entropy)'),
    percentile: z.number().optional(),
    samples: z.number().int().nonnegative().optional().describe('calibration images used'),
    skippedImages: z.number().int().nonnegative().optional().describe('unreadable calibration images skipped'),
    tensorsCalibrated: z.number().int().nonnegative().optional(),
    biasCorrected: z.number().int().nonnegative().optional().describe('Conv nodes whose bias was corrected'),
    rounding: z.looseObject({ method: z.string() }).optional().describe('how int8 weights were rounded'),
    intNodes: z.number().int().nonnegative().optional().describe('Conv/Gemm nodes with int8 weights'),
    floatNodes: z
      .array(z.looseObject({ name: z.string() }))
      .optional()
      .describe('nodes left in float, with the reason'),
    mixedPrecision: z.looseObject({}).optional().describe('the mixed-precision search, when it ran'),
    createdAt: z.string().optional(),
    check: int8CheckSchema.optional().describe('model.int8.onnx against model.onnx'),
  })
  .strict();
export type QuantizationSection = z.infer<typeof quantizationSectionSchema>;

/** The check's fields that older writers put at the top of the section. */
const LEGACY_CHECK_KEYS = [
  'images',
  'top1Agreement',
  'accuracyFp32',
  'accuracyInt8',
  'maxAbsDiffProbability',
  'minEmbeddingCosine',
] as const;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Folds the older `quantization` shapes into the one `check`. Where a figure is recorded
 * twice (a check and a figure beside it), the more cautious one is kept, so `precision:
 * auto` never runs int8 on the better of two records. Anything else passes unchanged.
 */
export function migrateQuantization(raw: unknown): unknown {
  if (!isRecord(raw)) return raw;
  const q: Record<string, unknown> = { ...raw };
  let check: Record<string, unknown> | undefined = isRecord(q.check) ? { ...q.check } : undefined;
  if (check && 'heldOut' in check) {
    check.on ??= check.heldOut === true ? 'held-out' : 'calibration';
    delete check.heldOut;
  }
  const moved: Record<string, unknown> = {};
  for (const k of LEGACY_CHECK_KEYS) {
    if (k in q) {
      moved[k] = q[k];
      delete q[k];
    }
  }
  if ('comparedOn' in q) {
    moved.on = q.comparedOn;
    delete q.comparedOn;
  }
  if (Object.keys(moved).length) {
    if (!check) check = moved;
    else {
      const pick = (k: string, worse: (a: number, b: number) => number): void => {
        const a = check?.[k];
        const b = moved[k];
        if (typeof b !== 'number' || !check) return;
        check[k] = typeof a === 'number' ? worse(a, b) : b;
      };
      pick('top1Agreement', Math.min);
      pick('minEmbeddingCosine', Math.min);
      pick('maxAbsDiffProbability', Math.max);
    }
  }
  if (check) q.check = check;
  return q;
}

/** What `facegate train` did: typed where later stages read it, open for the rest. */
export const trainingSectionSchema = z.looseObject({
  metrics: z.record(z.string(), z.number()).optional().describe('loss and accuracy at the best epoch'),
  bestEpoch: z.number().int().optional(),
  epochsRun: z.number().int().optional(),
  stoppedEarly: z.boolean().optional(),
  seed: z.number().int().optional(),
  epochs: z.number().int().optional(),
  batchSize: z.number().int().optional(),
  seconds: z.number().optional(),
  versions: z.record(z.string(), z.string().optional()).optional().describe('node and package versions'),
});
export type TrainingSection = z.infer<typeof trainingSectionSchema>;

/** Whether every agreement the check records reaches INT8_MIN_AGREEMENT. */
export function meetsTarget(check: Int8Check): boolean {
  return [check.top1Agreement, check.features?.decisionAgreement].every(
    (a) => a === undefined || a >= INT8_MIN_AGREEMENT,
  );
}
