/**
 * The device's recognition pipeline: decode → detect → crop/align → quality gate →
 * recognise → refuse strangers. One instance per camera; `process` is called per frame.
 * Errors per frame (a corrupt image) are counted and logged once per kind, never thrown.
 */
import { decodeRgb, type RgbImage } from '../shared/image.js';
import type { Frame, Match } from '../shared/messages.js';
import { moduleLogger } from '../shared/logger.js';
import { qualityVerdict, type QualityThresholds } from '../detect/quality.js';
import { loadDetector, type LoadDetectorOptions } from '../detect/model.js';
import { FaceExtractor, type DetectedCrop } from './faces.js';
import { Recogniser, type PrecisionChoice, type PrecisionReport } from './recogniser.js';
import { reportFrameSkip } from '../shared/frame-skips.js';

const log = moduleLogger('recognise');

export interface PipelineOptions {
  readonly modelDir: string;
  /** onnxruntime intra-op threads for each model. */
  readonly threads?: number;
  /** Faces whose longer side is below this many frame pixels are skipped (counted). */
  readonly minFaceSize?: number;
  /** Crops with a Laplacian variance below this are skipped as blurred (counted). */
  readonly minSharpness?: number;
  /** Lowest detector confidence. */
  readonly minDetectionScore?: number;
  /** Most faces matched per frame. */
  readonly maxFaces?: number;
  /** The detector input's longer side (model.detectorSize). */
  readonly detectorSize?: number;
  readonly precision?: PrecisionChoice;
  /** Detector ONNX cache / override (see src/detect/model.ts). */
  readonly detector?: Pick<LoadDetectorOptions, 'cacheDir' | 'onnxPath'>;
}

/** The quality gate's defaults; the detector's (score 0.5, 10 faces) are DETECTOR_DEFAULTS in src/detect/blazeface.ts. */
export const PIPELINE_DEFAULTS = { minFaceSize: 40, minSharpness: 5 } as const;

/** Counters since load (for metrics). */
export interface PipelineStats {
  frames: number;
  /** Frames that could not be decoded. */
  unreadable: number;
  framesWithoutFace: number;
  faces: number;
  skippedTooSmall: number;
  skippedBlurred: number;
  matched: number;
  named: number;
  refused: number;
}

/** What one frame gave, with the crops (for `predict --annotate` and evaluation). */
export interface FrameResult {
  readonly matches: readonly Match[];
  /** Faces the quality gate refused, with the reason. */
  readonly skipped: readonly { readonly crop: DetectedCrop; readonly reason: 'too-small' | 'too-blurred' }[];
}

export class RecognitionPipeline {
  readonly stats: PipelineStats = {
    frames: 0,
    unreadable: 0,
    framesWithoutFace: 0,
    faces: 0,
    skippedTooSmall: 0,
    skippedBlurred: 0,
    matched: 0,
    named: 0,
    refused: 0,
  };
  private readonly warned = new Set<string>();

  private constructor(
    readonly extractor: FaceExtractor,
    readonly recogniser: Recogniser,
    private readonly quality: QualityThresholds,
  ) {}

  static async load(opts: PipelineOptions): Promise<RecognitionPipeline> {
    const recogniser = await Recogniser.load({
      modelDir: opts.modelDir,
      threads: opts.threads,
      precision: opts.precision,
    });
    try {
      const detector = await loadDetector({
        ...opts.detector,
        threads: opts.threads,
        minScore: opts.minDetectionScore,
        maxFaces: opts.maxFaces,
        longSide: opts.detectorSize,
      });
      const extractor = FaceExtractor.withDetector(detector, recogniser.recognition.crop, recogniser.inputSize);
      const pipeline = new RecognitionPipeline(extractor, recogniser, {
        minFaceSize: opts.minFaceSize ?? PIPELINE_DEFAULTS.minFaceSize,
        minSharpness: opts.minSharpness ?? PIPELINE_DEFAULTS.minSharpness,
      });
      log.info(
        {
          model: opts.modelDir,
          version: recogniser.manifest.version,
          precision: recogniser.precision,
          int8Ms: recogniser.precisionReport.int8Ms,
          fp32Ms: recogniser.precisionReport.fp32Ms,
          threshold: recogniser.recognition.threshold,
        },
        'recognition pipeline loaded',
      );
      return pipeline;
    } catch (err) {
      await recogniser.close();
      throw err;
    }
  }

  get modelVersion(): string {
    return this.recogniser.manifest.version;
  }

  /** Which model file runs, why, and the load-time timings of precision auto. */
  get precision(): PrecisionReport {
    return this.recogniser.precisionReport;
  }

  /** Matches for every face of acceptable quality in the frame; [] for an unreadable frame. */
  async process(frame: Frame): Promise<readonly Match[]> {
    let img: RgbImage;
    try {
      img = await decodeRgb(frame.image);
    } catch (err) {
      this.stats.frames++;
      this.stats.unreadable++;
      reportFrameSkip('unreadable');
      this.warnOnce(
        'unreadable',
        { source: frame.source, err: (err as Error).message },
        'cannot decode a frame; skipping it (counted in stats.unreadable)',
      );
      return [];
    }
    return (await this.processImage(img, frame.id)).matches;
  }

  /** The same on a decoded image, with the refused crops. */
  async processImage(img: RgbImage, frameId: number): Promise<FrameResult> {
    this.stats.frames++;
    const crops = await this.extractor.facesIn(img, frameId);
    if (crops.length === 0) this.stats.framesWithoutFace++;
    this.stats.faces += crops.length;
    const good: DetectedCrop[] = [];
    const skipped: { crop: DetectedCrop; reason: 'too-small' | 'too-blurred' }[] = [];
    for (const c of crops) {
      const v = qualityVerdict(Math.max(c.face.box.width, c.face.box.height), c.sharpness, this.quality);
      if (v.ok) {
        good.push(c);
        continue;
      }
      skipped.push({ crop: c, reason: v.reason });
      reportFrameSkip(v.reason);
      if (v.reason === 'too-small') this.stats.skippedTooSmall++;
      else this.stats.skippedBlurred++;
    }
    const descriptions = await this.recogniser.describe(good.map((c) => c.image));
    const matches = good.map((c, i) => this.recogniser.match(c.face, descriptions[i]!));
    this.stats.matched += matches.length;
    for (const m of matches)
      if (m.label) this.stats.named++;
      else this.stats.refused++;
    log.debug({ frameId, faces: crops.length, matched: matches.length, skipped: skipped.length }, 'frame');
    return { matches, skipped };
  }

  private warnOnce(kind: string, detail: Record<string, unknown>, msg: string): void {
    if (this.warned.has(kind)) return;
    this.warned.add(kind);
    log.warn(detail, msg);
  }

  async close(): Promise<void> {
    await this.extractor.close();
    await this.recogniser.close();
  }
}
