import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

// The device side (detect, recognise, decide) never imports training code or TF.js.
test('device-side recognition code imports neither src/train nor TF.js', async () => {
  for (const dir of ['detect', 'recognise', 'decide']) {
    const root = path.resolve('src', dir);
    for (const f of await readdir(root)) {
      if (!f.endsWith('.ts')) continue;
      const text = await readFile(path.join(root, f), 'utf8');
      const imports = [...text.matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)].map((m) => m[1]!);
      for (const i of imports) {
        assert.ok(!/\/train\//.test(i) && !i.startsWith('@tensorflow') && !i.includes('/train.js'), `${dir}/${f} imports ${i}`);
      }
    }
  }
});
