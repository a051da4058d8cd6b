/** The `facegate train` action: progress bars, prose or `--json`. */
import cliProgress from 'cli-progress';
import { train, type TrainResult } from './index.js';
import { defaultExportStep } from './export-step.js';

/** The options commander parses for `facegate train` (src/cli/train.ts declares them). */
export interface TrainCliOptions {
  data: string;
  out: string;
  backbone: 'mobilenet_v1' | 'faceres';
  weights?: string;
  alpha: number;
  epochs: number;
  batchSize: number;
  lr: number;
  patience: number;
  minDelta: number;
  seed?: number;
  augment: boolean;
  validationSplit: number;
  crops: boolean;
  targetFar: number;
  classes?: string;
  extractor: 'auto' | 'onnx' | 'tfjs';
  backend?: 'tensorflow' | 'wasm' | 'cpu';
  export: boolean;
  quantize: boolean;
  calibration?: string;
  force: boolean;
  json: boolean;
  progress: boolean;
}

export function resultJson(r: TrainResult): Record<string, unknown> {
  return {
    out: r.out,
    classes: r.classes,
    train_images: r.trainImages,
    validation_images: r.validationImages,
    skipped: r.skipped,
    epochs_run: r.epochsRun,
    best_epoch: r.bestEpoch,
    stopped_early: r.stoppedEarly,
    val_loss: r.valLoss,
    val_accuracy: r.valAccuracy,
    seconds: Number(r.seconds.toFixed(2)),
    backend: r.backend,
    feature_extractor: r.extractor,
    seed: r.seed,
    params: r.params,
    files: r.files,
  };
}

export async function runTrainCli(o: TrainCliOptions): Promise<void> {
  const prose = !o.json;
  const bars = o.progress && process.stderr.isTTY;
  const print = prose
    ? (l: string): void => {
        process.stdout.write(l + '\n');
      }
    : undefined;
  let bar: cliProgress.SingleBar | null = null;
  const result = await train(
    {
      data: o.data,
      out: o.out,
      backbone: o.backbone,
      weights: o.weights,
      alpha: o.alpha,
      epochs: o.epochs,
      batchSize: o.batchSize,
      lr: o.lr,
      patience: o.patience,
      minDelta: o.minDelta,
      seed: o.seed,
      augment: o.augment,
      validationSplit: o.validationSplit,
      crops: o.crops,
      targetFar: o.targetFar,
      classes: o.classes
        ?.split(',')
        .map((s) => s.trim())
        .filter(Boolean),
      extractor: o.extractor,
      backend: o.backend,
      export: o.export,
      quantize: o.quantize,
      calibration: o.calibration,
      force: o.force,
      progress: bars,
    },
    {
      exportStep: defaultExportStep,
      ...(print ? { print } : {}),
      onDataProgress: (done, total) => {
        if (!bars) return;
        if (done === 1) {
          bar = new cliProgress.SingleBar(
            { format: 'loading images [{bar}] {value}/{total}', stream: process.stderr, clearOnComplete: true },
            cliProgress.Presets.shades_classic,
          );
          bar.start(total, 0);
        }
        bar?.update(done);
        if (done === total) {
          bar?.stop();
          bar = null;
        }
      },
      onEpochStart: (epoch, epochs, batches) => {
        if (!bars) return;
        bar = new cliProgress.SingleBar(
          {
            format: `epoch ${epoch}/${epochs} [{bar}] {value}/{total} - loss {loss} - accuracy {acc}`,
            stream: process.stderr,
            clearOnComplete: true,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(batches, 0, { loss: '-', acc: '-' });
      },
      onBatch: (_e, b, loss, acc) => {
        bar?.update(b, { loss: loss.toFixed(4), acc: acc.toFixed(4) });
      },
      onEpochEnd: (l, improved) => {
        bar?.stop();
        bar = null;
        const line = `epoch ${l.epoch}: loss ${l.loss.toFixed(4)} - accuracy ${l.accuracy.toFixed(4)} - val_loss ${l.val_loss.toFixed(4)} - val_accuracy ${l.val_accuracy.toFixed(4)} (${l.seconds.toFixed(1)} s)${improved ? ' - checkpoint saved' : ''}`;
        if (prose) process.stdout.write(line + '\n');
        else if (o.progress) process.stderr.write(line + '\n');
      },
    },
  );
  if (o.json) {
    process.stdout.write(JSON.stringify(resultJson(result)) + '\n');
    return;
  }
  const lines = [
    '',
    `best epoch ${result.bestEpoch} of ${result.epochsRun}${result.stoppedEarly ? ' (early stopping restored it)' : ''}: val_loss ${result.valLoss.toFixed(4)}, val_accuracy ${result.valAccuracy.toFixed(4)}`,
    `${result.classes.length} classes, ${result.trainImages} training / ${result.validationImages} validation images, ${result.skipped.length} skipped`,
    `${result.seconds.toFixed(1)} s on TF.js ${result.backend}, features by ${result.extractor}, seed ${result.seed}`,
    `wrote ${result.out}:`,
    ...result.files.filter((f) => !f.startsWith('checkpoint/')).map((f) => `  ${f}`),
    '  checkpoint/ (best val_loss during training)',
  ];
  process.stdout.write(lines.join('\n') + '\n');
}
