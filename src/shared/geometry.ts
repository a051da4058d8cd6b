/** Box geometry as pure functions: corner boxes, area, intersection over union (detector NMS, tracker). */
import type { Box } from './messages.js';

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
