/**
 * Errors a user can act on. Every message says what went wrong and what to do.
 * The CLI prints `message` alone (no stack) for these and exits non-zero.
 */
export class FacegateError extends Error {
  /** Process exit code the CLI uses for this error. */
  readonly exitCode: number = 1;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad or missing input data (images, folders). */
export class DataError extends FacegateError {}

/** A model file or model directory is missing, corrupt, or does not match its manifest. */
export class ModelError extends FacegateError {}

/** The configuration is invalid; the message lists `path: message` lines. */
export class ConfigError extends FacegateError {}

/** A layer or op the exporter does not support. */
export class UnsupportedError extends FacegateError {}
