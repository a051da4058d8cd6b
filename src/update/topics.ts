/**
 * The updater's topics, relative to `<base>/<kiosk>` (kiosk) or absolute (fleet).
 * Kept here until src/publish/topics.ts (the one topic module) takes them over; nothing
 * else builds update topics.
 */
export const MODEL_TOPIC = 'model';
export const OFFER_TOPIC = 'update/offer';
export const CHUNK_TOPIC = 'update/chunk';
/** Fleet-wide level under the base topic: `<base>/fleet/update/offer`. A kiosk id must not be "fleet". */
export const FLEET_LEVEL = 'fleet';

export function kioskTopic(baseTopic: string, kioskId: string, relative: string): string {
  return `${baseTopic}/${kioskId}/${relative}`;
}

export function fleetTopic(baseTopic: string, relative: string): string {
  return `${baseTopic}/${FLEET_LEVEL}/${relative}`;
}

/** Retained on `<base>/<kiosk>/model`. */
export interface ModelStatePayload {
  readonly kiosk: string;
  /** Version the kiosk runs now. */
  readonly version: string;
  /** Version kept for rollback (null: none). */
  readonly previous: string | null;
  /** `installed`, `rejected: <reason>`, `rolled back: <reason>`, or null before any update. */
  readonly state: string | null;
  /** Version the last update was about. */
  readonly offered: string | null;
  /** Time of the last update state (ISO 8601). */
  readonly at: string | null;
  /** While a new model is on probation: when it ends (ISO 8601). */
  readonly probationUntil: string | null;
  /** A transfer in progress: version, chunks received of chunks expected. */
  readonly transfer: { readonly version: string; readonly received: number; readonly chunks: number } | null;
}
