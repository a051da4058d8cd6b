/**
 * Child process of the lock tests: takes the lock on the folder in argv[2], says so on
 * stdout, and holds it until killed.
 */
import { FolderLock } from '../../src/state/lock.js';

const dir = process.argv[2] as string;
FolderLock.acquire(dir, 'state.dir');
process.stdout.write(`locked ${process.pid}\n`);
setInterval(() => undefined, 60_000);
