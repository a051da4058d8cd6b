/** The `gallery` config section (people enrolled at the kiosk), owned by src/gallery. */
import { z } from 'zod';

export const enrolChecksSchema = z
  .object({
    minFaceSize: z
      .number()
      .int()
      .positive()
      .describe('refuse enrolment photos whose face is smaller than this (pixels, longer side of the face box)')
      .default(60),
    minSharpness: z
      .number()
      .nonnegative()
      .describe('refuse blurred enrolment photos: minimum variance of the Laplacian of the aligned face crop')
      .default(6),
    maxYaw: z
      .number()
      .positive()
      .describe(
        'refuse faces turned too far: largest sideways offset of the nose from the middle of the eyes, as a fraction of the eye distance',
      )
      .default(0.6),
    minBrightness: z
      .number()
      .min(0)
      .max(255)
      .describe('refuse too dark enrolment photos: minimum mean brightness (0..255) of the aligned face crop')
      .default(40),
  })
  .strict()
  .describe('checks every enrolment photo must pass')
  .prefault({});

export const galleryConfigSchema = z
  .object({
    keepCrops: z
      .boolean()
      .describe(
        'keep the enrolment face crops (files 0600 in state.dir) so templates can be recomputed when a model update changes the descriptor; false keeps only the templates (such an update is then refused until those people are enrolled again) and writes no face image a people bundle brings (--with-crops)',
      )
      .default(true),
    minPhotos: z
      .number()
      .int()
      .positive()
      .describe('good photos (or camera frames) needed to enrol a person')
      .default(3),
    targetFar: z
      .number()
      .positive()
      .max(0.5)
      .describe(
        'chance that a stranger matches anyone enrolled; the match threshold is derived from it and the gallery size',
      )
      .default(0.01),
    cameraFrames: z.number().int().positive().describe('good frames enrol from-camera takes').default(5),
    cameraTimeoutMs: z
      .number()
      .int()
      .positive()
      .describe('how long enrol from-camera waits for enough good frames (ms)')
      .default(30000),
    descriptorCacheDir: z
      .string()
      .describe('where the face descriptor converted to ONNX is cached; empty = the default cache folder')
      .default(''),
    checks: enrolChecksSchema,
  })
  .strict()
  .describe('the face gallery: people enrolled at the kiosk, recognised without retraining')
  .prefault({});

export type GalleryConfig = z.infer<typeof galleryConfigSchema>;
export type EnrolChecks = z.infer<typeof enrolChecksSchema>;
