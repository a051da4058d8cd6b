/**
 * `facegate eval --gallery --report OUT`: report.json (figures and the curve) and roc.png.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type * as vega from 'vega';
import { renderPng, rocSpec } from '../recognise/report.js';
import { galleryResultJson, type GalleryEvalResult } from './eval.js';

/** The gallery's ROC: FRR against FAR (log scale), with the operating point at the threshold. */
export function galleryRocSpec(r: GalleryEvalResult): vega.Spec {
  const title = `${r.settings.backbone}, ${r.settings.alignment.method}${r.settings.flip ? ', flip' : ''}, ${r.settings.scoring.rule}: ${r.enrolled} people`;
  return rocSpec({
    title,
    curve: r.curve.map((c) => ({ far: c.far, frr: c.frr })),
    point: r.frame,
    label: `threshold ${r.threshold.toFixed(3)}`,
    farTitle: 'false-accept rate per frame (strangers named)',
    frrTitle: 'false-reject rate per frame',
    logFarFloor: 1e-4,
    frrMax: 0.5,
  });
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
