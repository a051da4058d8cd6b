/**
 * `npm run bench:pipeline`: recognition on 640×480 camera-like frames (ORL faces pasted on
 * textured backgrounds, composed in code), measured in one run, for the two ways the kiosk
 * recognises:
 *
 *   gallery        the kiosk's default (no trained model): decode JPEG + detect (BlazeFace,
 *                  onnxruntime) + align + quality + the gallery's descriptor (`gallery.descriptor`,
 *                  dlib by default) + 1:N search in a gallery of the frames' people
 *   descriptor     the descriptor alone on a ready crop (batch 1)
 *   full           a trained model directory: decode + detect + align + quality + recognise
 *   model          the recognition model alone on a ready 224×224 crop (batch 1)
 *   human          @vladmandic/human 3 on its TF.js wasm backend doing the same job (BlazeFace +
 *                  faceres description), after the same sharp decode
 *
 * and prints gallery/descriptor, full/model and human/ours for each. Rounds alternate so a
 * burst of load on a shared machine hits all alike; the median per frame is reported.
 *
 *   npm run bench:pipeline [-- --model DIR --descriptor dlib --landmarks mesh --recogniser both --frames 20 --rounds 3 --threads 1 --detector-size 256]
 *
 * Without --model it uses the test fixture's small faceres model (trained once, cached).
 * `--recogniser gallery` or `model` measures one path only; `--detector-size` is `model.detectorSize`
 * (the detector input's longer side); `--landmarks mesh` is `gallery.landmarks` (the face mesh runs in the
 * gallery's detect step then).
 *
 * Like with like: with `gallery.flip` (the default) the descriptor runs on the crop and its mirror in one
 * batch of two, in the full frame and in "descriptor only" alike; a trained model runs once a crop on
 * both sides.
 */
import http from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { sharpness, qualityVerdict } from '../src/detect/quality.js';
import {
  builtinDescriptorNames,
  DEFAULT_LANDMARKS,
  galleryConfigSchema,
  type BuiltinDescriptorName,
} from '../src/gallery/config.js';
import { cropFor } from '../src/gallery/descriptor.js';
import { openGallery, type OpenGallery } from '../src/gallery/open.js';
import { GalleryRecogniser } from '../src/gallery/recognise.js';
import { PIPELINE_DEFAULTS, RecognitionPipeline } from '../src/recognise/pipeline.js';
import { decodeRgb, listImages, type RgbImage } from '../src/shared/image.js';
import type { Frame } from '../src/shared/messages.js';
import { composeFrame } from '../test/support/compose.js';
import { sharedPaths } from '../test/support/shared.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    descriptor: { type: 'string', default: 'dlib' },
    landmarks: { type: 'string', default: DEFAULT_LANDMARKS },
    recogniser: { type: 'string', default: 'both' },
    frames: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '3' },
    threads: { type: 'string', default: '1' },
    'detector-size': { type: 'string', default: '256' },
    'no-human': { type: 'boolean', default: false },
  },
});
const nFrames = Number(args.frames);
const rounds = Number(args.rounds);
const threads = Number(args.threads);
const detectorSize = Number(args['detector-size']);
const recognisers: Record<string, readonly string[]> = {
  both: ['gallery', 'model'],
  gallery: ['gallery'],
  model: ['model'],
};
const paths = recognisers[args.recogniser] ?? [];
if (paths.length === 0) throw new Error(`--recogniser ${args.recogniser}: should be one of both, gallery, model`);
const descriptorName = args.descriptor as BuiltinDescriptorName;
if (!builtinDescriptorNames.includes(descriptorName))
  throw new Error(`--descriptor ${args.descriptor}: should be one of ${builtinDescriptorNames.join(', ')}`);

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};
const now = (): number => performance.now();
/** CPU milliseconds of this process, all threads (sharp's and onnxruntime's included). */
const cpuNow = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** Wall and CPU time of each call, so that a busy shared machine can be read from CPU time too. */
class Timer {
  readonly wall: number[] = [];
  readonly cpu: number[] = [];
  async time<T>(f: () => Promise<T>): Promise<T> {
    const c = cpuNow();
    const t = now();
    const r = await f();
    this.wall.push(now() - t);
    this.cpu.push(cpuNow() - c);
    return r;
  }
  get medianWall(): number {
    return median(this.wall);
  }
  get medianCpu(): number {
    return median(this.cpu);
  }
}

/** The ORL person shown in frame `i`. */
const personOf = (i: number): string => `s${(i % 40) + 1}`;

async function frames(): Promise<Frame[]> {
  const out: Frame[] = [];
  for (let i = 0; out.length < nFrames; i++) {
    const person = personOf(i);
    const files = await listImages(path.join(sharedPaths.orl, 'validation', person));
    const c = await composeFrame(files[i % files.length] as string, { seed: 1000 + i });
    out.push({ id: i, timestamp: Date.now(), source: 'bench', image: c.jpeg });
  }
  return out;
}

/** Serves human's model folder over loopback HTTP (human loads models with fetch; no tfjs-node file handler here). */
async function serveHumanModels(): Promise<{ url: string; close: () => void }> {
  const require = createRequire(import.meta.url);
  const dir = path.join(path.dirname(require.resolve('@vladmandic/human')), '..', 'models');
  const server = http.createServer((req, res) => {
    const name = path.basename(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    readFile(path.join(dir, name)).then(
      (b) => {
        res.writeHead(200);
        res.end(b);
      },
      () => {
        res.writeHead(404);
        res.end();
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return { url: `http://127.0.0.1:${port}/`, close: () => server.close() };
}

interface HumanLike {
  load(): Promise<void>;
  warmup(): Promise<unknown>;
  detect(input: unknown): Promise<{ face: readonly { embedding?: readonly number[] }[] }>;
  tf: {
    tensor3d(data: Uint8Array, shape: [number, number, number], dtype: 'int32'): { dispose(): void };
    setBackend(name: string): Promise<boolean>;
  };
}

async function loadHuman(modelBase: string): Promise<HumanLike> {
  const require = createRequire(import.meta.url);
  const wasmDir =
    path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep;
  // Loaded by path: the package's export map names it `dist/human.node-wasm` and TypeScript's resolver does not follow it.
  const humanMain = require.resolve('@vladmandic/human');
  const spec: string = path.join(path.dirname(humanMain), 'human.node-wasm.js');
  const mod = (await import(spec)) as unknown as {
    Human?: new (c: object) => HumanLike;
    default?: { Human: new (c: object) => HumanLike };
  };
  const Human = mod.Human ?? mod.default?.Human;
  if (!Human) throw new Error('cannot find Human in @vladmandic/human/dist/human.node-wasm.js');
  const off = { enabled: false };
  const human = new Human({
    backend: 'wasm',
    wasmPath: wasmDir,
    modelBasePath: modelBase,
    debug: false,
    async: true,
    warmup: 'none',
    cacheSensitivity: 0,
    filter: { enabled: false },
    face: {
      enabled: true,
      detector: {
        enabled: true,
        rotation: false,
        maxDetected: 10,
        skipFrames: 0,
        skipTime: 0,
        minConfidence: 0.5,
        return: false,
      },
      mesh: off,
      iris: off,
      emotion: off,
      antispoof: off,
      liveness: off,
      attention: off,
      gear: off,
      description: { enabled: true, skipFrames: 0, skipTime: 0 },
    },
    body: off,
    hand: off,
    object: off,
    gesture: off,
    segmentation: off,
  });
  await human.load();
  return human;
}

/**
 * The kiosk's default recogniser: a gallery (in a temporary state folder) with the frames'
 * people enrolled from their ORL training photos, searched with the built-in descriptor.
 */
async function galleryPath(): Promise<{ g: OpenGallery; recogniser: GalleryRecogniser; stateDir: string }> {
  const stateDir = await mkdtemp(path.join(os.tmpdir(), 'facegate-bench-pipeline-'));
  // ORL's 92×112 photos have small faces: the enrolment checks are relaxed to take them.
  const config = galleryConfigSchema.parse({
    descriptor: descriptorName,
    landmarks: args.landmarks,
    minPhotos: 1,
    checks: { minFaceSize: 20, minSharpness: 0 },
  });
  const g = await openGallery({ config, stateDir, threads, detectorSize });
  const people = [...new Set(Array.from({ length: Math.min(nFrames, 40) }, (_, i) => personOf(i)))];
  for (const person of people) {
    const files = (await listImages(path.join(sharedPaths.orl, 'train', person))).slice(0, 4);
    await g.gallery.enrolPhotos(person, await Promise.all(files.map((f) => readFile(f))), { force: true });
  }
  const recogniser = new GalleryRecogniser({
    gallery: g.gallery,
    descriptor: g.descriptor,
    detector: g.detector,
    quality: { ...PIPELINE_DEFAULTS },
  });
  return { g, recogniser, stateDir };
}

async function main(): Promise<void> {
  const list = await frames();
  const firstImg = await decodeRgb(list[0]!.image);

  let pipeline: RecognitionPipeline | null = null;
  let modelDir = args.model;
  let firstCrop: RgbImage = { data: new Uint8Array(224 * 224 * 3), width: 224, height: 224 };
  if (paths.includes('model')) {
    if (!modelDir) {
      process.stdout.write('no --model: using the test fixture (faceres, ORL s1…s4; trained once and cached)\n');
      const { trainedModelDir } = await import('../test/support/fixtures.js');
      modelDir = await trainedModelDir({ backbone: 'faceres' });
    }
    pipeline = await RecognitionPipeline.load({ modelDir, threads, detectorSize });
    // A ready crop for the model-only timing: the first face the pipeline finds.
    firstCrop = (await pipeline.extractor.facesIn(firstImg))[0]?.image ?? firstCrop;
  }
  const gal = paths.includes('gallery') ? await galleryPath() : null;
  const detector = gal?.g.detector ?? pipeline?.extractor.detector;
  if (!detector) throw new Error('no detector loaded');
  const descriptor = gal?.g.descriptor;
  const firstFace = (await detector.detect(firstImg))[0];
  const S = descriptor?.inputSize ?? 150;
  const firstDescriptorCrop: RgbImage =
    descriptor && firstFace
      ? cropFor(descriptor, firstImg, firstFace)
      : { data: new Uint8Array(S * S * 3), width: S, height: S };

  let human: HumanLike | null = null;
  let server: { url: string; close: () => void } | null = null;
  if (!args['no-human']) {
    try {
      server = await serveHumanModels();
      human = await loadHuman(server.url);
    } catch (err) {
      process.stdout.write(`human: not measured (${(err as Error).message})\n`);
    }
  }
  // Warm-up: one pass each.
  for (const f of list.slice(0, 2)) {
    await pipeline?.process(f);
    await gal?.recogniser.process(f);
  }
  await pipeline?.recogniser.describe([firstCrop]);
  await descriptor?.describe([firstDescriptorCrop]);
  let humanFaces = 0;
  if (human)
    for (const f of list.slice(0, 2)) {
      const img = await decodeRgb(f.image);
      const t = human.tf.tensor3d(img.data, [img.height, img.width, 3], 'int32');
      await human.detect(t);
      t.dispose();
    }

  const full = new Timer();
  const model = new Timer();
  const galleryFull = new Timer();
  const descriptorOnly = new Timer();
  const hum = new Timer();
  const dec = new Timer();
  const det = new Timer();
  const align = new Timer();
  const galleryAlign = new Timer();
  let found = 0;
  let galleryFound = 0;
  let galleryNamed = 0;
  for (let r = 0; r < rounds; r++) {
    if (pipeline) {
      const p = pipeline;
      for (const f of list) {
        const m = await full.time(() => p.process(f));
        if (r === 0) found += m.length;
      }
      for (let i = 0; i < list.length; i++) await model.time(() => p.recogniser.describe([firstCrop]));
    }
    if (gal && descriptor) {
      for (const f of list) {
        const m = await galleryFull.time(() => gal.recogniser.process(f));
        if (r === 0) {
          galleryFound += m.length;
          galleryNamed += m.filter((x) => x.label === personOf(f.id)).length;
        }
      }
      for (let i = 0; i < list.length; i++) await descriptorOnly.time(() => descriptor.describe([firstDescriptorCrop]));
    }
    for (const f of list) {
      const img = await dec.time(() => decodeRgb(f.image));
      const faces = await det.time(() => detector.detect(img));
      if (pipeline) {
        const { extractor } = pipeline;
        await align.time(() => Promise.resolve(faces.map((face) => extractor.cut(img, face))));
      }
      if (descriptor)
        await galleryAlign.time(() =>
          Promise.resolve(
            faces.map((face) => {
              const crop = cropFor(descriptor, img, face);
              return qualityVerdict(Math.max(face.box.width, face.box.height), sharpness(crop), PIPELINE_DEFAULTS);
            }),
          ),
        );
    }
    if (human) {
      for (const f of list) {
        const res = await hum.time(async () => {
          const img = await decodeRgb(f.image);
          const t = human.tf.tensor3d(img.data, [img.height, img.width, 3], 'int32');
          try {
            return await human.detect(t);
          } finally {
            t.dispose();
          }
        });
        if (r === 0) humanFaces += res.face.filter((x) => (x.embedding?.length ?? 0) > 0).length;
      }
    }
  }
  const ms = (t: Timer): string => `${t.medianWall.toFixed(1)} ms wall, ${t.medianCpu.toFixed(1)} ms CPU`;
  const ratio = (a: Timer, b: Timer): string =>
    `${(a.medianWall / b.medianWall).toFixed(2)}× wall, ${(a.medianCpu / b.medianCpu).toFixed(2)}× CPU`;
  const lines = [
    `frames: ${list.length} × 640×480 JPEG, ${rounds} rounds, onnxruntime threads ${threads}, detector input ${detector.letterboxFor(640, 480).inputWidth}×${detector.letterboxFor(640, 480).inputHeight}; medians per frame`,
    `  decode ${ms(dec)}; detect ${ms(det)}`,
  ];
  if (gal && descriptor)
    lines.push(
      `gallery (the kiosk's default, no trained model): descriptor ${descriptor.id.split(':')[0]} ${descriptor.inputSize}×${descriptor.inputSize}${descriptor.flip ? ' with flip (crop + mirror, a batch of 2 in both timings)' : ''}, ${new Set(list.map((f) => personOf(f.id))).size} people enrolled`,
      `  faces matched ${galleryFound}/${list.length}, named correctly ${galleryNamed}`,
      `  full frame (decode + detect + align + quality + describe + search): ${ms(galleryFull)}`,
      `  descriptor only (one crop): ${ms(descriptorOnly)}; align + quality ${ms(galleryAlign)}`,
      `  ratio full / descriptor-only: ${ratio(galleryFull, descriptorOnly)}`,
    );
  if (pipeline)
    lines.push(
      `trained model: ${modelDir} (${pipeline.recogniser.manifest.backbone.name}, ${pipeline.recogniser.precision})`,
      `  faces found ${found}/${list.length}`,
      `  full frame (decode + detect + align + quality + recognise): ${ms(full)}`,
      `  model only (one 224×224 crop): ${ms(model)}; align + quality ${ms(align)}`,
      `  ratio full / model-only: ${ratio(full, model)}`,
    );
  if (human) {
    lines.push(
      `@vladmandic/human (TF.js wasm, BlazeFace + faceres): ${ms(hum)}, faces described ${humanFaces}/${list.length}`,
    );
    if (gal) lines.push(`  ratio human / ours (gallery): ${ratio(hum, galleryFull)}`);
    if (pipeline) lines.push(`  ratio human / ours (trained model): ${ratio(hum, full)}`);
  }
  process.stdout.write(lines.join('\n') + '\n');
  await pipeline?.close();
  if (gal) {
    await gal.recogniser.close();
    await gal.g.close();
    await rm(gal.stateDir, { recursive: true, force: true });
  }
  server?.close();
}

await main();
