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

/** The built-in face descriptors (src/gallery/descriptor.ts). */
export const builtinDescriptorNames = ['dlib', 'faceres'] as const;
export type BuiltinDescriptorName = (typeof builtinDescriptorNames)[number];
export const DEFAULT_DESCRIPTOR: BuiltinDescriptorName = 'dlib';

/**
 * gallery.landmarks: what dlib's crop is aligned by: BlazeFace's four keypoints on dlib's
 * template, or the face mesh's dense landmarks on dlib's 68-point mean face (src/detect/mesh.ts).
 */
export const galleryLandmarks = ['keypoints', 'mesh'] as const;
export type GalleryLandmarks = (typeof galleryLandmarks)[number];
export const DEFAULT_LANDMARKS: GalleryLandmarks = 'keypoints';

/** How a person's templates make one score (src/gallery/match.ts). */
export const scoringRules = ['best', 'top-k', 'centroid'] as const;
export type ScoringRule = (typeof scoringRules)[number];

/**
 * How the kiosk scores a face: test-time flip (the descriptor of the crop and of its mirror,
 * averaged, at enrolment and recognition alike) and the rule over a person's templates
 * (`top-k` with k 2). The impostor tail, and so the threshold, depends on both.
 */
export interface ScoringVariant {
  readonly flip: boolean;
  readonly rule: ScoringRule;
}

/** A variant's name in the tail tables and in messages: `best`, `flip+centroid`, … */
export function variantName(v: ScoringVariant): string {
  return `${v.flip ? 'flip+' : ''}${v.rule}`;
}

/**
 * The variants each built-in descriptor has a fitted impostor tail for: the keys of
 * BUILTIN_IMPOSTOR_TAILS (src/gallery/match.ts), whose type makes the two agree. Only these
 * can run: the threshold is read from that tail.
 */
export const FITTED_VARIANTS = {
  dlib: ['best', 'centroid', 'flip+best', 'flip+top-k', 'flip+centroid'],
  faceres: ['best', 'flip+centroid'],
} as const satisfies Record<BuiltinDescriptorName, readonly string[]>;

/** The variants dlib with gallery.landmarks mesh has a fitted impostor tail for (DLIB_MESH_IMPOSTOR_TAILS in src/gallery/match.ts). */
export const MESH_FITTED_VARIANTS = ['flip+centroid'] as const;
/** …and a margin calibration for (DLIB_MESH_MARGIN_CALIBRATIONS). */
export const MESH_MARGIN_VARIANTS = ['flip+centroid'] as const;

/** Why a variant cannot run with a descriptor, naming the variants that can; null when it can. */
export function unfittedVariant(fitted: readonly string[], v: ScoringVariant, descriptor: string): string | null {
  if (fitted.includes(variantName(v))) return null;
  const can = fitted
    .map((k) => (k.startsWith('flip+') ? `flip true, rule ${k.slice(5)}` : `flip false, rule ${k}`))
    .join('; ');
  return `no impostor tail is fitted for the ${descriptor} descriptor with flip ${v.flip} and rule ${v.rule}, so no threshold can be calibrated for it: set gallery.flip and gallery.rule to one of (${can})`;
}

/**
 * gallery.norm: none (the best cosine), margin (the best cosine plus half its lead over the
 * runner-up; src/gallery/match.ts), or auto (margin where it is calibrated for the descriptor,
 * flip, rule and targetFar, else none).
 */
export const galleryNorms = ['auto', 'none', 'margin'] as const;
export type GalleryNorm = (typeof galleryNorms)[number];
/** The default: auto, since the margin score let fewer strangers in and refused fewer known faces at every calibrated size (docs/measurements/lfw-dev.md). */
export const DEFAULT_NORM: GalleryNorm = 'auto';

/**
 * The variants each built-in descriptor has a fitted margin calibration for (the keys of
 * BUILTIN_MARGIN_CALIBRATIONS in src/gallery/match.ts, whose type makes the two agree), all at
 * gallery.targetFar MARGIN_TARGET_FAR: only these can run with gallery.norm margin.
 */
export const MARGIN_VARIANTS = {
  dlib: ['flip+centroid'],
  faceres: [],
} as const satisfies Record<BuiltinDescriptorName, readonly string[]>;
export const MARGIN_TARGET_FAR = 0.01;

/** Why gallery.norm margin cannot run with these settings; null when it can. */
export function uncalibratedMargin(
  fitted: readonly string[],
  g: ScoringVariant & { readonly descriptor: string; readonly targetFar: number },
): string | null {
  if (!fitted.includes(variantName(g)))
    return `gallery.norm margin has no threshold calibrated for the ${g.descriptor} descriptor with flip ${g.flip} and rule ${g.rule}${fitted.length ? ` (only for ${fitted.join(', ')})` : ''}: set gallery.norm to none${fitted.length ? ', or flip and rule to a calibrated variant' : ''}`;
  if (g.targetFar !== MARGIN_TARGET_FAR)
    return `gallery.norm margin is calibrated for gallery.targetFar ${MARGIN_TARGET_FAR} only, got ${g.targetFar}: set gallery.targetFar to ${MARGIN_TARGET_FAR} or gallery.norm to none`;
  return null;
}

/** The default scoring variant (gallery.flip, gallery.rule): chosen by measurement (docs/measurements/lfw-dev.md). */
export const DEFAULT_FLIP = true;
export const DEFAULT_RULE: ScoringRule = 'centroid';

export const galleryConfigSchema = z
  .object({
    descriptor: z
      .enum(builtinDescriptorNames)
      .describe(
        'built-in face descriptor the gallery recognises with: dlib (dlib ResNet, 128-d, landmark-aligned 150×150 crops) or faceres (1024-d, 224×224 box crops); switching computes new templates from the kept enrolment crops (a model directory with its own descriptor.onnx overrides this)',
      )
      .default(DEFAULT_DESCRIPTOR),
    landmarks: z
      .enum(galleryLandmarks)
      .describe(
        "what the dlib descriptor's crop is aligned by: keypoints (the detector's eyes, nose and mouth on dlib's template) or mesh (a face-mesh model's dense landmarks put on dlib's 68-point mean face, as dlib's own face chip; ~4 ms more a face, one thread); needs descriptor dlib with flip and rule centroid; switching computes new templates from the kept enrolment crops",
      )
      .default(DEFAULT_LANDMARKS),
    flip: z
      .boolean()
      .describe(
        'test-time flip: describe each face crop and its mirror and average the two, at enrolment and at recognition (one more descriptor run per face); switching computes new templates from the kept enrolment crops',
      )
      .default(DEFAULT_FLIP),
    rule: z
      .enum(scoringRules)
      .describe(
        "how a person's templates make one score: best (the best cosine), top-k (the mean of the best 2) or centroid (the cosine to their mean); the threshold comes from the impostor tail fitted for this rule with this flip and descriptor",
      )
      .default(DEFAULT_RULE),
    norm: z
      .enum(galleryNorms)
      .describe(
        "score normalisation with the gallery as its own cohort: none (a face's score is its best person's cosine), margin (that cosine plus half its lead over the runner-up, with a threshold fitted for it; fewer false rejects in galleries of 200–1,000 people, and outside that size the plain cosine and its threshold are used; needs the dlib descriptor with flip and rule centroid and targetFar 0.01), or auto (margin where those settings allow it, else none)",
      )
      .default(DEFAULT_NORM),
    adapt: z
      .boolean()
      .describe(
        "raise the match threshold (and the pooled one) when the enrolled people's faces score higher against each other than the strangers the thresholds were fitted on do (one camera, grey-scale or infrared light): the shift is read from the gallery itself whenever it changes, never lowers a threshold, and is published with it (the dlib descriptor with flip and rule centroid; elsewhere nothing is raised)",
      )
      .default(true),
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
  .superRefine((g, ctx) => {
    // The threshold needs an impostor tail fitted for this very descriptor, flip and rule.
    const mesh = g.landmarks === 'mesh';
    if (mesh && g.descriptor !== 'dlib')
      ctx.addIssue({
        code: 'custom',
        path: ['landmarks'],
        message: `gallery.landmarks mesh aligns the dlib descriptor's crop only: set gallery.descriptor to dlib or gallery.landmarks to keypoints`,
      });
    const name = mesh ? 'dlib (mesh landmarks)' : g.descriptor;
    const why = unfittedVariant(mesh ? MESH_FITTED_VARIANTS : FITTED_VARIANTS[g.descriptor], g, name);
    if (why) ctx.addIssue({ code: 'custom', path: ['rule'], message: why });
    const margin =
      g.norm === 'margin'
        ? uncalibratedMargin(mesh ? MESH_MARGIN_VARIANTS : MARGIN_VARIANTS[g.descriptor], { ...g, descriptor: name })
        : null;
    if (margin) ctx.addIssue({ code: 'custom', path: ['norm'], message: margin });
  })
  .describe('the face gallery: people enrolled at the kiosk, recognised without retraining')
  .prefault({});

export type GalleryConfig = z.infer<typeof galleryConfigSchema>;
export type EnrolChecks = z.infer<typeof enrolChecksSchema>;
