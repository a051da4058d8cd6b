import type { Command } from 'commander';
import { FacegateError } from '../shared/errors.js';

/** Placeholder until the command is built; replaced by its owner. */
export function registerQuantize(program: Command): void {
  program
    .command('quantize')
    .description('(not built yet)')
    .action(() => {
      throw new FacegateError('facegate quantize is not built yet');
    });
}
