import type { Command } from 'commander';

/**
 * `facegate models prepare`: converts the built-in models (BlazeFace, faceres, dlib, facemesh) to ONNX in
 * the cache folder once, so the kiosk only loads ONNX files. Idempotent: a model whose
 * prepared file verifies (sha256) is left alone. `npm install` runs it.
 */
export function registerModels(program: Command): void {
  const models = program.command('models').description('the built-in models (face detector, face descriptors)');
  models
    .command('prepare')
    .description('convert the built-in models to ONNX once (npm install runs this); the kiosk only loads ONNX files')
    .option('--cache-dir <dir>', 'cache folder (default: $FACEGATE_CACHE, else ~/.cache/facegate)')
    .option('--force', 'convert again even when the prepared files verify', false)
    .option('--json', 'print one JSON array instead of prose', false)
    .action(async (opts: { cacheDir?: string; force: boolean; json: boolean }) => {
      const { prepareBuiltinModels } = await import('../model/export/builtin.js');
      const done = await prepareBuiltinModels({
        ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}),
        force: opts.force,
      });
      if (opts.json) {
        process.stdout.write(JSON.stringify(done) + '\n');
        return;
      }
      for (const m of done)
        process.stdout.write(
          `${m.name}: ${m.status === 'ready' ? 'ready' : `converted (${m.reason ?? 'new'})`} ${m.path}\n`,
        );
    });
}
