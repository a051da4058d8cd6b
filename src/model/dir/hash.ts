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

/** Bytes hashed between two turns of the event loop by sha256Async (a few ms of work). */
const HASH_SLICE_BYTES = 1024 * 1024;

/**
 * sha256 of a large buffer that gives the event loop a turn every HASH_SLICE_BYTES, so
 * hashing a whole bundle does not hold up what else runs on the thread (the kiosk's
 * recognition). WebCrypto's digest is no help here: in Node 20 it copies and hashes on
 * the calling thread.
 */
export async function sha256Async(data: Uint8Array): Promise<string> {
  const hash = createHash('sha256');
  for (let o = 0; o < data.byteLength; o += HASH_SLICE_BYTES) {
    if (o > 0) await new Promise((resolve) => setImmediate(resolve));
    hash.update(data.subarray(o, Math.min(o + HASH_SLICE_BYTES, data.byteLength)));
  }
  return hash.digest('hex');
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
