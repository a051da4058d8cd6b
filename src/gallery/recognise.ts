/**
 * Recognition through the gallery, for the daemon: every face in a frame is described by the
 * gallery's descriptor and searched in the gallery (1:N); a person is named when the best
 * score reaches the threshold for the gallery's size. A trained model, where one is
 * installed, is a second opinion: it may name a face the gallery does not know (a person
 * trained but not enrolled), never veto a gallery match.
 *
 * The gallery is checked for changes on every frame (one query), so enrolling or removing a
 * person, from this process or the CLI, takes effect on the next frame.
 */
import type { Logger } from 'pino';
import type { BlazeFaceDetector } from '../detect/blazeface.js';
import { qualityVerdict, sharpness, type QualityThresholds } from '../detect/quality.js';
import type { RecognitionPipeline } from '../recognise/pipeline.js';
import { decodeRgb, type RgbImage } from '../shared/image.js';
import { moduleLogger } from '../shared/logger.js';
import type { Face, Frame, Match, PoolableFace } from '../shared/messages.js';
import { cropFor, type FaceDescriptor } from './descriptor.js';
import { decisionScore, search } from './match.js';
import type { FaceGallery, GallerySnapshot } from './service.js';
import { reportFrameSkip } from '../shared/frame-skips.js';

/** What the daemon needs (structurally its `Recogniser`). */
export interface GalleryRecogniserDeps {
  readonly gallery: FaceGallery;
  readonly descriptor: FaceDescriptor;
  /** Finds faces when there is no trained model (with one, its own detector is used). */
  readonly detector: BlazeFaceDetector;
  readonly quality: QualityThresholds;
  /** The trained model of model.dir, when there is one. */
  readonly trained?: RecognitionPipeline;
  /** The descriptor came with the model directory: closed with this recogniser. */
  readonly ownsDescriptor?: boolean;
}

/** The best person's name and lead over the runner-up (null and 0 with nobody). */
function bestNamed(
  snap: Pick<GallerySnapshot, 'names'>,
  hit: ReturnType<typeof search>,
): { name: string | null; margin: number } {
  const best = hit.best;
  if (!best) return { name: null, margin: 0 };
  return { name: snap.names.get(best.personId) ?? best.personId, margin: best.score - (hit.second?.score ?? 0) };
}

/** Combines the gallery's verdict and the trained model's (pure). */
export function combine(
  face: Face,
  snap: Pick<GallerySnapshot, 'threshold' | 'names'> & Partial<Pick<GallerySnapshot, 'weight'>>,
  hit: ReturnType<typeof search>,
  trained: Match | undefined,
): Match {
  const best = hit.best;
  const { name, margin } = bestNamed(snap, hit);
  // The best cosine, or with gallery.norm margin that cosine plus its weighted lead (what the threshold is for).
  if (best && name && decisionScore(hit, snap.weight ?? null) >= snap.threshold)
    return {
      face,
      label: name,
      candidate: name,
      similarity: best.score,
      probability: trained?.probability ?? 1,
      margin,
    };
  if (trained?.label) return trained;
  if (best && name && (!trained || best.score >= trained.similarity))
    return { face, label: null, candidate: name, similarity: best.score, probability: 0, margin };
  return trained ?? { face, label: null, candidate: '', similarity: best?.score ?? 0, probability: 0, margin: 0 };
}

/** What pooling this face with the rest of its track needs; undefined where the gallery has no aggregate threshold (pure). */
export function poolable(
  snap: Pick<GallerySnapshot, 'aggregateThreshold' | 'index' | 'names'>,
  descriptor: Float32Array,
  source: string,
): PoolableFace | undefined {
  const threshold = snap.aggregateThreshold;
  if (threshold === undefined) return undefined;
  return {
    descriptor,
    source,
    score: (mean) => {
      const hit = search(snap.index, mean);
      const score = hit.best?.score ?? 0;
      const { name, margin } = bestNamed(snap, hit);
      return { label: hit.best && score >= threshold ? name : null, score, margin };
    },
  };
}

export class GalleryRecogniser {
  private readonly log: Logger = moduleLogger('gallery');
  private lastThreshold = NaN;

  constructor(private readonly deps: GalleryRecogniserDeps) {}

  /** The trained model's version, or the descriptor's when the kiosk runs on the gallery alone. */
  get modelVersion(): string {
    return this.deps.trained?.modelVersion ?? this.deps.descriptor.id.split('/')[0] ?? 'gallery';
  }

  async process(frame: Frame): Promise<readonly Match[]> {
    let img: RgbImage;
    try {
      img = await decodeRgb(frame.image);
    } catch (err) {
      this.log.debug({ source: frame.source, err: (err as Error).message }, 'cannot decode a frame; skipped');
      reportFrameSkip('unreadable');
      return [];
    }
    const { descriptor, trained, quality } = this.deps;
    // With a trained model its detector finds the faces; its crops are cut below, for the good faces only.
    // (Its faces get the gallery detector's dense landmarks where gallery.landmarks is mesh.)
    const own = trained?.extractor.detector;
    const faces = own
      ? await this.deps.detector.withLandmarks(img, await own.detect(img, frame.id))
      : await this.deps.detector.detect(img, frame.id);
    const good: { face: Face; crop: RgbImage }[] = [];
    for (const face of faces) {
      const crop = cropFor(descriptor, img, face);
      const v = qualityVerdict(Math.max(face.box.width, face.box.height), sharpness(crop), quality);
      if (v.ok) good.push({ face, crop });
      else reportFrameSkip(v.reason);
    }
    if (good.length === 0) return [];
    // Someone enrolled by a process that runs another descriptor (the CLI) gets templates of this one first.
    await this.deps.gallery.refresh(descriptor);
    const snap = this.deps.gallery.snapshot(descriptor);
    if (snap.threshold !== this.lastThreshold) {
      this.lastThreshold = snap.threshold;
      this.log.info(
        {
          people: snap.people,
          threshold: Number(snap.threshold.toFixed(4)),
          score: snap.weight === null ? 'cosine' : 'margin',
        },
        'gallery threshold in use',
      );
    }
    const vectors = await descriptor.describe(good.map((g) => g.crop));
    let opinions: (Match | undefined)[] = [];
    if (trained) {
      const crops = good.map((g) => trained.extractor.cut(img, g.face).image);
      const d = await trained.recogniser.describe(crops);
      opinions = good.map((g, i) => trained.recogniser.match(g.face, d[i]!));
    }
    return good.map((g, i) => {
      const v = vectors[i] as Float32Array;
      const m = combine(g.face, snap, search(snap.index, v), opinions[i]);
      const pool = poolable(snap, v, descriptor.id);
      return pool ? { ...m, pool } : m;
    });
  }

  /** Closes the trained model and a descriptor of the model directory; the gallery, built-in descriptor and detector belong to the daemon. */
  async close(): Promise<void> {
    await this.deps.trained?.close();
    if (this.deps.ownsDescriptor) await this.deps.descriptor.close();
  }
}
