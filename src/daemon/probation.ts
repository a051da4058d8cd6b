/**
 * Watches recognition while a newly installed model is on probation. When the model's
 * recognition step throws on PROBATION_FAILURE_LIMIT frames with no frame recognised in
 * between, the updater is told (`reportFailure`): it returns to the previous model,
 * hot-swaps it in as an install does, and publishes `rolled back: <reason>` on the
 * retained model topic. Outside probation, errors are only counted (metrics, logs).
 */
import type { Logger } from 'pino';
import type { Match } from '../shared/messages.js';
import { moduleLogger } from '../shared/logger.js';

/**
 * Failed frames, with none recognised in between, that condemn a model on probation.
 * Frames without a face do not run the model, so they neither count nor reset the
 * count; a corrupt frame is not an error (the pipeline skips it). At a few frames per
 * second this is a few seconds of a model that fails every face; a single odd frame
 * does not roll back a good model.
 */
export const PROBATION_FAILURE_LIMIT = 10;

/** What the guard needs from the model updater (ModelUpdater fits). */
export interface ProbationPort {
  /** The version on probation now; undefined when no model is on probation. */
  readonly probationVersion: string | undefined;
  /** Rolls back to the previous model; false when there was nothing to roll back. */
  reportFailure(reason: string): Promise<boolean>;
}

/** The recognition step of one frame: the model that ran it, and what it gave or threw. */
export interface RecogniseOutcome {
  readonly modelVersion: string;
  readonly matches: readonly Match[];
  readonly error: Error | null;
}

export class ProbationGuard {
  private failures = 0;
  private version: string | undefined;
  private reporting: Promise<void> | undefined;
  private readonly log: Logger = moduleLogger('probation');

  constructor(
    private readonly updater: ProbationPort,
    private readonly limit = PROBATION_FAILURE_LIMIT,
  ) {}

  /** Call after the recognition step of every frame. */
  frame(r: RecogniseOutcome): void {
    const onProbation = this.updater.probationVersion;
    if (onProbation === undefined || r.modelVersion !== onProbation || this.reporting) return;
    if (this.version !== onProbation) {
      this.version = onProbation;
      this.failures = 0;
    }
    if (r.error === null) {
      if (r.matches.length > 0) this.failures = 0;
      return;
    }
    if (++this.failures < this.limit) return;
    const reason = `recognition failed on ${this.failures} frames in a row during probation (${r.error.message.slice(0, 200)})`;
    this.log.error(
      { version: onProbation, failures: this.failures, err: r.error.message },
      'model on probation keeps failing; rolling back',
    );
    this.reporting = this.updater
      .reportFailure(reason)
      .then((done) => {
        if (!done) this.log.warn({ version: onProbation }, 'nothing to roll back (probation already over)');
      })
      .catch((err: unknown) => {
        this.log.error({ err: (err as Error).message }, 'rollback failed');
      })
      .finally(() => {
        this.reporting = undefined;
        this.failures = 0;
      });
  }

  /** Resolves when a rollback it started has finished (tests; the daemon awaits it before stopping the updater). */
  async idle(): Promise<void> {
    await this.reporting;
  }
}
