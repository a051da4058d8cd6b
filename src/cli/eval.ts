import type { Command } from 'commander';
import { FacegateError } from '../shared/errors.js';

/** Placeholder until the command is built; replaced by its owner. */
export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('(not built yet)')
    .action(() => {
      throw new FacegateError('facegate eval is not built yet');
    });
}
