import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { ConfigError, identifierEnv, parseConfig, redisUrlEnv } from '@kasho/common';

export const DEFAULT_BATCH_SIZE = 10_000;
/** ChangeBuffer.append passes every change to Redis as arguments of one call; far more would overflow the stack. */
export const MAX_BATCH_SIZE = 20_000;
export const DEFAULT_JOBS = 4;

const DUMP_FILE_MISSING =
  '--dump-file is required: the plain-format pg_dump to convert (or --source-url with --snapshot to read the source directly)';

function positiveInt(name: string, defaultValue: number, max: number) {
  return z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value.trim() === '') return defaultValue;
      const number = Number(value);
      if (!Number.isInteger(number) || number < 1 || number > max) {
        ctx.addIssue({ code: 'custom', message: `${name} must be a whole number from 1 to ${max}` });
        return z.NEVER;
      }
      return number;
    });
}

function isPostgresUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'postgresql:' || url.protocol === 'postgres:') && url.hostname !== '';
  } catch {
    return false;
  }
}

const schema = z.object({
  'dump-file': z.string().optional(),
  'source-url': z
    .string()
    .optional()
    .refine((value) => value === undefined || isPostgresUrl(value), {
      error:
        '--source-url is not a valid PostgreSQL URL; use the form postgresql://user:password@host:5432/database?sslmode=disable',
    }),
  snapshot: z
    .string()
    .optional()
    .refine((value) => value === undefined || /^[0-9A-Fa-f]+-[0-9A-Fa-f]+(-[0-9]+)?$/.test(value), {
      error: '--snapshot must be an exported snapshot name such as 00000003-0000001B-1',
    }),
  'redis-url': redisUrlEnv(
    '--redis-url',
    '--redis-url is required: the Redis buffer of pg-change-stream, e.g. redis://redis:6379',
  ),
  'slot-name': identifierEnv('--slot-name', 'kasho_slot'),
  'change-stream': z
    .string()
    .optional()
    .transform((value) => (value === undefined || value.trim() === '' ? undefined : value.trim()))
    .refine((value) => value === undefined || /^([^\s:/]+|\[[0-9a-fA-F:]+\]):\d{1,5}$/.test(value), {
      error: '--change-stream must be host:port, e.g. pg-change-stream:8080',
    }),
  'batch-size': positiveInt('--batch-size', DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE),
  jobs: positiveInt('--jobs', DEFAULT_JOBS, 64),
});

interface CommonConfig {
  redisUrl: string;
  slotName: string;
  /** pg-change-stream's gRPC address, to check its state over gRPC too. */
  changeStream: string | undefined;
  /** Row changes per pseudo-transaction. */
  batchSize: number;
  replace: boolean;
}

export interface DumpFileConfig extends CommonConfig {
  mode: 'dump-file';
  dumpFile: string;
}

export interface DirectConfig extends CommonConfig {
  mode: 'direct';
  sourceUrl: string;
  /** undefined: ask pg-change-stream (--change-stream) for the snapshot it holds. */
  snapshot: string | undefined;
  jobs: number;
  /** The pg_dump program (PG_DUMP, else pg_dump on PATH). */
  pgDump: string;
}

export type BootstrapSyncConfig = DumpFileConfig | DirectConfig;

export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): BootstrapSyncConfig {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: argv,
      options: {
        'dump-file': { type: 'string' },
        'source-url': { type: 'string' },
        snapshot: { type: 'string' },
        'redis-url': { type: 'string' },
        'slot-name': { type: 'string' },
        'change-stream': { type: 'string' },
        'batch-size': { type: 'string' },
        jobs: { type: 'string' },
        replace: { type: 'boolean' },
      },
      strict: true,
    }).values;
  } catch (error) {
    throw new ConfigError([`${(error as Error).message}. Run pg-bootstrap-sync --help for usage.`]);
  }
  const text = (name: string) => (typeof values[name] === 'string' ? (values[name] as string) : undefined);
  const problems: string[] = [];
  let parsed: z.output<typeof schema> | undefined;
  try {
    parsed = parseConfig(schema, {
      'dump-file': text('dump-file'),
      'source-url': text('source-url'),
      snapshot: text('snapshot'),
      'redis-url': text('redis-url') ?? env.KV_URL,
      'slot-name': text('slot-name') ?? env.SLOT_NAME,
      'change-stream': text('change-stream') ?? env.CHANGE_STREAM_SERVICE,
      'batch-size': text('batch-size'),
      jobs: text('jobs'),
    });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(...error.problems);
  }
  const dumpFile = text('dump-file');
  const sourceUrl = text('source-url');
  if (dumpFile !== undefined && sourceUrl !== undefined) {
    problems.push(
      'Give either --dump-file (a pg_dump file) or --source-url (read the source directly), not both',
    );
  } else if (sourceUrl === undefined) {
    if (!dumpFile) problems.push(DUMP_FILE_MISSING);
    else if (!existsSync(dumpFile)) problems.push(`Dump file ${dumpFile} not found`);
    for (const option of ['snapshot', 'jobs'] as const) {
      if (values[option] !== undefined)
        problems.push(`--${option} belongs to the direct mode (--source-url)`);
    }
  } else if (text('snapshot') === undefined && !parsed?.['change-stream']) {
    problems.push(
      '--snapshot is required with --source-url: the snapshot exported by StartBootstrap (or give --change-stream to ask pg-change-stream for it)',
    );
  }
  if (problems.length > 0 || !parsed) throw new ConfigError([...new Set(problems)]);
  const common: CommonConfig = {
    redisUrl: parsed['redis-url'],
    slotName: parsed['slot-name'],
    changeStream: parsed['change-stream'],
    batchSize: parsed['batch-size'],
    replace: values.replace === true,
  };
  if (sourceUrl === undefined) return { mode: 'dump-file', dumpFile: dumpFile!, ...common };
  return {
    mode: 'direct',
    sourceUrl,
    snapshot: parsed.snapshot,
    jobs: parsed.jobs,
    pgDump: env.PG_DUMP?.trim() || 'pg_dump',
    ...common,
  };
}

export const HELP = `pg-bootstrap-sync: converts a snapshot of the source into change events in the Redis buffer, ahead of the
live changes, while pg-change-stream is ACCUMULATING.

Usage:
  pg-bootstrap-sync --dump-file=dump.sql --redis-url=redis://redis:6379
  pg-bootstrap-sync --source-url=postgresql://kasho:password@primary:5432/app --snapshot=00000003-0000001B-1 \\
                    --redis-url=redis://redis:6379 [--jobs=4]

Modes:
  --dump-file=PATH      a plain-format pg_dump taken with --snapshot of the change-stream's slot (pg_dump
                        --snapshot=NAME --no-owner --no-privileges DB > dump.sql); read as a stream, so any size
                        works. It must be a regular file: its data section is read twice (once to list the tables).
  --source-url=URL      direct mode, no dump file: the schema comes from pg_dump --section=pre-data/post-data, the
                        rows from COPY ... TO STDOUT in transactions that import the snapshot, several tables at once
  --snapshot=NAME       the snapshot StartBootstrap exported (direct mode; with --change-stream, the one
                        pg-change-stream holds is used when absent)
  --jobs=N              tables copied at once in direct mode (default ${DEFAULT_JOBS})

Options:
  --redis-url=URL       Redis buffer of pg-change-stream (required; KV_URL is used when absent)
  --slot-name=NAME      slot of pg-change-stream, which scopes its Redis keys (default kasho_slot; SLOT_NAME)
  --change-stream=HOST:PORT
                        also ask pg-change-stream over gRPC that it is ACCUMULATING (CHANGE_STREAM_SERVICE)
  --batch-size=N        changes per pseudo-transaction (default ${DEFAULT_BATCH_SIZE}, at most ${MAX_BATCH_SIZE}); large rows
                        close one earlier (32 MiB of values)
  --replace             clear the events of an earlier, unfinished run first instead of refusing

Environment:
  KV_URL, SLOT_NAME, CHANGE_STREAM_SERVICE  defaults for the options above
  PG_DUMP               the pg_dump program for the direct mode (default: pg_dump on PATH); use the source's
                        major version or newer
  LOG_LEVEL, LOG_FORMAT  error|warn|info|debug (default info); text|json (default text)

What is written: the schema's DDL (pre-data, in the dump's order), one TRUNCATE ... CASCADE of every table with
data, every row as an INSERT, then the sequence values and the post-data DDL (constraints, indexes, triggers).
Left out: session settings, ownership and privileges, event triggers, publications and subscriptions, database-
and role-level statements, extension comments, large objects, and Kasho's own objects (kasho_ddl_log, its
functions, the kasho schema). Progress (tables, rows, bytes, rows/s) goes to stderr every 2 seconds; row values
are never printed.

Limits: lines have no length limit of their own, but one row (a line of COPY data) must fit in a Buffer
(buffer.constants.MAX_LENGTH) and each value in a JavaScript string (buffer.constants.MAX_STRING_LENGTH, about
512 million UTF-16 code units); an encoded row must also fit in one Redis value (proto-max-bulk-len, 512 MB by
default). The dump must be UTF8 (pg_dump --encoding=UTF8).
`;
