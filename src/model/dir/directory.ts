/**
 * The model directory as files: hash every file for the manifest, verify a directory
 * against its manifest, and update one section of the manifest. Every write goes through
 * the one atomic writer (src/shared/fs.ts).
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { MANIFEST_FILE, manifestSchema, readManifest, type Manifest } from '../manifest.js';
import { ModelError } from '../../shared/errors.js';
import { writeFileAtomic } from '../../shared/fs.js';
import { formatIssues } from '../../shared/validation.js';
import { digestBytes, digestFile, type FileDigest } from './hash.js';
import type { QuantizationSection } from './sections.js';

async function walk(dir: string, base = dir): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p, base)));
    else if (e.isFile()) out.push(path.relative(base, p).split(path.sep).join('/'));
  }
  return out.sort();
}

/** sha256 and size of every file under `dir` except the manifest. */
export async function hashFiles(dir: string): Promise<Manifest['files']> {
  const files: Manifest['files'] = {};
  for (const rel of await walk(dir)) {
    if (rel === MANIFEST_FILE) continue;
    files[rel] = await digestFile(path.join(dir, rel));
  }
  return files;
}

/** Reads the manifest and checks every file it lists; returns the manifest. */
export async function verifyModelDir(dir: string): Promise<Manifest> {
  const manifest = readManifest(dir);
  for (const [name, want] of Object.entries(manifest.files)) {
    let have: FileDigest;
    try {
      have = await digestFile(path.join(dir, name));
    } catch (err) {
      throw new ModelError(`model ${dir}: missing ${name} (${(err as Error).message})`, { cause: err });
    }
    if (have.bytes !== want.bytes || have.sha256 !== want.sha256) {
      throw new ModelError(
        `model ${dir}: ${name} does not match its manifest (sha256 ${have.sha256.slice(0, 12)}…, expected ${want.sha256.slice(0, 12)}…)`,
      );
    }
  }
  return manifest;
}

/** Validates a whole manifest and writes it atomically. */
export async function writeManifest(dir: string, manifest: Manifest): Promise<Manifest> {
  const checked = manifestSchema.safeParse(manifest);
  if (!checked.success)
    throw new ModelError(
      `internal error: the manifest of ${dir} does not match its schema:\n${formatIssues(checked.error.issues)}`,
    );
  await writeFileAtomic(path.join(dir, MANIFEST_FILE), `${JSON.stringify(checked.data, null, 2)}\n`);
  return checked.data;
}

/**
 * Records an int8 file written into the directory: its hash in `files` and its
 * `quantization` section (replacing the previous one).
 */
export async function updateQuantization(
  dir: string,
  manifest: Manifest,
  int8File: string,
  int8Bytes: Uint8Array,
  section: QuantizationSection,
): Promise<Manifest> {
  const name = path.relative(dir, int8File).split(path.sep).join('/');
  return writeManifest(dir, {
    ...manifest,
    files: { ...manifest.files, [name]: digestBytes(int8Bytes) },
    quantization: { ...section, file: name },
  });
}
