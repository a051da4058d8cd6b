import { test } from 'node:test';
import assert from 'node:assert/strict';
import { summarise, resultJson, curveScore, type EvalProbe } from '../../src/recognise/evaluate.js';

const m = (candidate: string, similarity: number, label: string | null, margin = 0.9) => ({
  label,
  candidate,
  similarity,
  probability: 0.95,
  margin,
});

test('summarise: rates, faces not found, confusion matrix and per-person precision/recall', () => {
  const probes: EvalProbe[] = [
    { file: 'a1', truth: 'a', match: m('a', 0.9, 'a') },
    { file: 'a2', truth: 'a', match: m('b', 0.8, 'b') }, // misidentified
    { file: 'a3', truth: 'a', match: null, reason: 'no face' },
    { file: 'b1', truth: 'b', match: m('b', 0.3, null) }, // refused
    { file: 'x1', truth: null, match: m('a', 0.85, 'a') }, // stranger let in
    { file: 'x2', truth: null, match: m('b', 0.2, null) },
  ];
  const r = summarise(probes, {
    model: 'M',
    modelVersion: '1',
    precision: 'int8',
    mode: 'detect',
    threshold: 0.5,
    minMargin: 0.1,
    classes: ['a', 'b'],
    strangerFolders: [],
    unreadable: 0,
  });
  assert.equal(r.rates.accuracy, 1 / 3);
  assert.equal(r.rates.far, 0.5);
  assert.equal(r.rates.frr, 2 / 3);
  assert.equal(r.rates.misidentified, 1 / 3);
  assert.equal(r.frrIncludingNotFound, 3 / 4);
  assert.equal(r.facesNotFound, 1);
  assert.equal(r.knownImages, 4);
  assert.equal(r.unknownImages, 2);
  assert.deepEqual(r.confusion, {
    a: { a: 1, b: 1, unknown: 0 },
    b: { a: 0, b: 0, unknown: 1 },
    unknown: { a: 1, b: 0, unknown: 1 },
  });
  assert.deepEqual(
    r.perPerson.map((p) => [p.name, p.precision, p.recall]),
    [
      ['a', 0.5, 0.5],
      ['b', 0, 0],
    ],
  );
  const j = resultJson(r);
  assert.equal(j.known_images, 4);
  assert.equal(j.faces_not_found, 1);
});

test('a face whose margin fails is never accepted on the curve', () => {
  assert.equal(curveScore(m('a', 0.9, null, 0.05), 0.1), -Infinity);
  assert.equal(curveScore(m('a', 0.9, 'a', 0.5), 0.1), 0.9);
});
