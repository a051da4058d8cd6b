import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { requireShared } from '../support/shared.js';
import { defects, ENROL_CONDITIONS, filesContaining, filesUnder, yale } from '../support/gallery.js';
import { galleryConfigSchema } from '../../src/gallery/config.js';
import { openGallery, type OpenGallery } from '../../src/gallery/open.js';
import { EnrolmentRefused, type RefusalCode } from '../../src/gallery/service.js';
import { search } from '../../src/gallery/match.js';
import { decodeRgb } from '../../src/shared/image.js';
import { cropFor } from '../../src/gallery/descriptor.js';

let dir = '';
let g: OpenGallery | undefined;
const config = galleryConfigSchema.parse({});

before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'facegate-gallery-'));
});
after(async () => {
  await g?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function gallery(): Promise<OpenGallery> {
  g ??= await openGallery({ config, stateDir: path.join(dir, 'state'), threads: 1 });
  return g;
}

const photos = (subject: number, conditions: readonly string[] = ENROL_CONDITIONS): Buffer[] =>
  conditions.map((c) => yale(subject, c));

async function refusal(p: Promise<unknown>): Promise<EnrolmentRefused> {
  try {
    await p;
  } catch (err) {
    if (err instanceof EnrolmentRefused) return err;
    throw err;
  }
  assert.fail('expected an EnrolmentRefused');
}

test('each photo defect is refused with its own reason and what to do', async (t) => {
  if (!requireShared(t)) return;
  const { gallery: svc } = await gallery();
  const cases: [string, Buffer, RefusalCode, RegExp][] = [
    ['no face', await defects.noFace(), 'no-face', /no face found: use a photo/],
    ['two people', await defects.severalFaces(), 'several-faces', /2 faces found: use a photo of this person alone/],
    ['face too small', await defects.tooSmall(), 'too-small', /come closer/],
    ['blurred', await defects.blurred(), 'blurred', /hold still/],
    ['too dark', await defects.tooDark(), 'too-dark', /add light/],
    ['turned', defects.turned(), 'turned', /look straight at the camera/],
    ['not an image', defects.badImage(), 'bad-image', /JPEG or PNG/],
  ];
  for (const [what, photo, code, message] of cases) {
    // Two good photos and the bad one: too few, and the bad one is listed with its reason.
    const err = await refusal(svc.enrolPhotos(`test ${what}`, [...photos(5, ['normal', 'happy']), photo]));
    assert.equal(err.code, 'too-few', what);
    assert.match(err.message, /2 good photos of test .*, 3 needed/, what);
    assert.match(err.message, new RegExp(`photo 3: .*${message.source}`), what);
    // With enough good photos it is enrolled, the bad photo reported as rejected with its code.
    const r = await svc.enrolPhotos(`person ${what}`, [...photos(5, ['normal', 'happy', 'glasses']), photo], {
      force: true,
    });
    assert.deepEqual(
      r.rejected.map((x) => x.code),
      [code],
      what,
    );
    assert.equal(r.accepted, 3);
    svc.remove(r.person.id);
  }
  assert.equal(svc.list().length, 0);
});

test('enrolled from good photos: listed, shown, exported; crops kept 0600', async (t) => {
  if (!requireShared(t)) return;
  const { gallery: svc, store } = await gallery();
  const r = await svc.enrolPhotos('Ada', photos(1), { groups: ['staff'], validUntil: '2030-01-01T00:00:00Z' });
  assert.equal(r.accepted, 3);
  assert.deepEqual(r.rejected, []);
  assert.equal(r.person.name, 'Ada');
  assert.equal(r.person.templates, 3);
  assert.deepEqual(r.person.groups, ['staff']);
  assert.equal(svc.get('ada')?.id, r.person.id, 'names are found whatever their case');
  assert.equal(svc.get(r.person.id)?.name, 'Ada');
  const files = store.files(r.person.id);
  assert.equal(files.filter((f) => f.startsWith('crop-')).length, 3);
  assert.ok(files.includes('thumbnail.jpg'));
  for (const f of filesUnder(store.personDir(r.person.id))) assert.equal(statSync(f).mode & 0o777, 0o600, f);
  assert.equal(statSync(store.personDir(r.person.id)).mode & 0o777, 0o700);
  assert.ok(
    svc
      .thumbnail(r.person.id)
      ?.subarray(0, 2)
      .equals(Buffer.from([0xff, 0xd8])),
    'a JPEG thumbnail',
  );
  const exported = svc.exportPerson(r.person.id) as {
    person: { name: string };
    templates: { vector: number[]; crop: unknown }[];
  };
  assert.equal(exported.person.name, 'Ada');
  assert.equal(exported.templates.length, 3);
  assert.equal(exported.templates[0]?.vector.length, (await gallery()).descriptor.size);
  assert.ok(exported.templates[0]?.crop);

  // The same person's other photos find her; another person's do not.
  const snap = svc.snapshot();
  assert.equal(snap.people, 1);
  const probe = async (subject: number, condition: string): Promise<number> => {
    const { detector, descriptor } = await gallery();
    const img = await decodeRgb(yale(subject, condition));
    const [f] = await detector.detect(img);
    assert.ok(f);
    const [v] = await descriptor.describe([cropFor(descriptor, img, f)]);
    return search(snap.index, v as Float32Array).best?.score ?? -1;
  };
  assert.ok((await probe(1, 'sad')) >= snap.threshold, 'her own face passes the threshold');
  assert.ok((await probe(2, 'sad')) < snap.threshold, 'a stranger does not');
  // A track's pooled descriptor needs more (dlib, flip and centroid have a tail for it).
  assert.ok(snap.aggregateThreshold !== undefined && snap.aggregateThreshold > snap.threshold);
  svc.remove(r.person.id);
});

test('a face already enrolled under another name is refused (says who) unless forced', async (t) => {
  if (!requireShared(t)) return;
  const { gallery: svc } = await gallery();
  const ada = await svc.enrolPhotos('Ada', photos(1));
  const err = await refusal(svc.enrolPhotos('Bea', photos(1, ['sad', 'sleepy', 'surprised'])));
  assert.equal(err.code, 'duplicate');
  assert.match(err.message, /already matches Ada .*--force/);
  assert.equal(svc.get('Bea'), undefined, 'nothing stored for a refused enrolment');
  // More photos of the same person are added to her, not refused.
  const more = await svc.enrolPhotos('Ada', photos(1, ['sad']));
  assert.equal(more.person.templates, 4);
  // Forced: two records (the operator said they are different people).
  const bea = await svc.enrolPhotos('Bea', photos(1, ['sleepy', 'surprised', 'wink']), { force: true });
  assert.equal(svc.list().length, 2);
  svc.remove(bea.person.id);
  svc.remove(ada.person.id);
});

test('remove erases everything of the person: rows, crops, thumbnail, bytes in the database file', async (t) => {
  if (!requireShared(t)) return;
  const { gallery: svc, store } = await gallery();
  const keep = await svc.enrolPhotos('Kept Person', photos(3));
  const r = await svc.enrolPhotos('Zebulon Quixote', photos(4));
  const vectors = store.templates(r.person.id).map((x) => Buffer.from(x.vector.buffer, x.vector.byteOffset, 64));
  const crop = store.files(r.person.id).find((f) => f.startsWith('crop-')) as string;
  const stateDir = path.join(dir, 'state');
  assert.ok(filesContaining(stateDir, [Buffer.from('Zebulon Quixote')]).length > 0, 'the name is on disk before');
  assert.ok(filesContaining(stateDir, vectors).length > 0, 'the descriptor bytes are on disk before');
  svc.remove(r.person.id);
  assert.equal(svc.get(r.person.id), undefined);
  assert.deepEqual(filesContaining(stateDir, [Buffer.from('Zebulon Quixote'), ...vectors, Buffer.from(crop)]), []);
  // Only the id stays, queued for the operator's removal notice, until the broker took it.
  assert.ok(store.pendingNotices().some((n) => n.personId === r.person.id));
  store.noticeSent(r.person.id);
  assert.deepEqual(filesContaining(stateDir, [Buffer.from(r.person.id)]), []);
  assert.equal(svc.list().length, 1, 'the other person is untouched');
  svc.remove(keep.person.id);
});
