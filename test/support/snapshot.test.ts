import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalise, shapeOf } from './snapshot.js';

test('normalise replaces the named values by their kind, through * levels and arrays', () => {
  const v = {
    id: '0b6f3e0e-8a53-4b0e-9d55-2f3c9b8f7a11',
    files: { a: { sha256: 'a'.repeat(64), bytes: 3 }, b: { sha256: 'b'.repeat(64), bytes: 0 } },
    list: [{ at: '2026-01-28T10:20:03.512Z' }, { at: '2026-01-28T10:20:04Z' }],
    kept: 1.5,
  };
  assert.deepEqual(
    normalise(v, { id: 'uuid', 'files.*.sha256': 'sha256', 'files.*.bytes': 'byte-count', 'list.*.at': 'iso-time' }),
    {
      id: '<uuid>',
      files: { a: { sha256: '<sha256>', bytes: '<byte-count>' }, b: { sha256: '<sha256>', bytes: '<byte-count>' } },
      list: [{ at: '<iso-time>' }, { at: '<iso-time>' }],
      kept: 1.5,
    },
  );
  assert.equal(v.id, '0b6f3e0e-8a53-4b0e-9d55-2f3c9b8f7a11', 'the input is not changed');
});

test('normalise fails on a value of another kind and on a rule that matches nothing', () => {
  assert.throws(() => normalise({ id: 'not-a-uuid' }, { id: 'uuid' }), /is not a uuid: the payload changed/);
  assert.throws(() => normalise({ at: '2026-13-45' }, { at: 'iso-time' }), /is not a iso-time/);
  assert.throws(() => normalise({ id: 'x' }, { missing: 'string' }), /matched nothing/);
});

test('shapeOf keeps keys and types, and the distinct shapes of array elements', () => {
  assert.deepEqual(shapeOf({ a: 1, b: 'x', c: null, d: [1, 2, 3], e: [{ n: 1 }, { n: 2 }, { m: true }], f: [] }), {
    a: '<number>',
    b: '<string>',
    c: null,
    d: ['<number>'],
    e: [{ n: '<number>' }, { m: '<boolean>' }],
    f: [],
  });
});
