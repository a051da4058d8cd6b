/**
 * Re-exporting a trained model directory: manifest + head artifacts + backbone →
 * model.onnx, and the manifest's `files` entry for it. Also the one definition of the
 * metadata_props a facegate model carries, so `facegate train` and `facegate export`
 * write the same keys.
 */
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cacheDir } from '../../shared/cache.js';
import { ModelError } from '../../shared/errors.js';
import { moduleLogger } from '../../shared/logger.js';
import {
  fileEntry,
  MANIFEST_FILE,
  MODEL_FP32_FILE,
  MODEL_INT8_FILE,
  readManifest,
  type Manifest,
} from '../manifest.js';
import { exportModelDetailed, humanModelJson, type ExportInfo } from './index.js';
import { readTfjsModel } from './tfjs.js';

const log = moduleLogger('export');

/** The trained head inside a model directory (TF.js LayersModel). */
export const HEAD_MODEL_FILE = path.join('head', 'model.json');

/**
 * metadata_props for a facegate model, from its manifest: `labels` (JSON array),
 * `version`, `backbone`, `preprocessing` (JSON), `thresholds` (JSON: the recognition
 * section without its per-person references, which stay in the manifest).
 */
export function modelMetadata(
  manifest: Pick<Manifest, 'classes' | 'version' | 'backbone' | 'input' | 'recognition' | 'createdAt'>,
): Record<string, string> {
  const r = manifest.recognition;
  const thresholds = r
    ? {
        score: r.score,
        source: r.source,
        threshold: r.threshold,
        minMargin: r.minMargin,
        targetFar: r.targetFar,
        crop: r.crop,
      }
    : {};
  return {
    labels: JSON.stringify(manifest.classes),
    version: manifest.version,
    created_at: manifest.createdAt,
    backbone: manifest.backbone.name,
    ...(manifest.backbone.alpha !== undefined ? { backbone_alpha: String(manifest.backbone.alpha) } : {}),
    preprocessing: JSON.stringify(manifest.input.preprocessing),
    thresholds: JSON.stringify(thresholds),
  };
}

/** Where `facegate train` caches downloaded backbones: the one cache folder (src/shared/cache.ts). */
export function downloadCacheDir(): string {
  return cacheDir();
}

/** The cache folder of a model downloaded from `url` (its model.json and shards). */
export function downloadCacheFolder(url: string, cacheDir = downloadCacheDir()): string {
  return path.join(
    cacheDir,
    url
      .replace(/^https?:\/\//, '')
      .replace(/\/model\.json$/, '')
      .replace(/[^A-Za-z0-9._-]+/g, '_'),
  );
}

function cachedDownload(url: string): string {
  return path.join(downloadCacheFolder(url), 'model.json');
}

/** The backbone model.json a manifest refers to (or `override`). */
export function resolveBackboneJson(manifest: Manifest, dir: string, override?: string): string {
  if (override) return path.resolve(override);
  const { name, source } = manifest.backbone;
  if (name === 'faceres') return humanModelJson('faceres');
  if (/^https?:\/\//.test(source)) {
    const cached = cachedDownload(source);
    if (existsSync(cached)) return cached;
    throw new ModelError(
      `the ${name} backbone of ${dir} came from ${source} and is not in the download cache (${cached}). ` +
        'Pass its TF.js model.json with --backbone PATH.',
    );
  }
  const candidate = path.isAbsolute(source) ? source : path.resolve(dir, source);
  if (existsSync(candidate)) return candidate;
  if (existsSync(path.resolve(source))) return path.resolve(source);
  throw new ModelError(
    `the ${name} backbone of ${dir} (${source}) is not there any more. Pass its TF.js model.json with --backbone PATH.`,
  );
}

export interface ReexportResult {
  readonly file: string;
  readonly bytes: number;
  readonly sha256: string;
  /** False when the new model.onnx is byte-identical to the one it replaced. */
  readonly changed: boolean;
  readonly info: ExportInfo;
}

/** Writes atomically: a half-written model must never sit under the real name. */
function writeAtomic(file: string, data: Uint8Array | string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

/**
 * Rebuilds `model.onnx` of a trained model directory from its head and backbone, checks
 * the graph against the manifest (feature size, classes, embedding size), and updates
 * the manifest's `files` entry.
 */
export function reexportModelDir(dir: string, options: { backbone?: string } = {}): ReexportResult {
  const manifest = readManifest(dir);
  const backboneJson = resolveBackboneJson(manifest, dir, options.backbone);
  const head = readTfjsModel(path.join(dir, HEAD_MODEL_FILE));
  const backbone = readTfjsModel(backboneJson);
  const { bytes, info } = exportModelDetailed({
    backbone: {
      name: manifest.backbone.name,
      artifacts: backbone,
      ...(manifest.backbone.alpha !== undefined ? { alpha: manifest.backbone.alpha } : {}),
    },
    head,
    preprocessing: manifest.input.preprocessing,
    metadata: modelMetadata(manifest),
  });
  const problems: string[] = [];
  if (info.featureSize !== manifest.backbone.featureSize)
    problems.push(`backbone gives ${info.featureSize} features, manifest says ${manifest.backbone.featureSize}`);
  if (info.classes !== manifest.classes.length)
    problems.push(`head has ${info.classes ?? '?'} outputs, manifest lists ${manifest.classes.length} classes`);
  if (info.embeddingSize !== manifest.outputs.embeddingSize)
    problems.push(`embedding has ${info.embeddingSize ?? '?'} units, manifest says ${manifest.outputs.embeddingSize}`);
  if (info.height !== manifest.input.height || info.width !== manifest.input.width) {
    problems.push(
      `input is ${info.height}×${info.width}, manifest says ${manifest.input.height}×${manifest.input.width}`,
    );
  }
  if (problems.length > 0) {
    throw new ModelError(
      `${dir}: the head and backbone do not match the manifest (${problems.join('; ')}). Train the model again, or pass the right --backbone.`,
    );
  }
  const file = path.join(dir, MODEL_FP32_FILE);
  const entry = fileEntry(bytes);
  const changed = manifest.files[MODEL_FP32_FILE]?.sha256 !== entry.sha256;
  writeAtomic(file, bytes);
  const updated: Manifest = { ...manifest, files: { ...manifest.files, [MODEL_FP32_FILE]: entry } };
  writeAtomic(path.join(dir, MANIFEST_FILE), `${JSON.stringify(updated, null, 2)}\n`);
  if (changed && existsSync(path.join(dir, MODEL_INT8_FILE))) {
    log.warn(
      { dir },
      `${MODEL_FP32_FILE} changed: ${MODEL_INT8_FILE} was quantised from the old one; run facegate quantize again`,
    );
  }
  return { file, bytes: bytes.length, sha256: entry.sha256, changed, info };
}
