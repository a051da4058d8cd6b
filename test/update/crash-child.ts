/**
 * Child process of the crash-injection test: installs a bundle into a model store and
 * kills itself with SIGKILL at the install step named by FACEGATE_CRASH_AT. The hook
 * is set here, in test code; src/ never reads that variable.
 *
 * argv: modelsDir fallbackDir bundleFile publicKeyFile [recover]
 * With `recover` the child only starts the store (the rollback at start is what crashes).
 */
import { readFile } from 'node:fs/promises';
import { pino } from 'pino';
import { testHooks } from '../../src/update/hooks.js';
import { loadPublicKey } from '../../src/update/keys.js';
import { DeviceModelRunner } from '../../src/update/selftest.js';
import { ModelStore } from '../../src/update/store.js';

const [modelsDir, fallbackDir, bundleFile, publicKeyFile] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string?,
];
const crashAt = process.env.FACEGATE_CRASH_AT;
testHooks.crashAt = (step: string): void => {
  if (step === crashAt) process.kill(process.pid, 'SIGKILL');
};

const store = new ModelStore({
  dir: modelsDir,
  fallbackDir,
  keys: [await loadPublicKey(publicKeyFile)],
  runner: new DeviceModelRunner(),
  probationMinutes: 10,
  log: pino({ level: 'silent' }),
});
const started = await store.recover();
if (process.argv[6] === 'recover') {
  process.stdout.write(`running ${started.active.version}\n`);
  process.exit(0);
}
const { installed } = await store.install(await readFile(bundleFile), { kioskId: 'k1', allowForced: false });
await store.passProbation(installed.version);
process.stdout.write(`done ${installed.version}\n`);
