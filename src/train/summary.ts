/**
 * A model summary like Keras's `model.summary()`: the whole network (frozen backbone
 * layers, global average pooling, the head), output shapes, parameters, and trainable
 * vs frozen totals.
 */
import type * as tf from '@tensorflow/tfjs';
import type { SummaryRow } from './backbone.js';

export interface SummaryTotals {
  readonly total: number;
  readonly trainable: number;
  readonly frozen: number;
}

export function headRows(head: tf.LayersModel): SummaryRow[] {
  return head.layers.map((l) => ({
    name: l.name,
    type: l.getClassName(),
    shape: `(None, ${(l.outputShape as (number | null)[]).slice(1).join(', ')})`,
    params: l.countParams(),
  }));
}

export function summaryTotals(backbone: readonly SummaryRow[], head: readonly SummaryRow[]): SummaryTotals {
  const frozen = backbone.reduce((s, r) => s + r.params, 0);
  const trainable = head.reduce((s, r) => s + r.params, 0);
  return { total: frozen + trainable, trainable, frozen };
}

const fmt = (n: number): string => n.toLocaleString('en-US');

export function formatSummary(
  title: string,
  backbone: readonly SummaryRow[],
  pooling: SummaryRow | null,
  head: readonly SummaryRow[],
): string {
  const rows = [...backbone, ...(pooling ? [pooling] : []), ...head];
  const c1 = Math.max(28, ...rows.map((r) => `${r.name} (${r.type})`.length + 2));
  const c2 = Math.max(24, ...rows.map((r) => r.shape.length + 2));
  const width = c1 + c2 + 12;
  const line = (ch: string): string => ch.repeat(width);
  const row = (a: string, b: string, c: string): string => a.padEnd(c1) + b.padEnd(c2) + c;
  const out = [`Model: "${title}"`, line('_'), row('Layer (type)', 'Output Shape', 'Param #'), line('=')];
  rows.forEach((r, i) => {
    out.push(row(`${r.name} (${r.type})`, r.shape, fmt(r.params)));
    out.push(i === rows.length - 1 ? line('=') : line('_'));
  });
  const t = summaryTotals(backbone, head);
  out.push(
    `Total params: ${fmt(t.total)}`,
    `Trainable params: ${fmt(t.trainable)} (head)`,
    `Non-trainable params: ${fmt(t.frozen)} (frozen backbone, BatchNorm statistics included)`,
    line('_'),
  );
  return out.join('\n');
}
