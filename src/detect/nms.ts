/** Intersection over union and non-maximum suppression on corner boxes, as pure functions. */
import type { Box } from '../shared/messages.js';

export interface Corners {
  readonly x1: number;
  readonly y1: number;
  readonly x2: number;
  readonly y2: number;
}

export function area(b: Corners): number {
  return Math.max(0, b.x2 - b.x1) * Math.max(0, b.y2 - b.y1);
}

/** Intersection over union of two corner boxes; 0 when either is empty. */
export function iou(a: Corners, b: Corners): number {
  const iw = Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1);
  const ih = Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const union = area(a) + area(b) - inter;
  return union > 0 ? inter / union : 0;
}

export function boxToCorners(b: Box): Corners {
  return { x1: b.x, y1: b.y, x2: b.x + b.width, y2: b.y + b.height };
}

export function boxIou(a: Box, b: Box): number {
  return iou(boxToCorners(a), boxToCorners(b));
}

/**
 * Greedy NMS: highest score first, drop every box overlapping a kept one by more than
 * `iouThreshold`. Returns the kept items, best first, at most `maxResults`. Ties keep input order.
 */
export function nonMaxSuppression<T extends Corners & { readonly score: number }>(
  boxes: readonly T[],
  iouThreshold: number,
  maxResults = Infinity,
): T[] {
  const order = boxes.map((b, i) => ({ b, i })).sort((p, q) => q.b.score - p.b.score || p.i - q.i);
  const kept: T[] = [];
  for (const { b } of order) {
    if (kept.length >= maxResults) break;
    if (kept.every((k) => iou(k, b) <= iouThreshold)) kept.push(b);
  }
  return kept;
}
