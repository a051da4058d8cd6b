/**
 * Frozen backbones: where their weights come from, and how TF.js runs them.
 *
 * - `mobilenet_v1`: ImageNet MobileNet v1 (Keras Applications, TF.js LayersModel), cut at
 *   `conv_pw_13_relu` (include_top=False) and global-average-pooled; input RGB scaled to
 *   [-1, 1] (`x / 127.5 - 1`, Keras `mobilenet.preprocess_input`).
 * - `faceres`: the face-trained MobileNet v1 in `@vladmandic/human` (GraphModel); its
 *   `global_pooling/Mean` output is a 1024-d descriptor. Input raw 0..255: human's
 *   `src/face/faceres.ts` (`enhance`) resizes its 0..1 crop and multiplies by 255.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tf from '@tensorflow/tfjs';
import cliProgress from 'cli-progress';
import { downloadCacheDir, downloadCacheFolder } from '../model/export/directory.js';
import { humanModelJson } from '../model/export/index.js';
import type { BackboneName } from '../model/manifest.js';
import { FacegateError, ModelError } from '../shared/errors.js';
import { moduleLogger } from '../shared/logger.js';
import { readArtifacts } from './tfjs-io.js';

const log = moduleLogger('train.backbone');

export const INPUT_SIZE = 224;
export const MOBILENET_ALPHAS = [0.25, 0.5, 0.75, 1.0] as const;
export const MOBILENET_FEATURE_LAYER = 'conv_pw_13_relu';
export const FACERES_FEATURE_NODE = 'global_pooling/Mean';
/** Google's official TF.js MobileNet v1 (Keras Applications weights). */
export const OFFICIAL_MOBILENET_BASE = 'https://storage.googleapis.com/tfjs-models/tfjs';

export function officialMobilenetUrl(alpha: number, base = OFFICIAL_MOBILENET_BASE): string {
  const a = alpha === 1 ? '1.0' : String(alpha).replace(/^0\./, '0.').padEnd(4, '0');
  return `${base.replace(/\/$/, '')}/mobilenet_v1_${a}_224/model.json`;
}

/** Everything the rest of training needs to know about a backbone (no tensors). */
export interface BackboneSpec {
  readonly name: BackboneName;
  readonly alpha?: number;
  /** Where the weights came from (path or URL), for the manifest. */
  readonly source: string;
  /** Local model.json. */
  readonly modelJsonPath: string;
  readonly featureNode: string;
  readonly featureSize: number;
  /** The graph computes pixel * scale + offset. */
  readonly preprocessing: { readonly scale: number; readonly offset: number };
}

export interface ResolveOptions {
  readonly name: BackboneName;
  /** mobilenet_v1: a model.json path, its folder, or an http(s) URL. */
  readonly weights?: string;
  /** mobilenet_v1 width multiplier when downloading (default 1.0). */
  readonly alpha?: number;
  /** Download cache (default `$FACEGATE_CACHE` or `~/.cache/facegate`). */
  readonly cacheDir?: string;
  /** Base URL of the official models (tests point it somewhere unreachable). */
  readonly baseUrl?: string;
  /** Show a download progress bar (stderr). */
  readonly progress?: boolean;
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** The faceres model.json inside the installed `@vladmandic/human`. */
export function faceresModelPath(): string {
  return humanModelJson('faceres');
}

/** Finds (or downloads) the backbone's weights; reads sizes from the model itself. */
export async function resolveBackbone(o: ResolveOptions): Promise<BackboneSpec> {
  if (o.name === 'faceres') {
    if (o.weights)
      throw new FacegateError(
        '--weights applies to --backbone mobilenet_v1 only; faceres is loaded from the installed @vladmandic/human package',
      );
    const p = faceresModelPath();
    if (!(await exists(p)))
      throw new ModelError(`faceres model not found at ${p}: run npm install (it ships with @vladmandic/human)`);
    return {
      name: 'faceres',
      source: '@vladmandic/human/models/faceres.json',
      modelJsonPath: p,
      featureNode: FACERES_FEATURE_NODE,
      featureSize: 1024,
      preprocessing: { scale: 1, offset: 0 },
    };
  }
  let modelJsonPath: string;
  let source: string;
  if (o.weights && !/^https?:\/\//.test(o.weights)) {
    const p = path.resolve(o.weights);
    modelJsonPath = (await exists(p)) && (await stat(p)).isDirectory() ? path.join(p, 'model.json') : p;
    if (!(await exists(modelJsonPath)))
      throw new ModelError(
        `--weights ${o.weights}: no model.json there. Pass a TF.js LayersModel model.json or its folder.`,
      );
    source = modelJsonPath;
  } else {
    const alpha = o.alpha ?? 1.0;
    if (!MOBILENET_ALPHAS.includes(alpha as (typeof MOBILENET_ALPHAS)[number])) {
      throw new FacegateError(`unsupported --alpha ${alpha}. Should be one of: ${MOBILENET_ALPHAS.join(', ')}`);
    }
    const url =
      o.weights ??
      officialMobilenetUrl(alpha, o.baseUrl ?? process.env.FACEGATE_WEIGHTS_BASE_URL ?? OFFICIAL_MOBILENET_BASE);
    modelJsonPath = await downloadModel(url, o.cacheDir ?? downloadCacheDir(), o.progress ?? false);
    source = url;
  }
  // Sizes from the topology: feature size = filters of conv_pw_13; alpha = conv1 filters / 32.
  const json = JSON.parse(await readFile(modelJsonPath, 'utf8')) as {
    modelTopology?: {
      model_config?: { config?: { layers?: { name?: string; config?: { name?: string; filters?: number } }[] } };
      config?: { layers?: { name?: string; config?: { name?: string; filters?: number } }[] };
    };
  };
  const layers = json.modelTopology?.model_config?.config?.layers ?? json.modelTopology?.config?.layers ?? [];
  const filters = (name: string): number | undefined =>
    layers.find((l) => (l.config?.name ?? l.name) === name)?.config?.filters;
  const pw13 = filters('conv_pw_13');
  const conv1 = filters('conv1');
  if (!pw13 || !layers.some((l) => (l.config?.name ?? l.name) === MOBILENET_FEATURE_LAYER)) {
    throw new ModelError(
      `${modelJsonPath} is not a Keras MobileNet v1 LayersModel (no ${MOBILENET_FEATURE_LAYER} layer). Pass the TF.js MobileNet v1 model.json.`,
    );
  }
  return {
    name: 'mobilenet_v1',
    alpha: conv1 ? conv1 / 32 : pw13 / 1024,
    source,
    modelJsonPath,
    featureNode: MOBILENET_FEATURE_LAYER,
    featureSize: pw13,
    preprocessing: { scale: 1 / 127.5, offset: -1 },
  };
}

/** Downloads model.json and its shards into the cache (once); returns the cached model.json. */
export async function downloadModel(url: string, cacheDir: string, progress: boolean): Promise<string> {
  const dir = downloadCacheFolder(url, cacheDir);
  const done = path.join(dir, 'model.json');
  if (await exists(done)) return done;
  const tmp = `${dir}.part-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  const fail = (err: unknown): never => {
    throw new ModelError(
      `cannot download the MobileNet weights from ${url} (${(err as Error).message}). ` +
        'Offline? Pass --weights PATH with a TF.js MobileNet v1 model.json (or its folder), or use --backbone faceres.',
      { cause: err },
    );
  };
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(30_000) }).catch(fail);
    if (!res.ok) fail(new Error(`HTTP ${res.status}`));
    const text = await res.text();
    const json = JSON.parse(text) as { weightsManifest?: { paths: string[] }[] };
    const shards = (json.weightsManifest ?? []).flatMap((g) => g.paths);
    const bar = progress
      ? new cliProgress.SingleBar(
          { format: 'downloading MobileNet [{bar}] {value}/{total} files', stream: process.stderr },
          cliProgress.Presets.shades_classic,
        )
      : null;
    bar?.start(shards.length, 0);
    const base = url.slice(0, url.lastIndexOf('/') + 1);
    for (const [i, shard] of shards.entries()) {
      const r = await fetch(base + shard, { signal: AbortSignal.timeout(120_000) }).catch(fail);
      if (!r.ok || !r.body) fail(new Error(`HTTP ${r.status} for ${shard}`));
      await mkdir(path.dirname(path.join(tmp, shard)), { recursive: true });
      await pipeline(
        Readable.fromWeb(r.body as import('node:stream/web').ReadableStream<Uint8Array>),
        createWriteStream(path.join(tmp, shard)),
      );
      bar?.update(i + 1);
    }
    bar?.stop();
    await writeFile(path.join(tmp, 'model.json'), text);
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
    log.info({ url, dir }, 'downloaded backbone weights');
    return done;
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** A backbone loaded in TF.js: the naive reference feature extractor. */
export interface TfjsBackbone {
  readonly spec: BackboneSpec;
  /** pixels float32 [b,224,224,3] in 0..255 → pooled features [b, featureSize] (inference mode). */
  features(pixels: tf.Tensor4D): tf.Tensor2D;
  /** Every weight and BatchNorm statistic, by name (to prove the backbone stayed frozen). */
  snapshot(): Map<string, Float32Array>;
  /** Rows for the model summary: layer name, type, output shape, parameters. */
  summaryRows(): SummaryRow[];
  dispose(): void;
}

export interface SummaryRow {
  readonly name: string;
  readonly type: string;
  readonly shape: string;
  readonly params: number;
}

export async function loadTfjsBackbone(spec: BackboneSpec): Promise<TfjsBackbone> {
  const artifacts = await readArtifacts(spec.modelJsonPath);
  const pre = (x: tf.Tensor4D): tf.Tensor4D =>
    spec.preprocessing.scale === 1 && spec.preprocessing.offset === 0
      ? x
      : tf.add(tf.mul(x, spec.preprocessing.scale), spec.preprocessing.offset);
  if (spec.name === 'mobilenet_v1') {
    const full = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
    const cut = tf.model({ inputs: full.inputs, outputs: full.getLayer(MOBILENET_FEATURE_LAYER).output });
    for (const l of cut.layers) l.trainable = false;
    return {
      spec,
      features: (pixels) => tf.tidy(() => tf.mean<tf.Tensor2D>(cut.predict(pre(pixels)) as tf.Tensor4D, [1, 2])),
      snapshot: () => new Map(cut.weights.map((w) => [w.originalName, w.read().dataSync() as Float32Array])),
      summaryRows: () =>
        cut.layers.map((l) => ({
          name: l.name,
          type: l.getClassName(),
          shape: shapeText(l.outputShape),
          params: l.countParams(),
        })),
      dispose: () => full.dispose(),
    };
  }
  const graph = await tf.loadGraphModel(tf.io.fromMemory(artifacts));
  return {
    spec,
    features: (pixels) => tf.tidy(() => graph.execute(pre(pixels), FACERES_FEATURE_NODE) as tf.Tensor2D),
    snapshot: () =>
      new Map(
        Object.entries(graph.weights).map(([k, v]) => [k, (v[0]?.dataSync() ?? new Float32Array()) as Float32Array]),
      ),
    summaryRows: () => {
      // Output shapes from one forward pass on a blank image (the graph has no static shapes).
      const rows = graphSummaryRows(artifacts);
      const names = rows.slice(1).map((r) => r.name);
      const shapes = tf.tidy(() => {
        const outs = graph.execute(tf.zeros([1, INPUT_SIZE, INPUT_SIZE, 3]), names);
        return (Array.isArray(outs) ? outs : [outs]).map((t) => `(None, ${t.shape.slice(1).join(', ')})`);
      });
      return rows.map((r, i) => (i === 0 ? r : { ...r, shape: shapes[i - 1] ?? r.shape }));
    },
    dispose: () => graph.dispose(),
  };
}

function shapeText(s: tf.Shape | tf.Shape[]): string {
  const one = (x: tf.Shape): string => `(${x.map((d) => (d === null ? 'None' : String(d))).join(', ')})`;
  return Array.isArray(s[0]) ? (s as tf.Shape[]).map(one).join(', ') : one(s as tf.Shape);
}

/** GraphModel summary: one row per op that owns weights (convolutions, matmuls), in graph order. */
function graphSummaryRows(a: tf.io.ModelArtifacts): SummaryRow[] {
  const topo = a.modelTopology as { node?: { name: string; op: string; input?: string[] }[] } | undefined;
  const nodes = topo?.node ?? [];
  const sizes = new Map((a.weightSpecs ?? []).map((w) => [w.name, w.shape.reduce((x, y) => x * y, 1)]));
  const rows: SummaryRow[] = [{ name: 'input_1', type: 'Placeholder', shape: '(None, 224, 224, 3)', params: 0 }];
  for (const n of nodes) {
    if (n.op === 'Const' || n.op === 'Placeholder') continue;
    const params = (n.input ?? []).reduce((s, i) => s + (sizes.get(i.split(':')[0] ?? '') ?? 0), 0);
    if (params > 0 || n.name === FACERES_FEATURE_NODE)
      rows.push({ name: n.name, type: n.op, shape: n.name === FACERES_FEATURE_NODE ? '(None, 1024)' : '', params });
    if (n.name === FACERES_FEATURE_NODE) break;
  }
  return rows;
}
