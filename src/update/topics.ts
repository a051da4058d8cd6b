/**
 * The updater's topics. Names come from src/publish/topics.ts (the one topic module);
 * this file adds the payload of the retained `<base>/<kiosk>/model` topic.
 */
import { UPDATE_TOPICS } from '../publish/topics.js';

export { FLEET_LEVEL, fleetTopic, kioskTopic } from '../publish/topics.js';
export const MODEL_TOPIC = UPDATE_TOPICS.model;
export const OFFER_TOPIC = UPDATE_TOPICS.offer;
export const CHUNK_TOPIC = UPDATE_TOPICS.chunk;

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
