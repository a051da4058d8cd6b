#!/usr/bin/env node
/**
 * `facegate`: one CLI for the whole chain. Each command lives in src/cli/<command>.ts and
 * registers itself; heavy modules (TF.js, onnxruntime) are imported inside the actions so
 * that `--help` and the device commands stay light.
 */
import { Command, CommanderError } from 'commander';
import { FacegateError } from './shared/errors.js';
import { registerTrain } from './cli/train.js';
import { registerExport } from './cli/export.js';
import { registerQuantize } from './cli/quantize.js';
import { registerPredict } from './cli/predict.js';
import { registerEval } from './cli/eval.js';
import { registerRun } from './cli/run.js';
import { registerConfig } from './cli/config.js';
import { registerUpdate } from './cli/update.js';
import { registerModels } from './cli/models.js';
import { registerEnrol } from './cli/enrol.js';
import { registerAdmin } from './cli/admin.js';
import { registerLog } from './cli/log.js';
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  const program = new Command('facegate')
    .description(
      'Face recognition for door-access kiosks: train off-device, run a quantised model on the kiosk, publish over MQTT.',
    )
    .version(pkg.version)
    .showHelpAfterError()
    .exitOverride();
  for (const register of [
    registerTrain,
    registerExport,
    registerQuantize,
    registerPredict,
    registerEval,
    registerRun,
    registerConfig,
    registerUpdate,
    registerModels,
    registerEnrol,
    registerAdmin,
    registerLog,
  ]) {
    register(program);
  }
  return program;
}

async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    if (err instanceof FacegateError) {
      process.stderr.write(`facegate: ${err.message}\n`);
      process.exitCode = err.exitCode;
      return;
    }
    process.stderr.write(`facegate: unexpected error: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  }
}

await main(process.argv);
