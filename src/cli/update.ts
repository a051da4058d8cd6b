import type { Command } from 'commander';
import { FacegateError } from '../shared/errors.js';

/** Placeholder until the command is built; replaced by its owner. */
export function registerUpdate(program: Command): void {
  program
    .command('update')
    .description('(not built yet)')
    .action(() => {
      throw new FacegateError('facegate update is not built yet');
    });
}
