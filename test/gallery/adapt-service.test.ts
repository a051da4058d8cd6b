/**
 * gallery.adapt in the kiosk's snapshot: the threshold and the pooled one raised by the gallery's
 * own shift, cached until the gallery changes; off with gallery.adapt false. No models: the
 * templates are written to the store directly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { KioskDb } from '../../src/state/db.js';
import { GalleryStore } from '../../src/gallery/store.js';
import { FaceGallery } from '../../src/gallery/service.js';
import { galleryConfigSchema } from '../../src/gallery/config.js';
import { galleryShift, type PoolQuantiles } from '../../src/gallery/adapt.js';
import { aggregateThreshold, galleryDecision, type GalleryEntry, type ImpostorTail } from '../../src/gallery/match.js';
import type { FaceDescriptor } from '../../src/gallery/descriptor.js';
import type { BlazeFaceDetector } from '../../src/detect/blazeface.js';
import { mulberry32 } from '../../src/train/rng.js';

const tail: ImpostorTail = { t0: 0.5, q0: 0.001, beta: 0.02 };
const aggregate: ImpostorTail = { t0: 0.55, q0: 0.001, beta: 0.02 };
// A pool whose strangers score low: people photographed alike below sit well above it.
const pool: PoolQuantiles = { levels: [0.1, 0.01], scores: [0.2, 0.3] };

/** 20 people sharing a strong common component (one camera), 3 templates each. */
function alikePeople(): GalleryEntry[] {
  const rng = mulberry32(5);
  const common = Float32Array.from({ length: 16 }, () => rng() - 0.5);
  return Array.from({ length: 20 }, (_, p) => {
    const own = Float32Array.from({ length: 16 }, () => rng() - 0.5);
    return {
      personId: `person ${p}`,
      templates: Array.from({ length: 3 }, () =>
        Float32Array.from({ length: 16 }, (_, i) => 3 * common[i]! + own[i]! + 0.1 * (rng() - 0.5)),
      ),
    };
  });
}

function kiosk(adapt: boolean): { svc: FaceGallery; store: GalleryStore; close: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'facegate-adapt-'));
  const db = KioskDb.open(':memory:');
  const store = new GalleryStore(db, path.join(dir, 'gallery'));
  store.open();
  const descriptor = {
    id: 'fake',
    rule: 'centroid',
    impostorTail: tail,
    aggregateTail: aggregate,
    poolQuantiles: pool,
    margin: null,
  } as unknown as FaceDescriptor;
  const svc = new FaceGallery({
    store,
    descriptor,
    detector: {} as BlazeFaceDetector,
    config: galleryConfigSchema.parse({ adapt }),
  });
  return {
    svc,
    store,
    close: () => {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const enrol = (store: GalleryStore, e: GalleryEntry): void => {
  store.addTemplates(
    e.personId,
    'fake',
    e.templates.map((vector) => ({ vector, source: 'test', quality: {} })),
  );
};

test('gallery.adapt: the snapshot raises the threshold and the pooled one by the gallery shift, recomputed when the gallery changes', () => {
  const people = alikePeople();
  const { svc, store, close } = kiosk(true);
  try {
    for (const e of people.slice(0, 19)) enrol(store, e);
    const snap = svc.snapshot();
    const expected = galleryShift(
      store.people().map((p) => ({ personId: p.id, templates: store.templates(p.id).map((t) => t.vector) })),
      pool,
      { rule: 'centroid' },
    ).shift;
    assert.ok(snap.shift > 0.3, `shift ${snap.shift}`);
    assert.ok(Math.abs(snap.shift - expected) < 1e-6);
    const base = galleryDecision(19, { targetFar: 0.01, tail }).threshold;
    assert.ok(Math.abs(snap.threshold - (base + snap.shift)) < 1e-9);
    assert.ok(Math.abs(snap.aggregateThreshold! - (aggregateThreshold(19, aggregate, 0.01) + snap.shift)) < 1e-9);
    assert.equal(svc.snapshot(), snap, 'cached while the gallery is unchanged');
    enrol(store, people[19]!);
    const after = svc.snapshot();
    assert.notEqual(after, snap);
    assert.equal(after.people, 20);
    assert.ok(after.shift > 0);
  } finally {
    close();
  }
});

test('gallery.adapt false: no shift, the thresholds as fitted', () => {
  const { svc, store, close } = kiosk(false);
  try {
    for (const e of alikePeople()) enrol(store, e);
    const snap = svc.snapshot();
    assert.equal(snap.shift, 0);
    assert.equal(snap.threshold, galleryDecision(20, { targetFar: 0.01, tail }).threshold);
  } finally {
    close();
  }
});

test('gallery.adapt: after each enrolment, added photo and removal the snapshot shift is exactly galleryShift of the stored gallery', () => {
  const people = alikePeople();
  const { svc, store, close } = kiosk(true);
  const stored = (): GalleryEntry[] =>
    store.people().map((p) => ({ personId: p.id, templates: store.templates(p.id).map((t) => t.vector) }));
  const check = (what: string): void => {
    const want = galleryShift(stored(), pool, { rule: 'centroid' }).shift;
    assert.equal(svc.snapshot().shift, want, what);
  };
  try {
    for (const e of people.slice(0, 12)) {
      enrol(store, e);
      check(`after enrolling ${e.personId}`);
    }
    // more photos of someone enrolled
    enrol(store, { personId: people[3]!.personId, templates: people[15]!.templates.slice(0, 1) });
    check('after a photo added');
    for (const name of [people[0]!.personId, people[7]!.personId]) {
      store.remove(store.person(name)!.id);
      check(`after removing ${name}`);
    }
    enrol(store, people[18]!);
    check('after enrolling again');
  } finally {
    close();
  }
});

test('a descriptor switch drops the other descriptors’ snapshots and cross scores; a rollback rebuilds them alike', () => {
  const people = alikePeople();
  const { svc, store, close } = kiosk(true);
  const fake = { id: 'fake', rule: 'centroid', impostorTail: tail, poolQuantiles: pool, margin: null } as const;
  const next = { ...fake, id: 'next' };
  try {
    for (const e of people.slice(0, 10)) {
      enrol(store, e);
      const id = store.person(e.personId)!.id;
      store.addTemplates(
        id,
        'next',
        e.templates.map((vector) => ({ vector: vector.map((x) => -x), source: 'test', quality: {} })),
      );
    }
    const before = svc.snapshot();
    assert.deepEqual(svc.heldDescriptors(), ['fake']);
    // the next model's gallery loads while the running one still recognises
    const loaded = svc.snapshot(next);
    assert.deepEqual(svc.heldDescriptors(), ['fake', 'next']);
    svc.useDescriptor(next as unknown as FaceDescriptor);
    assert.deepEqual(svc.heldDescriptors(), ['next']);
    assert.equal(svc.snapshot(next), loaded, 'the new descriptor’s snapshot is kept');
    // rollback
    svc.useDescriptor(fake as unknown as FaceDescriptor);
    assert.deepEqual(svc.heldDescriptors(), []);
    const rebuilt = svc.snapshot();
    assert.notEqual(rebuilt, before);
    assert.equal(rebuilt.shift, before.shift);
    assert.equal(rebuilt.threshold, before.threshold);
    assert.deepEqual(svc.heldDescriptors(), ['fake']);
  } finally {
    close();
  }
});
