import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { ChangeStreamApi } from '@kasho/common';
import { startLocalServers, type LocalServers, type PgServer } from './local-servers.js';
import { eventually, freePort, startService, type RunningService } from './services.js';

/** The guide's DDL log table, with the search_path column Kasho adds; created by the tests until preparation runs. */
export const DDL_LOG_TABLE_SQL = `CREATE TABLE IF NOT EXISTS public.kasho_ddl_log (
  id bigserial PRIMARY KEY,
  lsn pg_lsn NOT NULL DEFAULT pg_current_wal_lsn(),
  timestamp timestamptz NOT NULL DEFAULT now(),
  username text NOT NULL DEFAULT current_user,
  database text NOT NULL DEFAULT current_database(),
  ddl text NOT NULL,
  search_path text NOT NULL DEFAULT current_setting('search_path')
)`;

export interface PipelineOptions {
  /** SQL run on both source and target before anything starts (the schema, as a user would create it). */
  schema?: string;
  transformsYaml?: string;
  transformSecret?: string;
}

/**
 * A whole pipeline on local servers: source and target PostgreSQL, Redis, pg-change-stream bootstrapped with an
 * empty snapshot and streaming, and pg-translicator applying. Each process can be stopped, killed and restarted.
 */
export class Pipeline {
  changeStream: RunningService | undefined;
  translicator: RunningService | undefined;
  readonly api: ChangeStreamApi;
  private markers = 0;

  private constructor(
    readonly servers: LocalServers,
    readonly grpcPort: number,
    readonly changeStreamHttpPort: number,
    readonly translicatorHttpPort: number,
    readonly transformsFile: string,
    readonly transformSecret: string,
  ) {
    this.api = new ChangeStreamApi(`127.0.0.1:${grpcPort}`);
  }

  static async start(options: PipelineOptions = {}): Promise<Pipeline> {
    const servers = await startLocalServers();
    try {
      const transformsFile = join(servers.dir, 'transforms.yml');
      writeFileSync(transformsFile, options.transformsYaml ?? 'version: v1\ntables: {}\n');
      const pipeline = new Pipeline(
        servers,
        await freePort(),
        await freePort(),
        await freePort(),
        transformsFile,
        options.transformSecret ?? 'test-secret',
      );
      await servers.source!.query(DDL_LOG_TABLE_SQL);
      for (const server of [servers.source!, servers.target!]) {
        await server.query('CREATE TABLE kasho_test_marker (id bigint PRIMARY KEY)');
      }
      if (options.schema) {
        await servers.source!.query(options.schema);
        await servers.target!.query(options.schema);
      }
      await servers.source!.query('CREATE PUBLICATION kasho_pub FOR ALL TABLES');
      await pipeline.startChangeStream();
      await pipeline.api.startBootstrap();
      await pipeline.api.releaseSnapshot();
      await pipeline.api.completeBootstrap();
      await pipeline.startTranslicator();
      return pipeline;
    } catch (error) {
      await servers.stop();
      throw error;
    }
  }

  get source(): PgServer {
    return this.servers.source!;
  }

  get target(): PgServer {
    return this.servers.target!;
  }

  async startChangeStream(): Promise<RunningService> {
    this.changeStream = await startService(
      'pg-change-stream',
      {
        PRIMARY_DATABASE_URL: this.servers.env.PRIMARY_DATABASE_URL!,
        KV_URL: this.servers.env.KV_URL!,
        GRPC_PORT: String(this.grpcPort),
        HTTP_PORT: String(this.changeStreamHttpPort),
      },
      { httpPort: this.changeStreamHttpPort, waitFor: 'healthz' },
    );
    await eventually('pg-change-stream gRPC', async () => (await this.api.getStatus()) ?? undefined);
    return this.changeStream;
  }

  async startTranslicator(extraEnv: Record<string, string> = {}): Promise<RunningService> {
    const service = await startService(
      'pg-translicator',
      {
        CHANGE_STREAM_SERVICE: `127.0.0.1:${this.grpcPort}`,
        REPLICA_DATABASE_URL: this.servers.env.REPLICA_DATABASE_URL!,
        TRANSFORMS_FILE: this.transformsFile,
        TRANSFORM_SECRET: this.transformSecret,
        HTTP_PORT: String(this.translicatorHttpPort),
        ...extraEnv,
      },
      { httpPort: this.translicatorHttpPort, waitFor: 'readyz' },
    );
    this.translicator = service;
    return service;
  }

  /**
   * Waits until the target has applied everything the source committed so far: commits a marker row on the source
   * and waits for it on the target (transactions apply in commit order, so all before it are there too).
   */
  async caughtUp(timeoutMs = 60_000): Promise<void> {
    const marker = ++this.markers;
    await this.source.query('INSERT INTO kasho_test_marker (id) VALUES ($1)', [marker]);
    await eventually(
      `the target to catch up (marker ${marker})`,
      async () => {
        const rows = await this.target.query('SELECT 1 FROM kasho_test_marker WHERE id = $1', [marker]);
        return rows.length > 0 ? true : undefined;
      },
      timeoutMs,
    );
  }

  /** Prints what the services logged (for a failed test). */
  printLogs(): void {
    for (const service of [this.changeStream, this.translicator]) {
      if (service) console.log(`----- ${service.name} (pid ${service.pid}) -----\n${service.output()}`);
    }
  }

  async stop(): Promise<void> {
    this.api.close();
    await this.translicator?.stop();
    await this.changeStream?.stop();
    await this.servers.stop();
  }
}

/** Rows of a table as text (server output form), ordered by every column, for comparing source and target. */
export async function tableRows(server: PgServer, table: string, orderBy = '1'): Promise<string[][]> {
  const client = new pg.Client({
    connectionString: server.superuserUrl,
    types: { getTypeParser: () => (v: string) => v },
  });
  await client.connect();
  try {
    const result = await client.query({
      text: `SELECT * FROM ${table} ORDER BY ${orderBy}`,
      rowMode: 'array',
    });
    return result.rows as string[][];
  } finally {
    await client.end();
  }
}
