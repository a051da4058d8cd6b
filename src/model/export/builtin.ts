/**
 * Prepares the built-in models (src/model/builtin.ts) at install time: converts
 * `@vladmandic/human`'s BlazeFace, faceres and facemesh, and the dlib descriptor from
 * `@vladmandic/face-api`'s weights, to ONNX with our exporter, writes each file
 * atomically with its record, and does nothing for a model whose prepared file still
 * verifies. Run by `facegate models prepare` (and so by `npm install`); never on the device path.
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { cacheDir } from '../../shared/cache.js';
import { writeFileAtomic } from '../../shared/fs.js';
import {
  BUILTIN_MODELS,
  builtinDir,
  builtinModelNames,
  builtinOnnxName,
  builtinRecordPath,
  checkBuiltin,
  builtinSourceDigest,
  humanModelJson,
  type BuiltinModelName,
  type BuiltinRecord,
} from '../builtin.js';
import { digestBytes } from '../dir/hash.js';
import { exportDlibDescriptor } from './dlib.js';
import { convertGraphModel, exportModel, readTfjsModel } from './index.js';

/** How each built-in model is converted. */
function convert(name: BuiltinModelName): Uint8Array {
  const metadata = { purpose: BUILTIN_MODELS[name].purpose };
  switch (name) {
    case 'blazeface':
      // Height and width left free: the detector feeds the frame's aspect (256×192 for 4:3), not a padded square.
      return convertGraphModel(readTfjsModel(humanModelJson(name)), {
        metadata,
        inputShapes: new Map([['input', [1, null, null, 3]]]),
      });
    case 'faceres':
      // The backbone-only recognition graph: uint8 `pixels` in, pooled 1024-d `features` out.
      return exportModel({
        backbone: { name: 'faceres', artifacts: readTfjsModel(humanModelJson(name)) },
        preprocessing: { scale: 1, offset: 0 },
        metadata,
      });
    case 'facemesh':
      // As converted: float 0..1 [N, 192, 192, 3] in, the 468 points among its outputs (src/detect/mesh.ts).
      return convertGraphModel(readTfjsModel(humanModelJson(name)), { metadata });
    case 'dlib':
      // Weights only in the package: the graph is written out in src/model/export/dlib.ts.
      return exportDlibDescriptor(undefined, metadata);
  }
}

export interface PreparedModel {
  readonly name: BuiltinModelName;
  readonly path: string;
  /** `ready`: the prepared file verified and was kept; `prepared`: converted now. */
  readonly status: 'ready' | 'prepared';
  /** Why it was converted again, when it was. */
  readonly reason?: string;
}

/** Converts every built-in model whose prepared file is missing, stale or damaged (idempotent). */
export async function prepareBuiltinModels(
  o: { cacheDir?: string; names?: readonly BuiltinModelName[]; force?: boolean } = {},
): Promise<PreparedModel[]> {
  const dir = builtinDir(o.cacheDir || cacheDir());
  await mkdir(dir, { recursive: true });
  const out: PreparedModel[] = [];
  for (const name of o.names ?? builtinModelNames) {
    const check = await checkBuiltin(name, dir);
    if (check.ok && !o.force) {
      out.push({ name, path: check.path, status: 'ready' });
      continue;
    }
    const source = builtinSourceDigest(name);
    const file = builtinOnnxName(name, source);
    const bytes = convert(name);
    await writeFileAtomic(path.join(dir, file), bytes);
    const record: BuiltinRecord = {
      name,
      recipe: BUILTIN_MODELS[name].recipe,
      source,
      onnx: { file, ...digestBytes(bytes) },
    };
    // The record last: a crash before it leaves a file the next run prepares again.
    await writeFileAtomic(builtinRecordPath(name, dir), JSON.stringify(record, null, 2) + '\n');
    for (const f of await readdir(dir))
      if (f.startsWith(`${name}-`) && f.endsWith('.onnx') && f !== file) await rm(path.join(dir, f), { force: true });
    out.push({
      name,
      path: path.join(dir, file),
      status: 'prepared',
      ...(check.ok ? { reason: 'forced' } : { reason: check.reason }),
    });
  }
  return out;
}
