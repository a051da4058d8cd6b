/**
 * The tutorial's epoch plot as a real chart: loss (top) and accuracy (bottom) per epoch,
 * training and validation, the best epoch marked. Built as a Vega spec, rendered to SVG
 * headless (`renderer: 'none'`), rasterised to PNG by sharp.
 */
import sharp from 'sharp';
import * as vega from 'vega';
import type { EpochLogs } from './fit.js';

const WIDTH = 560;
const PANEL = 220;

function panel(title: string, metric: 'loss' | 'accuracy', y: number, bestEpoch: number): vega.GroupMark {
  const data = `rows_${metric}`;
  return {
    type: 'group',
    encode: { enter: { x: { value: 0 }, y: { value: y }, width: { value: WIDTH }, height: { value: PANEL } } },
    title: { text: title, anchor: 'start', fontSize: 13 },
    scales: [
      { name: 'x', type: 'linear', domain: { data, field: 'epoch' }, range: [0, WIDTH], nice: false, zero: false },
      {
        name: 'y',
        type: 'linear',
        domain: { data, field: 'value' },
        range: [PANEL, 0],
        nice: true,
        zero: metric === 'accuracy',
      },
      { name: 'colour', type: 'ordinal', domain: ['train', 'validation'], range: ['#1f77b4', '#ff7f0e'] },
    ],
    axes: [
      { orient: 'bottom', scale: 'x', title: 'epoch', tickMinStep: 1, format: 'd' },
      { orient: 'left', scale: 'y', title: metric, grid: true },
    ],
    legends: [{ fill: 'colour', orient: 'right', title: '' }],
    marks: [
      {
        type: 'group',
        from: { facet: { name: `${data}_series`, data, groupby: 'set' } },
        marks: [
          {
            type: 'line',
            from: { data: `${data}_series` },
            encode: {
              enter: {
                x: { scale: 'x', field: 'epoch' },
                y: { scale: 'y', field: 'value' },
                stroke: { scale: 'colour', field: 'set' },
                strokeWidth: { value: 2 },
              },
            },
          },
          {
            type: 'symbol',
            from: { data: `${data}_series` },
            encode: {
              enter: {
                x: { scale: 'x', field: 'epoch' },
                y: { scale: 'y', field: 'value' },
                fill: { scale: 'colour', field: 'set' },
                size: { value: 25 },
              },
            },
          },
        ],
      },
      {
        type: 'rule',
        encode: {
          enter: {
            x: { scale: 'x', value: bestEpoch },
            y: { value: 0 },
            y2: { value: PANEL },
            stroke: { value: '#888' },
            strokeDash: { value: [4, 4] },
          },
        },
      },
    ],
  };
}

export function historySpec(history: readonly EpochLogs[], bestEpoch: number, title: string): vega.Spec {
  const rows = (m: 'loss' | 'accuracy'): { epoch: number; set: string; value: number }[] =>
    history
      .flatMap((h) => [
        { epoch: h.epoch, set: 'train', value: m === 'loss' ? h.loss : h.accuracy },
        { epoch: h.epoch, set: 'validation', value: m === 'loss' ? h.val_loss : h.val_accuracy },
      ])
      .filter((r) => Number.isFinite(r.value));
  return {
    $schema: 'https://vega.github.io/schema/vega/v5.json',
    width: WIDTH,
    height: 2 * PANEL + 70,
    padding: 16,
    background: 'white',
    title: { text: title, fontSize: 15 },
    config: {
      text: { font: 'DejaVu Sans' },
      axis: { labelFont: 'DejaVu Sans', titleFont: 'DejaVu Sans' },
      legend: { labelFont: 'DejaVu Sans' },
      title: { font: 'DejaVu Sans' },
    },
    data: [
      { name: 'rows_loss', values: rows('loss') },
      { name: 'rows_accuracy', values: rows('accuracy') },
    ],
    marks: [
      panel('loss (dashed line: best epoch, restored)', 'loss', 0, bestEpoch),
      panel('accuracy', 'accuracy', PANEL + 70, bestEpoch),
    ],
  };
}

export async function historySvg(history: readonly EpochLogs[], bestEpoch: number, title: string): Promise<string> {
  const view = new vega.View(vega.parse(historySpec(history, bestEpoch, title)), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export async function historyPng(history: readonly EpochLogs[], bestEpoch: number, title: string): Promise<Buffer> {
  const svg = await historySvg(history, bestEpoch, title);
  return sharp(Buffer.from(svg), { density: 144 }).png().toBuffer();
}
