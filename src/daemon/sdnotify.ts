/**
 * systemd's notify protocol (sd_notify(3)): READY=1 once started, WATCHDOG=1 every half
 * WATCHDOG_USEC, STOPPING=1 on shutdown; nothing at all when NOTIFY_SOCKET is unset.
 *
 * The protocol is one datagram on a unix socket, and Node has no unix datagram sockets
 * without a native addon. So we run `systemd-notify` (part of systemd, present wherever
 * NOTIFY_SOCKET is set by systemd) with --pid of this process. The unit file sets
 * NotifyAccess=all because the datagram comes from that child, not the main PID;
 * systemd-notify (v246+) waits until systemd processed the message, so the child
 * exiting first does not lose it.
 */
import { execFile } from 'node:child_process';
import type { Logger } from 'pino';
import { moduleLogger } from '../shared/logger.js';

export class SdNotify {
  private readonly log: Logger = moduleLogger('sd_notify');
  private watchdogTimer: NodeJS.Timeout | undefined;
  private warned = false;

  constructor(
    private readonly env: NodeJS.ProcessEnv = process.env,
    private readonly command = 'systemd-notify',
  ) {}

  get enabled(): boolean {
    return Boolean(this.env.NOTIFY_SOCKET);
  }

  /** Watchdog interval in ms (half of WATCHDOG_USEC), or undefined when the watchdog is off for this process. */
  get watchdogIntervalMs(): number | undefined {
    const usec = Number(this.env.WATCHDOG_USEC);
    if (!this.enabled || !Number.isFinite(usec) || usec <= 0) return undefined;
    const pid = this.env.WATCHDOG_PID;
    if (pid && Number(pid) !== process.pid) return undefined;
    return Math.max(1, Math.floor(usec / 2000));
  }

  /** Sends `VAR=VALUE` assignments; resolves when systemd-notify is done (never rejects). */
  notify(...assignments: string[]): Promise<void> {
    if (!this.enabled) return Promise.resolve();
    return new Promise((resolve) => {
      execFile(this.command, [`--pid=${process.pid}`, ...assignments], { env: this.env, timeout: 5000 }, (err) => {
        if (err && !this.warned) {
          this.warned = true;
          this.log.warn({ err: err.message }, 'sd_notify failed (is systemd-notify installed?); continuing without it');
        }
        resolve();
      });
    });
  }

  ready(status: string): Promise<void> {
    return this.notify('READY=1', `STATUS=${status}`);
  }

  stopping(): Promise<void> {
    this.stopWatchdog();
    return this.notify('STOPPING=1');
  }

  /** Pings the watchdog every half interval while `alive()` says the daemon makes progress. */
  startWatchdog(alive: () => boolean): void {
    const ms = this.watchdogIntervalMs;
    if (ms === undefined) return;
    this.watchdogTimer = setInterval(() => {
      if (alive()) void this.notify('WATCHDOG=1');
      else this.log.warn('not pinging the watchdog: recognition is stuck');
    }, ms);
    this.watchdogTimer.unref();
  }

  stopWatchdog(): void {
    if (this.watchdogTimer) clearInterval(this.watchdogTimer);
    this.watchdogTimer = undefined;
  }
}
