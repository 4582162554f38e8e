/**
 * The demo: local source and target PostgreSQL and Redis, a sample SaaS database with personal data, the
 * preparation and bootstrap scripts as the deployment guide runs them, both services, a small live workload, and
 * the same rows side by side. Runs until Ctrl-C (or KASHO_DEMO_SECONDS; 20 s when not on a terminal).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChangeStreamApi, GetStatusResponse } from '@kasho/common';
import { startLocalServers, type LocalServers, type PgServer } from './testing/local-servers.js';
import { freePort, startService, type RunningService } from './testing/services.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const KASHO_PASSWORD = 'kasho-demo-password';
const step = (text: string) => console.log(`\n==> ${text}`);

function runScript(script: string, env: Record<string, string>): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn(join(root, 'scripts', script), [], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.once('exit', (code) =>
      code === 0 ? done() : fail(new Error(`${script} exited with code ${code}`)),
    );
  });
}

function kashoUrl(server: PgServer): string {
  return `postgresql://kasho:${KASHO_PASSWORD}@${server.host}:${server.port}/${server.database}`;
}

async function showSideBySide(servers: LocalServers, ids: number[]): Promise<void> {
  const sql = `SELECT id, email, first_name || ' ' || last_name AS name, phone, ssn FROM users WHERE id = ANY($1) ORDER BY id`;
  const source = await servers.source!.query<Record<string, string>>(sql, [ids]);
  const target = await servers.target!.query<Record<string, string>>(sql, [ids]);
  const width = 42;
  const cell = (text: string | undefined) => (text ?? 'NULL').padEnd(width).slice(0, width);
  console.log(`  ${'source (production)'.padEnd(width)} | target (sanitized copy)`);
  console.log(`  ${'-'.repeat(width)}-+-${'-'.repeat(width)}`);
  for (const row of source) {
    const copy = target.find((t) => String(t.id) === String(row.id));
    for (const column of ['email', 'name', 'phone', 'ssn']) {
      console.log(
        `  ${cell(`${column}: ${row[column]}`)} | ${copy ? `${column}: ${copy[column]}` : '(not applied yet)'}`,
      );
    }
    console.log(`  ${' '.repeat(width)} |`);
  }
}

async function main(): Promise<void> {
  const seconds = Number(process.env.KASHO_DEMO_SECONDS ?? (process.stdout.isTTY ? 0 : 20));
  const services: RunningService[] = [];
  step('Starting local source and target PostgreSQL and Redis');
  const servers = await startLocalServers();
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    step('Stopping');
    for (const service of services.reverse()) await service.stop();
    await servers.stop();
    console.log('Everything stopped.');
  };
  process.once('SIGINT', () => void stop().then(() => process.exit(0)));
  try {
    const source = servers.source!;
    const target = servers.target!;
    console.log(
      `  source ${source.host}:${source.port}, target ${target.host}:${target.port}, Redis ${servers.redis!.port}`,
    );

    step('Loading the sample SaaS database into the source (users, customers, orders)');
    await source.query(readFileSync(join(root, 'environments/demo/sql/schema.sql'), 'utf8'));
    await source.query(readFileSync(join(root, 'environments/demo/sql/seed.sql'), 'utf8'));
    const counts = await source.query<{ t: string; n: string }>(
      `SELECT 'users' AS t, count(*)::text AS n FROM users UNION ALL SELECT 'customers', count(*)::text FROM customers
       UNION ALL SELECT 'orders', count(*)::text FROM orders`,
    );
    console.log(`  ${counts.map((c) => `${c.n} ${c.t}`).join(', ')}`);

    const env = {
      PRIMARY_DATABASE_URL: kashoUrl(source),
      REPLICA_DATABASE_URL: kashoUrl(target),
      PRIMARY_DATABASE_SU_USER: servers.env.PRIMARY_DATABASE_SU_USER!,
      PRIMARY_DATABASE_SU_PASSWORD: servers.env.PRIMARY_DATABASE_SU_PASSWORD!,
      REPLICA_DATABASE_SU_USER: servers.env.REPLICA_DATABASE_SU_USER!,
      REPLICA_DATABASE_SU_PASSWORD: servers.env.REPLICA_DATABASE_SU_PASSWORD!,
      KV_URL: servers.env.KV_URL!,
    };
    step('Preparing the databases (scripts/prepare-primary-db.sh)');
    await runScript('prepare-primary-db.sh', env);

    const grpcPort = await freePort();
    const csHttp = await freePort();
    const tlHttp = await freePort();
    step(`Starting pg-change-stream (gRPC ${grpcPort}) and pg-translicator`);
    services.push(
      await startService(
        'pg-change-stream',
        { ...env, GRPC_PORT: String(grpcPort), HTTP_PORT: String(csHttp) },
        { httpPort: csHttp, waitFor: 'healthz' },
      ),
    );
    const changeStreamService = `127.0.0.1:${grpcPort}`;
    step('Bootstrapping: consistent snapshot, then streaming (scripts/bootstrap-kasho.sh)');
    await runScript('bootstrap-kasho.sh', {
      ...env,
      CHANGE_STREAM_SERVICE: changeStreamService,
      WAIT_FOR_BOOTSTRAP: 'true',
    });
    services.push(
      await startService(
        'pg-translicator',
        {
          CHANGE_STREAM_SERVICE: changeStreamService,
          REPLICA_DATABASE_URL: env.REPLICA_DATABASE_URL,
          TRANSFORMS_FILE: join(root, 'environments/demo/config/transforms.yml'),
          TRANSFORM_SECRET: 'demo-secret-change-me',
          HTTP_PORT: String(tlHttp),
        },
        { httpPort: tlHttp, waitFor: 'readyz', timeoutMs: 120_000 },
      ),
    );
    const api = new ChangeStreamApi(changeStreamService);
    const waitForUser = async (id: number) => {
      for (let i = 0; i < 600; i++) {
        if ((await target.query('SELECT 1 FROM users WHERE id = $1', [id]).catch(() => [])).length > 0)
          return;
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    await waitForUser(5);
    step('The same users, source and sanitized target');
    await showSideBySide(servers, [1, 2, 3]);

    step(
      'Live changes: a new signup every 2 seconds, an address change, a schema change' +
        (seconds ? ` (for ${seconds} s)` : ' (Ctrl-C to stop)'),
    );
    await source.query(`ALTER TABLE users ADD COLUMN IF NOT EXISTS referral_code text`);
    const started = Date.now();
    for (let round = 1; !stopping && (seconds === 0 || Date.now() - started < seconds * 1000); round++) {
      const [user] = await source.query<{ id: string }>(
        `INSERT INTO users (email, username, first_name, last_name, phone, password_hash, referral_code)
         VALUES ('new.signup' || $1 || '@example.com', 'newbie' || $1, 'Nora', 'Newman', '+1-555-0' || $1, 'x', 'REF' || $1)
         RETURNING id`,
        [round],
      );
      await source.query(`UPDATE users SET city = 'Boston' WHERE id = $1`, [round]);
      const id = Number(user!.id);
      await waitForUser(id);
      await showSideBySide(servers, [id]);
      const status = GetStatusResponse.toJSON(await api.getStatus()) as Record<string, unknown>;
      console.log(
        `  pipeline: ${String(status.state)}, received ${String(status.receivedLsn ?? '-')}, confirmed ${String(status.confirmedLsn ?? '-')}, retained WAL ${String(status.retainedWalBytes ?? 0)} bytes`,
      );
      await new Promise((r) => setTimeout(r, 2000));
    }
    api.close();
  } finally {
    await stop();
  }
}

main().catch((error: unknown) => {
  console.error(`Demo failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
