/**
 * The BlazeFace face detector run by onnxruntime: letterbox the frame to the detector's
 * input, run, decode against the anchors, NMS, map back to frame pixels.
 * The ONNX comes from `./model.ts` (converted once from `@vladmandic/human`'s TF.js model).
 *
 * The built-in detector's input has a free height and width: the frame is resized so that
 * its longer side is 256 and the shorter side is padded only up to the next multiple of 32
 * (the network's largest stride), e.g. 256×192 for a 4:3 frame instead of 256×256, with
 * anchors per axis. A detector ONNX with a fixed square input gets the square letterbox.
 */
import { OnnxModel, type TensorData } from '../runtime/ort.js';
import { ModelError } from '../shared/errors.js';
import type { RgbImage } from '../shared/image.js';
import type { Face } from '../shared/messages.js';
import {
  BLAZEFACE_VALUES_PER_ANCHOR,
  blazefaceAnchorSpec,
  decodeBlazefaceBlocks,
  type BlazefaceBlock,
  generateAnchors,
  type Anchor,
  type AnchorSpec,
  type Candidate,
} from './anchors.js';
import { nonMaxSuppression } from './nms.js';
import type { FaceMesh } from './mesh.js';
import { LetterboxResampler } from './resample.js';

export interface DetectorOptions {
  /** Lowest detector confidence kept (sigmoid of the logit). */
  readonly minScore?: number;
  /** NMS overlap above which the weaker box is dropped. */
  readonly iouThreshold?: number;
  /** Most faces returned, best first. */
  readonly maxFaces?: number;
  readonly threads?: number;
  /**
   * The longer side of the detector input for a free-size graph (model.detectorSize; default
   * 256, the size BlazeFace was trained at; a multiple of 32). Fewer pixels cost less, but
   * boxes and keypoints move and small faces are missed more often (docs/measurements/speed.md).
   */
  readonly longSide?: number;
  /** Dense landmarks for every face found (gallery.landmarks mesh); closed with the detector. */
  readonly mesh?: FaceMesh;
}

/** The default longer side of a free-size detector input: the size BlazeFace was trained at. */
export const DETECTOR_LONG_SIDE = 256;

/** Defaults: `@vladmandic/human` uses 0.2 / 0.1 for its single-face mode; several faces at a door need a stricter score. */
export const DETECTOR_DEFAULTS = { minScore: 0.5, iouThreshold: 0.3, maxFaces: 10 } as const;

/**
 * BlazeFace's outputs as blocks in anchor order (as `generateAnchors` lays the anchors out).
 * Accepts the single `[1, 896, 17]` output of the original TF Hub model (one block, its
 * columns split), or the four outputs of `@vladmandic/human`'s model (scores and regressors
 * per stride; ordered by size as human does: 384×1, 512×1, 384×16, 512×16 at 256×256 →
 * stride 16's 512 anchors first). At any input size stride 16 has more anchors than stride
 * 32 (2 a 16×16 cell against 6 a 32×32 cell), so the order by size holds.
 */
export function blazefaceBlocks(outputs: readonly TensorData[], anchorCount: number): BlazefaceBlock[] {
  const V = BLAZEFACE_VALUES_PER_ANCHOR;
  const floats = outputs.map((o) => {
    if (!(o.data instanceof Float32Array)) throw new ModelError('BlazeFace: expected float32 outputs');
    return o.data;
  });
  const single = floats[0];
  if (floats.length === 1 && single && single.length === anchorCount * V) {
    const logits = new Float32Array(anchorCount);
    const regressors = new Float32Array(anchorCount * (V - 1));
    for (let i = 0; i < anchorCount; i++) {
      logits[i] = single[i * V]!;
      regressors.set(single.subarray(i * V + 1, (i + 1) * V), i * (V - 1));
    }
    return [{ logits, regressors }];
  }
  if (floats.length !== 4) throw new ModelError(`BlazeFace: expected 1 or 4 outputs, got ${floats.length}`);
  const sorted = [...floats].sort((a, b) => a.length - b.length);
  const [s384, s512, r384, r512] = sorted as [Float32Array, Float32Array, Float32Array, Float32Array];
  if (
    s512.length + s384.length !== anchorCount ||
    r512.length !== s512.length * (V - 1) ||
    r384.length !== s384.length * (V - 1)
  ) {
    throw new ModelError(
      `BlazeFace: output sizes ${sorted.map((o) => o.length).join(', ')} do not fit ${anchorCount} anchors`,
    );
  }
  return [
    { logits: s512, regressors: r512 },
    { logits: s384, regressors: r384 },
  ];
}

/**
 * Letterbox geometry: the frame resized to `width`×`height` (aspect kept, longer side =
 * `size`) and placed at (`left`, `top`) in a black `inputWidth`×`inputHeight` input whose
 * sides are the resized sides rounded up to a multiple of `multiple` (`multiple` = `size`:
 * the square `size`×`size` input). `sx`, `sy`: frame pixels per input pixel.
 */
export interface Letterbox {
  readonly width: number;
  readonly height: number;
  readonly left: number;
  readonly top: number;
  readonly inputWidth: number;
  readonly inputHeight: number;
  readonly sx: number;
  readonly sy: number;
}

export function letterbox(width: number, height: number, size: number, multiple: number = size): Letterbox {
  if (!(multiple >= 1 && size % multiple === 0))
    throw new RangeError(`the letterbox multiple ${multiple} must divide the input size ${size}`);
  const scale = Math.max(width, height) / size;
  const w = Math.max(1, Math.min(size, Math.round(width / scale)));
  const h = Math.max(1, Math.min(size, Math.round(height / scale)));
  const inputWidth = Math.ceil(w / multiple) * multiple;
  const inputHeight = Math.ceil(h / multiple) * multiple;
  return {
    width: w,
    height: h,
    left: Math.floor((inputWidth - w) / 2),
    top: Math.floor((inputHeight - h) / 2),
    inputWidth,
    inputHeight,
    sx: width / w,
    sy: height / h,
  };
}

/** Maps a candidate in detector-input pixels to a face in frame pixels, clipped to the frame. */
export function toFrameFace(
  c: Candidate,
  lb: Letterbox,
  frame: { width: number; height: number },
  frameId: number,
): Face {
  const fx = (x: number): number => (x - lb.left) * lb.sx;
  const fy = (y: number): number => (y - lb.top) * lb.sy;
  const x1 = Math.max(0, fx(c.x1));
  const y1 = Math.max(0, fy(c.y1));
  const x2 = Math.min(frame.width, fx(c.x2));
  const y2 = Math.min(frame.height, fy(c.y2));
  return {
    frameId,
    box: { x: x1, y: y1, width: Math.max(0, x2 - x1), height: Math.max(0, y2 - y1) },
    score: c.score,
    keypoints: c.keypoints.map((p) => ({ x: fx(p.x), y: fy(p.y) })),
  };
}

export class BlazeFaceDetector {
  /** The input buffer of the last call, reused by the next one; a concurrent call gets its own. */
  private idle: LetterboxResampler | null = null;
  /** Anchors per input size (`WxH`); a kiosk sees one or two frame sizes. */
  private readonly anchors = new Map<string, readonly Anchor[]>();

  private constructor(
    private readonly model: OnnxModel,
    private readonly inputName: string,
    /** The input's longer side (its only side when the input is square). */
    readonly inputSize: number,
    /** Input sides are padded up to a multiple of this: the largest stride, or `inputSize` for a fixed square input. */
    readonly inputMultiple: number,
    /** The network's strides and anchors (those of its 256-pixel design, whatever the input's sides). */
    private readonly anchorSpec: AnchorSpec,
    private readonly opts: Required<Omit<DetectorOptions, 'threads' | 'longSide' | 'mesh'>>,
    private readonly mesh: FaceMesh | null,
  ) {}

  /**
   * Loads the detector ONNX (bytes or path) and checks it is a BlazeFace: one float NHWC
   * input, square [1,S,S,3] or with a free height and width [1,?,?,3].
   */
  static async load(onnx: Uint8Array | string, options: DetectorOptions = {}): Promise<BlazeFaceDetector> {
    const model = await OnnxModel.load(onnx, { threads: options.threads });
    const sig = model.signature();
    const input = sig.inputs[0];
    const [, height, width, channels] = input?.shape ?? [];
    const square = typeof height === 'number' && width === height;
    const free = height === null && width === null;
    if (
      !input ||
      sig.inputs.length !== 1 ||
      input.dtype !== 'float32' ||
      input.shape.length !== 4 ||
      channels !== 3 ||
      !(square || free)
    ) {
      await model.release();
      throw new ModelError(
        `detector ${model.source}: expected one float32 input [1,S,S,3] or [1,?,?,3], got ${JSON.stringify(sig.inputs)}` +
          '; prepare the built-in detector again (facegate models prepare) or pass a BlazeFace ONNX',
      );
    }
    const spec = blazefaceAnchorSpec(square ? height : DETECTOR_LONG_SIDE);
    const multiple = Math.max(...spec.strides);
    const longSide = options.longSide ?? DETECTOR_LONG_SIDE;
    if (!square && !(Number.isInteger(longSide) && longSide >= multiple && longSide % multiple === 0)) {
      await model.release();
      throw new RangeError(`the detector's long side must be a positive multiple of ${multiple}, got ${longSide}`);
    }
    const size = square ? height : longSide;
    const { minScore, iouThreshold, maxFaces } = { ...DETECTOR_DEFAULTS, ...stripUndefined(options) };
    return new BlazeFaceDetector(
      model,
      input.name,
      size,
      square ? size : multiple,
      spec,
      {
        minScore,
        iouThreshold,
        maxFaces,
      },
      options.mesh ?? null,
    );
  }

  /** The detector input for a frame of this size: where the frame goes and the input's sides. */
  letterboxFor(width: number, height: number): Letterbox {
    return letterbox(width, height, this.inputSize, this.inputMultiple);
  }

  private anchorsFor(lb: Letterbox): readonly Anchor[] {
    const key = `${lb.inputWidth}x${lb.inputHeight}`;
    let a = this.anchors.get(key);
    if (!a) {
      a = generateAnchors(lb.inputWidth, lb.inputHeight, this.anchorSpec);
      this.anchors.set(key, a);
    }
    return a;
  }

  /** Faces in an RGB frame, best first (size is the quality gate's business: src/detect/quality.ts). */
  async detect(img: RgbImage, frameId = 0): Promise<Face[]> {
    const lb = this.letterboxFor(img.width, img.height);
    const anchors = this.anchorsFor(lb);
    // One JS pass resamples and scales into a buffer reused across frames: measured cheaper than a
    // second sharp call (its own thread hop and copy) plus a normalising loop (docs/measurements/speed.md).
    const resampler = this.idle ?? new LetterboxResampler();
    this.idle = null;
    let out: Record<string, TensorData>;
    try {
      const input = resampler.fill(img, lb);
      out = await this.model.run({ [this.inputName]: { data: input, dims: [1, lb.inputHeight, lb.inputWidth, 3] } });
    } finally {
      this.idle = resampler;
    }
    // Decoded from the output tensors as they come: only the anchors above the score are read.
    const blocks = blazefaceBlocks(Object.values(out), anchors.length);
    const candidates = decodeBlazefaceBlocks(blocks, anchors, this.opts.minScore);
    const faces = nonMaxSuppression(candidates, this.opts.iouThreshold, this.opts.maxFaces)
      .map((c) => toFrameFace(c, lb, img, frameId))
      .filter((f) => f.box.width > 0 && f.box.height > 0);
    return this.mesh ? this.mesh.landmarks(img, faces) : faces;
  }

  /** Faces another detector found, with this one's dense landmarks where it has a mesh and they have none. */
  async withLandmarks(img: RgbImage, faces: readonly Face[]): Promise<readonly Face[]> {
    if (!this.mesh || faces.every((f) => f.landmarks)) return faces;
    return this.mesh.landmarks(img, faces);
  }

  async close(): Promise<void> {
    await this.model.release();
    await this.mesh?.close();
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
