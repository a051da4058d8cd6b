/**
 * The built-in models, as the device finds them: `@vladmandic/human`'s BlazeFace detector,
 * its `faceres` face descriptor and its `facemesh` landmark model (MIT), and the dlib ResNet face descriptor whose weights
 * `@vladmandic/face-api` ships (dlib's weights are public domain; face-api's conversion MIT).
 * Both packages are npm dependencies, so nothing downloads. They are converted to ONNX once, at install time, by `facegate models
 * prepare` (src/model/export/builtin.ts); the device only loads and verifies the ONNX
 * files and never loads the exporter.
 *
 * Each prepared model is `<cache>/builtin/<name>-<source hash>.onnx` with a record
 * `<cache>/builtin/<name>.json`: the recipe version, the digest of the TF.js files it was
 * converted from, and the ONNX file's sha256 and size. A file whose record does not match
 * (another version of the source package, a changed recipe, a damaged file) is refused
 * with the command that prepares it again.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import { z } from 'zod';
import { cacheDir } from '../shared/cache.js';
import { ModelError } from '../shared/errors.js';
import { digestFile } from './dir/hash.js';

export const builtinModelNames = ['blazeface', 'faceres', 'dlib', 'facemesh'] as const;
export type BuiltinModelName = (typeof builtinModelNames)[number];

/** The command that prepares the built-in models (also run by `npm install` through the `prepare` script). */
export const PREPARE_COMMAND = 'facegate models prepare';

/** What each built-in ONNX is; `recipe` is bumped when its conversion changes (the old file is then refused). */
export const BUILTIN_MODELS: Readonly<
  Record<BuiltinModelName, { readonly recipe: number; readonly purpose: string; readonly signature: string }>
> = {
  blazeface: {
    // 2: free input height and width (the detector pads the frame's shorter side only to a multiple of 32)
    recipe: 2,
    purpose: 'facegate face detector',
    signature:
      'BlazeFace with its native outputs and a free-size input (float32 NHWC [1,H,W,3], longer side 256, sides multiples of 32; anchors decoded by src/detect)',
  },
  faceres: {
    recipe: 1,
    purpose: 'facegate face descriptor',
    signature: 'input `pixels` uint8 [N, 224, 224, 3] (RGB 0..255), output `features` float32 [N, 1024]',
  },
  dlib: {
    recipe: 1,
    purpose: 'facegate face descriptor (dlib ResNet)',
    signature: 'input `pixels` uint8 [N, 150, 150, 3] (RGB 0..255), output `features` float32 [N, 128]',
  },
  facemesh: {
    recipe: 1,
    purpose: 'facegate dense face landmarks (gallery.landmarks mesh)',
    signature:
      'float32 NHWC [N, 192, 192, 3] (RGB 0..1), a 1404-wide output: 468 points × (x, y, z) in input pixels (src/detect/mesh.ts)',
  },
};

const recordSchema = z
  .object({
    name: z.enum(builtinModelNames),
    recipe: z.number().int(),
    source: z.string().regex(/^[0-9a-f]{64}$/),
    onnx: z.object({ file: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/), bytes: z.number().int() }).strict(),
  })
  .strict();
export type BuiltinRecord = z.infer<typeof recordSchema>;

/** Path of one of `@vladmandic/human`'s bundled model.json files (blazeface, faceres, antispoof, liveness, …). */
export function humanModelJson(name: string): string {
  const main = createRequire(import.meta.url).resolve('@vladmandic/human');
  // dist/human.node.js → <package>/models/<name>.json
  const file = path.join(path.dirname(main), '..', 'models', `${name}.json`);
  if (!existsSync(file)) {
    throw new ModelError(
      `@vladmandic/human has no model "${name}" (looked for ${file}); try blazeface, faceres, antispoof or liveness`,
    );
  }
  return file;
}

/** sha256 over a human model's model.json and the weight files it lists, in order. */
export function humanSourceDigest(name: 'blazeface' | 'faceres' | 'facemesh'): string {
  const json = humanModelJson(name);
  const hash = createHash('sha256').update(readFileSync(json));
  const manifest = JSON.parse(readFileSync(json, 'utf8')) as { weightsManifest?: { paths?: string[] }[] };
  for (const group of manifest.weightsManifest ?? [])
    for (const p of group.paths ?? []) hash.update(readFileSync(path.join(path.dirname(json), p)));
  return hash.digest('hex');
}

const FACE_API_MANIFEST = 'face_recognition_model-weights_manifest.json';

/**
 * The dlib descriptor's files in the installed `@vladmandic/face-api`: the weights manifest
 * (TF.js format, weights only) and the weight files it lists.
 */
export function faceApiRecognitionFiles(): { manifest: string; weights: string[] } {
  let dir: string;
  try {
    dir = path.dirname(createRequire(import.meta.url).resolve('@vladmandic/face-api/package.json'));
  } catch (err) {
    throw new ModelError(
      'the dlib face descriptor comes from the npm package @vladmandic/face-api, which is not installed: run npm install',
      { cause: err },
    );
  }
  const manifest = path.join(dir, 'model', FACE_API_MANIFEST);
  if (!existsSync(manifest))
    throw new ModelError(`@vladmandic/face-api has no ${manifest}: reinstall it (npm install)`);
  const groups = JSON.parse(readFileSync(manifest, 'utf8')) as { paths?: string[] }[];
  const weights = (Array.isArray(groups) ? groups : []).flatMap((g) =>
    (g.paths ?? []).map((p) => path.join(dir, 'model', p)),
  );
  return { manifest, weights };
}

/** sha256 of what a built-in model is converted from (its TF.js files, in manifest order). */
export function builtinSourceDigest(name: BuiltinModelName): string {
  if (name !== 'dlib') return humanSourceDigest(name);
  const { manifest, weights } = faceApiRecognitionFiles();
  const hash = createHash('sha256').update(readFileSync(manifest));
  for (const w of weights) hash.update(readFileSync(w));
  return hash.digest('hex');
}

/** The folder of the prepared built-in models. */
export function builtinDir(cache = cacheDir()): string {
  return path.join(cache, 'builtin');
}

export function builtinRecordPath(name: BuiltinModelName, dir: string): string {
  return path.join(dir, `${name}.json`);
}

/** The ONNX file name for this source digest. */
export function builtinOnnxName(name: BuiltinModelName, source: string): string {
  return `${name}-${source.slice(0, 16)}.onnx`;
}

/**
 * Checks the prepared model `name` in `dir`: the path of its verified ONNX, or why it
 * cannot be used.
 */
export async function checkBuiltin(
  name: BuiltinModelName,
  dir: string,
): Promise<{ readonly ok: true; readonly path: string } | { readonly ok: false; readonly reason: string }> {
  let record: BuiltinRecord;
  try {
    const parsed = recordSchema.safeParse(JSON.parse(await readFile(builtinRecordPath(name, dir), 'utf8')));
    if (!parsed.success) return { ok: false, reason: `${builtinRecordPath(name, dir)} is not a valid record` };
    record = parsed.data;
  } catch {
    return { ok: false, reason: `not prepared yet (no ${builtinRecordPath(name, dir)})` };
  }
  if (record.recipe !== BUILTIN_MODELS[name].recipe)
    return { ok: false, reason: `it was prepared by another version of facegate (recipe ${record.recipe})` };
  if (record.source !== builtinSourceDigest(name))
    return {
      ok: false,
      reason: `it was converted from another version of ${name === 'dlib' ? '@vladmandic/face-api' : '@vladmandic/human'}`,
    };
  const file = path.join(dir, record.onnx.file);
  let have;
  try {
    have = await digestFile(file);
  } catch {
    return { ok: false, reason: `${file} is missing` };
  }
  if (have.sha256 !== record.onnx.sha256 || have.bytes !== record.onnx.bytes)
    return { ok: false, reason: `${file} does not match its record (damaged or changed)` };
  return { ok: true, path: file };
}

/**
 * The verified ONNX file of a built-in model. Throws a ModelError naming the command to
 * run when it is missing, stale or damaged.
 */
export async function builtinModelPath(name: BuiltinModelName, o: { cacheDir?: string } = {}): Promise<string> {
  const dir = builtinDir(o.cacheDir || cacheDir());
  const r = await checkBuiltin(name, dir);
  if (r.ok) return r.path;
  const flag = o.cacheDir ? ` --cache-dir ${o.cacheDir}` : '';
  throw new ModelError(
    `the built-in ${name} model (${BUILTIN_MODELS[name].purpose}) cannot be used: ${r.reason}. ` +
      `Prepare it once with: ${PREPARE_COMMAND}${flag} (npm install runs it; FACEGATE_CACHE moves the folder)`,
  );
}
