import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { ConfigError, parseConfig, redisUrlEnv } from '@kasho/common';

const schema = z.object({
  'dump-file': z
    .string({ error: '--dump-file is required: the plain-format pg_dump to convert' })
    .min(1, { error: '--dump-file is required: the plain-format pg_dump to convert' }),
  'redis-url': redisUrlEnv(
    '--redis-url',
    '--redis-url is required: the Redis buffer of pg-change-stream, e.g. redis://redis:6379',
  ),
});

export interface BootstrapSyncConfig {
  dumpFile: string;
  redisUrl: string;
}

export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): BootstrapSyncConfig {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: argv,
      options: { 'dump-file': { type: 'string' }, 'redis-url': { type: 'string' } },
      strict: true,
    }).values;
  } catch (error) {
    throw new ConfigError([`${(error as Error).message}. Run pg-bootstrap-sync --help for usage.`]);
  }
  const parsed = parseConfig(schema, {
    'dump-file': values['dump-file'],
    'redis-url': values['redis-url'] ?? env.KV_URL,
  });
  if (!existsSync(parsed['dump-file'])) {
    throw new ConfigError([`Dump file ${parsed['dump-file']} not found`]);
  }
  return { dumpFile: parsed['dump-file'], redisUrl: parsed['redis-url'] };
}

export const HELP = `pg-bootstrap-sync: converts a snapshot of the source into change events in the Redis buffer, ahead of the
live changes, while pg-change-stream is ACCUMULATING.

Usage:
  pg-bootstrap-sync --dump-file=dump.sql --redis-url=redis://redis:6379

Options:
  --dump-file=PATH   plain-format pg_dump taken with --snapshot of the change-stream's slot (required)
  --redis-url=URL    Redis buffer of pg-change-stream (required; KV_URL is used when absent)
`;
