/**
 * The model directory's manifest: what travels with a model so that a model directory
 * (and the ONNX file's metadata_props) is self-describing. Declared once, here; the
 * TypeScript types come from the schema.
 *
 * Sections owned by later stages are optional: `quantization` (facegate quantize),
 * `recognition` (thresholds and references for refusing strangers).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ModelError } from '../shared/errors.js';
import { formatIssues } from '../shared/validation.js';
import { digestBytes } from './dir/hash.js';
import {
  migrateQuantization,
  quantizationSectionSchema,
  trainingSectionSchema,
  type Int8Check,
} from './dir/sections.js';

export { INT8_MIN_AGREEMENT, type Int8Check, type QuantizationSection } from './dir/sections.js';

export const MANIFEST_FILE = 'manifest.json';
export const MODEL_FP32_FILE = 'model.onnx';
export const MODEL_INT8_FILE = 'model.int8.onnx';
export const LABELS_FILE = 'labels.json';

export const backboneNames = ['mobilenet_v1', 'faceres'] as const;
export type BackboneName = (typeof backboneNames)[number];

/** The ONNX input contract: uint8 RGB pixels, NHWC; preprocessing happens inside the graph. */
export const inputSchema = z
  .object({
    name: z.string().describe('ONNX input name').default('pixels'),
    dtype: z.literal('uint8').describe('element type of the input tensor').default('uint8'),
    layout: z.literal('NHWC').describe('tensor layout').default('NHWC'),
    height: z.number().int().positive().describe('input height in pixels'),
    width: z.number().int().positive().describe('input width in pixels'),
    channels: z.literal(3).describe('RGB').default(3),
    preprocessing: z
      .object({
        scale: z.number().describe('the graph computes pixel * scale + offset'),
        offset: z.number(),
      })
      .strict()
      .describe('done inside the graph; recorded for tools that feed floats'),
  })
  .strict();
export type InputContract = z.infer<typeof inputSchema>;

export const fileEntrySchema = z
  .object({
    sha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .describe('hex sha256 of the file'),
    bytes: z.number().int().nonnegative().describe('file size'),
  })
  .strict();
export type FileEntry = z.infer<typeof fileEntrySchema>;

/** The `files` entry for these bytes: hex sha256 and size. */
export function fileEntry(bytes: Uint8Array): FileEntry {
  return digestBytes(bytes);
}

/**
 * How faces were cut from images at training time; the device and `facegate eval` cut them
 * the same way (src/recognise/faces.ts).
 */
export const cropSchema = z
  .object({
    margin: z
      .number()
      .positive()
      .describe('side of the square crop as a multiple of the face box longer side')
      .default(1.3),
    rotate: z.boolean().describe('box method: level the eyes using the detector keypoints').default(true),
    method: z
      .enum(['box', 'landmarks'])
      .describe(
        'box: a square of margin × the box around the detector box; landmarks: eyes, nose and mouth put on a canonical template (similarity transform)',
      )
      .default('box'),
    zoom: z
      .number()
      .positive()
      .describe('landmarks method: how much more around the face the crop shows than the ArcFace 112×112 template')
      .default(1),
  })
  .strict();
export type CropSettings = z.infer<typeof cropSchema>;

/**
 * Refusing strangers: per-person references (unit centroids of descriptors from `source`,
 * after subtracting the enrolment mean), a cosine threshold calibrated to `targetFar`,
 * and a minimum softmax margin (candidate minus runner-up).
 */
export const recognitionSectionSchema = z
  .object({
    score: z
      .literal('centroid-cosine')
      .describe('how a face is scored against the references')
      .default('centroid-cosine'),
    source: z
      .enum(['features', 'embedding'])
      .describe('model output the references are built from')
      .default('features'),
    mean: z
      .array(z.number())
      .nullable()
      .describe('enrolment mean of the unit descriptors, subtracted before the cosine; null when not subtracted'),
    references: z
      .record(z.string(), z.array(z.number()))
      .describe('per class: unit centroid of its centred descriptors'),
    threshold: z.number().describe('cosine similarity at or above which the nearest person is named'),
    minMargin: z
      .number()
      .min(-1)
      .max(1)
      .describe("the candidate's softmax probability minus the runner-up's must be at least this")
      .default(0.1),
    targetFar: z.number().min(0).max(1).describe('false-accept rate the threshold was calibrated to'),
    crop: cropSchema
      .describe('how faces were cut at training time')
      .default({ margin: 1.3, rotate: true, method: 'box', zoom: 1 }),
    calibration: z
      .object({
        method: z.literal('leave-one-person-out').describe('each known person in turn treated as a stranger'),
        impostorProbes: z.number().int().nonnegative(),
        genuineProbes: z.number().int().nonnegative(),
        far: z.number().describe('false-accept rate on the impostor probes at the threshold'),
        frr: z.number().describe('false-reject rate on the held-out genuine probes at the threshold'),
      })
      .strict()
      .describe('what the calibration measured'),
  })
  .strict();
export type RecognitionSection = z.infer<typeof recognitionSectionSchema>;

export const manifestSchema = z
  .object({
    format: z.literal('facegate-model').describe('marks a facegate model directory'),
    formatVersion: z.literal(1).describe('manifest format version'),
    version: z.string().min(1).describe('model version; newer models sort later (YYYYMMDD.HHMMSS by default)'),
    createdAt: z.string().describe('ISO 8601 creation time'),
    backbone: z
      .object({
        name: z.enum(backboneNames),
        alpha: z.number().optional().describe('MobileNet width multiplier'),
        source: z.string().describe('where the backbone weights came from (path or URL)'),
        featureNode: z.string().describe('the backbone layer/node whose (pooled) output feeds the head'),
        featureSize: z.number().int().positive(),
      })
      .strict(),
    input: inputSchema,
    outputs: z
      .object({
        probabilities: z.string().default('probabilities'),
        embedding: z.string().default('embedding'),
        embeddingSize: z.number().int().positive().default(512),
      })
      .strict(),
    classes: z.array(z.string().min(1)).min(2).describe('class names; index i is output i'),
    files: z
      .record(z.string(), fileEntrySchema)
      .describe('sha256 and size of every file in the directory except the manifest'),
    training: trainingSectionSchema.optional().describe('metrics, seed, epochs, package versions'),
    quantization: z
      .preprocess(migrateQuantization, quantizationSectionSchema)
      .optional()
      .describe('calibration method, samples, float layers, the check of model.int8.onnx against fp32'),
    recognition: recognitionSectionSchema
      .optional()
      .describe('references and thresholds for refusing strangers (facegate train)'),
  })
  .strict();
export type Manifest = z.infer<typeof manifestSchema>;

/** Which model file of a directory runs: asked for by name, or `auto` (recogniser.ts, choosePrecision). */
export const precisionChoices = ['auto', 'int8', 'fp32'] as const;
export type PrecisionChoice = (typeof precisionChoices)[number];
export type Precision = Exclude<PrecisionChoice, 'auto'>;

/** The recorded check of model.int8.onnx against fp32, if any (older shapes migrated). */
export function int8Check(m: Manifest): Int8Check | undefined {
  return m.quantization?.check;
}

/**
 * Reads and validates `<dir>/manifest.json`: the one manifest reader of training, export,
 * quantisation, recognition and the update store. A missing, unreadable or invalid
 * manifest is a ModelError that says what to do.
 */
export function readManifest(dir: string): Manifest {
  const file = path.join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ModelError(
      code === 'ENOENT' || code === 'ENOTDIR'
        ? `${dir} is not a model directory: ${MANIFEST_FILE} is missing. Train one with facegate train --out DIR, or give the right model directory.`
        : `cannot read ${file}: ${(err as Error).message}. Check that this user may read the model directory.`,
      { cause: err },
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ModelError(
      `${file} is not valid JSON: ${(err as Error).message}. Restore the model directory or train again.`,
      { cause: err },
    );
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ModelError(
      `${file} is not a valid model manifest (restore the model directory or train again):\n${formatIssues(parsed.error.issues)}`,
    );
  }
  return parsed.data;
}
