import { z } from 'zod';
import { ConfigError } from './errors.js';

/**
 * Parses settings once, at the edge, into a typed object. Every problem is reported at once, each with the
 * setting's name and what a valid value looks like; values themselves are never echoed (they may hold passwords).
 */
export function parseConfig<T extends z.ZodType>(schema: T, input: unknown): z.output<T> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => issue.message);
  throw new ConfigError([...new Set(problems)]);
}

/** A required environment variable: absent or empty gives the guide's "NAME environment variable is required". */
export function requiredEnv(name: string, missing = `${name} environment variable is required`) {
  return z.string({ error: missing }).trim().min(1, { error: missing, abort: true });
}

function isPostgresUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'postgresql:' || url.protocol === 'postgres:') && url.hostname !== '';
  } catch {
    return false;
  }
}

const POSTGRES_URL_SHAPE = 'postgresql://user:password@host:5432/database?sslmode=disable';

/** A required PostgreSQL connection URL. */
export function postgresUrlEnv(name: string) {
  return requiredEnv(name).refine(isPostgresUrl, {
    error: `${name} is not a valid PostgreSQL URL; use the form ${POSTGRES_URL_SHAPE}`,
  });
}

function isRedisUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'redis:' || url.protocol === 'rediss:') && url.hostname !== '';
  } catch {
    return false;
  }
}

/** A required Redis URL; `rediss://` means TLS. */
export function redisUrlEnv(name: string, missing?: string) {
  return requiredEnv(name, missing).refine(isRedisUrl, {
    error: `${name} is not a valid Redis URL; use the form redis://[:password@]host:6379[/db] or rediss:// for TLS`,
  });
}

/** A TCP port with a default. */
export function portEnv(name: string, defaultPort: number) {
  return z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value.trim() === '') return defaultPort;
      const port = Number(value);
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        ctx.addIssue({ code: 'custom', message: `${name} must be a port number between 1 and 65535` });
        return z.NEVER;
      }
      return port;
    });
}

/** `host:port`, as in CHANGE_STREAM_SERVICE=pg-change-stream:8080. */
export function hostPortEnv(name: string) {
  return requiredEnv(name).refine(
    (value) => /^[^\s:/]+:\d{1,5}$/.test(value) || /^\[[0-9a-f:]+\]:\d{1,5}$/i.test(value),
    {
      error: `${name} must be host:port, e.g. pg-change-stream:8080`,
    },
  );
}

/** An optional identifier-like name with a default (slot and publication names). */
export function identifierEnv(name: string, defaultValue: string) {
  return z
    .string()
    .optional()
    .transform((value) => (value === undefined || value.trim() === '' ? defaultValue : value.trim()))
    .refine((value) => /^[a-z_][a-z0-9_]{0,62}$/.test(value), {
      error: `${name} must be a lower-case PostgreSQL identifier (letters, digits, underscore; at most 63 characters)`,
    });
}
