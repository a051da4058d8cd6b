/**
 * Where the detector's ONNX comes from: `@vladmandic/human`'s BlazeFace (MIT, shipped in the
 * npm package, so nothing downloads), converted by our TF.js-free exporter once and cached
 * by content hash. A read-only cache only costs a conversion at each start.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { convertGraphModel, humanModelJson, readTfjsModel } from '../model/export/index.js';
import { writeFileAtomic } from '../shared/fs.js';
import { moduleLogger } from '../shared/logger.js';
import { BlazeFaceDetector, type DetectorOptions } from './blazeface.js';

const log = moduleLogger('detect');

export interface LoadDetectorOptions extends DetectorOptions {
  /** Use this ONNX file instead of converting BlazeFace. */
  readonly onnxPath?: string;
  /** Where the converted ONNX is cached; `$FACEGATE_CACHE_DIR`, else `$XDG_CACHE_HOME/facegate`, else `~/.cache/facegate`. */
  readonly cacheDir?: string;
}

export function defaultCacheDir(): string {
  if (process.env.FACEGATE_CACHE_DIR) return process.env.FACEGATE_CACHE_DIR;
  const base = process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache');
  return path.join(base, 'facegate');
}

/** The BlazeFace ONNX bytes, from the cache or converted now (and cached). */
export async function blazefaceOnnx(cacheDir = defaultCacheDir()): Promise<Uint8Array> {
  const json = humanModelJson('blazeface');
  const bin = path.join(path.dirname(json), 'blazeface.bin');
  const hash = createHash('sha256').update(readFileSync(json)).update(readFileSync(bin)).digest('hex').slice(0, 16);
  const file = path.join(cacheDir, `blazeface-${hash}.onnx`);
  try {
    return new Uint8Array(await readFile(file));
  } catch {
    /* not cached yet */
  }
  const bytes = convertGraphModel(readTfjsModel(json), { metadata: { purpose: 'facegate face detector' } });
  try {
    await mkdir(cacheDir, { recursive: true });
    await writeFileAtomic(file, bytes);
    log.info({ file }, 'converted BlazeFace to ONNX and cached it');
  } catch (err) {
    log.warn(
      { cacheDir, err: (err as Error).message },
      'cannot cache the converted detector; converting at each start',
    );
  }
  return bytes;
}

export async function loadDetector(opts: LoadDetectorOptions = {}): Promise<BlazeFaceDetector> {
  const source = opts.onnxPath ?? (await blazefaceOnnx(opts.cacheDir));
  return BlazeFaceDetector.load(source, opts);
}
