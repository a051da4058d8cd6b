/**
 * `npm run bench:model`: fp32 against int8 on onnxruntime, batch 1, 1 and 2 threads.
 *
 * Models: MobileNet v1 0.25 (../shared, the tutorial backbone) and faceres (a MobileNet
 * v1 1.0 trained on faces, from @vladmandic/human), each exported by `exportModel` with
 * the tutorial's dense head (1024-1024-512-40, seeded random weights: latency does not
 * depend on the values) and quantised by `quantizeModel` on ORL training images.
 *
 * Each (model, precision, threads) runs in its own child process so that session load
 * time and peak RSS (VmHWM) are that model's alone; a child
 * that only loads onnxruntime gives the baseline RSS. fp32 and int8 alternate, twice,
 * and the better median of the two rounds is kept, so a burst of load on this shared
 * machine hits both sides alike. The int8/fp32 ratio is from this one run.
 *
 *   npm run bench:model [-- --runs 100 --models mobilenet025,faceres]
 *
 * With `--dir DIR` it times what training deployed instead: DIR/model.onnx against
 * DIR/model.int8.onnx of a model directory written by `facegate train` (with whatever
 * mixed precision kept float), same children, same rounds.
 *
 *   npm run bench:model -- --dir models/current [--runs 100]
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface ChildResult {
  readonly loadMs: number;
  readonly medianMs: number;
  readonly p90Ms: number;
  readonly maxRssMb: number;
}

const self = fileURLToPath(import.meta.url);

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? dflt) : dflt;
}

/**
 * Peak resident memory of this process in MB. On Linux `VmHWM` of /proc/self/status:
 * `process.resourceUsage().maxRSS` survives execve, so a child would report the
 * parent's peak (the parent holds every model while exporting them).
 */
function peakRssMb(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m?.[1]) return Number(m[1]) / 1024;
  } catch {
    /* not Linux */
  }
  return process.resourceUsage().maxRSS / 1024;
}

/** Child: load one model, time `runs` inferences after a warm-up, print JSON. */
async function child(file: string, threads: number, runs: number): Promise<void> {
  const { OnnxModel } = await import('../src/runtime/ort.js');
  if (file === '-') {
    // baseline: onnxruntime loaded, no model
    process.stdout.write(JSON.stringify({ loadMs: 0, medianMs: 0, p90Ms: 0, maxRssMb: peakRssMb() }));
    return;
  }
  const t0 = performance.now();
  const model = await OnnxModel.load(file, { threads });
  const loadMs = performance.now() - t0;
  const input = model.signature().inputs[0];
  const [h, w] = [input?.shape[1] ?? 224, input?.shape[2] ?? 224];
  const pixels = new Uint8Array(h * w * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 2654435761) >>> 24;
  const feeds = { [input?.name ?? 'pixels']: { data: pixels, dims: [1, h, w, 3] } };
  for (let i = 0; i < Math.max(10, runs / 5); i++) await model.run(feeds);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await model.run(feeds);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const result: ChildResult = {
    loadMs,
    medianMs: times[Math.floor(times.length / 2)] ?? NaN,
    p90Ms: times[Math.floor(times.length * 0.9)] ?? NaN,
    maxRssMb: peakRssMb(),
  };
  await model.release();
  process.stdout.write(JSON.stringify(result));
}

function runChild(file: string, threads: number, runs: number): ChildResult {
  const out = execFileSync(
    process.execPath,
    [self, '--child', file, '--threads', String(threads), '--runs', String(runs)],
    {
      encoding: 'utf8',
      env: { ...process.env, FACEGATE_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  return JSON.parse(out) as ChildResult;
}

async function buildModels(
  which: readonly string[],
  dir: string,
): Promise<{ name: string; fp32: string; int8: string; note: string }[]> {
  const { exportModel, readTfjsModel, humanModelJson } = await import('../src/model/export/index.js');
  const { quantizeModel } = await import('../src/model/quantize/index.js');
  const { withDenseHead } = await import('../test/support/heads.js');
  const { orlSplit } = await import('../test/support/orl.js');
  const { sharedPaths } = await import('../test/support/shared.js');
  const calibration = (await orlSplit('train', 224, 1)).images;
  const out = [];
  for (const name of which) {
    let backbone: Uint8Array;
    if (name === 'mobilenet025') {
      backbone = exportModel({
        backbone: { name: 'mobilenet_v1', alpha: 0.25, artifacts: readTfjsModel(sharedPaths.mobilenet025) },
        preprocessing: { scale: 2 / 255, offset: -1 },
      });
    } else if (name === 'faceres') {
      backbone = exportModel({
        backbone: { name: 'faceres', artifacts: readTfjsModel(humanModelJson('faceres')) },
        preprocessing: { scale: 1, offset: 0 },
      });
    } else {
      throw new Error(`unknown model ${name}: use mobilenet025 or faceres`);
    }
    const fp32 = withDenseHead(backbone, [1024, 1024, 512], 40);
    // Bias correction changes bias values only, not the graph: skipped here to save a minute.
    // Mixed precision off: the all-int8 graph is what is timed (on faceres the search keeps
    // nothing float, docs/quantisation.md).
    const { model: int8, report } = await quantizeModel({
      model: fp32,
      calibration,
      method: 'minmax',
      samples: 40,
      biasCorrection: false,
      mixedPrecision: false,
    });
    const f = path.join(dir, `${name}.onnx`);
    const q = path.join(dir, `${name}.int8.onnx`);
    writeFileSync(f, fp32);
    writeFileSync(q, int8);
    out.push({
      name,
      fp32: f,
      int8: q,
      note: `${(fp32.length / 1e6).toFixed(1)} MB → ${(int8.length / 1e6).toFixed(1)} MB, ${report.intNodes.length} int8 nodes`,
    });
  }
  return out;
}

/** The two model files of a trained model directory, with what its manifest says about the int8 one. */
async function deployedModel(dir: string): Promise<{ name: string; fp32: string; int8: string; note: string }> {
  const { readManifest, MODEL_FP32_FILE, MODEL_INT8_FILE } = await import('../src/model/manifest.js');
  const m = readManifest(dir);
  const fp32 = path.join(dir, MODEL_FP32_FILE);
  const int8 = path.join(dir, MODEL_INT8_FILE);
  for (const f of [fp32, int8])
    if (!existsSync(f)) throw new Error(`${f} is missing: bench:model --dir needs a directory with both model files`);
  const q = m.quantization ?? {};
  const mixed = q.mixedPrecision as { keptFloat?: readonly { name?: string }[] } | undefined;
  const kept = mixed?.keptFloat?.map((k) => k.name ?? '?') ?? [];
  const mb = (f: string): string => (statSync(f).size / 1e6).toFixed(1);
  return {
    name: `${path.basename(path.resolve(dir))} (${m.backbone.name}, deployed)`,
    fp32,
    int8,
    note: `${mb(fp32)} MB → ${mb(int8)} MB; kept float by mixed precision: ${kept.length ? kept.join(', ') : 'none recorded'}`,
  };
}

async function main(): Promise<void> {
  if (process.argv.includes('--child')) {
    await child(arg('child', '-'), Number(arg('threads', '1')), Number(arg('runs', '50')));
    return;
  }
  const runs = Number(arg('runs', '60'));
  const which = arg('models', 'mobilenet025,faceres').split(',');
  const dir = mkdtempSync(path.join(tmpdir(), 'facegate-bench-'));
  try {
    process.stdout.write(`bench:model  batch 1, ${runs} timed runs per case after warm-up, node ${process.version}\n`);
    const deployed = process.argv.includes('--dir') ? arg('dir', '') : '';
    const models = deployed ? [await deployedModel(deployed)] : await buildModels(which, dir);
    const base = runChild('-', 1, 0);
    process.stdout.write(`baseline RSS (node + onnxruntime, no model): ${base.maxRssMb.toFixed(0)} MB\n\n`);
    const rows: string[] = [];
    const header =
      '| model | threads | fp32 ms (median / p90) | int8 ms (median / p90) | int8/fp32 | load fp32 / int8 ms | peak RSS fp32 / int8 MB |';
    rows.push(header, '| --- | --- | --- | --- | --- | --- | --- |');
    for (const m of models) {
      for (const threads of [1, 2]) {
        let best: { f: ChildResult; q: ChildResult } | undefined;
        for (let round = 0; round < 2; round++) {
          const f = runChild(m.fp32, threads, runs);
          const q = runChild(m.int8, threads, runs);
          if (!best) {
            best = { f, q };
            continue;
          }
          best = {
            f: f.medianMs < best.f.medianMs ? f : best.f,
            q: q.medianMs < best.q.medianMs ? q : best.q,
          };
        }
        const { f, q } = best as { f: ChildResult; q: ChildResult };
        rows.push(
          `| ${m.name} | ${threads} | ${f.medianMs.toFixed(2)} / ${f.p90Ms.toFixed(2)} | ${q.medianMs.toFixed(2)} / ${q.p90Ms.toFixed(2)} | **${(q.medianMs / f.medianMs).toFixed(2)}** | ${f.loadMs.toFixed(0)} / ${q.loadMs.toFixed(0)} | ${f.maxRssMb.toFixed(0)} / ${q.maxRssMb.toFixed(0)} |`,
        );
        process.stdout.write(`${rows[rows.length - 1] ?? ''}\n`);
      }
    }
    process.stdout.write(`\n${rows.join('\n')}\n\n${models.map((m) => `${m.name}: ${m.note}`).join('\n')}\n`);
    process.stdout.write('target on this machine: int8/fp32 ≤ 0.45 (median latency, batch 1)\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
