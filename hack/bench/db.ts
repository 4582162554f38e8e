/** Connections, the benchmark's own tables and "is the last change visible on the target yet". */
import pg from 'pg';
import type { PgServer } from '../testing/local-servers.js';

/** Created on the source before the bootstrap, so both systems copy them like any other table. */
export const BENCH_TABLES_SQL = `
CREATE TABLE bench_probe (id bigserial PRIMARY KEY, committed_at timestamptz NOT NULL);
CREATE TABLE bench_marker (id bigint PRIMARY KEY, committed_at timestamptz NOT NULL DEFAULT clock_timestamp());
`;

export const PGBENCH_TABLES = ['pgbench_accounts', 'pgbench_branches', 'pgbench_tellers', 'pgbench_history'];

export async function connect(server: PgServer, applicationName = 'bench'): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: server.superuserUrl, application_name: applicationName });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Milliseconds since the epoch with sub-millisecond precision (the database's clock_timestamp() is the same clock). */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * Marker rows committed on the source: changes apply in commit order, so once the target has a marker, it has
 * everything committed before it.
 */
export class Markers {
  private next = 0;

  private constructor(
    private readonly source: pg.Client,
    private readonly target: pg.Client,
  ) {}

  static async open(source: PgServer, target: PgServer): Promise<Markers> {
    const s = await connect(source, 'bench-marker');
    const t = await connect(target, 'bench-marker');
    const { rows } = await s.query<{ max: string | null }>('SELECT max(id)::text AS max FROM bench_marker');
    const markers = new Markers(s, t);
    markers.next = Number(rows[0]?.max ?? 0);
    return markers;
  }

  /** Commits a marker; returns its id and the time the commit returned (ms). */
  async commit(): Promise<{ id: number; committedMs: number }> {
    const id = ++this.next;
    await this.source.query('INSERT INTO bench_marker (id) VALUES ($1)', [id]);
    return { id, committedMs: nowMs() };
  }

  /** Polls the target every 10 ms until the marker is there; returns when it was seen (ms). */
  async waitVisible(id: number, timeoutMs: number, what: string): Promise<number> {
    const deadline = nowMs() + timeoutMs;
    for (;;) {
      try {
        const { rowCount } = await this.target.query('SELECT 1 FROM bench_marker WHERE id = $1', [id]);
        if (rowCount) return nowMs();
      } catch (error) {
        // The table appears only when the bootstrap's schema is applied; a broken connection is not expected.
        if ((error as { code?: string }).code !== '42P01') throw error;
      }
      if (nowMs() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
      await sleep(10);
    }
  }

  async close(): Promise<void> {
    await this.source.end().catch(() => undefined);
    await this.target.end().catch(() => undefined);
  }
}

export async function rowCounts(
  server: PgServer,
  tables: readonly string[],
): Promise<Record<string, number>> {
  const rows = await server.query<{ t: string; n: string }>(
    tables.map((t) => `SELECT '${t}' AS t, count(*)::text AS n FROM ${t}`).join(' UNION ALL '),
  );
  return Object.fromEntries(rows.map((r) => [r.t, Number(r.n)]));
}

/** The state pgbench leaves behind, cheap to compare: balances and the history length. */
export async function pgbenchState(server: PgServer): Promise<string> {
  const rows = await server.query<{ s: string }>(
    `SELECT (SELECT sum(abalance) FROM pgbench_accounts)::text || '/' || (SELECT count(*) FROM pgbench_history)::text
            || '/' || (SELECT sum(tbalance) FROM pgbench_tellers)::text AS s`,
  );
  return rows[0]?.s ?? '';
}
