/**
 * Where the detector's ONNX comes from: the built-in BlazeFace prepared at install time
 * (src/model/builtin.ts; `facegate models prepare`), or a file the caller names. The device
 * only loads ONNX here; converting is the installer's job.
 */
import { builtinModelPath } from '../model/builtin.js';
import { BlazeFaceDetector, type DetectorOptions } from './blazeface.js';
import { FaceMesh } from './mesh.js';

export interface LoadDetectorOptions extends Omit<DetectorOptions, 'mesh'> {
  /** gallery.landmarks: `mesh` adds the built-in face mesh's dense landmarks to every face (default keypoints: none). */
  readonly landmarks?: 'keypoints' | 'mesh';
  /** Use this ONNX file instead of the built-in BlazeFace. */
  readonly onnxPath?: string;
  /** The cache folder the built-in models were prepared in (default: src/shared/cache.ts). */
  readonly cacheDir?: string;
}

export async function loadDetector(opts: LoadDetectorOptions = {}): Promise<BlazeFaceDetector> {
  const cache = opts.cacheDir ? { cacheDir: opts.cacheDir } : {};
  const source = opts.onnxPath ?? (await builtinModelPath('blazeface', cache));
  const mesh =
    opts.landmarks === 'mesh'
      ? await FaceMesh.load(await builtinModelPath('facemesh', cache), { threads: opts.threads })
      : undefined;
  try {
    return await BlazeFaceDetector.load(source, { ...opts, ...(mesh ? { mesh } : {}) });
  } catch (err) {
    await mesh?.close();
    throw err;
  }
}
