/**
 * Errors of the update channel. `UpdateRejected` carries a short reason that is published
 * on the kiosk's `model` topic as `rejected: <reason>`; the message adds what to do.
 */
import { FacegateError } from '../shared/errors.js';

/** A bundle, offer or transfer that must not be installed. */
export class UpdateRejected extends FacegateError {
  constructor(
    readonly reason: string,
    hint?: string,
    options?: { cause?: unknown },
  ) {
    super(hint ? `${reason}. ${hint}` : reason, options);
  }
}

/** A key file is missing, unreadable or not an Ed25519 key. */
export class KeyError extends FacegateError {}

/** The model store on disk is unusable (no valid model to run). */
export class StoreError extends FacegateError {}
