/**
 * `npm run bench:gallery`: 1:N search on LFW (lfw-dev) with 10, 100 and 1,000 enrolled people,
 * from one run: search time per probe, and FAR/FRR per frame at the threshold calibrated for
 * each gallery size (thresholdForGallery).
 *
 * Galleries: people are taken in a seeded random order, those with ≥ 4 photos first (3
 * enrolled + at least one probe), then those with exactly 3, then those with 2 (enrolled with
 * 2 — LFW here has fewer than 1,000 people with 3 photos; the count is printed). Every photo
 * of an enrolled person beyond the enrolled ones is a genuine probe; strangers are every photo
 * of `singletons/` (people never enrolled). Faces go through the pipeline's face step
 * (detect, align); descriptors are cached on disk (src/recognise/descriptors.ts), so the first
 * run takes minutes and later ones seconds.
 *
 * The descriptor and scoring are the kiosk's (`--descriptor`, `--landmarks`, `--flip` / `--no-flip`, `--rule`;
 * default the config's defaults), with the crop the kiosk cuts for it and the impostor tail
 * fitted for that descriptor, flip and rule.
 *
 * gallery.adapt (on unless `--no-adapt`): every threshold raised by how far the gallery's own
 * cross scores sit above the impostor pool's (src/gallery/adapt.ts); the shift and the time to
 * compute it from scratch are printed; then, per size, the time to bring it up to date after one
 * enrolment (the size's last person) from scratch (galleryShift) and incrementally
 * (CrossScoreCache, as the kiosk does), each the median of 5, with their ratio.
 *
 * `--norm margin`: gallery.norm margin (the best cosine plus its weighted lead over the runner-up,
 * with its calibrated threshold where the calibration covers the gallery size).
 *
 *   npm run bench:gallery [-- --data ../shared/data/faces/lfw-dev --sizes 10,100,1000 --descriptor dlib --landmarks mesh --no-flip --rule best --norm margin --no-adapt]
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import {
  builtinDescriptorNames,
  DEFAULT_DESCRIPTOR,
  DEFAULT_FLIP,
  DEFAULT_LANDMARKS,
  DEFAULT_NORM,
  DEFAULT_RULE,
  galleryNorms,
  type BuiltinDescriptorName,
  type GalleryLandmarks,
  type GalleryNorm,
} from '../src/gallery/config.js';
import { builtinSpec, marginFor } from '../src/gallery/descriptor.js';
import {
  buildIndex,
  decisionScore,
  galleryDecision,
  scoringRules,
  search,
  tailFor,
  variantName,
  type GalleryEntry,
  type GalleryIndex,
  type PoolQuantiles,
  type ScoringRule,
} from '../src/gallery/match.js';
import { CrossScoreCache, galleryShift } from '../src/gallery/adapt.js';
import { descriptorOf, describeFiles, loadDescriptorModel } from '../src/recognise/descriptors.js';
import { listImages } from '../src/shared/image.js';
import { mulberry32, permutation } from '../src/train/rng.js';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? dflt) : dflt;
}

const data = path.resolve(arg('data', path.join('..', 'shared', 'data', 'faces', 'lfw-dev')));
const sizes = arg('sizes', '10,100,1000').split(',').map(Number);
const flip = process.argv.includes('--flip') || (DEFAULT_FLIP && !process.argv.includes('--no-flip'));
const rule = arg('rule', DEFAULT_RULE) as ScoringRule;
if (!scoringRules.includes(rule)) throw new Error(`--rule must be one of ${scoringRules.join(', ')}, got ${rule}`);
const descriptor = arg('descriptor', DEFAULT_DESCRIPTOR) as BuiltinDescriptorName;
if (!builtinDescriptorNames.includes(descriptor))
  throw new Error(`--descriptor must be one of ${builtinDescriptorNames.join(', ')}, got ${descriptor}`);
const norm = arg('norm', DEFAULT_NORM) as GalleryNorm;
if (!galleryNorms.includes(norm)) throw new Error(`--norm must be one of ${galleryNorms.join(', ')}, got ${norm}`);
const landmarks = arg('landmarks', DEFAULT_LANDMARKS) as GalleryLandmarks;
const spec = builtinSpec(descriptor, landmarks);
const tail = tailFor(spec.impostorTails, { flip, rule }, descriptor);
const margin = marginFor(norm, spec, { flip, rule }, descriptor);
const quantiles = process.argv.includes('--no-adapt') ? undefined : spec.poolQuantiles?.[variantName({ flip, rule })];
const enrol = 3;
const targetFar = 0.01;

async function people(dir: string): Promise<{ person: string; files: string[] }[]> {
  const names = (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  return Promise.all(names.map(async (person) => ({ person, files: await listImages(path.join(dir, person)) })));
}

const pct = (x: number): string => `${(100 * x).toFixed(2)} %`;

async function main(): Promise<void> {
  const all = await people(path.join(data, 'people'));
  const strangers = (await people(path.join(data, 'singletons'))).flatMap((p) => p.files);
  const rng = mulberry32(11);
  const tier = (lo: number, hi: number): typeof all => {
    const t = all.filter((p) => p.files.length >= lo && p.files.length <= hi);
    return permutation(t.length, rng).map((i) => t[i]!);
  };
  const order = [...tier(enrol + 1, Infinity), ...tier(enrol, enrol), ...tier(2, enrol - 1)];
  const largest = Math.max(...sizes);
  const chosen = order.slice(0, largest);
  const files = [...chosen.flatMap((p) => p.files), ...strangers];
  const model = await loadDescriptorModel(descriptor, { threads: 1 });
  process.stderr.write(`describing ${files.length} photos (cached after the first run)…\n`);
  const described = await describeFiles(files, {
    model,
    alignment: spec.crop,
    threads: 1,
    onProgress: (d, t) => {
      if (process.stderr.isTTY) process.stderr.write(`\r${d}/${t}`);
    },
  });
  await model.close();
  const vec = new Map(files.map((f, i) => [f, described[i] ? descriptorOf(described[i], flip) : null]));
  const strangerVecs = strangers.map((f) => vec.get(f)).filter((v): v is Float32Array => !!v);
  console.log(
    `lfw-dev: ${strangerVecs.length} stranger probes (singletons with a face found); ${descriptor}, ${spec.crop.method} alignment, scoring ${variantName({ flip, rule })}, norm ${norm}, adapt ${quantiles ? 'on' : 'off'}`,
  );
  console.log(
    '| people | of them with 2 templates | genuine probes | score | threshold | of it adapt shift | FAR | FRR | search per probe | adapt shift computed in |',
  );
  console.log('| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  const updates: string[] = [];
  for (const n of sizes) {
    const gallery = chosen.slice(0, n);
    const entries: GalleryEntry[] = gallery.map((p) => ({
      personId: p.person,
      templates: p.files
        .slice(0, enrol)
        .map((f) => vec.get(f))
        .filter((v): v is Float32Array => !!v),
    }));
    const index = buildIndex(entries, { rule });
    const genuine = gallery.flatMap((p) =>
      p.files
        .slice(enrol)
        .map((f) => ({ person: p.person, v: vec.get(f) }))
        .filter((x): x is { person: string; v: Float32Array } => !!x.v),
    );
    const decision = galleryDecision(index.people, { targetFar, tail, margin });
    const { weight } = decision;
    const a0 = process.hrtime.bigint();
    const shift = quantiles ? galleryShift(entries, quantiles, { rule }, index).shift : 0;
    const adaptMs = Number(process.hrtime.bigint() - a0) / 1e6;
    const threshold = decision.threshold + shift;
    // Time the searches (all probes, twice; the second pass is timed so the JIT is warm).
    const probes = [...genuine.map((g) => g.v), ...strangerVecs];
    for (const p of probes) search(index, p);
    const t0 = process.hrtime.bigint();
    const results = probes.map((p) => search(index, p));
    const perProbeMs = Number(process.hrtime.bigint() - t0) / 1e6 / probes.length;
    let correct = 0;
    genuine.forEach((g, i) => {
      const b = results[i]!.best;
      if (b && decisionScore(results[i]!, weight) >= threshold && b.personId === g.person) correct++;
    });
    let fa = 0;
    for (let i = genuine.length; i < results.length; i++) if (decisionScore(results[i]!, weight) >= threshold) fa++;
    if (quantiles) updates.push(enrolmentUpdate(entries, index, quantiles));
    const twoTemplates = gallery.filter((p) => p.files.length < enrol).length;
    console.log(
      `| ${index.people} | ${twoTemplates} | ${genuine.length} | ${weight === null ? 'cosine' : `margin (w ${weight})`} | ${threshold.toFixed(4)} | ${shift.toFixed(4)} | ${pct(fa / strangerVecs.length)} | ${pct(1 - correct / Math.max(1, genuine.length))} | ${perProbeMs.toFixed(3)} ms | ${quantiles ? `${adaptMs.toFixed(0)} ms` : '–'} |`,
    );
  }
  if (updates.length) {
    console.log('\ngallery.adapt after one enrolment (median of 5):');
    console.log('| people | from scratch (galleryShift) | incremental (CrossScoreCache) | ratio | cache held |');
    console.log('| ---: | ---: | ---: | ---: | ---: |');
    for (const row of updates) console.log(row);
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * The shift brought up to date after the last of `entries` enrolled: from scratch, and by a cache
 * that held the gallery without them (the index is the snapshot's, built either way, not timed).
 */
function enrolmentUpdate(entries: GalleryEntry[], index: GalleryIndex, pool: PoolQuantiles): string {
  const before = entries.slice(0, -1);
  const beforeIndex = buildIndex(before, { rule });
  const cache = new CrossScoreCache();
  const full: number[] = [];
  const inc: number[] = [];
  for (let i = 0; i < 5; i++) {
    cache.update(before, pool, { rule }, beforeIndex); // the gallery without them (a removal after the first round)
    let t0 = process.hrtime.bigint();
    const got = cache.update(entries, pool, { rule }, index);
    inc.push(Number(process.hrtime.bigint() - t0) / 1e6);
    t0 = process.hrtime.bigint();
    const want = galleryShift(entries, pool, { rule }, index);
    full.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (got.shift !== want.shift || got.level !== want.level || got.scores !== want.scores)
      throw new Error(`the incremental shift differs from galleryShift: ${JSON.stringify({ got, want })}`);
  }
  const [f, c] = [median(full), median(inc)];
  return `| ${index.people} | ${f.toFixed(1)} ms | ${c.toFixed(2)} ms | ${(f / c).toFixed(1)}× | ${(cache.bytes / 2 ** 20).toFixed(1)} MiB |`;
}

await main();
