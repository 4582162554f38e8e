import { z } from 'zod';
import { identifierEnv, parseConfig, portEnv, postgresUrlEnv, redisUrlEnv } from '@kasho/common';

const schema = z.object({
  PRIMARY_DATABASE_URL: postgresUrlEnv('PRIMARY_DATABASE_URL'),
  KV_URL: redisUrlEnv('KV_URL'),
  GRPC_PORT: portEnv('GRPC_PORT', 8080),
  HTTP_PORT: portEnv('HTTP_PORT', 9090),
  SLOT_NAME: identifierEnv('SLOT_NAME', 'kasho_slot'),
  PUBLICATION_NAME: identifierEnv('PUBLICATION_NAME', 'kasho_pub'),
});

export interface ChangeStreamConfig {
  primaryDatabaseUrl: string;
  kvUrl: string;
  grpcPort: number;
  httpPort: number;
  slotName: string;
  publicationName: string;
}

export function loadConfig(env: NodeJS.ProcessEnv): ChangeStreamConfig {
  const parsed = parseConfig(schema, env);
  return {
    primaryDatabaseUrl: parsed.PRIMARY_DATABASE_URL,
    kvUrl: parsed.KV_URL,
    grpcPort: parsed.GRPC_PORT,
    httpPort: parsed.HTTP_PORT,
    slotName: parsed.SLOT_NAME,
    publicationName: parsed.PUBLICATION_NAME,
  };
}

export const HELP = `pg-change-stream: captures changes from PostgreSQL with logical replication and serves them over gRPC.

Environment:
  PRIMARY_DATABASE_URL  source database (required)
                        e.g. postgresql://kasho:password@primary:5432/app?sslmode=disable
  KV_URL                Redis buffer (required), e.g. redis://redis:6379 or rediss://:password@redis:6380
  GRPC_PORT             gRPC port (default 8080)
  HTTP_PORT             /healthz, /readyz and /metrics (default 9090)
  SLOT_NAME             replication slot (default kasho_slot)
  PUBLICATION_NAME      publication (default kasho_pub)
  LOG_LEVEL             error, warn, info or debug (default info)
  LOG_FORMAT            text or json (default text)
`;
