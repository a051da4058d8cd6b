import type { Command } from 'commander';
import { FacegateError } from '../shared/errors.js';

/** Placeholder until the command is built; replaced by its owner. */
export function registerConfig(program: Command): void {
  program
    .command('config')
    .description('(not built yet)')
    .action(() => {
      throw new FacegateError('facegate config is not built yet');
    });
}
