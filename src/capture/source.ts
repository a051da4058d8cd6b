/** What a camera source delivers, and the error a user sees when one fails. */
import { FacegateError } from '../shared/errors.js';

export class CameraError extends FacegateError {}

export interface FrameSink {
  /** One encoded image (JPEG, PNG, ...). */
  frame(image: Buffer): void;
  /** The source failed; the camera reopens it with backoff. */
  error(err: Error): void;
  /** The source has nothing more (a non-looping directory or video file). */
  end(): void;
}

export interface CameraSource {
  /** For logs and messages: what is being read (never credentials). */
  readonly description: string;
  /** Starts delivering frames to `sink`; rejects when the source cannot be opened at all. */
  open(sink: FrameSink): Promise<void>;
  /** Stops delivering; idempotent. */
  close(): Promise<void>;
}

/** `rtsp://user:pass@host/...` → `rtsp://host/...` for logs. */
export function redactUrl(input: string): string {
  return input.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1***@');
}
