/**
 * The correctness check: every replicated table on the target holds the same rows as on the source, compared as a
 * row count and a digest of the rows' text (order-independent). Columns a transform rewrites are left out of the
 * digest and checked to differ instead.
 */
import type { PgServer } from '../testing/local-servers.js';

export interface TableCheck {
  table: string;
  sourceRows: number;
  targetRows: number;
  /** Columns compared (all but the transformed ones). */
  columns: string[];
  equal: boolean;
  /** For transformed columns: rows whose value is the same on both sides (rows compared by primary key). */
  transformedColumnsLeftEqual?: number;
}

async function columnsOf(server: PgServer, table: string): Promise<string[]> {
  const rows = await server.query<{ name: string }>(
    `SELECT attname AS name FROM pg_attribute
      WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [table],
  );
  return rows.map((r) => r.name);
}

async function digest(
  server: PgServer,
  table: string,
  columns: string[],
): Promise<{ rows: number; md5: string }> {
  const list = columns.map((c) => `"${c}"`).join(', ');
  const rows = await server.query<{ n: string; md5: string | null }>(
    `SELECT count(*)::text AS n, md5(string_agg(h, '' ORDER BY h)) AS md5
       FROM (SELECT md5(ROW(${list})::text) AS h FROM ${table}) t`,
  );
  return { rows: Number(rows[0]?.n ?? 0), md5: rows[0]?.md5 ?? '' };
}

/** `transformed` maps a table to the columns whose values Kasho rewrites. */
export async function compareTables(
  source: PgServer,
  target: PgServer,
  tables: readonly string[],
  transformed: Record<string, readonly string[]> = {},
): Promise<TableCheck[]> {
  const out: TableCheck[] = [];
  for (const table of tables) {
    const skip = new Set(transformed[table] ?? []);
    const columns = (await columnsOf(source, table)).filter((c) => !skip.has(c));
    const [s, t] = await Promise.all([digest(source, table, columns), digest(target, table, columns)]);
    const check: TableCheck = {
      table,
      sourceRows: s.rows,
      targetRows: t.rows,
      columns,
      equal: s.rows === t.rows && s.md5 === t.md5,
    };
    if (skip.size > 0) check.transformedColumnsLeftEqual = await sameValues(source, target, table, [...skip]);
    out.push(check);
  }
  return out;
}

/** Rows (by the first column, the primary key of pgbench's tables) whose transformed columns kept their value. */
async function sameValues(
  source: PgServer,
  target: PgServer,
  table: string,
  columns: string[],
): Promise<number> {
  const key = (await columnsOf(source, table))[0]!;
  const list = columns.map((c) => `"${c}"`).join(', ');
  const sql = `SELECT "${key}"::text AS k, md5(ROW(${list})::text) AS h FROM ${table}`;
  const [s, t] = await Promise.all([
    source.query<{ k: string; h: string }>(sql),
    target.query<{ k: string; h: string }>(sql),
  ]);
  const bySource = new Map(s.map((r) => [r.k, r.h]));
  return t.filter((r) => bySource.get(r.k) === r.h).length;
}
