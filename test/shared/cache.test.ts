/** One cache folder, one variable; the old variable still works (with a warning). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { cacheDir } from '../../src/shared/cache.js';

test('FACEGATE_CACHE names the cache folder and wins over the deprecated FACEGATE_CACHE_DIR', () => {
  assert.equal(cacheDir({ FACEGATE_CACHE: '/a', FACEGATE_CACHE_DIR: '/b' }), '/a');
});

test('FACEGATE_CACHE_DIR alone is still read', () => {
  assert.equal(cacheDir({ FACEGATE_CACHE_DIR: '/b' }), '/b');
});

test('without either, XDG_CACHE_HOME/facegate, else ~/.cache/facegate', () => {
  assert.equal(cacheDir({ XDG_CACHE_HOME: '/x' }), path.join('/x', 'facegate'));
  assert.equal(cacheDir({}), path.join(os.homedir(), '.cache', 'facegate'));
});
