import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { overlaySvg, writeAnnotated } from '../../src/recognise/annotate.js';
import { annotatePath } from '../../src/cli/predict.js';
import { decodeRgb } from '../../src/shared/image.js';

test('overlay: one box and one label per face, names escaped, colour by kind', () => {
  const svg = overlaySvg(200, 100, [
    { box: { x: 10, y: 40, width: 50, height: 50 }, text: 'Ann & <Bob>', kind: 'known' },
    { box: { x: 100, y: 0, width: 50, height: 50 }, text: 'unknown', kind: 'unknown' },
  ]);
  assert.equal((svg.match(/<rect /g) ?? []).length, 4);
  assert.match(svg, /Ann &amp; &lt;Bob&gt;/);
  assert.match(svg, /stroke="#2ca02c"/);
  assert.match(svg, /stroke="#d62728"/);
  // a face at the top edge gets its label below the box top, inside the image
  assert.ok(!/y="-/.test(svg));
});

test('annotated image keeps its size and gets coloured pixels on the box edge; names do not collide', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'facegate-annotate-'));
  try {
    const input = await sharp({ create: { width: 120, height: 80, channels: 3, background: { r: 0, g: 0, b: 0 } } })
      .png()
      .toBuffer();
    const out = path.join(dir, 'a.png');
    await writeAnnotated(
      await decodeRgb(input),
      [{ box: { x: 20, y: 30, width: 40, height: 40 }, text: 'x', kind: 'unknown' }],
      out,
    );
    const { data, info } = await sharp(out).raw().toBuffer({ resolveWithObject: true });
    assert.equal(info.width, 120);
    assert.equal(info.height, 80);
    const o = (50 * info.width + 20) * info.channels; // left edge of the box
    assert.ok(data[o]! > 150 && data[o + 1]! < 100, 'red box edge');
    const taken = new Set<string>();
    const a = await annotatePath(dir, '/x/s1/9.png', 2, taken);
    const b = await annotatePath(dir, '/x/s2/9.png', 2, taken);
    assert.notEqual(a, b);
    assert.equal(path.basename(b), 's2-9.png');
    assert.equal(await annotatePath(path.join(dir, 'one.jpg'), '/x/y.gif', 1), path.join(dir, 'one.jpg'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
