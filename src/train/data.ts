/**
 * Training data: folders of images laid out like Keras `flow_from_directory`.
 *
 * Layouts (checked in this order):
 * - `DIR/train/<class>/…` and `DIR/validation/<class>/…` (also `val/`, `valid/`);
 * - `DIR/train/<class>/…` alone: the validation set is split off, stratified and seeded;
 * - `DIR/<class>/…`: the same split.
 *
 * Classes sorted by name give the indices. Every image passes through ONE replaceable
 * step, {@link ImagePreparer}: "file → 224×224 RGB, or skip with a reason". Today that
 * step is {@link cropPreparer} (folders of ready face crops, `--crops`); face detection
 * and alignment (issue 4) plugs in as another preparer.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { DataError } from '../shared/errors.js';
import { decodeRgb, listImages, type RgbImage } from '../shared/image.js';
import { deriveSeed, mulberry32, permutation } from './rng.js';

export const VALIDATION_DIR_NAMES = ['validation', 'val', 'valid'] as const;

/** What the preparer makes of one file. */
export type Prepared =
  { readonly ok: true; readonly image: RgbImage } | { readonly ok: false; readonly reason: string };

/** The one step between a file and the network input. */
export interface ImagePreparer {
  /** Shown in logs and written to the manifest (e.g. `crops`). */
  readonly name: string;
  prepare(file: string): Promise<Prepared>;
}

/** Folders of ready face crops: decode and resize to the input size (like Keras `target_size`). */
export function cropPreparer(size: number): ImagePreparer {
  return {
    name: 'crops',
    async prepare(file: string): Promise<Prepared> {
      try {
        return { ok: true, image: await decodeRgb(file, { width: size, height: size }) };
      } catch (err) {
        return { ok: false, reason: `cannot decode: ${(err as Error).message.split('\n')[0]}` };
      }
    },
  };
}

export interface Sample {
  readonly file: string;
  readonly label: number;
  readonly image: RgbImage;
}

export interface SkippedFile {
  readonly file: string;
  readonly reason: string;
}

export interface Dataset {
  readonly classes: readonly string[];
  readonly train: readonly Sample[];
  readonly validation: readonly Sample[];
  readonly skipped: readonly SkippedFile[];
  /** How the validation set was obtained. */
  readonly layout: 'train+validation' | 'train+split' | 'flat+split';
  readonly validationSplit: number | null;
}

export interface LoadOptions {
  readonly dir: string;
  readonly preparer: ImagePreparer;
  /** Fraction held out when there is no validation folder. */
  readonly validationSplit: number;
  readonly seed: number;
  /** Only these classes (for small runs and tests); all when omitted. */
  readonly classes?: readonly string[];
  /** Called after each file, for a progress bar. */
  readonly onProgress?: (done: number, total: number) => void;
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/** Sub-folders of `dir`, sorted by name (Keras sorts class names the same way). */
async function classFolders(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

interface FileList {
  readonly classes: string[];
  readonly files: Map<string, string[]>;
}

async function scan(root: string): Promise<FileList> {
  const classes = await classFolders(root);
  const files = new Map<string, string[]>();
  for (const c of classes) files.set(c, await listImages(path.join(root, c)));
  return { classes, files };
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Finds the layout, checks the classes, prepares every image. Throws a DataError that
 * says what to fix for: no classes, a single class, an empty class, different class
 * sets in train and validation.
 */
export async function loadDataset(o: LoadOptions): Promise<Dataset> {
  if (!(await isDir(o.dir)))
    throw new DataError(`data folder ${o.dir} does not exist: pass --data DIR with DIR/train/<class>/ images`);
  const trainRoot = path.join(o.dir, 'train');
  let valRoot: string | null = null;
  let layout: Dataset['layout'];
  let trainList: FileList;
  if (await isDir(trainRoot)) {
    for (const name of VALIDATION_DIR_NAMES) {
      if (await isDir(path.join(o.dir, name))) {
        valRoot = path.join(o.dir, name);
        break;
      }
    }
    trainList = await scan(trainRoot);
    layout = valRoot ? 'train+validation' : 'train+split';
  } else {
    trainList = await scan(o.dir);
    layout = 'flat+split';
  }
  const trainWhere = layout === 'flat+split' ? o.dir : trainRoot;
  let classes = trainList.classes;
  const valList: FileList | null = valRoot ? await scan(valRoot) : null;

  if (valList && !sameSet(classes, valList.classes)) {
    const onlyTrain = classes.filter((c) => !valList?.classes.includes(c));
    const onlyVal = valList.classes.filter((c) => !classes.includes(c));
    throw new DataError(
      `train and validation have different classes: only in ${trainWhere}: [${onlyTrain.join(', ')}]; ` +
        `only in ${valRoot ?? ''}: [${onlyVal.join(', ')}]. Every person needs a folder with images in both.`,
    );
  }
  if (o.classes) {
    const missing = o.classes.filter((c) => !classes.includes(c));
    if (missing.length)
      throw new DataError(`classes not found in ${trainWhere}: ${missing.join(', ')} (found: ${classes.join(', ')})`);
    classes = [...o.classes].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }
  if (classes.length === 0) {
    throw new DataError(`no class folders in ${trainWhere}: put each person's images in ${trainWhere}/<person>/`);
  }
  if (classes.length === 1) {
    throw new DataError(
      `only one class (${classes[0] ?? ''}) in ${trainWhere}: a classifier needs at least two people, add another folder`,
    );
  }
  const emptyIn = (list: FileList, where: string): void => {
    const empty = classes.filter((c) => (list.files.get(c) ?? []).length === 0);
    if (empty.length) {
      throw new DataError(
        `empty class folder${empty.length > 1 ? 's' : ''} in ${where}: ${empty.join(', ')}. Add images (JPEG, PNG, GIF, WebP) or remove the folder.`,
      );
    }
  };
  emptyIn(trainList, trainWhere);
  if (valList && valRoot) emptyIn(valList, valRoot);

  // Prepare every image through the one replaceable step.
  const total = classes.reduce(
    (n, c) => n + (trainList.files.get(c)?.length ?? 0) + (valList?.files.get(c)?.length ?? 0),
    0,
  );
  let done = 0;
  const skipped: SkippedFile[] = [];
  const prepareAll = async (list: FileList): Promise<Sample[]> => {
    const out: Sample[] = [];
    for (const [label, c] of classes.entries()) {
      for (const file of list.files.get(c) ?? []) {
        const r = await o.preparer.prepare(file);
        if (r.ok) out.push({ file, label, image: r.image });
        else skipped.push({ file, reason: r.reason });
        o.onProgress?.(++done, total);
      }
    }
    return out;
  };
  let train = await prepareAll(trainList);
  let validation: Sample[];
  if (valList) validation = await prepareAll(valList);
  else {
    const split = stratifiedSplit(train, classes.length, o.validationSplit, o.seed);
    train = split.train;
    validation = split.validation;
  }
  // A class whose every file was unreadable is as empty as an empty folder.
  for (const [set, where] of [
    [train, 'training'],
    [validation, 'validation'],
  ] as const) {
    const counts = countPerClass(set, classes.length);
    const empty = classes.filter((_, i) => counts[i] === 0);
    if (empty.length) {
      throw new DataError(
        `no usable ${where} images for ${empty.join(', ')}` +
          (skipped.length ? ` (${skipped.length} file(s) skipped: unreadable or no face)` : '') +
          (valList ? '' : ` — with --validation-split ${o.validationSplit} each class needs at least 2 images`) +
          '. Add readable images for these people or remove their folders.',
      );
    }
  }
  return { classes, train, validation, skipped, layout, validationSplit: valList ? null : o.validationSplit };
}

export function countPerClass(samples: readonly { label: number }[], n: number): number[] {
  const counts = new Array<number>(n).fill(0);
  for (const s of samples) counts[s.label] = (counts[s.label] ?? 0) + 1;
  return counts;
}

/**
 * Holds out `fraction` of each class (at least one image when the class has two or
 * more, never all of them), chosen by a seeded shuffle per class.
 */
export function stratifiedSplit<T extends { label: number }>(
  samples: readonly T[],
  numClasses: number,
  fraction: number,
  seed: number,
): { train: T[]; validation: T[] } {
  if (!(fraction > 0 && fraction < 1))
    throw new DataError(`--validation-split must be between 0 and 1 (exclusive), got ${fraction}`);
  const train: T[] = [];
  const validation: T[] = [];
  for (let c = 0; c < numClasses; c++) {
    const members = samples.filter((s) => s.label === c);
    const order = permutation(members.length, mulberry32(deriveSeed(seed, 0x5b117, c)));
    const nVal =
      members.length < 2 ? 0 : Math.min(members.length - 1, Math.max(1, Math.round(members.length * fraction)));
    const valIdx = new Set(order.slice(0, nVal));
    members.forEach((m, i) => (valIdx.has(i) ? validation : train).push(m));
  }
  return { train, validation };
}
