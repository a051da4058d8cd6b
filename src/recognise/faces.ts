/**
 * The one "image → aligned face crop" step, shared by the device pipeline, `facegate eval`
 * and `facegate train`, so that a model sees at the door exactly what it saw in training.
 *
 * - detect (default): BlazeFace finds the faces; each is cut as a square of `margin` × the
 *   box's longer side around the box, rotated to level the eyes, sampled to the model input.
 * - crops (`--crops`): the file already is a face crop; it is resized to the input size
 *   whole (aspect not kept, like Keras `target_size`), no detection.
 */
import { decodeRgb, type RgbImage } from '../shared/image.js';
import type { Face } from '../shared/messages.js';
import { cropSchema, type CropSettings } from '../model/manifest.js';
import { faceTransform, warpAffine } from '../detect/align.js';
import { sharpness } from '../detect/quality.js';
import type { BlazeFaceDetector } from '../detect/blazeface.js';
import { loadDetector, type LoadDetectorOptions } from '../detect/model.js';

/** The manifest schema's defaults (margin 1.3, eyes levelled), declared once there. */
export const DEFAULT_CROP: CropSettings = cropSchema.parse({});

export interface FaceCropResult {
  /** null in crops mode (the whole image is the face). */
  readonly face: Face | null;
  readonly image: RgbImage;
  readonly sharpness: number;
}

/** A crop cut around a detected face. */
export type DetectedCrop = FaceCropResult & { readonly face: Face };

export type ExtractResult =
  | ({ readonly ok: true } & FaceCropResult)
  | { readonly ok: false; readonly reason: 'no-face' | 'unreadable'; readonly detail: string };

export interface FaceExtractorOptions {
  /** false: inputs are face crops already (`--crops`). */
  readonly detect: boolean;
  readonly crop?: CropSettings;
  /** Model input size. */
  readonly size: { readonly width: number; readonly height: number };
  readonly detector?: LoadDetectorOptions;
}

export class FaceExtractor {
  private constructor(
    readonly detector: BlazeFaceDetector | null,
    readonly crop: CropSettings,
    readonly size: { readonly width: number; readonly height: number },
  ) {}

  static async load(opts: FaceExtractorOptions): Promise<FaceExtractor> {
    const detector = opts.detect ? await loadDetector(opts.detector ?? {}) : null;
    return new FaceExtractor(detector, opts.crop ?? DEFAULT_CROP, opts.size);
  }

  /** Wraps an already loaded detector (tests, the pipeline). */
  static withDetector(
    detector: BlazeFaceDetector | null,
    crop: CropSettings,
    size: { width: number; height: number },
  ): FaceExtractor {
    return new FaceExtractor(detector, crop, size);
  }

  get detects(): boolean {
    return this.detector !== null;
  }

  /** Every face in a decoded frame, cut and aligned, best detector score first. */
  async facesIn(img: RgbImage, frameId = 0): Promise<DetectedCrop[]> {
    if (!this.detector) throw new Error('facesIn needs a detector (crops mode has none)');
    const faces = await this.detector.detect(img, frameId);
    return faces.map((face) => this.cut(img, face));
  }

  /** Cuts and aligns one detected face. */
  cut(img: RgbImage, face: Face): DetectedCrop {
    return cutFace(img, face, this.crop, this.size.width);
  }

  /**
   * One face from one image file (training and evaluation): in detect mode the largest face
   * (a background face is usually smaller), in crops mode the whole image.
   */
  async fromFile(file: string | Buffer): Promise<ExtractResult> {
    const where = typeof file === 'string' ? file : '<buffer>';
    let img: RgbImage;
    try {
      img = this.detector ? await decodeRgb(file) : await decodeRgb(file, this.size);
    } catch (err) {
      return { ok: false, reason: 'unreadable', detail: `${where}: ${(err as Error).message}` };
    }
    if (!this.detector) return { ok: true, face: null, image: img, sharpness: sharpness(img) };
    const faces = await this.detector.detect(img);
    if (faces.length === 0) return { ok: false, reason: 'no-face', detail: `${where}: no face found` };
    const largest = faces.reduce((a, b) => (b.box.width * b.box.height > a.box.width * a.box.height ? b : a));
    return { ok: true, ...this.cut(img, largest) };
  }

  async close(): Promise<void> {
    await this.detector?.close();
  }
}

/** Cuts and aligns one detected face to `size`×`size` as `crop` says (the one face step). */
export function cutFace(img: RgbImage, face: Face, crop: CropSettings, size: number): DetectedCrop {
  const image = warpAffine(img, faceTransform(face.box, face.keypoints, size, crop), size, size);
  return { face, image, sharpness: sharpness(image) };
}

/** What training's data loader asks of the face step (structurally `ImagePreparer` in src/train/data.ts). */
export interface PreparerLike {
  readonly name: string;
  prepare(
    file: string,
  ): Promise<{ readonly ok: true; readonly image: RgbImage } | { readonly ok: false; readonly reason: string }>;
}

/**
 * The face step as training's image preparer: `detect+align` or `crops`. A file without a
 * face is skipped with the reason "no face found" (training counts and lists skipped files).
 */
export function facePreparer(extractor: FaceExtractor): PreparerLike {
  return {
    name: extractor.detects
      ? `detect+align (margin ${extractor.crop.margin}${extractor.crop.rotate ? ', eyes levelled' : ''})`
      : 'crops',
    async prepare(file: string) {
      const r = await extractor.fromFile(file);
      if (r.ok) return { ok: true, image: r.image };
      return { ok: false, reason: r.reason === 'no-face' ? 'no face found' : `cannot decode: ${r.detail}` };
    },
  };
}
