/**
 * `facegate quantize`: fp32 ONNX → int8 QDQ ONNX, calibrated on real face images.
 *   facegate quantize --model DIR/model.onnx --calibration faces/ [--samples 100] [--method minmax]
 * Writes `model.int8.onnx` beside the input (or --out); when the input sits in a model
 * directory, updates its manifest (quantization section, file hashes).
 */
import { Command, Option } from 'commander';
import { existsSync, readFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { DataError, ModelError } from '../shared/errors.js';
import type { RgbImage } from '../shared/image.js';
import { calibrationMethods, type CalibrationMethod } from '../model/quantize/ranges.js';
import { weightRoundings, type WeightRounding } from '../model/quantize/rounding.js';
import { INT8_MIN_AGREEMENT, MANIFEST_FILE, fileEntry, readManifest } from '../model/manifest.js';
import { CALIBRATION_SAMPLES } from '../model/dir/quantize.js';

/** Calibration images used when --samples is not given. */
export const DEFAULT_SAMPLES = CALIBRATION_SAMPLES;

interface QuantizeCliOptions {
  model: string;
  calibration: string;
  samples: string;
  method: CalibrationMethod;
  out?: string;
  keepFloat?: string[];
  percentile?: string;
  biasCorrection: boolean;
  mixedPrecision: boolean;
  rounding: WeightRounding;
}

function positiveInt(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new DataError(`${flag} must be a positive integer, got "${v}"`);
  return n;
}

/** Images of the folder compared between fp32 and int8 after quantising. */
const CHECK_IMAGES = 50;

/** The check images: up to CHECK_IMAGES the calibration did not use, else the calibration images. */
async function checkImages(
  all: readonly string[],
  used: readonly string[],
  input: { width: number; height: number },
): Promise<{ images: RgbImage[]; on: 'held-out' | 'calibration' }> {
  const { spread } = await import('../model/quantize/index.js');
  const { decodeRgb } = await import('../shared/image.js');
  const seen = new Set(used);
  const decodeAll = async (files: readonly string[]): Promise<RgbImage[]> => {
    const out: RgbImage[] = [];
    for (const f of spread(files, CHECK_IMAGES)) {
      try {
        out.push(await decodeRgb(f, input));
      } catch {
        /* corrupt: counted while calibrating */
      }
    }
    return out;
  };
  const heldOut = await decodeAll(all.filter((f) => !seen.has(f)));
  return heldOut.length > 0
    ? { images: heldOut, on: 'held-out' }
    : { images: await decodeAll(used), on: 'calibration' };
}

async function runQuantize(o: QuantizeCliOptions): Promise<void> {
  const samples = positiveInt('--samples', o.samples);
  const percentile = o.percentile === undefined ? undefined : Number(o.percentile);
  if (percentile !== undefined && !(percentile > 90 && percentile <= 100)) {
    throw new DataError(`--percentile must be in (90, 100], got "${o.percentile}"`);
  }
  if (percentile !== undefined && o.method !== 'percentile')
    throw new DataError('--percentile applies to --method percentile');
  const modelPath = path.resolve(o.model);
  if (!existsSync(modelPath))
    throw new ModelError(`model file ${modelPath} does not exist: export it first (facegate export)`);
  const fp32 = new Uint8Array(readFileSync(modelPath));

  const { decodeOnnx, pixelInput } = await import('../model/quantize/index.js');
  const { loadCalibration, defaultOutputPath } = await import('../model/quantize/files.js');
  const dir = path.dirname(modelPath);
  // A model directory's manifest must describe the file we are about to quantise.
  const manifest = existsSync(path.join(dir, MANIFEST_FILE)) ? readManifest(dir) : undefined;
  const listed = manifest?.files[path.basename(modelPath)];
  if (listed && listed.sha256 !== fileEntry(fp32).sha256) {
    throw new ModelError(
      `${modelPath} does not match ${path.join(dir, 'manifest.json')} (sha256 differs): the file was changed or replaced; export it again (facegate export --model ${dir})`,
    );
  }
  const decoded = decodeOnnx(fp32, modelPath);
  const input = pixelInput(decoded);
  const classifies = (decoded.graph?.output ?? []).some((o) => o.name === 'probabilities');

  const cal = await loadCalibration(path.resolve(o.calibration), samples, { width: input.width, height: input.height });
  process.stderr.write(
    `calibrating on ${cal.images.length} of ${cal.all.length} images under ${o.calibration}` +
      `${cal.skipped.length ? ` (${cal.skipped.length} unreadable skipped, e.g. ${cal.skipped[0]})` : ''}, method ${o.method}\n`,
  );
  const started = Date.now();
  const out = path.resolve(o.out ?? defaultOutputPath(modelPath));
  mkdirSync(path.dirname(out), { recursive: true });
  const inModelDir = manifest !== undefined && path.dirname(out) === dir;
  // Agreement with fp32 on images the calibration did not see (when the model classifies).
  const check = classifies ? await checkImages(cal.all, cal.files, input) : undefined;
  const recognition = manifest?.recognition;
  const { quantizeModelDir } = await import('../model/dir/quantize.js');
  const { kioskDecision } = await import('../recognise/recogniser.js');
  const { model, report, section } = await quantizeModelDir({
    fp32,
    quantize: {
      calibration: cal.images,
      method: o.method,
      samples,
      biasCorrection: o.biasCorrection,
      mixedPrecision: o.mixedPrecision,
      rounding: o.rounding,
      ...(o.keepFloat ? { keepFloat: o.keepFloat } : {}),
      ...(percentile !== undefined ? { percentile } : {}),
    },
    ...(check && check.images.length > 0 ? { check } : {}),
    ...(recognition?.source === 'features' && manifest ? { decide: kioskDecision(recognition, manifest.classes) } : {}),
    skippedImages: cal.skipped.length,
    write: { dir, file: out, ...(inModelDir ? { manifest } : {}) },
  });
  const c = section.check;
  if (c && section.check?.meetsTarget === false) {
    process.stderr.write(
      `warning: the int8 model agrees with fp32 on only ${((c.top1Agreement ?? 0) * 100).toFixed(1)} % of ${c.images} images` +
        `${c.features?.decisionAgreement !== undefined ? ` (kiosk decisions alike on ${(c.features.decisionAgreement * 100).toFixed(1)} %)` : ''} (target ≥ ${INT8_MIN_AGREEMENT * 100} %): ` +
        'deploy the fp32 model.onnx (precision auto, the default of the kiosk and of eval/predict, does so when this check is in the manifest), or try --keep-float (see docs, quantisation)\n',
    );
  }
  const intOps = report.intNodes.length;
  process.stdout.write(
    `wrote ${out} (${(model.length / 1e6).toFixed(2)} MB, fp32 ${(fp32.length / 1e6).toFixed(2)} MB) in ${((Date.now() - started) / 1000).toFixed(1)} s\n` +
      `  ${intOps} Conv/Gemm nodes int8, ${report.absorbedActivations.length} Relu/Clip folded, ${report.tensorsCalibrated} activations calibrated (${report.method}, ${report.samples} images), ${report.biasCorrected} biases corrected, weights rounded by ${report.rounding.method}` +
      `${report.rounding.method === 'gptq' ? ` (${report.rounding.optimised} nodes${report.rounding.nearest.length ? `; to nearest: ${report.rounding.nearest.map((n) => `${n.name} (${n.reason})`).join(', ')}` : ''})` : ''}\n` +
      report.floatNodes.map((f) => `  float: ${f.name} (${f.opType}): ${f.reason}\n`).join('') +
      (report.mixedPrecision
        ? `  mixed precision: relative error ${report.mixedPrecision.before.relativeError.toFixed(4)} → ${report.mixedPrecision.after.relativeError.toFixed(4)} on ${report.mixedPrecision.images} ${report.mixedPrecision.heldOut ? 'held-out' : 'calibration'} images` +
          `${report.mixedPrecision.after.features ? `, features cosine ≥ ${report.mixedPrecision.after.features.minCosine.toFixed(4)}` : ''}` +
          `${report.mixedPrecision.after.decisionAgreement !== undefined ? `, kiosk decisions alike ${(report.mixedPrecision.after.decisionAgreement * 100).toFixed(1)} %` : ''}` +
          `, ${report.mixedPrecision.keptFloat.length} unit(s) kept float\n`
        : '') +
      (c
        ? `  int8 vs fp32 on ${c.images} ${c.on} images: top-1 agreement ${((c.top1Agreement ?? 0) * 100).toFixed(1)} %, max |Δp| ${(c.maxAbsDiffProbability ?? 0).toFixed(4)}` +
          `${c.minEmbeddingCosine !== undefined ? `, min embedding cosine ${c.minEmbeddingCosine.toFixed(4)}` : ''}` +
          `${c.features ? `, features cosine ≥ ${c.features.minCosine.toFixed(4)}` : ''}` +
          `${c.features?.decisionAgreement !== undefined ? `, kiosk decisions alike ${(c.features.decisionAgreement * 100).toFixed(1)} %` : ''}\n`
        : '') +
      (inModelDir ? `  updated ${path.join(dir, 'manifest.json')}\n` : ''),
  );
}

export function registerQuantize(program: Command): void {
  program
    .command('quantize')
    .description('Quantise an fp32 ONNX model to int8 (QDQ, per-channel weights), calibrated on real face images')
    .requiredOption('--model <file.onnx>', "the fp32 model (e.g. a model directory's model.onnx)")
    .requiredOption('--calibration <dir>', 'folder of face images (searched recursively), e.g. the training images')
    .option('--samples <n>', 'calibration images to use, spread evenly over the folder', String(DEFAULT_SAMPLES))
    .addOption(
      new Option('--method <method>', 'activation range calibration').choices(calibrationMethods).default('minmax'),
    )
    .option('--out <file.onnx>', 'output file (default: <model>.int8.onnx beside the input)')
    .option('--keep-float <node...>', 'node names to keep in float (see the report for names)')
    .option('--percentile <p>', 'with --method percentile: share of values kept (default 99.999)')
    .option(
      '--no-mixed-precision',
      'do not keep the most sensitive layers in float automatically (see the README, quantisation)',
    )
    .addOption(
      new Option(
        '--rounding <how>',
        "int8 weight rounding: gptq cancels each layer's output error on the calibration images, nearest rounds each weight alone",
      )
        .choices(weightRoundings)
        .default('gptq'),
    )
    .option('--no-bias-correction', 'skip the per-channel bias correction after quantising (faster, less accurate)')
    .addHelpText(
      'after',
      '\nExample:\n  facegate quantize --model models/20260101.120000/model.onnx --calibration ~/faces/orl/train',
    )
    .action(async (o: QuantizeCliOptions) => {
      await runQuantize(o);
    });
}
