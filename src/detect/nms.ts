/** Non-maximum suppression on corner boxes, as a pure function (the geometry is src/shared/geometry.ts). */
import { iou, type Corners } from '../shared/geometry.js';

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
