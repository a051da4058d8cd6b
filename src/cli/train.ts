import type { Command } from 'commander';
import { FacegateError } from '../shared/errors.js';

/** Placeholder until the command is built; replaced by its owner. */
export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('(not built yet)')
    .action(() => {
      throw new FacegateError('facegate train is not built yet');
    });
}
