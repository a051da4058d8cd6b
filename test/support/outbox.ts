/**
 * Shared set-up of the outbox tests (the unit test, its crash-injection child and the
 * publish tests): a recognition event with a given sequence number, and an outbox opened
 * and loaded on the kiosk database in a state folder.
 */
import { KioskDb, kioskDbPath } from '../../src/state/db.js';
import { Outbox } from '../../src/publish/outbox.js';
import type { EventPayload } from '../../src/publish/topics.js';

/** A recognition event for alice whose id and frame follow `seq`. */
export const testEvent = (seq: number): EventPayload => ({
  id: `id-${seq}`,
  seq,
  kind: 'recognized',
  name: 'alice',
  score: 0.9,
  time: new Date(0).toISOString(),
  modelVersion: 'v1',
  kiosk: 'k',
  camera: 'c',
  trackId: 1,
  frameId: seq,
  delayed: false,
});

/** Opens the kiosk database in `dir` and loads an outbox of at most `max` events on it. */
export function openOutbox(dir: string, max = 100): { db: KioskDb; o: Outbox } {
  const db = KioskDb.open(kioskDbPath(dir));
  const o = new Outbox(db, dir, max);
  o.load();
  return { db, o };
}
