/**
 * The direct mode: no dump file. The schema comes from pg_dump (--section=pre-data and post-data, under the
 * snapshot), the rows from `COPY table (columns) TO STDOUT` in REPEATABLE READ transactions that import the same
 * snapshot, several tables at once. Order in the stream: pre-data DDL, TRUNCATE, rows (tables interleaved), sequence
 * values, post-data DDL.
 */
import { spawn } from 'node:child_process';
import { KashoError, redactSecrets, type Logger } from '@kasho/common';
import type { Relation, TableName } from '@kasho/common/gen/kasho/change_stream';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { isKashoTable } from './classify.js';
import { decodeCopyRow } from './copy-text.js';
import { DumpInterpreter } from './dump-interpreter.js';
import { locate, readDumpItems, rowError, type SnapshotEmitter } from './dump-reader.js';
import { DumpTokenizer } from './dump-tokenizer.js';
import type { ColumnSpec } from './event-builder.js';
import { LineSplitter } from './line-splitter.js';
import { displayName, quoteIdent, quoteQualifiedName } from './sql-lexer.js';

export interface DirectOptions {
  sourceUrl: string;
  snapshot: string;
  jobs: number;
  pgDump: string;
  logger: Logger;
}

interface SourceTable {
  name: TableName;
  columns: ColumnSpec[];
  bytes: number;
}

interface SourceSequence {
  /** quote_ident(schema).quote_ident(name), as setval() takes it. */
  qualified: string;
  name: TableName;
}

interface Ddl {
  sql: string;
  searchPath: string;
}

/**
 * Session settings for reading rows, as pg_dump makes them: ISO dates and the postgres interval style so every
 * value reads back unambiguously, exact floats, an empty search_path (regclass and friends print qualified, as in a
 * dump), no timeouts, and row security off so a policy makes COPY fail rather than silently leave rows out.
 */
const SESSION_SETTINGS = [
  'SET DateStyle = ISO',
  'SET IntervalStyle = postgres',
  'SET extra_float_digits = 3',
  "SET search_path = ''",
  'SET statement_timeout = 0',
  'SET lock_timeout = 0',
  'SET idle_in_transaction_session_timeout = 0',
  'SET row_security = off',
];

const SCHEMA_FILTER = `n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`;

export async function loadDirect(options: DirectOptions, emitter: SnapshotEmitter): Promise<DumpInterpreter> {
  const { logger, snapshot } = options;
  const progress = emitter.progress;
  const clients: pg.Client[] = [];
  let finished = false;
  try {
    // Importing first: from here on these transactions see the snapshot even if its exporter lets it go.
    const opened = await Promise.allSettled(
      Array.from({ length: options.jobs }, () => openSnapshotTransaction(options.sourceUrl, snapshot)),
    );
    for (const result of opened) if (result.status === 'fulfilled') clients.push(result.value);
    const failed = opened.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    const first = clients[0]!;

    const postData = collectDdl(runPgDump(options, 'post-data'), logger);
    postData.catch(() => undefined);
    const interpreter = new DumpInterpreter((message) => logger.warn(`pg_dump pre-data: ${message}`));
    await streamDdl(runPgDump(options, 'pre-data'), interpreter, async (ddl) => {
      await emitter.ddl(ddl.sql, ddl.searchPath);
    });
    const post = await postData;
    interpreter.mergeSkipped(post.interpreter);

    const tables = await readTables(first);
    const sequences = await readSequences(first);
    progress.tablesTotal = tables.length;
    logger.info(`${tables.length} tables to copy with ${clients.length} connections`);
    await emitter.truncate(tables.map((table) => table.name));
    await copyTables(clients, tables, emitter);

    for (const sequence of sequences) {
      const { rows } = await first.query<{ last_value: string; is_called: boolean }>(
        `SELECT last_value, is_called FROM ${quoteQualifiedName(sequence.name)}`,
      );
      const row = rows[0]!;
      await emitter.ddl(
        `SELECT pg_catalog.setval('${sequence.qualified.replace(/'/g, "''")}', ${row.last_value}, ${row.is_called})`,
        '',
      );
    }
    for (const ddl of post.statements) await emitter.ddl(ddl.sql, ddl.searchPath);
    finished = true;
    return interpreter;
  } finally {
    await Promise.all(clients.map((client) => close(client, finished)));
  }
}

/**
 * Ends a connection (its read-only transaction goes with it). After a failure a COPY may have been abandoned half
 * read, with the server blocked writing to a socket nobody reads and no query possible before it ends: the socket is
 * closed under it.
 */
async function close(client: pg.Client, clean: boolean): Promise<void> {
  if (!clean) {
    client.connection.stream.destroy();
    return;
  }
  await client.end().catch(() => undefined);
}

async function openSnapshotTransaction(url: string, snapshot: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: 'pg-bootstrap-sync' });
  // A broken connection surfaces as the failure of the query in progress; this keeps it from crashing the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    throw new KashoError(`Cannot connect to the source: ${redactSecrets((error as Error).message)}`);
  }
  try {
    for (const setting of SESSION_SETTINGS) await client.query(setting);
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    try {
      await client.query(`SET TRANSACTION SNAPSHOT '${snapshot.replace(/'/g, "''")}'`);
    } catch (error) {
      throw new KashoError(
        `The snapshot ${snapshot} cannot be imported: ${(error as Error).message}`,
        'An exported snapshot lives only while the session that exported it stays open and idle: pg-change-stream ' +
          'holds it from StartBootstrap until ReleaseSnapshot or its timeout. Reset the bootstrap and start again.',
      );
    }
    return client;
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
}

/** Tables with rows to copy (partitions on their own, partitioned parents have none), biggest first. */
async function readTables(client: pg.Client): Promise<SourceTable[]> {
  const version = Number(
    (await client.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`)).rows[0]!.v,
  );
  const { rows: tables } = await client.query<{ oid: number; schema: string; name: string; bytes: string }>(
    `SELECT c.oid, n.nspname AS schema, c.relname AS name, pg_relation_size(c.oid) AS bytes
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND ${SCHEMA_FILTER}
      ORDER BY pg_relation_size(c.oid) DESC, n.nspname, c.relname`,
  );
  const kept = tables.filter((table) => !isKashoTable({ schema: table.schema, name: table.name }));
  if (kept.length === 0) return [];
  // Held to the end, as pg_dump does, so no table is dropped or altered while it waits for its turn.
  await client.query(
    `LOCK TABLE ${kept.map((t) => `ONLY ${quoteQualifiedName(t)}`).join(', ')} IN ACCESS SHARE MODE`,
  );
  const { rows: columns } = await client.query<{
    relid: number;
    name: string;
    type_name: string;
    type_oid: number;
    type_modifier: number;
  }>(
    `SELECT a.attrelid AS relid, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type_name,
            a.atttypid AS type_oid, a.atttypmod AS type_modifier
       FROM pg_attribute a
      WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
            ${version >= 120000 ? "AND a.attgenerated = ''" : ''}
      ORDER BY a.attrelid, a.attnum`,
    [kept.map((t) => t.oid)],
  );
  const byTable = new Map<number, ColumnSpec[]>();
  for (const column of columns) {
    const list = byTable.get(column.relid) ?? [];
    list.push({
      name: column.name,
      typeName: column.type_name,
      typeOid: column.type_oid,
      typeModifier: column.type_modifier,
    });
    byTable.set(column.relid, list);
  }
  return kept.map((table) => ({
    name: { schema: table.schema, name: table.name },
    columns: byTable.get(table.oid) ?? [],
    bytes: Number(table.bytes),
  }));
}

async function readSequences(client: pg.Client): Promise<SourceSequence[]> {
  const { rows } = await client.query<{ qualified: string; schema: string; name: string }>(
    `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS qualified,
            n.nspname AS schema, c.relname AS name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'S' AND ${SCHEMA_FILTER}
      ORDER BY n.nspname, c.relname`,
  );
  return rows
    .map((row) => ({ qualified: row.qualified, name: { schema: row.schema, name: row.name } }))
    .filter((sequence) => !isKashoTable(sequence.name));
}

/** Each connection takes the next table until none is left; rows of all of them go to the one emitter. */
async function copyTables(
  clients: pg.Client[],
  tables: SourceTable[],
  emitter: SnapshotEmitter,
): Promise<void> {
  const queue = [...tables];
  let failure: { error: unknown } | undefined;
  const work = async (client: pg.Client) => {
    for (let table = queue.shift(); table && !failure; table = queue.shift()) {
      try {
        await copyTable(client, table, emitter, () => failure !== undefined);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(clients.map(work));
  if (failure) throw failure.error;
}

async function copyTable(
  client: pg.Client,
  table: SourceTable,
  emitter: SnapshotEmitter,
  aborted: () => boolean,
): Promise<void> {
  const progress = emitter.progress;
  const relation: Relation = emitter.relation(table.name, table.columns);
  const columnList =
    table.columns.length > 0 ? ` (${table.columns.map((c) => quoteIdent(c.name)).join(', ')})` : '';
  const source = `COPY ${displayName(table.name)}`;
  const stream = client.query(copyTo(`COPY ${quoteQualifiedName(table.name)}${columnList} TO STDOUT`));
  const splitter = new LineSplitter();
  let line = 0;
  const row = async (data: Buffer) => {
    line += 1;
    let values: (string | null)[];
    try {
      values = decodeCopyRow(data, table.columns.length);
    } catch (error) {
      throw rowError(error, source, line, displayName(table.name));
    }
    const batch = emitter.row(relation, values);
    if (batch) await emitter.emit(batch);
  };
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (aborted()) return;
      progress.bytes += chunk.length;
      for (const data of splitter.push(chunk)) await row(data);
    }
    const rest = splitter.end();
    if (rest) await row(rest);
  } catch (error) {
    if (error instanceof KashoError) throw error;
    throw new KashoError(
      `Reading ${displayName(table.name)} from the source failed: ${(error as Error).message}`,
    );
  } finally {
    stream.destroy();
  }
  progress.tablesDone += 1;
}

interface PgDumpRun {
  section: string;
  stdout: AsyncIterable<Buffer>;
  done: Promise<void>;
  kill(): void;
}

/** pg_dump of one section under the snapshot; the password goes through PGPASSWORD, never the command line. */
function runPgDump(options: DirectOptions, section: 'pre-data' | 'post-data'): PgDumpRun {
  const url = new URL(options.sourceUrl);
  const password = decodeURIComponent(url.password);
  url.password = '';
  const child = spawn(
    options.pgDump,
    [
      `--section=${section}`,
      `--snapshot=${options.snapshot}`,
      '--no-owner',
      '--no-privileges',
      '--encoding=UTF8',
      `--dbname=${url.toString()}`,
    ],
    {
      env: { ...process.env, ...(password ? { PGPASSWORD: password } : {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    if (stderr.length < 16_384) stderr += chunk.toString();
  });
  const done = new Promise<void>((resolve, reject) => {
    child.once('error', (error) =>
      reject(
        new KashoError(
          `Cannot run ${options.pgDump}: ${error.message}`,
          'Install the PostgreSQL client (pg_dump of the source major version or newer) or set PG_DUMP to its path.',
        ),
      ),
    );
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      else {
        reject(
          new KashoError(
            `pg_dump --section=${section} failed (${signal ? `signal ${signal}` : `exit code ${String(code)}`}): ${redactSecrets(stderr.trim())}`,
          ),
        );
      }
    });
  });
  done.catch(() => undefined);
  return { section, stdout: child.stdout, done, kill: () => child.kill() };
}

/** Reads pg_dump's statements, handing each DDL statement for the target to `onDdl`. */
async function streamDdl(
  run: PgDumpRun,
  interpreter: DumpInterpreter,
  onDdl: (ddl: Ddl) => Promise<void>,
): Promise<void> {
  const source = `pg_dump --section=${run.section}`;
  try {
    for await (const items of readDumpItems(run.stdout, new DumpTokenizer())) {
      for (const item of items) {
        if (item.kind === 'meta') {
          interpreter.meta();
          continue;
        }
        if (item.kind !== 'statement') {
          throw new KashoError(`${source}:${item.line}: unexpected table data in a schema-only dump`);
        }
        const action = interpreter.statement(item.sql, item.line);
        if (action.kind === 'ddl') await onDdl(action);
        else if (action.kind === 'copy') {
          throw new KashoError(`${source}:${item.line}: unexpected COPY in a schema-only dump`);
        }
      }
    }
  } catch (error) {
    // pg_dump failing explains a cut-off output better than the parser can; if it is still running, it is
    // waiting for us to read on, which we won't.
    const exited = await Promise.race([
      run.done.then(
        () => undefined,
        (failure: unknown) => failure,
      ),
      new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), 1_000).unref()),
    ]);
    if (exited === 'running') run.kill();
    else if (exited) throw exited;
    throw locate(error, source);
  }
  await run.done;
}

async function collectDdl(
  run: PgDumpRun,
  logger: Logger,
): Promise<{ statements: Ddl[]; interpreter: DumpInterpreter }> {
  const statements: Ddl[] = [];
  const interpreter = new DumpInterpreter((message) => logger.warn(`pg_dump post-data: ${message}`));
  await streamDdl(run, interpreter, async (ddl) => {
    statements.push(ddl);
  });
  return { statements, interpreter };
}
