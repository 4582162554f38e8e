/**
 * How fast a target takes the same row changes applied in different ways from Node (node-postgres), on one local
 * PostgreSQL: the evidence behind the bottleneck notes in docs/performance.md. Not part of `npm run bench`.
 *
 *   node --conditions=development --import tsx hack/bench/apply-strategies.ts [--updates 20000] [--inserts 100000]
 *
 * Updates are pgbench-like (a random account gets a whole new row image, as pgoutput sends it), applied in one
 * target transaction: one statement per round trip (what pg-translicator does today), the same with a named
 * prepared statement, several statements per round trip, and one UPDATE ... FROM (VALUES ...) per batch. Inserts:
 * multi-row INSERTs of 1,000 rows (pg-translicator's snapshot path) against COPY FROM STDIN.
 */
import { parseArgs } from 'node:util';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { startLocalServers, type PgServer } from '../testing/local-servers.js';
import { readProcess } from './procfs.js';

const { values } = parseArgs({
  options: {
    updates: { type: 'string', default: '20000' },
    inserts: { type: 'string', default: '100000' },
    accounts: { type: 'string', default: '100000' },
  },
});
const UPDATES = Number(values.updates);
const INSERTS = Number(values.inserts);
const ACCOUNTS = Number(values.accounts);
const FILLER = ' '.repeat(84);

type Row = [string, string, string, string];

interface Measured {
  strategy: string;
  rows: number;
  seconds: number;
  rowsPerSecond: number;
  nodeCpuSeconds: number;
  backendCpuSeconds: number;
}

async function backendPid(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  return rows[0]!.pid;
}

async function measure(
  server: PgServer,
  strategy: string,
  rows: number,
  setup: (client: pg.Client) => Promise<void>,
  work: (client: pg.Client) => Promise<void>,
): Promise<Measured> {
  const client = new pg.Client({ connectionString: server.superuserUrl });
  await client.connect();
  try {
    await setup(client);
    const pid = await backendPid(client);
    const backendBefore = readProcess(pid)?.cpuSeconds ?? 0;
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    await client.query('BEGIN');
    await work(client);
    await client.query('COMMIT');
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    const result = {
      strategy,
      rows,
      seconds: Math.round(seconds * 1000) / 1000,
      rowsPerSecond: Math.round(rows / seconds),
      nodeCpuSeconds: Math.round((cpu.user + cpu.system) / 1e4) / 100,
      backendCpuSeconds: Math.round(((readProcess(pid)?.cpuSeconds ?? 0) - backendBefore) * 100) / 100,
    };
    console.log(
      `${strategy.padEnd(58)} ${String(result.rowsPerSecond).padStart(8)} rows/s  ${result.seconds.toFixed(2).padStart(6)} s  node CPU ${result.nodeCpuSeconds.toFixed(2)} s  backend CPU ${result.backendCpuSeconds.toFixed(2)} s`,
    );
    return result;
  } finally {
    await client.end();
  }
}

const UPDATE_SQL =
  'UPDATE "public"."accounts" SET "aid" = $1, "bid" = $2, "abalance" = $3, "filler" = $4 WHERE "aid" = $5';

function updateRows(seed: number): Row[] {
  let x = seed;
  const random = () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x / 2147483648;
  };
  return Array.from({ length: UPDATES }, () => {
    const aid = 1 + Math.floor(random() * ACCOUNTS);
    return [
      String(aid),
      String(1 + Math.floor(aid / 100000)),
      String(Math.floor(random() * 10000) - 5000),
      FILLER,
    ];
  });
}

function literal(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

async function main(): Promise<void> {
  const servers = await startLocalServers({ target: true });
  const server = servers.target!;
  try {
    await server.query(`CREATE TABLE accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84))`);
    await server.query(
      `INSERT INTO accounts SELECT g, 1 + g / 100000, 0, '' FROM generate_series(1, ${ACCOUNTS}) g`,
    );
    await server.query('CREATE TABLE history (aid int, bid int, abalance int, filler char(84))');
    await server.query('VACUUM ANALYZE');
    const rows = updateRows(1);
    const none = async () => undefined;
    // The first strategy would otherwise pay for reading the table and its index into shared buffers.
    await server.query('SELECT sum(abalance) FROM accounts');
    await server.query(`SELECT count(*) FROM accounts WHERE aid = ANY($1::int[])`, [
      rows.map((r) => Number(r[0])),
    ]);
    console.log(`${UPDATES} single-row UPDATEs on a ${ACCOUNTS}-row table, one transaction:`);
    await measure(server, 'one statement per round trip (unnamed, as today)', UPDATES, none, async (c) => {
      for (const r of rows) await c.query(UPDATE_SQL, [...r, r[0]]);
    });
    await measure(
      server,
      'one statement per round trip, named prepared statement',
      UPDATES,
      none,
      async (c) => {
        for (const r of rows)
          await c.query({ name: 'update_accounts', text: UPDATE_SQL, values: [...r, r[0]] });
      },
    );
    for (const batch of [10, 100, 1000]) {
      await measure(
        server,
        `${batch} statements per round trip (simple query, literals)`,
        UPDATES,
        none,
        async (c) => {
          for (let i = 0; i < rows.length; i += batch) {
            const text = rows
              .slice(i, i + batch)
              .map(
                (r) =>
                  `UPDATE "public"."accounts" SET "aid" = ${literal(r[0])}, "bid" = ${literal(r[1])}, "abalance" = ${literal(r[2])}, "filler" = ${literal(r[3])} WHERE "aid" = ${literal(r[0])}`,
              )
              .join(';\n');
            await c.query(text);
          }
        },
      );
    }
    await measure(
      server,
      'UPDATE ... FROM (VALUES ...) per 1,000 rows, last image per key',
      UPDATES,
      none,
      async (c) => {
        for (let i = 0; i < rows.length; i += 1000) {
          const latest = new Map<string, Row>();
          for (const r of rows.slice(i, i + 1000)) latest.set(r[0], r);
          const params: string[] = [];
          const tuples = [...latest.values()].map((r) => {
            params.push(...r);
            const n = params.length;
            return `($${n - 3}::int, $${n - 2}::int, $${n - 1}::int, $${n}::char(84))`;
          });
          await c.query(
            `UPDATE "public"."accounts" AS t SET "bid" = v.bid, "abalance" = v.abalance, "filler" = v.filler
               FROM (VALUES ${tuples.join(', ')}) AS v(aid, bid, abalance, filler) WHERE t."aid" = v.aid`,
            params,
          );
        }
      },
    );

    const inserts: Row[] = Array.from({ length: INSERTS }, (_, i) => [String(i), '1', '0', FILLER]);
    const truncate = async (c: pg.Client) => {
      await c.query('TRUNCATE history');
    };
    console.log(`\n${INSERTS} rows into an empty table, one transaction:`);
    await measure(
      server,
      'multi-row INSERT, 1,000 rows per statement (as today)',
      INSERTS,
      truncate,
      async (c) => {
        for (let i = 0; i < inserts.length; i += 1000) {
          const params: string[] = [];
          const tuples = inserts.slice(i, i + 1000).map((r) => {
            params.push(...r);
            const n = params.length;
            return `($${n - 3}, $${n - 2}, $${n - 1}, $${n})`;
          });
          await c.query(
            `INSERT INTO "public"."history" ("aid", "bid", "abalance", "filler") VALUES ${tuples.join(', ')}`,
            params,
          );
        }
      },
    );
    await measure(server, 'COPY FROM STDIN (text format)', INSERTS, truncate, async (c) => {
      const stream = c.query(
        copyFrom('COPY "public"."history" ("aid", "bid", "abalance", "filler") FROM STDIN'),
      );
      const lines = function* () {
        for (let i = 0; i < inserts.length; i += 1000) {
          yield inserts
            .slice(i, i + 1000)
            .map((r) => `${r.join('\t')}\n`)
            .join('');
        }
      };
      await pipeline(Readable.from(lines()), stream);
    });
  } finally {
    await servers.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
