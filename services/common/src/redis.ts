import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from './logger.js';
import { redactUrl } from './redact.js';

/**
 * A Redis connection from a `redis://` or `rediss://` (TLS) URL with credentials. While Redis is unreachable,
 * commands wait and the connection retries with capped exponential backoff; the outage is logged once when it
 * starts and once when it ends, never with the password.
 */
export function connectRedis(url: string, logger: Logger, options: RedisOptions = {}): Redis {
  const redis = new Redis(url, {
    maxRetriesPerRequest: null,
    enableOfflineQueue: true,
    retryStrategy: (attempt) => Math.min(100 * 2 ** Math.min(attempt, 10), 5_000),
    ...(url.startsWith('rediss://') ? { tls: {} } : {}),
    ...options,
  });
  let down = false;
  redis.on('error', (error: Error) => {
    if (!down) {
      down = true;
      logger.warn(`Redis at ${redactUrl(url)} is unreachable (${error.message}); retrying with backoff`);
    }
  });
  redis.on('ready', () => {
    if (down) logger.info(`Redis at ${redactUrl(url)} is reachable again`);
    down = false;
  });
  return redis;
}
