/**
 * Frames and faces recognition had to skip: a frame that does not decode, a face too
 * small or too blurred to recognise. The pipelines report them here; the daemon counts
 * them in /metrics and lets health say when the camera sends nothing readable. One
 * channel for the whole process, as every pipeline (trained model, gallery) skips alike.
 */
export type FrameSkipReason = 'unreadable' | 'too-small' | 'too-blurred';

type Listener = (reason: FrameSkipReason) => void;
const listeners = new Set<Listener>();

export function reportFrameSkip(reason: FrameSkipReason): void {
  for (const l of listeners) l(reason);
}

/** Calls `listener` on every skip until the returned function is called. */
export function onFrameSkip(listener: Listener): () => void {
  listeners.add(listener);
  return () => void listeners.delete(listener);
}
