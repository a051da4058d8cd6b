/**
 * The TF.js backend for training: `@tensorflow/tfjs-node` when installed (an optional
 * peer: fastest, but it downloads libtensorflow at install time), else WebAssembly, else
 * the pure-JS cpu backend (FACTS.md: wasm ~20× faster than cpu here).
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { FacegateError } from '../shared/errors.js';
import { moduleLogger } from '../shared/logger.js';

const log = moduleLogger('train.backend');

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

let chosen: BackendName | null = null;

/** Picks and initialises the best available backend once; returns its name. */
export async function initBackend(prefer?: BackendName): Promise<BackendName> {
  if (chosen && (!prefer || prefer === chosen)) return chosen;
  const order: BackendName[] = prefer ? [prefer] : ['tensorflow', 'wasm', 'cpu'];
  for (const name of order) {
    try {
      if (name === 'tensorflow') {
        // Optional peer; the specifier is a variable so TypeScript does not require it.
        const spec = '@tensorflow/tfjs-node';
        await import(spec);
      } else if (name === 'wasm') {
        const wasm = await import('@tensorflow/tfjs-backend-wasm');
        const require = createRequire(import.meta.url);
        const dist = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
        wasm.setWasmPaths(path.join(dist, 'dist') + path.sep);
      }
      if (await tf.setBackend(name)) {
        await tf.ready();
        chosen = name;
        log.debug({ backend: name }, 'TF.js backend ready');
        return name;
      }
    } catch (err) {
      log.debug({ backend: name, err: (err as Error).message }, 'TF.js backend unavailable');
    }
  }
  throw new FacegateError(
    `no TF.js backend could start (tried ${order.join(', ')})` +
      (prefer
        ? `: --backend ${prefer} is not available here; leave --backend out to use the best available one`
        : ': reinstall @tensorflow/tfjs'),
  );
}
