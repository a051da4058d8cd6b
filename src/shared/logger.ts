import { pino, type Logger } from 'pino';

/**
 * The root logger. One child per module: `logger.child({ module: 'mqtt' })`.
 * Never log credentials, embeddings or face images.
 */
export const logger: Logger = pino({
  level: process.env.FACEGATE_LOG_LEVEL ?? process.env.LOG_LEVEL ?? 'info',
  base: { pid: process.pid },
});

export function moduleLogger(module: string): Logger {
  return logger.child({ module });
}
