import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder, attr, readAttr } from '../../../src/model/onnx/builder.js';

test('readAttr reads back what attr wrote, and undefined for what is absent or empty', () => {
  const g = new GraphBuilder('t');
  g.op(
    'Conv',
    ['x', 'w'],
    {
      group: attr.i(2),
      pads: attr.ints([1, 0, 1, 0]),
      auto_pad: attr.s('NOTSET'),
      alpha: attr.f(0.5),
      strides: attr.ints([]),
    },
    { name: 'conv' },
  );
  const n = g.nodes.find((x) => x.name === 'conv');
  assert.ok(n);
  assert.equal(readAttr.i(n, 'group'), 2);
  assert.deepEqual(readAttr.ints(n, 'pads'), [1, 0, 1, 0]);
  assert.equal(readAttr.s(n, 'auto_pad'), 'NOTSET');
  assert.equal(readAttr.f(n, 'alpha'), 0.5);
  assert.equal(readAttr.ints(n, 'strides'), undefined, 'an empty list reads as absent');
  for (const missing of [
    readAttr.i(n, 'nope'),
    readAttr.f(n, 'nope'),
    readAttr.ints(n, 'nope'),
    readAttr.s(n, 'nope'),
    readAttr.get(n, 'nope'),
  ]) {
    assert.equal(missing, undefined);
  }
});
