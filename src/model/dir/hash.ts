/**
 * The one sha256 + size helper of every file facegate writes and checks (model directory
 * manifests, update bundles, the built-in models): a `FileEntry` is `{ sha256, bytes }`.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

export interface FileDigest {
  /** Hex sha256. */
  readonly sha256: string;
  readonly bytes: number;
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** sha256 and size of these bytes. */
export function digestBytes(data: Uint8Array): FileDigest {
  return { sha256: sha256(data), bytes: data.byteLength };
}

/** sha256 and size of a file, streamed (model files can be large). */
export async function digestFile(file: string): Promise<FileDigest> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(file)) {
    const b = chunk as Buffer;
    hash.update(b);
    bytes += b.length;
  }
  return { sha256: hash.digest('hex'), bytes };
}
