import type { Command } from 'commander';
import { readFileSync } from 'node:fs';

/**
 * `facegate run`: the kiosk daemon. Loads and validates the config once, starts the
 * composition root, and owns the process: the first SIGINT/SIGTERM runs the one shutdown
 * path under a hard timeout; a second signal exits at once.
 */
export function registerRun(program: Command): void {
  program
    .command('run')
    .description(
      'run the kiosk daemon: camera → recognition → MQTT events (config/default.json + --config + FACEGATE__* env)',
    )
    .option('-c, --config <file>', 'config file merged over config/default.json (see facegate config --print-schema)')
    .action(async (opts: { config?: string }) => {
      const { loadConfig } = await import('../config/load.js');
      const cfg = loadConfig(opts.config ? { file: opts.config } : {});
      const { logger } = await import('../shared/logger.js');
      if (!process.env.FACEGATE_LOG_LEVEL && !process.env.LOG_LEVEL) logger.level = cfg.log.level;
      const log = logger.child({ module: 'run' });
      const { Daemon } = await import('../daemon/daemon.js');
      const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
        version: string;
      };

      let finish: (code: number) => void = () => undefined;
      const finished = new Promise<number>((resolve) => {
        finish = resolve;
      });
      let shuttingDown = false;
      const shutdown = (reason: string, code: number): void => {
        if (shuttingDown) return;
        shuttingDown = true;
        const hard = setTimeout(() => {
          log.error({ timeoutMs: cfg.daemon.shutdownTimeoutMs }, 'shutdown took too long; exiting anyway');
          process.exit(code || 1);
        }, cfg.daemon.shutdownTimeoutMs);
        hard.unref();
        daemon.stop(reason).then(
          () => finish(code),
          () => finish(1),
        );
      };
      const daemon = new Daemon(cfg, { version: pkg.version, onSelfStop: (reason) => shutdown(reason, 0) });

      const onSignal = (signal: NodeJS.Signals): void => {
        if (shuttingDown) {
          log.warn({ signal }, 'second signal: exiting now');
          process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
        }
        log.info({ signal }, 'signal received');
        shutdown(signal, 0);
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      process.on('uncaughtException', (err) => {
        log.fatal({ err }, 'uncaught exception');
        shutdown('uncaught exception', 1);
      });
      process.on('unhandledRejection', (err) => {
        log.fatal({ err }, 'unhandled rejection');
        shutdown('unhandled rejection', 1);
      });

      try {
        await daemon.start();
      } catch (err) {
        // start() already stopped what had started; a handle left open must not keep a failed start alive.
        setTimeout(() => process.exit(process.exitCode ?? 1), 2000).unref();
        throw err;
      }
      // pm2 (wait_ready) counts the start only now.
      process.send?.('ready');
      const code = await finished;
      process.exit(code);
    });
}
