import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errorRates, thresholdForFar, nextUp, errorCurve, equalErrorRate } from '../../src/recognise/thresholds.js';
import { calibrateThreshold, buildRecognitionSection } from '../../src/recognise/calibrate.js';
import { cosine, buildReferences, centre, nearestReference, softmax } from '../../src/recognise/similarity.js';
import { recognitionSectionSchema } from '../../src/model/manifest.js';

test('threshold for a target FAR on known impostor scores', () => {
  const imp = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95];
  assert.equal(thresholdForFar(imp, 0), nextUp(0.95));
  assert.equal(thresholdForFar(imp, 0.05), nextUp(0.95)); // below 1/n: refuse all
  assert.equal(thresholdForFar(imp, 0.1), nextUp(0.9)); // one impostor may pass
  assert.equal(thresholdForFar(imp, 0.25), nextUp(0.8));
  // ties are never split: two at 0.9 cannot let exactly one through
  assert.equal(thresholdForFar([0.9, 0.9, 0.5, 0.1], 0.25), nextUp(0.9));
  assert.throws(() => thresholdForFar([], 0.1), RangeError);
  assert.throws(() => thresholdForFar([1], 2), RangeError);
});

test('error rates count misidentified known faces as false rejects, strangers as false accepts', () => {
  const probes = [
    { truth: 'a', predicted: 'a', score: 0.9 },
    { truth: 'a', predicted: 'b', score: 0.8 }, // misidentified when accepted
    { truth: 'b', predicted: 'b', score: 0.4 }, // refused at 0.5
    { truth: null, predicted: 'a', score: 0.6 },
    { truth: null, predicted: 'b', score: 0.3 },
  ];
  assert.deepEqual(errorRates(probes, 0.5), {
    threshold: 0.5,
    far: 0.5,
    frr: 2 / 3,
    accuracy: 1 / 3,
    misidentified: 1 / 3,
  });
  assert.deepEqual(errorRates(probes, 0.85), {
    threshold: 0.85,
    far: 0,
    frr: 2 / 3,
    accuracy: 1 / 3,
    misidentified: 0,
  });
  const curve = errorCurve(probes);
  assert.equal(curve[0]!.far, 1);
  assert.equal(curve[curve.length - 1]!.far, 0);
  assert.equal(curve[curve.length - 1]!.frr, 1);
  assert.ok(equalErrorRate(curve));
});

test('cosine, centroids with the mean subtracted, nearest reference, softmax', () => {
  assert.equal(cosine([1, 0], [0, 1]), 0);
  assert.ok(Math.abs(cosine([1, 1], [2, 2]) - 1) < 1e-12);
  assert.equal(cosine([0, 0], [1, 0]), 0);
  const samples = [
    { label: 'a', vector: [1, 0, 1] },
    { label: 'a', vector: [1, 0.1, 1] },
    { label: 'b', vector: [0, 1, 1] },
    { label: 'b', vector: [0.1, 1, 1] },
  ];
  const { mean, references } = buildReferences(samples, true);
  assert.ok(mean);
  // the shared third component is removed by the mean
  assert.ok(Math.abs(references.get('a')![2]!) < 1e-6);
  const n = nearestReference(centre([0.9, 0, 1], mean), references);
  assert.equal(n.label, 'a');
  assert.ok(n.similarity > 0.9 && n.secondSimilarity < 0);
  const p = softmax([1, 2, 3]);
  assert.ok(Math.abs(p.reduce((s, x) => s + x, 0) - 1) < 1e-6 && p[2]! > p[1]!);
});

function cluster(label: string, centreDir: number, n: number, seed: number): { label: string; vector: number[] }[] {
  let s = seed;
  const rnd = (): number => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648 - 0.5;
  };
  return Array.from({ length: n }, () => {
    const v = Array.from({ length: 16 }, () => 0.1 * rnd());
    v[centreDir] = (v[centreDir] ?? 0) + 1;
    return { label, vector: v };
  });
}

test('leave-one-person-out calibration refuses every person when left out and accepts held-out faces', () => {
  const people = ['p0', 'p1', 'p2', 'p3', 'p4'];
  const enrol = people.flatMap((p, i) => cluster(p, i, 6, 10 + i));
  const heldOut = people.flatMap((p, i) => cluster(p, i, 2, 100 + i));
  const cal = calibrateThreshold({ enrol, heldOut, targetFar: 0 });
  assert.equal(cal.impostorScores.length, 40);
  assert.equal(cal.far, 0);
  assert.ok(cal.threshold > Math.max(...cal.impostorScores));
  assert.equal(cal.frr, 0, 'well separated clusters: held-out faces all accepted');
  const section = buildRecognitionSection({
    enrol,
    heldOut,
    source: 'features',
    targetFar: 0.001,
    crop: { margin: 1.3, rotate: true, method: 'box', zoom: 1 },
  });
  assert.deepEqual(Object.keys(section.references), people);
  assert.equal(section.calibration.impostorProbes, 40);
  assert.equal(recognitionSectionSchema.parse(JSON.parse(JSON.stringify(section))).threshold, section.threshold);
  assert.throws(() => calibrateThreshold({ enrol: enrol.slice(0, 6), heldOut, targetFar: 0 }), RangeError);
});

test('normal quantile and the Gaussian tail threshold', async () => {
  const { normalQuantile, gaussianTailThreshold } = await import('../../src/recognise/thresholds.js');
  assert.ok(Math.abs(normalQuantile(0.5)) < 1e-9);
  assert.ok(Math.abs(normalQuantile(0.999) - 3.090232306) < 1e-6);
  assert.ok(Math.abs(normalQuantile(0.025) + 1.959963985) < 1e-6);
  // mean 0.5, sample sd 0.1: 0.5 + 3.0902 * 0.1
  assert.ok(Math.abs(gaussianTailThreshold([0.4, 0.6], 0.001) - (0.5 + 3.090232306 * Math.SQRT2 * 0.1)) < 1e-6);
  assert.equal(gaussianTailThreshold([0.4], 0.001), -Infinity);
});
