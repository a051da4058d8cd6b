import type { Command } from 'commander';

/** `facegate config`: print the documented schema, or the effective (validated) config. */
export function registerConfig(program: Command): void {
  program
    .command('config')
    .description('print the effective configuration of `facegate run` (validated), or its documented schema')
    .option('-c, --config <file>', 'config file merged over config/default.json')
    .option('--print-schema', 'print the JSON Schema of the configuration (every key with description and default)')
    .action(async (opts: { config?: string; printSchema?: boolean }) => {
      const { loadConfig, configJsonSchema, redactConfig } = await import('../config/load.js');
      if (opts.printSchema) {
        process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
        return;
      }
      const cfg = loadConfig(opts.config ? { file: opts.config } : {});
      process.stdout.write(`${JSON.stringify(redactConfig(cfg), null, 2)}\n`);
    });
}
