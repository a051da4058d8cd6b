/**
 * Test hooks. Production code calls `crashPoint(step)` between the writes and renames of
 * an install; it does nothing unless a test has set `testHooks.crashAt` (the crash
 * injection test's child process does, and kills itself there with SIGKILL).
 * Nothing in src/ sets it, and no environment variable is read here.
 */
export const testHooks: { crashAt?: (step: string) => void } = {};

export function crashPoint(step: string): void {
  testHooks.crashAt?.(step);
}

/** Every step `crashPoint` is called with, in the order an install passes them. */
export const INSTALL_STEPS = [
  'staged', // bundle files written and synced in staging/, not yet renamed
  'tested', // verified and self-tested, before staging/ → versions/ rename
  'version-placed', // versions/<v> in place
  'marker-written', // probation.json's temp file written and synced, before its rename
  'marker-placed', // probation marker in place
  'previous-written', // previous.tmp symlink made, before its rename
  'previous-placed', // previous → old model
  'current-written', // current.tmp symlink made, before the swap
  'swapped', // current → new model (probation running)
  'state-written', // state.json's temp file written and synced, before its rename
  'installed', // state says installed; probation marker still present
  'probation-passed', // probation passed, before the marker is removed
] as const;
export type InstallStep = (typeof INSTALL_STEPS)[number];

/** The steps of a rollback (at start, or asked for during probation). */
export const ROLLBACK_STEPS = [
  'rollback-marked', // the marker records the rollback's reason
  'rollback-current-written', // current.tmp → old model, before its rename
  'rollback-current-placed', // current → old model
  'rollback-previous-written', // previous.tmp made, before its rename
  'rollback-state-written', // state.json's temp file written and synced, before its rename
  'rollback-state-placed', // state says rolled back; marker not yet removed
] as const;
