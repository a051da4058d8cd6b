/**
 * A relay on a GPIO line, through the Linux GPIO character device with the libgpiod 1.x
 * command-line tools (Debian/Raspberry Pi OS package `gpiod`): never the deprecated sysfs
 * interface. This is the only module that runs gpioset / gpioget / gpiomon.
 *
 * libgpiod 1.x keeps a line driven only while a process holds it: when the last holder
 * exits, the line reverts to the driver's default (on a Raspberry Pi: an input), and what
 * the relay then does depends on its wiring. So:
 * - while the daemon runs, a holder process (`gpioset --mode=signal … line=0`) keeps the
 *   line driven INACTIVE;
 * - a pulse swaps it for ONE `gpioset --mode=time` child that holds the line ACTIVE for
 *   pulseMs and then exits by itself: the line cannot stay active longer than pulseMs even
 *   when facegate dies without cleaning up (kill -9, OOM killer);
 * - whenever the pulse child ends (its time ran out, SIGTERM, kill -9) the inactive holder
 *   takes the line again; a holder that dies is replaced;
 * - at stop both are ended and the line reverts to its default: wire the relay so that an
 *   undriven line means OFF (pull resistor to the inactive level; docs/door-access.md).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import { FacegateError } from '../shared/errors.js';
import { moduleLogger } from '../shared/logger.js';

export class GpioError extends FacegateError {}

export interface GpioLineConfig {
  readonly chip: string;
  readonly line: number;
  readonly activeLow: boolean;
}

/** gpioset arguments (libgpiod 1.x) that drive `line` to a logical value; pure. */
export function gpiosetArgs(
  l: GpioLineConfig,
  value: 0 | 1,
  mode: { readonly kind: 'exit' } | { readonly kind: 'time'; readonly ms: number },
): string[] {
  const args: string[] = [];
  if (l.activeLow) args.push('--active-low');
  if (mode.kind === 'exit') args.push('--mode=exit');
  else {
    const us = Math.max(0, Math.round(mode.ms * 1000));
    args.push('--mode=time', `--sec=${Math.floor(us / 1_000_000)}`, `--usec=${us % 1_000_000}`);
  }
  args.push(l.chip, `${l.line}=${value}`);
  return args;
}

/** The libgpiod major version a tool reports (`gpioset (libgpiod) v1.6.3` → 1). */
export function libgpiodMajor(versionOutput: string): number | null {
  const m = /libgpiod\)?\s+v?(\d+)\./.exec(versionOutput);
  return m ? Number(m[1]) : null;
}

function run(file: string, args: readonly string[], timeoutMs = 5000): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(new Error(err.message, { cause: err }), { code: err.code, stderr }));
      else resolve({ stdout, stderr });
    });
  });
}

/** Checks that `tool` is a libgpiod 1.x program; throws what to install otherwise. */
export async function assertLibgpiod1(tool: string): Promise<void> {
  let out: string;
  try {
    out = (await run(tool, ['--version'])).stdout;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new GpioError(
      code === 'ENOENT'
        ? `${tool} not found: install the libgpiod tools (apt-get install gpiod), or set door.relay.gpioset / door.contact.gpio.* to their path`
        : `${tool} --version failed: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const major = libgpiodMajor(out);
  if (major !== 1)
    throw new GpioError(
      `${tool} reports "${out.trim().split('\n')[0] ?? ''}"; facegate drives libgpiod 1.x tools (Debian bookworm / Raspberry Pi OS bookworm package gpiod). Point door.relay.gpioset at a 1.x gpioset.`,
    );
}

export type RelayState = 'on' | 'off';

interface Holder {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
}

export class GpioRelay {
  private readonly log: Logger = moduleLogger('gpio');
  private idle: Holder | undefined;
  private pulseHolder: Holder | undefined;
  private pulsing = false;
  private current: RelayState = 'off';
  private stopped = false;
  private idleFailures = 0;
  private readonly listeners: ((s: RelayState) => void)[] = [];

  constructor(
    private readonly cfg: GpioLineConfig & { readonly gpioset: string },
    private readonly pulseMs: number,
  ) {}

  get state(): RelayState {
    return this.current;
  }

  onChange(listener: (s: RelayState) => void): void {
    this.listeners.push(listener);
  }

  private set(s: RelayState): void {
    if (s === this.current) return;
    this.current = s;
    for (const l of this.listeners) l(s);
  }

  /**
   * Checks the tool, drives the line inactive and keeps it so. While a pulse left by a
   * crashed run still holds the line (busy), it waits for it: at most pulseMs.
   */
  async start(): Promise<void> {
    await assertLibgpiod1(this.cfg.gpioset);
    await this.probeInactive(this.pulseMs + 2000);
    this.idle = this.hold(0);
    this.log.info({ chip: this.cfg.chip, line: this.cfg.line, activeLow: this.cfg.activeLow }, 'relay ready (off)');
  }

  /** `gpioset --mode=exit line=0`: fails at once when the line is missing, forbidden or held by another process. */
  private async probeInactive(patienceMs: number): Promise<void> {
    const deadline = Date.now() + patienceMs;
    for (;;) {
      try {
        await run(this.cfg.gpioset, gpiosetArgs(this.cfg, 0, { kind: 'exit' }));
        return;
      } catch (err) {
        const stderr = String((err as { stderr?: string }).stderr ?? '');
        if (/busy/i.test(stderr) && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        throw new GpioError(
          `cannot drive ${this.cfg.chip} line ${this.cfg.line} inactive: ${stderr.trim() || (err as Error).message}. ` +
            (/busy/i.test(stderr)
              ? 'Another process holds the line (gpioinfo shows its consumer; a gpioset left by a facegate killed outside systemd?).'
              : 'Check door.relay.chip/line (gpioinfo lists them) and that the daemon may open /dev/gpiochip* (group gpio; systemd DeviceAllow=char-gpiochip rw).'),
          { cause: err },
        );
      }
    }
  }

  /** Starts a gpioset that holds the line at `value` (0: until signalled; 1: for pulseMs). */
  private hold(value: 0 | 1): Holder {
    const args =
      value === 1
        ? gpiosetArgs(this.cfg, 1, { kind: 'time', ms: this.pulseMs })
        : [...gpiosetArgs(this.cfg, 0, { kind: 'exit' }).filter((a) => a !== '--mode=exit'), '--mode=signal'];
    const child = spawn(this.cfg.gpioset, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-500);
    });
    const exited = new Promise<void>((resolve) => {
      let done = false;
      const finish = (code: number | null, signal: NodeJS.Signals | null, err?: Error): void => {
        if (done) return;
        done = true;
        if (err || (code !== 0 && signal === null))
          this.log.error(
            { err: err?.message ?? stderr.trim(), code, value },
            value === 1 ? 'relay pulse failed: the door did not open' : 'the relay holder failed',
          );
        else if (signal && signal !== 'SIGTERM')
          this.log.warn({ signal, value }, 'the process holding the relay line was killed');
        resolve();
        this.ended(value);
      };
      child.once('error', (e) => finish(null, null, e));
      child.once('exit', (code, signal) => finish(code, signal));
    });
    return { child, exited };
  }

  /** A holder ended: after a pulse, or when the idle holder died, the line is held inactive again. */
  private ended(value: 0 | 1): void {
    if (value === 1) {
      this.pulseHolder = undefined;
      this.pulsing = false;
      if (!this.stopped) this.idle = this.hold(0);
      this.set('off');
      return;
    }
    if (this.stopped || this.pulsing) return;
    // The idle holder died on its own (killed): take the line again, but do not spin on a broken setup.
    this.idle = undefined;
    if (++this.idleFailures > 20) {
      this.log.error('the relay line cannot be held inactive; giving up (the line is at its default level)');
      return;
    }
    setTimeout(() => {
      if (!this.stopped && !this.pulsing && !this.idle) this.idle = this.hold(0);
    }, 100).unref();
  }

  /**
   * Switches the relay on for pulseMs. Returns false (and does nothing) while a pulse is on:
   * one opening at a time.
   */
  pulse(): boolean {
    if (this.stopped || this.pulsing) return false;
    this.pulsing = true;
    this.set('on');
    const idle = this.idle;
    this.idle = undefined;
    void (async () => {
      if (idle) {
        if (idle.child.exitCode === null && idle.child.signalCode === null) idle.child.kill('SIGTERM');
        await idle.exited;
      }
      if (this.stopped) {
        this.pulsing = false;
        this.set('off');
        return;
      }
      this.pulseHolder = this.hold(1);
    })();
    return true;
  }

  /** The pid of the process holding the relay on (tests; undefined when off). */
  get holderPid(): number | undefined {
    return this.pulseHolder?.child.pid;
  }

  /** Ends a pulse in progress and the inactive holder; the line reverts to its (wired) default, off. */
  async stop(): Promise<void> {
    this.stopped = true;
    // A pulse that is just starting: let its holder appear so that it is ended too.
    for (let i = 0; i < 50 && this.pulsing && !this.pulseHolder; i++) await new Promise((r) => setTimeout(r, 10));
    for (const h of [this.pulseHolder, this.idle]) {
      if (!h) continue;
      if (h.child.exitCode === null && h.child.signalCode === null) h.child.kill('SIGTERM');
      await h.exited;
    }
    this.idle = undefined;
    this.pulseHolder = undefined;
    this.set('off');
  }
}

/** Watches a GPIO input (door contact) with gpiomon; reports logical levels (1 = active). */
export class GpioInput {
  private readonly log: Logger = moduleLogger('gpio');
  private child: ChildProcess | undefined;
  private stopping = false;

  constructor(
    private readonly cfg: GpioLineConfig & { readonly gpiomon: string; readonly gpioget: string },
    private readonly onLevel: (active: boolean) => void,
  ) {}

  async start(): Promise<void> {
    await assertLibgpiod1(this.cfg.gpioget);
    const lowArg = this.cfg.activeLow ? ['--active-low'] : [];
    const { stdout } = await run(this.cfg.gpioget, [...lowArg, this.cfg.chip, String(this.cfg.line)]).catch(
      (err: Error & { stderr?: string }) => {
        throw new GpioError(
          `cannot read the door contact on ${this.cfg.chip} line ${this.cfg.line}: ${err.stderr?.trim() || err.message}`,
          { cause: err },
        );
      },
    );
    this.onLevel(stdout.trim() === '1');
    // One line per edge: "1" rising (to active), "0" falling.
    const child = spawn(this.cfg.gpiomon, [...lowArg, '--format=%e', this.cfg.chip, String(this.cfg.line)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    let buf = '';
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (line === '1' || line === '0') this.onLevel(line === '1');
      }
    });
    child.once('exit', (code, signal) => {
      if (!this.stopping) this.log.error({ code, signal }, 'gpiomon ended: the door contact is no longer watched');
    });
  }

  stop(): Promise<void> {
    this.stopping = true;
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGTERM');
    });
  }
}
