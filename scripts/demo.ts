/**
 * `npm run demo -- --data DIR`: the whole chain on a folder of photos. Trains (and exports
 * and quantises) a model on DIR/train, replays DIR/validation as a camera through
 * `facegate run` with the embedded MQTT broker, and prints the MQTT events it receives
 * next to the person each frame showed.
 *
 *   npm run demo -- --data ../shared/data/faces/orl [--backbone faceres] [--fps 5] [--classes s1,s2,s3] [--strangers s35,s38]
 *
 * --classes limits training (and the replay) to those people; --strangers adds people the
 * model never saw to the replay, to show them refused.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { connectAsync, type MqttClient } from 'mqtt';
import sharp from 'sharp';

const { values } = parseArgs({
  options: {
    data: { type: 'string' },
    backbone: { type: 'string', default: 'faceres' },
    weights: { type: 'string' },
    classes: { type: 'string' },
    strangers: { type: 'string' },
    fps: { type: 'string', default: '5' },
    model: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
if (!values.data) {
  process.stderr.write(
    'usage: npm run demo -- --data DIR [--backbone faceres|mobilenet_v1] [--weights model.json] [--classes a,b] [--strangers c,d] [--fps 5] [--model DIR (skip training)] [--keep]\n',
  );
  process.exit(2);
}
const data = path.resolve(values.data);
const cli = path.resolve('dist/src/cli.js');
const IMAGE = /\.(jpe?g|png|gif|webp)$/i;

function run(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [cli, ...args], { stdio: 'inherit' });
    c.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`facegate ${args[0] ?? ''} exited with ${code ?? 'a signal'}`)),
    );
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** The photos to replay: DIR/validation/<person>/*, else the last two photos of each DIR/<person>. */
function replaySet(classes: Set<string> | undefined): { person: string; file: string }[] {
  const root = existsSync(path.join(data, 'validation'))
    ? path.join(data, 'validation')
    : existsSync(path.join(data, 'train'))
      ? path.join(data, 'train')
      : data;
  const out: { person: string; file: string }[] = [];
  for (const person of readdirSync(root).sort()) {
    if (classes && !classes.has(person)) continue;
    const dir = path.join(root, person);
    if (!existsSync(dir) || !readdirSync(dir).some((f) => IMAGE.test(f))) continue;
    const files = readdirSync(dir)
      .filter((f) => IMAGE.test(f))
      .sort();
    for (const f of root === path.join(data, 'validation') ? files : files.slice(-2))
      out.push({ person, file: path.join(dir, f) });
  }
  return out;
}

/** A camera frame: the photo at ~224 px high on a 480×360 grey scene. */
async function frameOf(file: string | null): Promise<Buffer> {
  const scene = sharp({ create: { width: 480, height: 360, channels: 3, background: { r: 120, g: 120, b: 120 } } });
  if (!file) return scene.jpeg().toBuffer();
  const face = await sharp(file)
    .resize({ height: 224, width: 300, fit: 'inside' })
    .toColourspace('srgb')
    .toBuffer({ resolveWithObject: true });
  return scene
    .composite([
      { input: face.data, left: Math.round(240 - face.info.width / 2), top: Math.round(180 - face.info.height / 2) },
    ])
    .jpeg({ quality: 90 })
    .toBuffer();
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), 'facegate-demo-'));
  const classes = values.classes
    ? new Set(
        values.classes
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      )
    : undefined;
  let modelDir = values.model ? path.resolve(values.model) : path.join(work, 'model');
  if (!values.model) {
    process.stdout.write(
      `\n== 1/3 training on ${data} (backbone ${values.backbone}); export and quantisation follow ==\n`,
    );
    await run([
      'train',
      '--data',
      data,
      '--out',
      modelDir,
      '--backbone',
      values.backbone,
      '--no-progress',
      ...(values.weights ? ['--weights', values.weights] : []),
      ...(values.classes ? ['--classes', values.classes] : []),
    ]);
  } else {
    modelDir = path.resolve(values.model);
  }

  process.stdout.write('\n== 2/3 composing camera frames from the validation photos ==\n');
  const strangers = (values.strangers ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  const photos = replaySet(classes ? new Set([...classes, ...strangers]) : undefined);
  if (photos.length === 0) throw new Error(`no photos to replay under ${data}`);
  const frames = path.join(work, 'frames');
  mkdirSync(frames);
  const expected: (string | null)[] = [];
  const add = async (person: string | null, file: string | null, n: number): Promise<void> => {
    const img = await frameOf(file);
    for (let i = 0; i < n; i++) {
      expected.push(person);
      writeFileSync(path.join(frames, `${String(expected.length).padStart(5, '0')}.jpg`), img);
    }
  };
  // Each photo stays in view for 6 frames (the decider wants 3 of 5 agreeing), then an empty scene lets the track end.
  for (const p of photos) {
    await add(p.person, p.file, 6);
    await add(null, null, 12);
  }
  process.stdout.write(
    `${photos.length} photos → ${expected.length} frames at ${values.fps} fps (~${Math.round(expected.length / Number(values.fps))} s)\n`,
  );

  process.stdout.write('\n== 3/3 facegate run: directory camera → recognition → embedded MQTT broker ==\n');
  const port = await freePort();
  const config = {
    camera: {
      type: 'directory',
      name: 'demo',
      fps: Number(values.fps),
      queueSize: 1000,
      directory: { path: frames, loop: false },
    },
    model: { dir: modelDir },
    // Each photo is a new visit: the per-person cooldown (12 frames) covers one appearance (6 frames) but not the next photo (18 frames later).
    decide: { cooldownMs: Math.round((12 * 1000) / Number(values.fps)) },
    mqtt: { url: '', kioskId: 'demo', embedded: { port } },
    http: { port: 0 },
    state: { dir: path.join(work, 'state') },
    daemon: { exitWhenCameraEnds: true },
    log: { level: 'warn' },
  };
  const configFile = path.join(work, 'config.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const daemon = spawn(process.execPath, [cli, 'run', '--config', configFile], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => daemon.once('exit', (c) => resolve(c)));

  let sub: MqttClient | undefined;
  const ok = { right: 0, wrong: 0, unknown: 0, strangerRefused: 0 };
  // People the model knows; everyone else in the photos is a stranger it should refuse.
  const namesKnown = new Set(
    (JSON.parse(readFileSync(path.join(modelDir, 'manifest.json'), 'utf8')) as { classes: string[] }).classes,
  );
  while (!sub && daemon.exitCode === null) {
    try {
      sub = await connectAsync(`mqtt://127.0.0.1:${port}`, {
        protocolVersion: 4,
        reconnectPeriod: 0,
        connectTimeout: 500,
      });
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  sub?.on('message', (topic, payload) => {
    if (!topic.endsWith('/events')) return;
    const e = JSON.parse(payload.toString()) as {
      kind: string;
      name: string | null;
      score: number;
      frameId: number;
      seq: number;
      modelVersion: string;
    };
    const truth = expected[e.frameId - 1] ?? null;
    let verdict: string;
    if (e.kind === 'recognized') {
      if (e.name === truth) {
        ok.right++;
        verdict = 'right';
      } else {
        ok.wrong++;
        verdict = `WRONG (frame showed ${truth ?? 'nobody'})`;
      }
    } else {
      ok.unknown++;
      if (truth && namesKnown.has(truth)) verdict = `refused (frame showed ${truth})`;
      else {
        ok.strangerRefused++;
        verdict = `stranger refused (${truth ?? 'nobody'})`;
      }
    }
    process.stdout.write(
      `event #${e.seq}: ${e.kind.padEnd(10)} ${String(e.name ?? '-').padEnd(12)} score ${e.score.toFixed(3)}  model ${e.modelVersion}  → ${verdict}\n`,
    );
  });
  await sub?.subscribeAsync('facegate/demo/#', { qos: 1 });
  const code = await exited;
  await sub?.endAsync();
  const knownPhotos = photos.filter((p) => namesKnown.has(p.person)).length;
  process.stdout.write(
    `\n${photos.length} photos (${knownPhotos} of people the model knows, ${photos.length - knownPhotos} of strangers): ` +
      `${ok.right} recognised right, ${ok.wrong} wrong, ${ok.unknown} refused as unknown (${ok.strangerRefused} of them strangers).\n`,
  );
  if (values.keep) process.stdout.write(`kept ${work} (model in ${modelDir})\n`);
  else rmSync(work, { recursive: true, force: true });
  process.exitCode = code ?? 1;
}

await main();
