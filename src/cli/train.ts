/**
 * `facegate train --data DIR --out DIR [options]`: the Keras transfer-learning tutorial as
 * one command. TF.js and onnxruntime load inside the action so `--help` stays light.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import type { TrainCliOptions } from '../train/cli-run.js';

function num(name: string, int = false) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || (int && !Number.isInteger(n)))
      throw new InvalidArgumentError(`${name} must be ${int ? 'an integer' : 'a number'}, got "${v}"`);
    return n;
  };
}

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description(
      'Train a face classifier by transfer learning (frozen backbone + dense head) and write a model directory',
    )
    .requiredOption(
      '--data <dir>',
      'images: DIR/train/<person>/… and DIR/validation/<person>/… (or DIR/train only, or DIR/<person>/…)',
    )
    .requiredOption('--out <dir>', 'output model directory')
    .addOption(
      new Option('--backbone <name>', 'frozen feature extractor')
        .choices(['mobilenet_v1', 'faceres'])
        .default('mobilenet_v1'),
    )
    .option(
      '--weights <path-or-url>',
      "mobilenet_v1: TF.js model.json (file, folder or URL); downloads Google's official model when absent",
    )
    .option('--alpha <n>', 'MobileNet width multiplier to download (0.25, 0.5, 0.75, 1.0)', num('--alpha'), 1.0)
    .option('--epochs <n>', 'maximum epochs; early stopping usually ends sooner', num('--epochs', true), 50)
    .option('--batch-size <n>', 'batch size', num('--batch-size', true), 9)
    .option('--lr <n>', 'RMSprop learning rate', num('--lr'), 0.001)
    .option('--patience <n>', 'early stopping: epochs without a better val_loss', num('--patience', true), 3)
    .option(
      '--min-delta <n>',
      'smallest val_loss drop that counts as better (checkpoint and early stopping)',
      num('--min-delta'),
      0.001,
    )
    .option('--seed <n>', 'random seed (same seed, same numbers); random and recorded when absent', num('--seed', true))
    .option('--no-augment', 'turn off augmentation (rotation 20°, shifts 0.2, horizontal flip)')
    .option(
      '--validation-split <f>',
      'fraction held out per class when there is no validation/ folder',
      num('--validation-split'),
      0.2,
    )
    .option(
      '--crops',
      'the folders hold ready face crops: skip face detection (default: detect and align every face as the device does)',
      false,
    )
    .option(
      '--target-far <f>',
      'false-accept rate the stranger threshold is calibrated to (strict by default)',
      num('--target-far'),
      0.001,
    )
    .option('--classes <list>', 'comma-separated: train on these classes only')
    .addOption(
      new Option('--extractor <kind>', 'backbone feature extraction').choices(['auto', 'onnx', 'tfjs']).default('auto'),
    )
    .addOption(
      new Option('--backend <name>', 'TF.js backend (default: tensorflow if installed, else wasm, else cpu)').choices([
        'tensorflow',
        'wasm',
        'cpu',
      ]),
    )
    .option('--no-export', 'do not write model.onnx')
    .option('--no-quantize', 'do not write model.int8.onnx')
    .option('--calibration <dir>', 'images for int8 calibration (default: the training images)')
    .option('--force', 'replace a non-empty output directory', false)
    .option('--json', 'print one JSON object at the end instead of prose', false)
    .option('--no-progress', 'no progress bars')
    .action(async (opts: TrainCliOptions) => {
      // pino writes to stdout: with --json keep stdout to the one JSON object unless the
      // user chose a log level (the logger is created on first import, below).
      if (opts.json && !process.env.FACEGATE_LOG_LEVEL && !process.env.LOG_LEVEL)
        process.env.FACEGATE_LOG_LEVEL = 'warn';
      const { runTrainCli } = await import('../train/cli-run.js');
      await runTrainCli(opts);
    });
}
