/**
 * The one way files that must never be seen half-written are written: a temp file in
 * the same folder, synced, then renamed over the target (rename(2) is atomic within a
 * filesystem). A crash leaves either the old file or the new one, plus at most a
 * `<name>.<random>.tmp` that the writer's owner may sweep (the model store does at start).
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

export interface AtomicWriteOptions {
  /** File mode of a new file, before the umask (fs.writeFile's 0o666 by default). */
  readonly mode?: number;
  /** Also fsync the folder after the rename, so the new name itself survives a power cut. */
  readonly syncDir?: boolean;
  /** Called with the temp file written and synced, before the rename (crash-injection tests). */
  readonly beforeRename?: () => void;
}

/** fsyncs a folder; some filesystems refuse that, and the rename is atomic anyway. */
export async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    /* not supported here */
  }
}

/** Writes `data` to `file` through a synced temp file and a rename: a reader never sees half a file. */
export async function writeFileAtomic(
  file: string,
  data: Uint8Array | string,
  o: AtomicWriteOptions = {},
): Promise<void> {
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', o.mode ?? 0o666);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  o.beforeRename?.();
  try {
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  if (o.syncDir) await syncDir(path.dirname(file));
}
