/**
 * A REAL mosquitto broker for tests: its own config in a temp dir, loopback, a free port,
 * foreground. kill() (SIGKILL, like a crash) and restart() (same port, same persistence
 * file) let tests take the broker away mid-run. Debian's `mosquitto` package; `.ci/run`
 * installs it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface MosquittoOptions {
  /** Keep sessions and queued messages across kill()/restart() (autosaved on every change). */
  persistence?: boolean;
  /** TLS listener (PEM files); with requireCertificate, clients must present a certificate signed by `ca`. */
  tls?: { ca: string; cert: string; key: string; requireCertificate?: boolean };
  /** A mosquitto password file (mosquitto_passwd); anonymous clients are then refused. */
  passwordFile?: string;
}

export interface Mosquitto {
  readonly url: string;
  readonly port: number;
  /** Graceful stop (SIGTERM) and cleanup of the temp dir. */
  stop(): Promise<void>;
  /** SIGKILL by default, like a crash or a pulled cable; restart() brings it back on the same port. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  restart(): Promise<void>;
  /** mosquitto's own log, for failing tests. */
  log(): string;
  /** The running broker's process id (the attack bench lowers its priority). */
  readonly pid: number | undefined;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, timeoutMs: number, log: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited with ${child.exitCode}: ${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`mosquitto did not listen on ${port} within ${timeoutMs} ms: ${log()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function startMosquitto(opts: MosquittoOptions = {}): Promise<Mosquitto> {
  const dir = mkdtempSync(path.join(tmpdir(), 'facegate-mosquitto-'));
  const port = await freePort();
  const conf = path.join(dir, 'mosquitto.conf');
  const lines = [
    `listener ${port} 127.0.0.1`,
    opts.passwordFile ? `password_file ${opts.passwordFile}` : 'allow_anonymous true',
    ...(opts.passwordFile ? ['allow_anonymous false'] : []),
    ...(opts.tls
      ? [
          `cafile ${opts.tls.ca}`,
          `certfile ${opts.tls.cert}`,
          `keyfile ${opts.tls.key}`,
          `require_certificate ${opts.tls.requireCertificate ? 'true' : 'false'}`,
        ]
      : []),
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    // Model bundles arrive as thousands of QoS 1 chunks: let them queue for a slow client.
    'max_queued_messages 10000',
    'max_inflight_messages 100',
  ];
  // Run as root, mosquitto drops to the user "mosquitto", which cannot write our temp dir.
  if (process.getuid?.() === 0) lines.push('user root');
  if (opts.persistence) {
    lines.push('persistence true', `persistence_location ${dir}/`, 'autosave_on_changes true', 'autosave_interval 1');
  } else {
    lines.push('persistence false');
  }
  writeFileSync(conf, `${lines.join('\n')}\n`);
  let child: ChildProcess | undefined;
  let output = '';
  const launch = async (): Promise<void> => {
    const c = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    c.stdout?.on('data', (d: Buffer) => {
      output = (output + d.toString()).slice(-4000);
    });
    c.stderr?.on('data', (d: Buffer) => {
      output = (output + d.toString()).slice(-4000);
    });
    await new Promise<void>((resolve, reject) => {
      c.once('spawn', () => resolve());
      c.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          err.code === 'ENOENT'
            ? new Error(
                'mosquitto is not installed: apt-get install -y mosquitto mosquitto-clients (.ci/run does this)',
              )
            : err,
        ),
      );
    });
    await waitForPort(port, c, 10_000, () => output);
  };
  const halt = async (signal: NodeJS.Signals): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill(signal);
    });
  };
  await launch();
  return {
    url: `${opts.tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`,
    port,
    log: () => output,
    get pid() {
      return child?.pid;
    },
    kill: (signal: NodeJS.Signals = 'SIGKILL') => halt(signal),
    restart: async () => {
      await halt('SIGKILL');
      await launch();
    },
    stop: async () => {
      await halt('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
