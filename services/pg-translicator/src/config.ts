import { existsSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError, hostPortEnv, parseConfig, portEnv, postgresUrlEnv } from '@kasho/common';

export const DEFAULT_TRANSFORMS_FILE = '/app/config/transforms.yml';

const schema = z.object({
  CHANGE_STREAM_SERVICE: hostPortEnv('CHANGE_STREAM_SERVICE'),
  REPLICA_DATABASE_URL: postgresUrlEnv('REPLICA_DATABASE_URL'),
  TRANSFORMS_FILE: z
    .string()
    .optional()
    .transform((value) => (value === undefined || value.trim() === '' ? DEFAULT_TRANSFORMS_FILE : value)),
  TRANSFORM_SECRET: z.string().optional(),
  HTTP_PORT: portEnv('HTTP_PORT', 9090),
});

export interface TranslicatorConfig {
  changeStreamService: string;
  replicaDatabaseUrl: string;
  transformsFile: string;
  /** Undefined means the fixed development key (a warning is logged). */
  transformSecret: string | undefined;
  httpPort: number;
}

export function loadConfig(env: NodeJS.ProcessEnv): TranslicatorConfig {
  const parsed = parseConfig(schema, env);
  if (!existsSync(parsed.TRANSFORMS_FILE)) {
    throw new ConfigError([
      `Required config file ${parsed.TRANSFORMS_FILE} not found`,
      `  Mount the directory holding transforms.yml at ${DEFAULT_TRANSFORMS_FILE.replace(/\/[^/]+$/, '')} or set TRANSFORMS_FILE.`,
    ]);
  }
  return {
    changeStreamService: parsed.CHANGE_STREAM_SERVICE,
    replicaDatabaseUrl: parsed.REPLICA_DATABASE_URL,
    transformsFile: parsed.TRANSFORMS_FILE,
    transformSecret: parsed.TRANSFORM_SECRET === '' ? undefined : parsed.TRANSFORM_SECRET,
    httpPort: parsed.HTTP_PORT,
  };
}

export const HELP = `pg-translicator: applies the change stream to the target database, transforming columns per transforms.yml.

Environment:
  CHANGE_STREAM_SERVICE  pg-change-stream address (required), e.g. pg-change-stream:8080
  REPLICA_DATABASE_URL   target database (required)
                         e.g. postgresql://kasho:password@replica:5432/app?sslmode=disable
  TRANSFORMS_FILE        transforms file (default ${DEFAULT_TRANSFORMS_FILE})
  TRANSFORM_SECRET       key for deterministic fake values (without it a fixed development key is used)
  HTTP_PORT              /healthz, /readyz and /metrics (default 9090)
  LOG_LEVEL              error, warn, info or debug (default info)
  LOG_FORMAT             text or json (default text)
`;
