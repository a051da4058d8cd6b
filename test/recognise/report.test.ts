import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rocSpec } from '../../src/recognise/report.js';

const base = {
  title: 't',
  label: 'threshold 0.500',
  farTitle: 'far',
  frrTitle: 'frr',
};
const curve = [
  { far: 0, frr: 1, threshold: 0.9 },
  { far: 0.00001, frr: 0.6, threshold: 0.7 },
  { far: 0.1, frr: 0.1, threshold: 0.5 },
];

test('a linear ROC keeps every curve point as given and can draw steps', () => {
  const spec = rocSpec({ ...base, curve, point: { far: 0, frr: 0.3 }, steps: true });
  assert.deepEqual(spec.data?.[0], { name: 'curve', values: curve });
  assert.deepEqual(spec.data?.[1], { name: 'point', values: [{ far: 0, frr: 0.3 }] });
  assert.deepEqual(spec.scales, [
    { name: 'x', type: 'linear', domain: [0, 1], range: 'width' },
    { name: 'y', type: 'linear', domain: [0, 1], range: 'height' },
  ]);
  assert.match(JSON.stringify(spec.marks), /step-after/);
  assert.match(JSON.stringify(spec.marks), /"threshold 0\.500"/);
});

test('a log ROC drops FAR 0, holds the rest and the operating point at the floor, and clamps FRR', () => {
  const spec = rocSpec({ ...base, curve, point: { far: 0, frr: 0.3 }, logFarFloor: 1e-4, frrMax: 0.5 });
  assert.deepEqual(spec.data?.[0], {
    name: 'curve',
    values: [
      { far: 1e-4, frr: 0.6, threshold: 0.7 },
      { far: 0.1, frr: 0.1, threshold: 0.5 },
    ],
  });
  assert.deepEqual(spec.data?.[1], { name: 'point', values: [{ far: 1e-4, frr: 0.3 }] });
  assert.deepEqual(spec.scales, [
    { name: 'x', type: 'log', domain: [1e-4, 1], range: 'width' },
    { name: 'y', type: 'linear', domain: [0, 0.5], range: 'height', clamp: true },
  ]);
  assert.doesNotMatch(JSON.stringify(spec.marks), /step-after/);
});
