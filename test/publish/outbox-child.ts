/**
 * Child process of the outbox crash-injection test: opens the outbox in argv[2] and runs
 * a script (import the older files, add three events, ack the first), killing itself
 * with SIGKILL at the write named by FACEGATE_CRASH_AT (its `count`-th occurrence).
 */
import { KioskDb, kioskDbPath } from '../../src/state/db.js';
import { Outbox } from '../../src/publish/outbox.js';
import { testHooks } from '../../src/update/hooks.js';
import type { EventPayload } from '../../src/publish/topics.js';

const dir = process.argv[2] as string;
const [crashAt, nth] = (process.env.FACEGATE_CRASH_AT ?? '').split('#');
let seen = 0;
testHooks.crashAt = (step: string): void => {
  if (step === crashAt && ++seen === Number(nth ?? 1)) process.kill(process.pid, 'SIGKILL');
};
const event = (seq: number): EventPayload => ({
  id: `id-${seq}`,
  seq,
  kind: 'recognized',
  name: 'alice',
  score: 0.9,
  time: new Date(0).toISOString(),
  modelVersion: 'v1',
  kiosk: 'k',
  camera: 'c',
  trackId: 1,
  frameId: seq,
  delayed: false,
});
const db = KioskDb.open(kioskDbPath(dir));
const o = new Outbox(db, dir, 100);
o.load();
for (let i = 0; i < 3; i++) o.add(event(o.nextSeq()), false);
const head = o.peek();
if (head) o.ack(head.payload.seq);
db.close();
process.stdout.write('done\n');
