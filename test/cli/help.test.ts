import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';

const cli = 'dist/src/cli.js';

test('facegate --help lists every command', () => {
  const out = execFileSync(process.execPath, [cli, '--help'], { encoding: 'utf8' });
  for (const cmd of ['train', 'export', 'quantize', 'predict', 'eval', 'run', 'config']) {
    assert.match(out, new RegExp(`^\\s+${cmd}\\b`, 'm'), `missing ${cmd} in --help`);
  }
});
