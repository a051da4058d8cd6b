/**
 * `facegate export`: TF.js → ONNX.
 *   facegate export --model DIR                 rebuild DIR/model.onnx from its head and backbone
 *   facegate export --tfjs model.json --out x.onnx [--output NODE...]
 * `--tfjs human:NAME` converts one of @vladmandic/human's bundled models (blazeface, faceres, …).
 */
import { Command, Option } from 'commander';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { FacegateError } from '../shared/errors.js';
import { writeFileAtomic } from '../shared/fs.js';

interface ExportCliOptions {
  model?: string;
  tfjs?: string;
  out?: string;
  output?: string[];
  backbone?: string;
}

function describe(sig: {
  inputs: { name: string; dtype: string; shape: readonly (number | null)[] }[];
  outputs: { name: string; dtype: string; shape: readonly (number | null)[] }[];
}): string {
  const fmt = (s: { name: string; dtype: string; shape: readonly (number | null)[] }): string =>
    `${s.name} ${s.dtype}[${s.shape.map((d) => d ?? 'N').join(',')}]`;
  return `inputs: ${sig.inputs.map(fmt).join(', ')}\noutputs: ${sig.outputs.map(fmt).join(', ')}`;
}

async function runExport(o: ExportCliOptions): Promise<void> {
  if (Boolean(o.model) === Boolean(o.tfjs)) {
    throw new FacegateError(
      'pass either --model DIR (re-export a trained model) or --tfjs MODEL_JSON --out FILE.onnx (convert a TF.js model)',
    );
  }
  const { OnnxModel } = await import('../runtime/ort.js');
  if (o.model) {
    if (o.out || o.output) throw new FacegateError('--out and --output apply to --tfjs; --model writes DIR/model.onnx');
    const { reexportModelDir } = await import('../model/export/directory.js');
    const result = reexportModelDir(o.model, o.backbone ? { backbone: o.backbone } : {});
    // Check what was written loads in onnxruntime, as the kiosk will load it.
    const model = await OnnxModel.load(result.file);
    const sig = model.signature();
    await model.release();
    process.stdout.write(
      `wrote ${result.file} (${(result.bytes / 1e6).toFixed(2)} MB, ${result.info.nodes} nodes, sha256 ${result.sha256.slice(0, 12)}…)` +
        `${result.changed ? '' : ' — unchanged'}\n${describe(sig)}\n`,
    );
    return;
  }
  if (o.backbone) throw new FacegateError('--backbone applies to --model');
  if (!o.out) throw new FacegateError('--tfjs needs --out FILE.onnx');
  const { convertTfjsModel, humanModelJson, readTfjsModel } = await import('../model/export/index.js');
  const human = /^human:([\w-]+)$/.exec(o.tfjs ?? '');
  const source = human?.[1] ? humanModelJson(human[1]) : path.resolve(o.tfjs ?? '');
  const artifacts = readTfjsModel(source);
  const bytes = convertTfjsModel(artifacts, o.output ? { outputs: o.output } : {});
  const model = await OnnxModel.load(bytes);
  const sig = model.signature();
  await model.release();
  mkdirSync(path.dirname(path.resolve(o.out)), { recursive: true });
  await writeFileAtomic(o.out, bytes);
  process.stdout.write(`wrote ${o.out} (${(bytes.length / 1e6).toFixed(2)} MB) from ${source}\n${describe(sig)}\n`);
}

export function registerExport(program: Command): void {
  program
    .command('export')
    .description("Export to ONNX: rebuild a trained model directory's model.onnx, or convert any supported TF.js model")
    .addOption(
      new Option(
        '--model <dir>',
        'trained model directory: rebuild model.onnx from head/ and the backbone, update the manifest',
      ),
    )
    .addOption(
      new Option(
        '--backbone <model.json>',
        "with --model: the backbone's TF.js model.json when the manifest's source is not on this machine",
      ),
    )
    .addOption(
      new Option(
        '--tfjs <model.json>',
        "a TF.js model.json (LayersModel or GraphModel); human:NAME for @vladmandic/human's bundled models",
      ),
    )
    .addOption(new Option('--out <file.onnx>', 'with --tfjs: where to write the ONNX model'))
    .addOption(
      new Option(
        '--output <node...>',
        "with --tfjs: node (GraphModel) or layer (LayersModel) names to output; default: the model's own outputs",
      ),
    )
    .addHelpText(
      'after',
      '\nExamples:\n  facegate export --model models/20260101.120000\n  facegate export --tfjs human:blazeface --out blazeface.onnx\n  facegate export --tfjs human:faceres --out faceres.onnx --output global_pooling/Mean',
    )
    .action(async (o: ExportCliOptions) => {
      await runExport(o);
    });
}
