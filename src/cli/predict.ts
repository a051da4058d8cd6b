import type { Command } from 'commander';
import { FacegateError } from '../shared/errors.js';

/** Placeholder until the command is built; replaced by its owner. */
export function registerPredict(program: Command): void {
  program
    .command('predict')
    .description('(not built yet)')
    .action(() => {
      throw new FacegateError('facegate predict is not built yet');
    });
}
