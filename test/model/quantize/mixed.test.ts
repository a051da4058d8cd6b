/**
 * The mixed-precision measure (pure functions): what the search compares between the fp32
 * and the int8 graph — logits, the features' cosine, and the kiosk's decision.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_TARGET,
  cosine,
  deviation,
  meets,
  shortfall,
  type DecisionSample,
} from '../../../src/model/quantize/mixed.js';
import { kioskDecision, matchDescription } from '../../../src/recognise/recogniser.js';
import type { Face } from '../../../src/shared/messages.js';

const f = (...v: number[]): Float32Array => Float32Array.from(v);
const target = {
  minAgreement: 0.99,
  maxRelativeError: DEFAULT_TARGET.maxRelativeError,
  maxFloatNodes: 14,
  images: 64,
  minFeatureCosine: DEFAULT_TARGET.minFeatureCosine,
  minDecisionAgreement: DEFAULT_TARGET.minDecisionAgreement,
};

test('cosine: parallel 1, opposite −1, orthogonal 0, two zero vectors 1', () => {
  assert.ok(Math.abs(cosine(f(1, 2, 3), f(2, 4, 6)) - 1) < 1e-12);
  assert.ok(Math.abs(cosine(f(1, 0), f(-3, 0)) + 1) < 1e-12);
  assert.equal(cosine(f(1, 0), f(0, 5)), 0);
  assert.equal(cosine(f(0, 0), f(0, 0)), 1);
});

test('deviation: without features it reports logits only, as before', () => {
  const want: DecisionSample[] = [{ z: f(3, 1, 0) }, { z: f(0, 2, 1) }];
  const got: DecisionSample[] = [{ z: f(3, 1, 0) }, { z: f(0, 1, 2) }];
  const d = deviation(want, got);
  assert.equal(d.top1Agreement, 0.5);
  assert.equal(d.features, undefined);
  assert.equal(d.decisionAgreement, undefined);
  // energy: (3-4/3)²+(1-4/3)²+(0-4/3)² + (0-1)²+(2-1)²+(1-1)² = 4.6667 + 2; error 1+1
  assert.ok(Math.abs(d.relativeError - Math.sqrt(2 / (14 / 3 + 2))) < 1e-6);
});

test('deviation: feature cosine per image (lowest and mean), and the decision agreement', () => {
  const want: DecisionSample[] = [
    { z: f(2, 0), features: f(1, 0) },
    { z: f(0, 2), features: f(0, 1) },
    { z: f(2, 0), features: f(1, 1) },
  ];
  const got: DecisionSample[] = [
    { z: f(2, 0), features: f(1, 0) }, // cos 1
    { z: f(0, 2), features: f(1, 1) }, // cos √½
    { z: f(2, 0), features: f(1, 1) }, // cos 1
  ];
  // Names the first feature's sign: 'a' when features[0] > 0.5·|f|, else refused.
  const decide = (x: Float32Array): string | null => ((x[0] as number) / Math.hypot(...x) > 0.6 ? 'a' : null);
  const d = deviation(want, got, decide);
  assert.equal(d.top1Agreement, 1);
  assert.equal(d.relativeError, 0);
  assert.ok(d.features);
  assert.ok(Math.abs(d.features.minCosine - Math.SQRT1_2) < 1e-6);
  assert.ok(Math.abs(d.features.meanCosine - (2 + Math.SQRT1_2) / 3) < 1e-6);
  assert.ok(Math.abs((d.decisionAgreement as number) - 2 / 3) < 1e-12, 'image 2: refused in fp32, named in int8');
});

test('deviation: the decision gets the probabilities when given, else the decision tensor', () => {
  const seen: number[] = [];
  const decide = (_x: Float32Array, p: Float32Array): string | null => {
    seen.push(p[0] as number);
    return null;
  };
  deviation([{ z: f(5, 0), features: f(1), probabilities: f(0.9, 0.1) }], [{ z: f(4, 0), features: f(1) }], decide);
  assert.deepEqual(
    seen.map((x) => Math.round(x * 10) / 10),
    [0.9, 4],
  );
});

test('meets: every measured part must meet its bound; unmeasured parts do not count', () => {
  const ok = { top1Agreement: 1, relativeError: 0.01 };
  assert.equal(meets(ok, target, true), true);
  assert.equal(meets({ ...ok, features: { minCosine: 0.995, meanCosine: 0.999 } }, target, true), true);
  assert.equal(meets({ ...ok, features: { minCosine: 0.98, meanCosine: 0.999 } }, target, true), false);
  assert.equal(meets({ ...ok, decisionAgreement: 0.98 }, target, true), false);
  assert.equal(meets({ ...ok, decisionAgreement: 1 }, target, true), true);
  assert.equal(meets({ ...ok, top1Agreement: 0.5 }, target, false), true, 'top-1 only counts for a classifier');
  assert.equal(meets({ ...ok, relativeError: 0.03 }, target, true), false);
  assert.equal(
    meets({ ...ok, relativeError: 0.05, decisionAgreement: 1 }, target, true),
    true,
    'with the kiosk decision measured, the logits error is recorded, not bounded',
  );
});

test('shortfall: the worst part as a share of its bound', () => {
  assert.ok(Math.abs(shortfall({ top1Agreement: 1, relativeError: 0.05 }, target) - 2) < 1e-12);
  const d = { top1Agreement: 1, relativeError: 0.0125, features: { minCosine: 0.97, meanCosine: 0.99 } };
  assert.ok(Math.abs(shortfall(d, target) - 6) < 1e-9, '(1 − 0.97) / (1 − 0.995) = 6 beats 0.5');
  const decided = { top1Agreement: 1, relativeError: 0.05, features: { minCosine: 0.998, meanCosine: 0.999 } };
  assert.ok(Math.abs(shortfall({ ...decided, decisionAgreement: 1 }, target) - 0.4) < 1e-9, 'features only');
  assert.ok(
    Math.abs(shortfall({ ...decided, decisionAgreement: 0.9 }, target) - 2) < 1e-9,
    'decisions flip: logits count',
  );
});

test('kioskDecision decides as matchDescription does (threshold and margin)', () => {
  const recognition = {
    mean: [0.5, 0.5, 0],
    references: { ann: [1, 0, 0], bob: [0, 1, 0] },
    threshold: 0.6,
    minMargin: 0.1,
  };
  const classes = ['ann', 'bob'];
  const decide = kioskDecision(recognition, classes);
  const refs = new Map([
    ['ann', f(1, 0, 0)],
    ['bob', f(0, 1, 0)],
  ]);
  const cases: [Float32Array, Float32Array][] = [
    [f(1.5, 0.5, 0), f(0.9, 0.1)], // ann, clear
    [f(1.5, 0.5, 0), f(0.52, 0.48)], // ann by cosine, margin too small
    [f(0.5, 1.5, 0.2), f(0.1, 0.9)], // bob
    [f(0.6, 0.5, 2), f(0.9, 0.1)], // below the threshold
    [f(1.5, 0.5, 0), f(0.1, 0.9)], // head disagrees: negative margin
  ];
  const want = ['ann', null, 'bob', null, null];
  cases.forEach(([vector, probabilities], i) => {
    const m = matchDescription({} as Face, { vector, probabilities }, classes, refs, f(0.5, 0.5, 0), recognition);
    assert.equal(decide(vector, probabilities), m.label, `case ${i}`);
    assert.equal(m.label, want[i], `case ${i}`);
  });
});
