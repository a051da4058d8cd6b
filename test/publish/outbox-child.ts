/**
 * Child process of the outbox crash-injection test: opens the outbox in argv[2] and runs
 * a script (import the older files, add three events, ack the first), killing itself
 * with SIGKILL at the write named by FACEGATE_CRASH_AT (its `count`-th occurrence).
 */
import { testHooks } from '../../src/update/hooks.js';
import { openOutbox, testEvent } from '../support/outbox.js';

const dir = process.argv[2] as string;
const [crashAt, nth] = (process.env.FACEGATE_CRASH_AT ?? '').split('#');
let seen = 0;
testHooks.crashAt = (step: string): void => {
  if (step === crashAt && ++seen === Number(nth ?? 1)) process.kill(process.pid, 'SIGKILL');
};
const { db, o } = openOutbox(dir);
for (let i = 0; i < 3; i++) o.add(testEvent(o.nextSeq()), false);
const head = o.peek();
if (head) o.ack(head.payload.seq);
db.close();
process.stdout.write('done\n');
