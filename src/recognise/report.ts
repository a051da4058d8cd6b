/**
 * `facegate eval --report OUT`: report.json (metrics, confusion matrix, per-person precision
 * and recall, the FAR/FRR curve, every probe) and three charts as PNG, drawn with Vega
 * (headless SVG) and rasterised by sharp.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import * as vega from 'vega';
import { resultJson, UNKNOWN, type EvalResult } from './evaluate.js';

export async function renderPng(spec: vega.Spec, file: string): Promise<void> {
  const view = new vega.View(vega.parse(spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  await sharp(Buffer.from(svg), { density: 144 }).png().toFile(file);
}

export function confusionSpec(r: EvalResult): vega.Spec {
  const labels = [...r.classes, UNKNOWN];
  const values = labels.flatMap((t) =>
    labels.map((p) => ({ truth: t, predicted: p, count: r.confusion[t]?.[p] ?? 0 })),
  );
  const cell = Math.max(8, Math.min(28, Math.floor(640 / labels.length)));
  const size = cell * labels.length;
  return {
    $schema: 'https://vega.github.io/schema/vega/v5.json',
    width: size,
    height: size,
    padding: 8,
    title: { text: `confusion matrix (${r.mode}, threshold ${r.threshold.toFixed(3)})`, fontSize: 13 },
    data: [{ name: 'cells', values }],
    scales: [
      { name: 'x', type: 'band', domain: labels, range: 'width' },
      { name: 'y', type: 'band', domain: labels, range: 'height' },
      {
        name: 'colour',
        type: 'linear',
        domain: { data: 'cells', field: 'count' },
        range: ['#ffffff', '#08519c'],
        zero: true,
      },
    ],
    axes: [
      {
        orient: 'bottom',
        scale: 'x',
        title: 'predicted',
        labelAngle: -90,
        labelAlign: 'right',
        labelBaseline: 'middle',
        labelFontSize: 9,
      },
      { orient: 'left', scale: 'y', title: 'true', labelFontSize: 9 },
    ],
    legends: [{ fill: 'colour', title: 'faces', type: 'gradient' }],
    marks: [
      {
        type: 'rect',
        from: { data: 'cells' },
        encode: {
          enter: {
            x: { scale: 'x', field: 'predicted' },
            width: { scale: 'x', band: 1 },
            y: { scale: 'y', field: 'truth' },
            height: { scale: 'y', band: 1 },
            fill: { scale: 'colour', field: 'count' },
            stroke: { value: '#eee' },
          },
        },
      },
      {
        type: 'text',
        from: { data: 'cells' },
        encode: {
          enter: {
            x: { scale: 'x', field: 'predicted', band: 0.5 },
            y: { scale: 'y', field: 'truth', band: 0.5 },
            text: { signal: "datum.count > 0 ? datum.count : ''" },
            align: { value: 'center' },
            baseline: { value: 'middle' },
            fontSize: { value: Math.max(6, cell / 3) },
            fill: { signal: "datum.count > 3 ? 'white' : 'black'" },
          },
        },
      },
    ],
  };
}

export function perPersonSpec(r: EvalResult): vega.Spec {
  const values = r.perPerson.flatMap((p) => [
    { name: p.name, metric: 'precision', value: p.precision ?? 0 },
    { name: p.name, metric: 'recall', value: p.recall ?? 0 },
  ]);
  return {
    $schema: 'https://vega.github.io/schema/vega/v5.json',
    width: Math.max(300, r.perPerson.length * 22),
    height: 220,
    padding: 8,
    title: { text: 'per person: precision and recall', fontSize: 13 },
    data: [{ name: 'rows', values }],
    scales: [
      { name: 'x', type: 'band', domain: { data: 'rows', field: 'name' }, range: 'width', padding: 0.2 },
      { name: 'y', type: 'linear', domain: [0, 1], range: 'height' },
      { name: 'colour', type: 'ordinal', domain: ['precision', 'recall'], range: ['#1f77b4', '#ff7f0e'] },
    ],
    axes: [
      { orient: 'bottom', scale: 'x', labelAngle: -90, labelAlign: 'right', labelBaseline: 'middle' },
      { orient: 'left', scale: 'y', grid: true },
    ],
    legends: [{ fill: 'colour' }],
    marks: [
      {
        type: 'group',
        from: { facet: { data: 'rows', name: 'facet', groupby: 'name' } },
        encode: { enter: { x: { scale: 'x', field: 'name' } } },
        signals: [{ name: 'width', update: "bandwidth('x')" }],
        scales: [{ name: 'pos', type: 'band', range: 'width', domain: ['precision', 'recall'] }],
        marks: [
          {
            type: 'rect',
            from: { data: 'facet' },
            encode: {
              enter: {
                x: { scale: 'pos', field: 'metric' },
                width: { scale: 'pos', band: 1 },
                y: { scale: 'y', field: 'value' },
                y2: { scale: 'y', value: 0 },
                fill: { scale: 'colour', field: 'metric' },
              },
            },
          },
        ],
      },
    ],
  };
}

/** A point of a FAR/FRR curve as drawn; extra fields (e.g. the threshold) ride along in the spec's data. */
export interface CurvePoint {
  readonly far: number;
  readonly frr: number;
}

export interface RocSpecOptions<P extends CurvePoint> {
  readonly title: string;
  readonly curve: readonly P[];
  /** The operating point, marked and labelled. */
  readonly point: CurvePoint;
  readonly label: string;
  readonly farTitle: string;
  readonly frrTitle: string;
  /**
   * Log FAR axis from this floor to 1 (linear from 0 when unset): curve points at FAR 0 are
   * dropped (a log axis has no 0), the rest and the operating point are held at the floor or above.
   */
  readonly logFarFloor?: number;
  /** Top of the FRR axis (default 1); below 1 the line is clamped to it. */
  readonly frrMax?: number;
  /** Draw the curve as steps (each threshold holds its rates until the next one). */
  readonly steps?: boolean;
}

/** A ROC chart: FRR against FAR with the operating point and its label. */
export function rocSpec<P extends CurvePoint>(o: RocSpecOptions<P>): vega.Spec {
  const floor = o.logFarFloor;
  const atFloor = <Q extends CurvePoint>(c: Q): Q => (floor === undefined ? c : { ...c, far: Math.max(c.far, floor) });
  const values = floor === undefined ? o.curve : o.curve.filter((c) => c.far > 0).map(atFloor);
  const frrMax = o.frrMax ?? 1;
  return {
    $schema: 'https://vega.github.io/schema/vega/v5.json',
    width: 420,
    height: 320,
    padding: 8,
    title: { text: o.title, fontSize: 13 },
    data: [
      { name: 'curve', values },
      { name: 'point', values: [atFloor({ far: o.point.far, frr: o.point.frr })] },
    ],
    scales: [
      floor === undefined
        ? { name: 'x', type: 'linear', domain: [0, 1], range: 'width' }
        : { name: 'x', type: 'log', domain: [floor, 1], range: 'width' },
      { name: 'y', type: 'linear', domain: [0, frrMax], range: 'height', ...(frrMax < 1 ? { clamp: true } : {}) },
    ],
    axes: [
      { orient: 'bottom', scale: 'x', title: o.farTitle, grid: true },
      { orient: 'left', scale: 'y', title: o.frrTitle, grid: true },
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
            ...(o.steps ? { interpolate: { value: 'step-after' } } : {}),
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
            text: { value: o.label },
            fontSize: { value: 11 },
          },
        },
      },
    ],
  };
}

/** The model's FAR/FRR curve over thresholds, with the model's threshold marked. */
export function curveSpec(r: EvalResult): vega.Spec {
  return rocSpec({
    title: 'false accepts against false rejects',
    curve: r.curve.map((c) => ({
      far: c.far,
      frr: c.frr,
      threshold: Number.isFinite(c.threshold) ? c.threshold : null,
    })),
    point: r.rates,
    label: `model threshold ${r.threshold.toFixed(3)}`,
    farTitle: 'false-accept rate (strangers named)',
    frrTitle: 'false-reject rate (known refused or misnamed)',
    steps: true,
  });
}

/** Writes report.json, confusion.png, per_person.png and far_frr.png into `dir`; returns the paths. */
export async function writeReport(r: EvalResult, dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const json = {
    ...resultJson(r),
    classes: r.classes,
    confusion: r.confusion,
    per_person: r.perPerson,
    curve: r.curve.map((c) => ({ ...c, threshold: Number.isFinite(c.threshold) ? c.threshold : null })),
    probes: r.probes.map((p) => ({
      file: p.file,
      truth: p.truth,
      ...(p.match
        ? {
            label: p.match.label,
            candidate: p.match.candidate,
            similarity: p.match.similarity,
            probability: p.match.probability,
            margin: p.match.margin,
          }
        : { face_found: false, reason: p.reason }),
    })),
  };
  const files = {
    json: path.join(dir, 'report.json'),
    confusion: path.join(dir, 'confusion.png'),
    perPerson: path.join(dir, 'per_person.png'),
    curve: path.join(dir, 'far_frr.png'),
  };
  await writeFile(files.json, JSON.stringify(json, null, 2) + '\n');
  await renderPng(confusionSpec(r), files.confusion);
  await renderPng(perPersonSpec(r), files.perPerson);
  await renderPng(curveSpec(r), files.curve);
  return Object.values(files);
}
