/**
 * Snapshot of `facegate eval --gallery --json`'s keys (galleryResultJson): the object scripts
 * read, so a renamed or dropped key shows as a diff. The measured numbers are data-dependent,
 * so the snapshot pins the shape (keys and types, shapeOf), on a small synthetic evaluation:
 * two enrolled people and one stranger folder, scored by hand, no data set.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  frrAtFar,
  galleryResultJson,
  impostorScores,
  scoredProbes,
  visitRates,
  type GalleryEvalResult,
  type ScoredFrame,
} from '../../src/gallery/eval.js';
import { BUILTIN_DESCRIPTORS } from '../../src/gallery/descriptor.js';
import { assertSnapshot, shapeOf } from '../support/snapshot.js';

const frame = (truth: number, scores: number[], group?: string): ScoredFrame => ({
  truth,
  scores: Float32Array.from(scores),
  ...(group === undefined ? {} : { group }),
});

function syntheticResult(): GalleryEvalResult {
  const frames = [
    ...[0.9, 0.8, 0.85].map((s) => frame(0, [s, 0.3])),
    ...[0.7, 0.4, 0.75].map((s) => frame(1, [0.2, s])),
    ...[0.6, 0.55, 0.65].map((s) => frame(-1, [s, 0.1], 'stranger folder')),
  ];
  const visit = { n: 5, k: 3 };
  const rates = visitRates(frames, { threshold: 0.5 }, visit);
  const probes = scoredProbes(frames);
  const impostors = impostorScores(frames);
  const tail = { t0: 0.5, q0: 0.001, beta: 0.02 };
  return {
    settings: {
      backbone: 'dlib',
      alignment: BUILTIN_DESCRIPTORS.dlib.crop,
      flip: true,
      scoring: { rule: 'centroid' },
      norm: 'auto',
      minPhotos: 6,
      enrolPerPerson: 3,
      visit,
      targetFar: 0.01,
    },
    enrolled: 2,
    genuineProbes: 6,
    strangerProbes: 3,
    facesNotFound: { genuine: 0, strangers: 1, enrolment: 0 },
    threshold: 0.5,
    adapt: { shift: 0.01, level: 0.1, scores: 18 },
    thresholdTail: "dlib's flip+centroid tail",
    frame: frrAtFar(probes, impostors, 0.5),
    leaveOneOutFar: 0.1667,
    frrIncludingNotFound: 0.1667,
    visit: rates,
    pooled: { threshold: 0.6, thresholdTail: "dlib's flip+centroid aggregate tail", visit: rates },
    atFar: { far001: frrAtFar(probes, impostors, 0.001), far01: frrAtFar(probes, impostors, 0.01) },
    eer: frrAtFar(probes, impostors, 0.3),
    curve: [frrAtFar(probes, impostors, 0.1)],
    impostorTail: { ...tail, scores: 100, people: 10, quantiles: { levels: [0.1, 0.01], scores: [0.4, 0.5] } },
    aggregateTail: { ...tail, scores: 50, people: 10 },
    marginFit: {
      weight: 0.5,
      targetFar: 0.01,
      people: [200, 300],
      thresholds: [0.96, 0.97],
      strangers: [1000, 1000],
      rawFar: [0.007, 0.0065],
    },
  };
}

test('eval --gallery --json: the keys (snapshot of the shape, every optional part present)', () => {
  const r = syntheticResult();
  // the visit objects count the stranger folder's own visit too (here let in: every frame over 0.5)
  assert.equal(r.visit.genuineVisits, 2);
  assert.equal(r.visit.otherVisits, 1);
  assert.equal(r.visit.otherFar, 1);
  const json = galleryResultJson(r);
  // each visit object names its window (k of n) beside its rates
  assert.deepEqual(Object.keys(json.visit as object).sort(), [
    'far',
    'frr',
    'genuineVisits',
    'k',
    'n',
    'otherFar',
    'otherVisits',
    'strangerVisits',
  ]);
  assert.deepEqual(
    Object.keys((json.pooled as { visit: object }).visit).sort(),
    Object.keys(json.visit as object).sort(),
  );
  assertSnapshot('eval-gallery-json', shapeOf(JSON.parse(JSON.stringify(json))));
});

test('eval --gallery --json: the optional parts are null where they were not computed', () => {
  const json = galleryResultJson({
    ...syntheticResult(),
    adapt: null,
    pooled: null,
    eer: null,
    impostorTail: null,
    aggregateTail: null,
    marginFit: null,
  });
  for (const key of ['adapt', 'pooled', 'eer', 'impostor_tail', 'aggregate_tail', 'margin_fit'])
    assert.equal(json[key], null, key);
});
