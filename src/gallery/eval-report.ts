/**
 * `facegate eval --gallery --report OUT`: report.json (figures and the curve) and roc.png.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type * as vega from 'vega';
import { renderPng } from '../recognise/report.js';
import { galleryResultJson, type GalleryEvalResult } from './eval.js';

/** The gallery's ROC: FRR against FAR (log scale), with the operating point at the threshold. */
export function galleryRocSpec(r: GalleryEvalResult): vega.Spec {
  const values = r.curve.filter((c) => c.far > 0).map((c) => ({ far: Math.max(c.far, 1e-4), frr: c.frr }));
  const title = `${r.settings.backbone}, ${r.settings.alignment.method}${r.settings.flip ? ', flip' : ''}, ${r.settings.scoring.rule}: ${r.enrolled} people`;
  return {
    $schema: 'https://vega.github.io/schema/vega/v5.json',
    width: 420,
    height: 320,
    padding: 8,
    title: { text: title, fontSize: 13 },
    data: [
      { name: 'curve', values },
      { name: 'point', values: [{ far: Math.max(r.frame.far, 1e-4), frr: r.frame.frr }] },
    ],
    scales: [
      { name: 'x', type: 'log', domain: [1e-4, 1], range: 'width' },
      { name: 'y', type: 'linear', domain: [0, 0.5], range: 'height', clamp: true },
    ],
    axes: [
      { orient: 'bottom', scale: 'x', title: 'false-accept rate per frame (strangers named)', grid: true },
      { orient: 'left', scale: 'y', title: 'false-reject rate per frame', grid: true },
    ],
    marks: [
      {
        type: 'line',
        from: { data: 'curve' },
        encode: {
          enter: {
            x: { scale: 'x', field: 'far' },
            y: { scale: 'y', field: 'frr' },
            stroke: { value: '#1f77b4' },
            strokeWidth: { value: 2 },
          },
        },
      },
      {
        type: 'symbol',
        from: { data: 'point' },
        encode: {
          enter: {
            x: { scale: 'x', field: 'far' },
            y: { scale: 'y', field: 'frr' },
            fill: { value: '#d62728' },
            size: { value: 80 },
          },
        },
      },
      {
        type: 'text',
        from: { data: 'point' },
        encode: {
          enter: {
            x: { scale: 'x', field: 'far', offset: 8 },
            y: { scale: 'y', field: 'frr', offset: -8 },
            text: { value: `threshold ${r.threshold.toFixed(3)}` },
            fontSize: { value: 11 },
          },
        },
      },
    ],
  };
}

/** Gallery mode: report.json (figures and the curve) and roc.png into `dir`; returns the paths. */
export async function writeGalleryReport(r: GalleryEvalResult, dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const files = { json: path.join(dir, 'report.json'), roc: path.join(dir, 'roc.png') };
  const json = {
    ...galleryResultJson(r),
    curve: r.curve.map((c) => ({ ...c, threshold: Number.isFinite(c.threshold) ? c.threshold : null })),
  };
  await writeFile(files.json, JSON.stringify(json, null, 2) + '\n');
  await renderPng(galleryRocSpec(r), files.roc);
  return Object.values(files);
}
