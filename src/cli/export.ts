import type { Command } from 'commander';
import { FacegateError } from '../shared/errors.js';

/** Placeholder until the command is built; replaced by its owner. */
export function registerExport(program: Command): void {
  program
    .command('export')
    .description('(not built yet)')
    .action(() => {
      throw new FacegateError('facegate export is not built yet');
    });
}
