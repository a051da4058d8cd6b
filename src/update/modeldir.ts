/**
 * Checks a model directory against its own manifest (sha256 and size of every file),
 * the check the kiosk runs before it trusts a directory on disk.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { readManifest, type Manifest } from '../model/manifest.js';
import { ModelError } from '../shared/errors.js';

export async function sha256File(file: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(file)) {
    const b = chunk as Buffer;
    hash.update(b);
    bytes += b.length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Reads the manifest and checks every file it lists; returns the manifest. */
export async function verifyModelDir(dir: string): Promise<Manifest> {
  const manifest = readManifest(dir);
  for (const [name, want] of Object.entries(manifest.files)) {
    let have: { sha256: string; bytes: number };
    try {
      have = await sha256File(path.join(dir, name));
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
