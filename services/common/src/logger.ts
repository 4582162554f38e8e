import winston from 'winston';
import { redactSecrets } from './redact.js';

const redact = winston.format((info) => {
  if (typeof info.message === 'string') info.message = redactSecrets(info.message);
  return info;
});

/**
 * The one logger of a program. LOG_LEVEL (default info) and LOG_FORMAT (text or json, default text) choose what
 * is printed. Messages pass through a redaction step so a connection URL never shows its password; callers still
 * must not log row values.
 */
export function createLogger(service: string, env: NodeJS.ProcessEnv = process.env): winston.Logger {
  const json = env.LOG_FORMAT === 'json';
  return winston.createLogger({
    level: env.LOG_LEVEL ?? 'info',
    defaultMeta: { service },
    format: winston.format.combine(
      redact(),
      winston.format.timestamp(),
      json
        ? winston.format.json()
        : winston.format.printf(({ timestamp, level, message, service: name, ...rest }) => {
            const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
            return `${String(timestamp)} ${level.toUpperCase()} [${String(name)}] ${String(message)}${extra}`;
          }),
    ),
    transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] })],
  });
}

export type Logger = winston.Logger;
