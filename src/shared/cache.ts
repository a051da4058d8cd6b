/**
 * The one cache folder of facegate (downloaded backbones, the built-in models converted to
 * ONNX): `$FACEGATE_CACHE`, else `$XDG_CACHE_HOME/facegate`, else `~/.cache/facegate`.
 * `$FACEGATE_CACHE_DIR`, which the detector once read, still works with a warning, so a
 * kiosk set up with it keeps its cache.
 */
import os from 'node:os';
import path from 'node:path';
import { moduleLogger } from './logger.js';

export const CACHE_ENV = 'FACEGATE_CACHE';
/** Read when FACEGATE_CACHE is unset; warned about once. */
export const DEPRECATED_CACHE_ENV = 'FACEGATE_CACHE_DIR';

let warned = false;

export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env[CACHE_ENV];
  if (dir) return dir;
  const old = env[DEPRECATED_CACHE_ENV];
  if (old) {
    if (!warned) {
      warned = true;
      moduleLogger('cache').warn(
        { [DEPRECATED_CACHE_ENV]: old },
        `${DEPRECATED_CACHE_ENV} is deprecated: set ${CACHE_ENV}=${old} instead (it will stop being read)`,
      );
    }
    return old;
  }
  return path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'facegate');
}
