/** The one atomic write helper: temp file in the same folder, synced, renamed. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { writeFileAtomic } from '../../src/shared/fs.js';

test('writeFileAtomic writes or replaces a file through a temp file it does not leave behind', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'facegate-fs-'));
  try {
    const file = path.join(dir, 'state.json');
    await writeFileAtomic(file, '{"a":1}');
    assert.equal(await readFile(file, 'utf8'), '{"a":1}');
    await writeFile(file, 'old');
    let seen: { target: string; tmp: string[] } | undefined;
    await writeFileAtomic(file, Buffer.from('new'), {
      syncDir: true,
      beforeRename: () => {
        // Synchronous look at the folder just before the rename: the old file, and a complete temp file beside it.
        const names = readdirSync(dir);
        seen = {
          target: readFileSync(file, 'utf8'),
          tmp: names.filter((n) => n !== 'state.json').map((n) => readFileSync(path.join(dir, n), 'utf8')),
        };
      },
    });
    assert.deepEqual(seen, { target: 'old', tmp: ['new'] });
    assert.equal(await readFile(file, 'utf8'), 'new');
    assert.deepEqual(await readdir(dir), ['state.json']);
    await writeFileAtomic(path.join(dir, 'key'), 'secret', { mode: 0o600 });
    assert.equal((await stat(path.join(dir, 'key'))).mode & 0o777, 0o600);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('writeFileAtomic: a rename that fails leaves the target as it was and no temp file', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'facegate-fs-'));
  try {
    const target = path.join(dir, 'taken');
    await mkdir(target);
    await writeFile(path.join(target, 'inside'), 'x');
    await assert.rejects(writeFileAtomic(target, 'data'), /EISDIR|ENOTEMPTY|EEXIST/);
    assert.deepEqual(await readdir(dir), ['taken']);
    await assert.rejects(writeFileAtomic(path.join(dir, 'missing', 'f'), 'data'), /ENOENT/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
