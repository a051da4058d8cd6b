import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  adaptiveShift,
  CrossScoreCache,
  crossScores,
  galleryShift,
  upperQuantiles,
  type PoolQuantiles,
} from '../../src/gallery/adapt.js';
import { buildIndex, DLIB_FLIP_CENTROID_POOL_QUANTILES, type GalleryEntry } from '../../src/gallery/match.js';
import { mulberry32 } from '../../src/train/rng.js';

const v = (...xs: number[]): Float32Array => Float32Array.from(xs);

// alice: two templates along x and y (centroid along x+y); bob: one along z; carol: one along x.
const entries: GalleryEntry[] = [
  { personId: 'alice', templates: [v(2, 0, 0), v(0, 3, 0)] },
  { personId: 'bob', templates: [v(0, 0, 5)] },
  { personId: 'carol', templates: [v(1, 0, 0)] },
];

test('crossScores: each template against every other person under the rule, never its own person', () => {
  const c = Math.SQRT1_2;
  // centroid: a template against the other person's centroid (alice's is (1, 1, 0)/√2).
  const centroid = crossScores(entries, buildIndex(entries, { rule: 'centroid' }));
  assert.deepEqual(
    Array.from(centroid, (x) => Number(x.toFixed(6))),
    // alice x vs bob, carol; alice y vs bob, carol; bob vs alice, carol; carol vs alice, bob
    [0, 1, 0, 0, 0, 0, c, 0].map((x) => Number(x.toFixed(6))),
  );
  // best: against the other person's best template (carol vs alice: her x template, 1).
  const best = crossScores(entries, buildIndex(entries, { rule: 'best' }));
  assert.deepEqual(Array.from(best), [0, 1, 0, 0, 0, 0, 1, 0]);
});

test('upperQuantiles: the score exceeded by a share of the scores (the ⌈n·p⌉-th highest)', () => {
  const scores = Array.from({ length: 100 }, (_, i) => i / 100); // 0 … 0.99
  assert.deepEqual(upperQuantiles(scores, [0.1, 0.01, 0.001]), [0.9, 0.99, 0.99]);
});

/** n scores of a known distribution: uniform on [a, a + 1). */
function uniform(n: number, a: number, seed: number): Float32Array {
  const rng = mulberry32(seed);
  return Float32Array.from({ length: n }, () => a + rng());
}
/** Uniform(0, 1)'s upper quantiles: 1 − p. */
const uniformPool: PoolQuantiles = { levels: [0.1, 0.01, 0.001], scores: [0.9, 0.99, 0.999] };

test('adaptiveShift: a gallery whose cross scores follow the pool is not moved (the lower bound absorbs the noise)', () => {
  for (let seed = 1; seed <= 50; seed++) {
    const s = adaptiveShift(uniform(2000, 0, seed), uniformPool);
    assert.equal(s.shift, 0, `seed ${seed}`);
    assert.equal(s.level, null);
    assert.equal(s.scores, 2000);
  }
});

test('adaptiveShift: cross scores running higher raise the threshold by about the excess, a little less (conservative)', () => {
  const s = adaptiveShift(uniform(20000, 0.05, 3), uniformPool);
  assert.ok(s.shift > 0.04 && s.shift < 0.05, `shift ${s.shift}`);
  // levels with fewer than 10 scores expected above them are not read: 20,000 × 0.001 = 20 is.
  assert.ok(s.level === 0.1 || s.level === 0.01 || s.level === 0.001);
  // 2,000 scores: 0.001 would expect 2 above it, so only 0.1 and 0.01 are compared.
  const few = adaptiveShift(
    Float32Array.from({ length: 2000 }, (_, i) => (i === 0 ? 5 : 0)),
    uniformPool,
  );
  assert.equal(few.shift, 0, 'one outlier far above the pool does not move a level it cannot estimate');
});

test('adaptiveShift: never negative, and zero for an empty or one-person gallery', () => {
  assert.equal(adaptiveShift(uniform(5000, -0.5, 1), uniformPool).shift, 0);
  assert.deepEqual(adaptiveShift(new Float32Array(0), uniformPool), { shift: 0, level: null, scores: 0 });
  const one = galleryShift([entries[0]!], DLIB_FLIP_CENTROID_POOL_QUANTILES, { rule: 'centroid' });
  assert.deepEqual(one, { shift: 0, level: null, scores: 0 });
});

test('galleryShift: people photographed alike (cross scores above the pool) shift; orthogonal people do not', () => {
  const rng = mulberry32(7);
  const dims = 64;
  // Everyone shares a strong common component (one camera, one light) plus their own face and noise.
  const common = Float32Array.from({ length: dims }, () => rng() - 0.5);
  const alike: GalleryEntry[] = Array.from({ length: 40 }, (_, p) => {
    const own = Float32Array.from({ length: dims }, () => rng() - 0.5);
    return {
      personId: `p${p}`,
      templates: Array.from({ length: 3 }, () =>
        Float32Array.from({ length: dims }, (_, i) => 4 * common[i]! + own[i]! + 0.1 * (rng() - 0.5)),
      ),
    };
  });
  const s = galleryShift(alike, DLIB_FLIP_CENTROID_POOL_QUANTILES, { rule: 'centroid' });
  assert.ok(s.shift > 0, `shift ${s.shift}`);
  assert.equal(s.scores, 40 * 3 * 39);
  const apart: GalleryEntry[] = Array.from({ length: 40 }, (_, p) => ({
    personId: `p${p}`,
    templates: [Float32Array.from({ length: dims }, () => rng() - 0.5)],
  }));
  assert.equal(galleryShift(apart, DLIB_FLIP_CENTROID_POOL_QUANTILES, { rule: 'centroid' }).shift, 0);
});

test('CrossScoreCache: through random enrolments, changes and removals, equal to galleryShift after every step', () => {
  const dims = 32;
  // Cross scores around 0.5–0.9 against this pool, so the levels read real scores and the shift moves.
  const pool: PoolQuantiles = { levels: [0.1, 0.03, 0.01, 0.003], scores: [0.6, 0.65, 0.7, 0.75] };
  for (const scoring of [{ rule: 'centroid' }, { rule: 'best' }, { rule: 'top-k', k: 2 }] as const) {
    const rng = mulberry32(13);
    const common = Float32Array.from({ length: dims }, () => rng() - 0.5);
    const strength = (): number => 1 + 2 * rng(); // some people closer to the common face than others
    const face = (s: number): Float32Array => {
      const own = Float32Array.from({ length: dims }, () => rng() - 0.5);
      return Float32Array.from({ length: dims }, (_, i) => s * common[i]! + own[i]!);
    };
    const templatesOf = (f: Float32Array): Float32Array[] =>
      Array.from({ length: 1 + Math.floor(rng() * 4) }, () => Float32Array.from(f, (x) => x + 0.3 * (rng() - 0.5)));
    let gallery: GalleryEntry[] = [];
    let next = 0;
    const cache = new CrossScoreCache();
    let moved = 0;
    for (let step = 0; step < 120; step++) {
      const r = rng();
      if (gallery.length < 3 || r < 0.45) {
        // enrol someone new, at a random place in the list
        const e = { personId: `p${next++}`, templates: templatesOf(face(strength())) };
        gallery.splice(Math.floor(rng() * (gallery.length + 1)), 0, e);
      } else if (r < 0.7) {
        gallery.splice(Math.floor(rng() * gallery.length), 1);
      } else if (r < 0.85) {
        // a person's templates added to, or replaced
        const i = Math.floor(rng() * gallery.length);
        const e = gallery[i]!;
        const more = templatesOf(e.templates[0] ?? face(strength()));
        gallery[i] = { personId: e.personId, templates: rng() < 0.5 ? [...e.templates, ...more] : more };
      } else if (r < 0.9) {
        gallery.push({ personId: `p${next++}`, templates: [] }); // no templates yet: not scored
      } else {
        // two changes at once, and the same templates as fresh copies (the store reads new arrays)
        gallery = gallery.map((e) => ({ personId: e.personId, templates: e.templates.map((t) => t.slice()) }));
        gallery.splice(Math.floor(rng() * gallery.length), 1);
        gallery.push({ personId: `p${next++}`, templates: templatesOf(face(strength())) });
      }
      const want = galleryShift(gallery, pool, scoring);
      const got = cache.update(gallery, pool, scoring);
      assert.deepEqual(got, want, `${scoring.rule}, step ${step}`);
      if (want.shift > 0) moved++;
    }
    assert.ok(moved > 20, `${scoring.rule}: the shift moved at ${moved} steps`);
    // a different pool floor starts again
    const other: PoolQuantiles = { levels: [0.1], scores: [0.5] };
    assert.deepEqual(cache.update(gallery, other, scoring), galleryShift(gallery, other, scoring));
  }
});
