import { pino, type Logger } from 'pino';

/**
 * The root logger. One child per module: `logger.child({ module: 'mqtt' })`.
 * Never log credentials, embeddings or face images.
 * Logs go to stderr, so a command's stdout stays its result (`--json`, tables).
 */
export const logger: Logger = pino(
  {
    level: process.env.FACEGATE_LOG_LEVEL ?? process.env.LOG_LEVEL ?? 'info',
    base: { pid: process.pid },
  },
  pino.destination({ dest: 2, sync: true }),
);

export function moduleLogger(module: string): Logger {
  return logger.child({ module });
}
