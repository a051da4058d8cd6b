import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { cropPreparer, loadDataset, stratifiedSplit, countPerClass } from '../../src/train/data.js';
import { DataError } from '../../src/shared/errors.js';
import { requireShared, sharedPaths } from '../support/shared.js';

const tmpDirs: string[] = [];
after(async () => {
  for (const d of tmpDirs) await rm(d, { recursive: true, force: true });
});

/** Builds a data folder in the temp dir from real ORL images: spec maps "sub/class" → ORL files of s<n>. */
async function layout(
  spec: Record<string, { person: string; images: number[] }>,
  extra?: (root: string) => Promise<void>,
): Promise<string> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'fg-data-'));
  tmpDirs.push(root);
  for (const [dir, { person, images }] of Object.entries(spec)) {
    await mkdir(path.join(root, dir), { recursive: true });
    for (const i of images) {
      const split = i <= 8 ? 'train' : 'validation';
      await copyFile(path.join(sharedPaths.orl, split, person, `${i}.png`), path.join(root, dir, `${i}.png`));
    }
  }
  await extra?.(root);
  return root;
}

const prep = cropPreparer(224);

test('train/validation layout on ORL: classes sorted by name give the indices, images become 224×224 RGB', async (t) => {
  if (!requireShared(t)) return;
  const ds = await loadDataset({
    dir: sharedPaths.orl,
    preparer: prep,
    validationSplit: 0.2,
    seed: 1,
    classes: ['s2', 's10', 's1'],
  });
  assert.deepEqual(ds.classes, ['s1', 's10', 's2'], 'string order, like Keras flow_from_directory');
  assert.equal(ds.layout, 'train+validation');
  assert.equal(ds.train.length, 24);
  assert.equal(ds.validation.length, 6);
  assert.deepEqual(countPerClass(ds.train, 3), [8, 8, 8]);
  const s10 = ds.train.find((s) => s.file.includes(`${path.sep}s10${path.sep}`));
  assert.equal(s10?.label, 1);
  const img = ds.train[0]?.image;
  assert.equal(img?.width, 224);
  assert.equal(img?.height, 224);
  assert.equal(img?.data.length, 224 * 224 * 3);
  // greyscale expanded: R = G = B
  assert.ok(img && img.data[3000] === img.data[3001] && img.data[3001] === img.data[3002]);
  assert.equal(ds.skipped.length, 0);
});

test('train/ only: validation split off per class, seeded', async (t) => {
  if (!requireShared(t)) return;
  const root = await layout({
    'train/alice': { person: 's1', images: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] },
    'train/bob': { person: 's2', images: [1, 2, 3, 4, 5] },
  });
  const a = await loadDataset({ dir: root, preparer: prep, validationSplit: 0.2, seed: 3 });
  const b = await loadDataset({ dir: root, preparer: prep, validationSplit: 0.2, seed: 3 });
  const c = await loadDataset({ dir: root, preparer: prep, validationSplit: 0.2, seed: 4 });
  assert.equal(a.layout, 'train+split');
  assert.deepEqual(countPerClass(a.validation, 2), [2, 1], '20 % of each class, at least one');
  assert.deepEqual(countPerClass(a.train, 2), [8, 4]);
  assert.deepEqual(
    a.validation.map((s) => s.file),
    b.validation.map((s) => s.file),
    'same seed, same split',
  );
  const files = (d: typeof a): string => d.validation.map((s) => s.file).join();
  assert.notEqual(files(c), files(a), 'another seed draws another split');
});

test('flat layout DIR/<class>/ is split too', async (t) => {
  if (!requireShared(t)) return;
  const root = await layout({
    x: { person: 's3', images: [1, 2, 3, 4, 5] },
    y: { person: 's4', images: [1, 2, 3, 4, 5] },
  });
  const ds = await loadDataset({ dir: root, preparer: prep, validationSplit: 0.4, seed: 1 });
  assert.equal(ds.layout, 'flat+split');
  assert.deepEqual(ds.classes, ['x', 'y']);
  assert.deepEqual(countPerClass(ds.validation, 2), [2, 2]);
});

test('corrupt and unreadable files are skipped, counted and listed; other files ignored', async (t) => {
  if (!requireShared(t)) return;
  const root = await layout(
    {
      'train/a': { person: 's1', images: [1, 2, 3] },
      'train/b': { person: 's2', images: [1, 2, 3] },
      'validation/a': { person: 's1', images: [9] },
      'validation/b': { person: 's2', images: [9] },
    },
    async (r) => {
      await writeFile(path.join(r, 'train/a/broken.png'), Buffer.from('this is not a png'));
      await writeFile(path.join(r, 'train/b/truncated.jpg'), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10]));
      await writeFile(path.join(r, 'train/b/notes.txt'), 'not an image');
    },
  );
  const ds = await loadDataset({ dir: root, preparer: prep, validationSplit: 0.2, seed: 1 });
  assert.equal(ds.train.length, 6);
  assert.equal(ds.skipped.length, 2);
  assert.deepEqual(ds.skipped.map((s) => path.basename(s.file)).sort(), ['broken.png', 'truncated.jpg']);
  assert.match(ds.skipped[0]?.reason ?? '', /cannot decode/);
});

test('an empty class, a single class and different class sets stop with a message that says what to fix', async (t) => {
  if (!requireShared(t)) return;
  const empty = await layout(
    { 'train/a': { person: 's1', images: [1, 2] }, 'train/b': { person: 's2', images: [1, 2] } },
    (r) => mkdir(path.join(r, 'train/c')),
  );
  await assert.rejects(
    loadDataset({ dir: empty, preparer: prep, validationSplit: 0.5, seed: 1 }),
    (e: Error) => e instanceof DataError && /empty class folder.*\bc\b/.test(e.message) && /Add images/.test(e.message),
  );

  const single = await layout({
    'train/a': { person: 's1', images: [1, 2] },
    'validation/a': { person: 's1', images: [9] },
  });
  await assert.rejects(
    loadDataset({ dir: single, preparer: prep, validationSplit: 0.2, seed: 1 }),
    (e: Error) => e instanceof DataError && /only one class/.test(e.message) && /at least two/.test(e.message),
  );

  const mismatch = await layout({
    'train/a': { person: 's1', images: [1] },
    'train/b': { person: 's2', images: [1] },
    'validation/a': { person: 's1', images: [9] },
    'validation/c': { person: 's3', images: [9] },
  });
  await assert.rejects(
    loadDataset({ dir: mismatch, preparer: prep, validationSplit: 0.2, seed: 1 }),
    (e: Error) =>
      e instanceof DataError &&
      /different classes/.test(e.message) &&
      /\[b\]/.test(e.message) &&
      /\[c\]/.test(e.message),
  );

  const allBroken = await layout(
    {
      'train/a': { person: 's1', images: [1, 2] },
      'validation/a': { person: 's1', images: [9] },
      'validation/b': { person: 's2', images: [9] },
    },
    async (r) => {
      await mkdir(path.join(r, 'train/b'));
      await writeFile(path.join(r, 'train/b/x.png'), 'garbage');
    },
  );
  await assert.rejects(
    loadDataset({ dir: allBroken, preparer: prep, validationSplit: 0.2, seed: 1 }),
    (e: Error) => e instanceof DataError && /no usable training images for b/.test(e.message),
  );

  await assert.rejects(
    loadDataset({ dir: path.join(os.tmpdir(), 'no-such-facegate-dir'), preparer: prep, validationSplit: 0.2, seed: 1 }),
    DataError,
  );
});

test('stratifiedSplit never empties a class and rejects a bad fraction', () => {
  const samples = [0, 0, 1, 1, 1, 2].map((label, i) => ({ label, i }));
  const s = stratifiedSplit(samples, 3, 0.5, 9);
  assert.deepEqual(countPerClass(s.validation, 3), [1, 2, 0]);
  assert.deepEqual(countPerClass(s.train, 3), [1, 1, 1]);
  assert.throws(() => stratifiedSplit(samples, 3, 1, 9), DataError);
});
