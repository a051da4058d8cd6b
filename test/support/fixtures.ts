/**
 * A small real trained model directory for tests across the project (daemon, updates,
 * recognition): trained once on a few ORL people and cached under the OS temp folder,
 * keyed by the options and a hash of the compiled training code, reused across test
 * files and runs. Two processes building it at once is safe: each builds in its own
 * temp folder and renames it into place; the loser discards its copy.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sharedPaths } from './shared.js';

export interface TrainedModelOptions {
  readonly backbone?: 'mobilenet_v1' | 'faceres';
  /** ORL people to train on (default s1…s4). */
  readonly classes?: readonly string[];
}

const DEFAULT_CLASSES = ['s1', 's2', 's3', 's4'] as const;

/** Hash of the compiled code a trained model depends on (training, model format, face extraction): a change rebuilds the fixture. */
function codeVersion(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const dist = path.resolve(here, '..', '..', 'src');
  const h = createHash('sha256');
  for (const sub of ['train', 'model', 'detect', 'recognise', 'shared']) {
    const dir = path.join(dist, sub);
    if (!existsSync(dir)) continue;
    const files = readdirSync(dir, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.js'))
      .sort();
    for (const f of files) {
      h.update(f);
      h.update(readFileSync(path.join(dir, f)));
    }
  }
  return h.digest('hex').slice(0, 16);
}

const inFlight = new Map<string, Promise<string>>();

/** Returns the path of a trained model directory (manifest.json, head/, model.onnx when the exporter is present, …). */
export function trainedModelDir(options: TrainedModelOptions = {}): Promise<string> {
  const backbone = options.backbone ?? 'mobilenet_v1';
  const classes = [...(options.classes ?? DEFAULT_CLASSES)].sort();
  const key = createHash('sha256')
    .update(JSON.stringify({ backbone, classes, code: codeVersion() }))
    .digest('hex')
    .slice(0, 20);
  const dir = path.join(os.tmpdir(), 'facegate-fixtures', `model-${backbone}-${key}`);
  let p = inFlight.get(dir);
  if (!p) {
    p = build(dir, backbone, classes);
    inFlight.set(dir, p);
  }
  return p;
}

async function build(dir: string, backbone: 'mobilenet_v1' | 'faceres', classes: string[]): Promise<string> {
  if (existsSync(path.join(dir, 'manifest.json'))) return dir;
  const parent = path.dirname(dir);
  await mkdir(parent, { recursive: true });
  const tmp = await mkdtemp(path.join(parent, '.build-'));
  try {
    const { train } = await import('../../src/train/index.js');
    const { defaultExportStep } = await import('../../src/train/export-step.js');
    await train(
      {
        data: sharedPaths.orl,
        out: path.join(tmp, 'model'),
        backbone,
        ...(backbone === 'mobilenet_v1' ? { weights: sharedPaths.mobilenet025 } : {}),
        classes,
        epochs: 8,
        patience: 3,
        seed: 7,
        augment: false,
        progress: false,
      },
      { exportStep: defaultExportStep },
    );
    try {
      await rename(path.join(tmp, 'model'), dir);
    } catch (err) {
      // Another process won the race: use its copy.
      if (!existsSync(path.join(dir, 'manifest.json'))) throw err;
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  await pruneStale(parent, dir);
  return dir;
}

/** Removes fixtures of older code versions (untouched for a day) so the temp folder does not fill up. */
async function pruneStale(parent: string, keep: string): Promise<void> {
  const dayAgo = Date.now() - 24 * 3600 * 1000;
  for (const name of await readdir(parent)) {
    const p = path.join(parent, name);
    if (p === keep || !name.startsWith('model-')) continue;
    try {
      if ((await stat(p)).mtimeMs < dayAgo) await rm(p, { recursive: true, force: true });
    } catch {
      /* another process pruned it */
    }
  }
}
