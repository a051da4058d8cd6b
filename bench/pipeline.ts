/**
 * `npm run bench:pipeline`: recognition on 640×480 camera-like frames (ORL faces pasted on
 * textured backgrounds, composed in code), measured in one run:
 *
 *   full      decode JPEG + detect (BlazeFace, onnxruntime) + align + quality + recognise (int8)
 *   model     the recognition model alone on a ready 224×224 crop (int8, batch 1)
 *   human     @vladmandic/human 3 on its TF.js wasm backend doing the same job (BlazeFace +
 *             faceres description), after the same sharp decode
 *
 * and prints full/model and human/full. Rounds alternate (full, model, human) so a burst of
 * load on a shared machine hits all alike; the median per frame is reported.
 *
 *   npm run bench:pipeline [-- --model DIR --frames 20 --rounds 3 --threads 1]
 *
 * Without --model it uses the test fixture's small faceres model (trained once, cached).
 */
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { RecognitionPipeline } from '../src/recognise/pipeline.js';
import { decodeRgb, listImages, type RgbImage } from '../src/shared/image.js';
import type { Frame } from '../src/shared/messages.js';
import { composeFrame } from '../test/support/compose.js';
import { sharedPaths } from '../test/support/shared.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    frames: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '3' },
    threads: { type: 'string', default: '1' },
    'no-human': { type: 'boolean', default: false },
  },
});
const nFrames = Number(args.frames);
const rounds = Number(args.rounds);
const threads = Number(args.threads);

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

async function frames(): Promise<Frame[]> {
  const out: Frame[] = [];
  for (let i = 0; out.length < nFrames; i++) {
    const person = `s${(i % 40) + 1}`;
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

async function main(): Promise<void> {
  let modelDir = args.model;
  if (!modelDir) {
    process.stdout.write('no --model: using the test fixture (faceres, ORL s1…s4; trained once and cached)\n');
    const { trainedModelDir } = await import('../test/support/fixtures.js');
    modelDir = await trainedModelDir({ backbone: 'faceres' });
  }
  const list = await frames();
  const pipeline = await RecognitionPipeline.load({ modelDir, threads });
  const backbone = pipeline.recogniser.manifest.backbone.name;
  // A ready crop for the model-only timing: the first face the pipeline finds.
  const firstImg = await decodeRgb(list[0]!.image);
  const { extractor } = pipeline;
  const { detector } = extractor;
  if (!detector) throw new Error('the pipeline has no detector');
  const firstCrop: RgbImage = (await extractor.facesIn(firstImg))[0]?.image ?? {
    data: new Uint8Array(224 * 224 * 3),
    width: 224,
    height: 224,
  };

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
  for (const f of list.slice(0, 2)) await pipeline.process(f);
  await pipeline.recogniser.describe([firstCrop]);
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
  const hum = new Timer();
  const dec = new Timer();
  const det = new Timer();
  const align = new Timer();
  let found = 0;
  for (let r = 0; r < rounds; r++) {
    for (const f of list) {
      const m = await full.time(() => pipeline.process(f));
      if (r === 0) found += m.length;
    }
    for (let i = 0; i < list.length; i++) await model.time(() => pipeline.recogniser.describe([firstCrop]));
    for (const f of list) {
      const img = await dec.time(() => decodeRgb(f.image));
      const faces = await det.time(() => detector.detect(img));
      await align.time(() => Promise.resolve(faces.map((face) => extractor.cut(img, face))));
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
    `frames: ${list.length} × 640×480 JPEG, ${rounds} rounds, onnxruntime threads ${threads}; model ${modelDir} (${backbone}, ${pipeline.recogniser.precision}); medians per frame`,
    `faces found: ours ${found}/${list.length}` + (human ? `, human ${humanFaces}/${list.length}` : ''),
    `full pipeline (decode + detect + align + quality + recognise): ${ms(full)}`,
    `model only (${pipeline.recogniser.precision}, one 224×224 crop): ${ms(model)}`,
    `  of which decode ${ms(dec)}; detect ${ms(det)}; align + quality ${ms(align)}`,
    `ratio full / model-only: ${ratio(full, model)}`,
    ...(human
      ? [`@vladmandic/human (TF.js wasm, BlazeFace + faceres): ${ms(hum)}`, `ratio human / ours: ${ratio(hum, full)}`]
      : []),
  ];
  process.stdout.write(lines.join('\n') + '\n');
  await pipeline.close();
  server?.close();
}

await main();
