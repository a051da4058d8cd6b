/**
 * `facegate eval`: the model directory's recogniser on folders of photos (detection
 * included) or face crops (`--crops`), with the same face step as training and the device.
 *
 * `--data DIR` holds `DIR/<person>/images`; folders whose name is not one of the model's
 * classes are strangers (so `orl/validation` of a model trained on s1…s30 is an open-set
 * test by itself). `--unknown DIR` adds every image under DIR (recursively) as a stranger.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { DataError } from '../shared/errors.js';
import { isImageFile, listImages } from '../shared/image.js';
import type { Match } from '../shared/messages.js';
import { FaceExtractor, type FaceCropResult } from './faces.js';
import { Recogniser, type Precision, type PrecisionChoice } from './recogniser.js';
import { errorCurve, errorRates, equalErrorRate, type ErrorRates, type ScoredProbe } from './thresholds.js';

export interface EvalOptions {
  readonly modelDir: string;
  readonly data?: string;
  readonly unknown?: string;
  /** The folders hold face crops: skip detection. */
  readonly crops: boolean;
  readonly precision?: PrecisionChoice;
  readonly threads?: number;
  /** Images described per model run. */
  readonly batchSize?: number;
  readonly onProgress?: (done: number, total: number) => void;
}

/** One evaluated image. `truth` null for a stranger; `match` null when no face was found. */
export interface EvalProbe {
  readonly file: string;
  readonly truth: string | null;
  readonly match: Omit<Match, 'face'> | null;
  readonly reason?: string;
}

export interface PersonStats {
  readonly name: string;
  /** Images of this person whose face was found. */
  readonly images: number;
  readonly correct: number;
  /** Faces given this name (by anybody). */
  readonly namedAs: number;
  readonly precision: number | null;
  readonly recall: number | null;
}

export interface EvalResult {
  readonly model: string;
  readonly modelVersion: string;
  readonly precision: Precision;
  readonly mode: 'detect' | 'crops';
  readonly threshold: number;
  readonly minMargin: number;
  readonly rates: ErrorRates;
  /** FRR counting images without a found face as refused. */
  readonly frrIncludingNotFound: number;
  readonly knownImages: number;
  readonly unknownImages: number;
  readonly facesNotFound: number;
  readonly facesNotFoundKnown: number;
  readonly unreadable: number;
  /** Data folders that are not classes of the model, treated as strangers. */
  readonly strangerFolders: readonly string[];
  readonly classes: readonly string[];
  /** confusion[truth][predicted]; 'unknown' row/column for strangers and refusals. */
  readonly confusion: Record<string, Record<string, number>>;
  readonly perPerson: readonly PersonStats[];
  readonly curve: readonly ErrorRates[];
  readonly eer: ErrorRates | null;
  readonly probes: readonly EvalProbe[];
  /** Things that make the figures less meaningful (e.g. crops evaluated on a model trained on detected faces). */
  readonly warnings: readonly string[];
}

/** How the model's training images were cut (`training.data.imageStep`), when recorded. */
export function trainingImageStep(training: Readonly<Record<string, unknown>> | undefined): string | null {
  const data = training?.data;
  if (typeof data !== 'object' || data === null) return null;
  const step = (data as Record<string, unknown>).imageStep;
  return typeof step === 'string' ? step : null;
}

export const UNKNOWN = 'unknown';

async function imagesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true });
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await imagesUnder(p)));
    else if (e.isFile() && isImageFile(e.name)) out.push(p);
  }
  return out;
}

async function listData(
  data: string | undefined,
  unknown: string | undefined,
  classes: readonly string[],
): Promise<{ files: { file: string; truth: string | null }[]; strangerFolders: string[] }> {
  const files: { file: string; truth: string | null }[] = [];
  const strangerFolders: string[] = [];
  if (data) {
    let people: string[];
    try {
      people = (await readdir(data, { withFileTypes: true }))
        .filter((e) => e.isDirectory())
        .map((e) => e.name)
        .sort();
    } catch (err) {
      throw new DataError(
        `cannot read --data ${data}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}. Pass a folder with one sub-folder of images per person.`,
        { cause: err },
      );
    }
    if (people.length === 0)
      throw new DataError(
        `--data ${data} has no sub-folders: it must hold one folder of images per person (named like the model's classes)`,
      );
    for (const p of people) {
      const known = classes.includes(p);
      if (!known) strangerFolders.push(p);
      for (const f of await listImages(path.join(data, p))) files.push({ file: f, truth: known ? p : null });
    }
  }
  if (unknown) {
    let list: string[];
    try {
      list = await imagesUnder(unknown);
    } catch (err) {
      throw new DataError(
        `cannot read --unknown ${unknown}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        { cause: err },
      );
    }
    for (const f of list) files.push({ file: f, truth: null });
  }
  if (files.length === 0)
    throw new DataError('no images to evaluate: pass --data DIR (one folder per person) and/or --unknown DIR');
  return { files, strangerFolders };
}

/** Score used for the FAR/FRR curve: the similarity when the margin rule passes, else never accepted. */
export function curveScore(m: Omit<Match, 'face'>, minMargin: number): number {
  return m.margin >= minMargin ? m.similarity : -Infinity;
}

export async function evaluate(o: EvalOptions): Promise<EvalResult> {
  const recogniser = await Recogniser.load({ modelDir: o.modelDir, threads: o.threads, precision: o.precision });
  let extractor: FaceExtractor | null = null;
  try {
    const { classes, version } = recogniser.manifest;
    const { files, strangerFolders } = await listData(o.data, o.unknown, classes);
    extractor = await FaceExtractor.load({
      detect: !o.crops,
      crop: recogniser.recognition.crop,
      size: recogniser.inputSize,
      detector: { threads: o.threads },
    });
    const probes: EvalProbe[] = [];
    const batchSize = o.batchSize ?? 16;
    let unreadable = 0;
    for (let start = 0; start < files.length; start += batchSize) {
      const chunk = files.slice(start, start + batchSize);
      const got: { i: number; crop: FaceCropResult }[] = [];
      const results = await Promise.all(chunk.map(async (f) => extractor!.fromFile(f.file)));
      results.forEach((r, i) => {
        const f = chunk[i]!;
        if (r.ok) {
          got.push({ i, crop: r });
          return;
        }
        if (r.reason === 'unreadable') unreadable++;
        probes.push({ file: f.file, truth: f.truth, match: null, reason: r.detail });
      });
      const descriptions = await recogniser.describe(got.map((g) => g.crop.image));
      got.forEach((g, k) => {
        const f = chunk[g.i]!;
        const face = g.crop.face ?? {
          frameId: 0,
          box: { x: 0, y: 0, width: g.crop.image.width, height: g.crop.image.height },
          score: 1,
          keypoints: [],
        };
        const { face: _face, ...match } = recogniser.match(face, descriptions[k]!);
        probes.push({ file: f.file, truth: f.truth, match });
      });
      o.onProgress?.(Math.min(files.length, start + batchSize), files.length);
    }
    probes.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
    const trained = trainingImageStep(recogniser.manifest.training);
    const mode = o.crops ? 'crops' : 'detect';
    const warnings =
      trained && !trained.startsWith(mode)
        ? [
            `the model was trained on ${trained === 'crops' ? 'whole face crops (--crops)' : 'detected faces'} but is evaluated ${o.crops ? 'on whole crops (--crops)' : 'with detection'}: faces are cut differently, so these figures understate what it does on ${trained === 'crops' ? 'crops' : 'camera frames'}`,
          ]
        : [];
    return summarise(probes, {
      warnings,
      model: o.modelDir,
      modelVersion: version,
      precision: recogniser.precision,
      mode,
      threshold: recogniser.recognition.threshold,
      minMargin: recogniser.recognition.minMargin,
      classes,
      strangerFolders,
      unreadable,
    });
  } finally {
    await extractor?.close();
    await recogniser.close();
  }
}

/** Pure: metrics, confusion matrix, per-person precision/recall and the curve from the probes. */
export function summarise(
  probes: readonly EvalProbe[],
  meta: {
    warnings?: readonly string[];
    model: string;
    modelVersion: string;
    precision: Precision;
    mode: 'detect' | 'crops';
    threshold: number;
    minMargin: number;
    classes: readonly string[];
    strangerFolders: readonly string[];
    unreadable: number;
  },
): EvalResult {
  const found = probes.filter((p): p is EvalProbe & { match: NonNullable<EvalProbe['match']> } => p.match !== null);
  const scored: ScoredProbe[] = found.map((p) => ({
    truth: p.truth,
    predicted: p.match.candidate,
    score: curveScore(p.match, meta.minMargin),
  }));
  const rates = errorRates(scored, meta.threshold);
  const rows = [...meta.classes, UNKNOWN];
  const confusion: Record<string, Record<string, number>> = Object.fromEntries(
    rows.map((r) => [r, Object.fromEntries(rows.map((c) => [c, 0]))]),
  );
  for (const p of found) {
    const t = p.truth ?? UNKNOWN;
    const pred = p.match.label ?? UNKNOWN;
    const row = confusion[t]!;
    row[pred] = (row[pred] ?? 0) + 1;
  }
  const perPerson: PersonStats[] = meta.classes.map((name) => {
    const images = found.filter((p) => p.truth === name).length;
    const correct = found.filter((p) => p.truth === name && p.match.label === name).length;
    const namedAs = found.filter((p) => p.match.label === name).length;
    return {
      name,
      images,
      correct,
      namedAs,
      precision: namedAs ? correct / namedAs : null,
      recall: images ? correct / images : null,
    };
  });
  const knownImages = probes.filter((p) => p.truth !== null).length;
  const notFound = probes.filter((p) => p.match === null);
  const notFoundKnown = notFound.filter((p) => p.truth !== null).length;
  const knownFound = knownImages - notFoundKnown;
  const correct = Math.round(rates.accuracy * knownFound);
  const curve = errorCurve(scored);
  return {
    model: meta.model,
    modelVersion: meta.modelVersion,
    precision: meta.precision,
    mode: meta.mode,
    threshold: meta.threshold,
    minMargin: meta.minMargin,
    rates,
    frrIncludingNotFound: knownImages ? (knownImages - correct) / knownImages : 0,
    knownImages,
    unknownImages: probes.length - knownImages,
    facesNotFound: notFound.length,
    facesNotFoundKnown: notFoundKnown,
    unreadable: meta.unreadable,
    strangerFolders: meta.strangerFolders,
    classes: meta.classes,
    confusion,
    perPerson,
    curve,
    eer: equalErrorRate(curve),
    probes,
    warnings: meta.warnings ?? [],
  };
}

const r4 = (x: number): number => Math.round(x * 1e4) / 1e4;

/** The `--json` object (snake_case keys as documented in docs/recognition.md, "facegate eval"). */
export function resultJson(r: EvalResult): Record<string, unknown> {
  return {
    model: r.model,
    model_version: r.modelVersion,
    precision: r.precision,
    mode: r.mode,
    accuracy: r4(r.rates.accuracy),
    far: r4(r.rates.far),
    frr: r4(r.rates.frr),
    frr_including_not_found: r4(r.frrIncludingNotFound),
    misidentified: r4(r.rates.misidentified),
    threshold: r.threshold,
    min_margin: r.minMargin,
    known_images: r.knownImages,
    unknown_images: r.unknownImages,
    faces_not_found: r.facesNotFound,
    faces_not_found_known: r.facesNotFoundKnown,
    unreadable: r.unreadable,
    stranger_folders: r.strangerFolders,
    eer: r.eer ? { threshold: r.eer.threshold, far: r4(r.eer.far), frr: r4(r.eer.frr) } : null,
    warnings: r.warnings,
  };
}
