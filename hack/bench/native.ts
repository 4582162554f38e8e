/**
 * PostgreSQL's own logical replication, the bar to beat: a publication FOR ALL TABLES on the source and a
 * subscription on the target, whose schema is copied first with pg_dump --schema-only.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { LocalServers, PgServer } from '../testing/local-servers.js';
import { sleep } from './db.js';
import type { Classifier } from './sampler.js';
import { postgresChildRole, type System } from './system.js';

const PUBLICATION = 'bench_native_pub';
const SUBSCRIPTION = 'bench_native_sub';

/** pg_dump --schema-only of the source piped into psql on the target. */
function copySchema(source: PgServer, target: PgServer): Promise<void> {
  return new Promise((resolve, reject) => {
    const dump = spawn(
      join(source.binDir, 'pg_dump'),
      [
        '--schema-only',
        '--no-owner',
        '--no-privileges',
        '--no-publications',
        '--no-subscriptions',
        `--dbname=postgresql://${source.superuser}@${source.host}:${source.port}/${source.database}`,
      ],
      { env: { ...process.env, PGPASSWORD: source.superuserPassword }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const psql = spawn(
      join(target.binDir, 'psql'),
      [
        '-X',
        '-q',
        '-v',
        'ON_ERROR_STOP=1',
        `--dbname=postgresql://${target.superuser}@${target.host}:${target.port}/${target.database}`,
      ],
      { env: { ...process.env, PGPASSWORD: target.superuserPassword }, stdio: ['pipe', 'ignore', 'pipe'] },
    );
    let errors = '';
    dump.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
    psql.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
    dump.stdout.pipe(psql.stdin);
    let pending = 2;
    let failed = false;
    const done = (what: string) => (code: number | null) => {
      if (code !== 0 && !failed) {
        failed = true;
        reject(new Error(`${what} exited with code ${code} copying the schema:\n${errors}`));
      }
      if (--pending === 0 && !failed) resolve();
    };
    dump.once('exit', done('pg_dump'));
    psql.once('exit', done('psql'));
  });
}

export class NativeReplication implements System {
  readonly name = 'native';
  readonly redisUrl = undefined;

  constructor(private readonly servers: LocalServers) {}

  get source(): PgServer {
    return this.servers.source!;
  }

  get target(): PgServer {
    return this.servers.target!;
  }

  async prepare(): Promise<void> {
    await this.source.query(`CREATE PUBLICATION ${PUBLICATION} FOR ALL TABLES`);
    // The launcher starts at most one worker per wal_retrieve_retry_interval (5 s): ENABLE soon after the
    // subscription's creation would wait for it, which says nothing about replication speed.
    await this.target.query(`ALTER SYSTEM SET wal_retrieve_retry_interval = '100ms'`);
    await this.target.query('SELECT pg_reload_conf()');
  }

  async bootstrap(): Promise<Record<string, number>> {
    const started = performance.now();
    await copySchema(this.source, this.target);
    const schemaSeconds = (performance.now() - started) / 1000;
    const s = this.source;
    await this.target.query(
      `CREATE SUBSCRIPTION ${SUBSCRIPTION}
         CONNECTION 'host=${s.host} port=${s.port} dbname=${s.database} user=${s.superuser} password=${s.superuserPassword} application_name=${SUBSCRIPTION}'
         PUBLICATION ${PUBLICATION}`,
    );
    for (;;) {
      const rows = await this.target.query<{ total: string; ready: string }>(
        `SELECT count(*)::text AS total, count(*) FILTER (WHERE srsubstate = 'r')::text AS ready
           FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid WHERE s.subname = $1`,
        [SUBSCRIPTION],
      );
      const row = rows[0];
      if (row && Number(row.total) > 0 && row.total === row.ready) break;
      await sleep(50);
    }
    return { schemaSeconds };
  }

  async stopPipeline(): Promise<void> {
    await this.target.query(`ALTER SUBSCRIPTION ${SUBSCRIPTION} DISABLE`);
    for (;;) {
      const worker = await this.target.query(
        `SELECT 1 FROM pg_stat_subscription WHERE subname = $1 AND pid IS NOT NULL`,
        [SUBSCRIPTION],
      );
      const sender = await this.source.query(
        `SELECT 1 FROM pg_stat_replication WHERE application_name = $1`,
        [SUBSCRIPTION],
      );
      if (worker.length === 0 && sender.length === 0) return;
      await sleep(50);
    }
  }

  async startPipeline(): Promise<void> {
    await this.target.query(`ALTER SUBSCRIPTION ${SUBSCRIPTION} ENABLE`);
  }

  classifier(): Classifier {
    return (process, parentOf) => {
      const role = postgresChildRole(this.servers, process, parentOf);
      if (role === null || role === undefined) return role;
      if (role.server === 'source')
        return role.title.startsWith('walsender') ? 'source walsender' : undefined;
      if (/^logical replication (apply |tablesync )?worker/.test(role.title)) {
        return role.title.includes(' sync ') || role.title.startsWith('logical replication tablesync')
          ? 'target tablesync worker'
          : 'target apply worker';
      }
      return undefined;
    };
  }

  async close(): Promise<void> {
    await this.target.query(`DROP SUBSCRIPTION IF EXISTS ${SUBSCRIPTION}`).catch(() => undefined);
  }
}
