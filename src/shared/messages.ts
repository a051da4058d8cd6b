/**
 * Typed messages between the stages of the device pipeline:
 * capture → detect → recognise → decide → publish. Readonly, never tuples.
 */

/** A camera frame as captured (encoded bytes; decoding happens in the detect stage). */
export interface Frame {
  /** Monotonic per-source frame number. */
  readonly id: number;
  /** Capture time, ms since the epoch. */
  readonly timestamp: number;
  /** Camera name or file path, for logs. */
  readonly source: string;
  /** Encoded image (JPEG, PNG, ...). */
  readonly image: Buffer;
}

export interface Point {
  readonly x: number;
  readonly y: number;
}

/** Axis-aligned box in frame pixels. */
export interface Box {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

/** A face found in a frame. */
export interface Face {
  readonly frameId: number;
  readonly box: Box;
  /** Detector confidence 0..1. */
  readonly score: number;
  /** Detector keypoints in frame pixels (BlazeFace: right eye, left eye, nose, mouth, right ear, left ear). */
  readonly keypoints: readonly Point[];
  /** Dense landmarks in frame pixels (dlib's points DLIB_CHIP_POINTS, src/detect/align.ts), from the face mesh: only with gallery.landmarks mesh. */
  readonly landmarks?: readonly Point[];
}

/** What the recogniser says about one face. `label` null means nobody known. */
export interface Match {
  readonly face: Face;
  readonly label: string | null;
  /** The best candidate even when refused (for logs and evaluation). */
  readonly candidate: string;
  /** Similarity of the embedding to the candidate's reference (cosine, -1..1). */
  readonly similarity: number;
  /** Softmax probability of the candidate. */
  readonly probability: number;
  /** Probability of the candidate minus that of the runner-up. */
  readonly margin: number;
  /** What pooling a track's frames needs (gallery recognition with an aggregate tail); absent otherwise. */
  readonly pool?: PoolableFace;
}

/**
 * A face's descriptor and how to score a pooled one (src/decide/aggregate.ts): the mean
 * descriptor of a track's frames, searched in the gallery this frame was searched in, named
 * when it reaches the gallery's aggregate threshold.
 */
export interface PoolableFace {
  readonly descriptor: Float32Array;
  /** The descriptor model's id: only frames of one model are pooled. */
  readonly source: string;
  score(mean: Float32Array): { readonly label: string | null; readonly score: number; readonly margin: number };
}

export type DecisionKind = 'recognized' | 'unknown';

/** A decision across frames, to be published. */
export interface Decision {
  readonly kind: DecisionKind;
  /** Person's name for `recognized`; null for `unknown`. */
  readonly name: string | null;
  /** Mean similarity over the agreeing frames. */
  readonly score: number;
  readonly trackId: number;
  readonly frameId: number;
  /** Time of the frame that completed the decision, ms since the epoch. */
  readonly timestamp: number;
  /**
   * `recognized` only: mean probability margin over the second-best person across the
   * agreeing frames, and the smallest face box side (pixels) among them. Door access opens
   * only when both pass its bar; a decision without them never opens a door.
   */
  readonly margin?: number;
  readonly faceSize?: number;
}
