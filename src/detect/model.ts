/**
 * Where the detector's ONNX comes from: the built-in BlazeFace prepared at install time
 * (src/model/builtin.ts; `facegate models prepare`), or a file the caller names. The device
 * only loads ONNX here; converting is the installer's job.
 */
import { builtinModelPath } from '../model/builtin.js';
import { BlazeFaceDetector, type DetectorOptions } from './blazeface.js';

export interface LoadDetectorOptions extends DetectorOptions {
  /** Use this ONNX file instead of the built-in BlazeFace. */
  readonly onnxPath?: string;
  /** The cache folder the built-in models were prepared in (default: src/shared/cache.ts). */
  readonly cacheDir?: string;
}

export async function loadDetector(opts: LoadDetectorOptions = {}): Promise<BlazeFaceDetector> {
  const source =
    opts.onnxPath ?? (await builtinModelPath('blazeface', opts.cacheDir ? { cacheDir: opts.cacheDir } : {}));
  return BlazeFaceDetector.load(source, opts);
}
