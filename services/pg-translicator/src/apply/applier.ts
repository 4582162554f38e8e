import type pg from 'pg';
import {
  KashoError,
  OldTuple,
  ReplicaIdentity,
  RowOperation,
  type Change,
  type Ddl,
  type Position,
  type Relation,
  type RowChange,
  type Truncate,
} from '@kasho/common';
import { runnableInTransaction, schemaStatements } from './ddl-statements.js';
import { StreamSequencer } from './sequencer.js';
import {
  deleteRow,
  insertRows,
  MAX_PARAMETERS,
  qualifiedName,
  setSearchPath,
  truncateTables,
  updateRow,
  type CellValue,
  type ColumnRef,
  type RowLocator,
  type Statement,
  type TableRef,
} from './sql.js';
import { toCell, toTransformValue, type RowTransformer } from './row-values.js';
import { writeAppliedStateStatement, type AppliedState } from './target-store.js';

/** A change could not be applied. The message names position, table and the database's error, never a value. */
export class ApplyError extends KashoError {
  constructor(
    message: string,
    readonly sqlState: string | undefined,
    readonly transient: boolean,
  ) {
    super(message);
  }
}

/** duplicate table, object, schema, function, column, database; a second primary key (42P16). */
const ALREADY_EXISTS = new Set(['42P07', '42710', '42P06', '42723', '42701', '42P04', '42P16']);
const TRANSIENT_SQLSTATE = /^(08|40001|40P01|53|57P0[123])/;
const TRANSIENT_NODE_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT']);
const MAX_ROWS_PER_INSERT = 1_000;

export function newApplyStats(): ApplyStats {
  return { inserted: 0, updated: 0, deleted: 0, truncates: 0, ddl: 0, transactions: 0 };
}

export interface ApplyStats {
  inserted: number;
  updated: number;
  deleted: number;
  truncates: number;
  ddl: number;
  transactions: number;
}

interface PendingInsert {
  relation: Relation;
  columns: ColumnRef[];
  rows: (string | null)[][];
  position: Position;
}

/**
 * Applies changes to the target in commit order. Consecutive source transactions are grouped into one target
 * transaction; the applied position is written inside it, so a crash at any moment leaves the target either
 * before or after the whole group. Consecutive inserts into one table become multi-row INSERTs.
 */
export class Applier {
  private readonly relations = new Map<string, Relation>();
  private readonly sequencer: StreamSequencer;
  private groupOpen = false;
  private pendingInsert: PendingInsert | undefined;
  private lastCommit: { position: Position; commitLsn: bigint; commitTimeUs: bigint } | undefined;
  private epoch: string;
  private inBootstrap = false;

  constructor(
    private readonly client: pg.ClientBase,
    private readonly transformer: RowTransformer,
    start: AppliedState,
    private readonly warn: (message: string) => void = () => undefined,
    /** Counts kept across the appliers of one process (one per connection), so metrics only grow. */
    readonly stats: ApplyStats = newApplyStats(),
  ) {
    this.sequencer = new StreamSequencer(start.position, start.chainLsn);
    this.epoch = start.epoch;
  }

  get position(): Position {
    return this.sequencer.position;
  }

  /** Applies a batch of stream events; returns the state made durable, if a group was committed. */
  async apply(changes: readonly Change[]): Promise<(AppliedState & { commitTimeUs: bigint }) | undefined> {
    for (const change of changes) {
      if (this.sequencer.accept(change) === 'skip') continue;
      await this.applyOne(change);
    }
    if (!this.sequencer.inTransaction && this.groupOpen) return this.commitGroup();
    return undefined;
  }

  /** Rolls back whatever is open (the stream broke); the resend starts again from the durable position. */
  async abandon(): Promise<void> {
    this.pendingInsert = undefined;
    this.sequencer.abandon();
    this.lastCommit = undefined;
    if (this.groupOpen) {
      this.groupOpen = false;
      await this.client.query('ROLLBACK').catch(() => undefined);
    }
  }

  private async applyOne(change: Change): Promise<void> {
    const kind = change.kind!;
    const position = change.position!;
    switch (kind.$case) {
      case 'relation':
        this.relations.set(`${kind.value.relationId}:${kind.value.version}`, kind.value);
        return;
      case 'begin':
        this.inBootstrap = kind.value.bootstrap;
        if (!this.groupOpen) {
          await this.run({ text: 'BEGIN', values: [] }, position, undefined);
          this.groupOpen = true;
        }
        return;
      case 'commit':
        await this.flushInserts();
        this.lastCommit = {
          position,
          commitLsn: kind.value.commitLsn,
          commitTimeUs: kind.value.commitTimeUs,
        };
        this.sequencer.commit(position, kind.value.commitLsn);
        this.stats.transactions++;
        return;
      case 'row':
        return this.applyRow(kind.value, position);
      case 'truncate':
        await this.flushInserts();
        await this.applyTruncate(kind.value, position);
        return;
      case 'ddl':
        await this.flushInserts();
        await this.applyDdl(kind.value, position);
        return;
      case 'message':
        return;
    }
  }

  private relationOf(row: RowChange, position: Position): Relation {
    const relation = this.relations.get(`${row.relationId}:${row.relationVersion}`);
    if (!relation) {
      throw new ApplyError(
        `the change at ${describe(position)} refers to relation ${row.relationId} version ${row.relationVersion}, which the stream never described`,
        undefined,
        false,
      );
    }
    return relation;
  }

  private async applyRow(row: RowChange, position: Position): Promise<void> {
    const relation = this.relationOf(row, position);
    const table = relation.table!;
    const columns: ColumnRef[] = relation.columns.map((c) => ({ name: c.name, typeName: c.typeName }));
    if (row.operation === RowOperation.INSERT) {
      const values = this.transform(table, columns, row.newValues).map((v) => (v === undefined ? null : v));
      const pending = this.pendingInsert;
      if (pending && pending.relation === relation && pending.rows.length < this.maxRows(columns.length)) {
        pending.rows.push(values);
      } else {
        await this.flushInserts();
        this.pendingInsert = { relation, columns, rows: [values], position };
      }
      this.stats.inserted++;
      return;
    }
    await this.flushInserts();
    const locator = this.locator(relation, columns, row, position);
    if (row.operation === RowOperation.UPDATE) {
      const statement = updateRow(table, columns, this.transform(table, columns, row.newValues), locator);
      if (statement) await this.run(statement, position, table);
      this.stats.updated++;
    } else {
      await this.run(deleteRow(table, locator), position, table);
      this.stats.deleted++;
    }
  }

  private locator(relation: Relation, columns: ColumnRef[], row: RowChange, position: Position): RowLocator {
    const table = relation.table!;
    if (row.oldTuple === OldTuple.OLD_TUPLE_FULL) {
      return { columns, values: this.transformKey(table, columns, row.oldValues, () => true), full: true };
    }
    const keyIndexes = relation.columns.flatMap((column, i) => (column.key ? [i] : []));
    if (keyIndexes.length === 0) {
      throw new ApplyError(
        `cannot locate the row changed at ${describe(position)} in ${qualifiedName(table)}: the table has no replica identity`,
        undefined,
        false,
      );
    }
    const source = row.oldTuple === OldTuple.OLD_TUPLE_KEY ? row.oldValues : row.newValues;
    const isKey = new Set(keyIndexes);
    const transformed = this.transformKey(table, columns, source, (i) => isKey.has(i));
    return {
      columns: keyIndexes.map((i) => columns[i]!),
      values: keyIndexes.map((i) => transformed[i]),
      full: relation.replicaIdentity === ReplicaIdentity.REPLICA_IDENTITY_FULL,
    };
  }

  private transform(table: TableRef, columns: ColumnRef[], values: RowChange['newValues']): CellValue[] {
    return this.transformer.transformRow(table, columns, values.map(toTransformValue)).map(toCell);
  }

  /** Old values transformed the same way as new ones, so they find the row the target holds. */
  private transformKey(
    table: TableRef,
    columns: ColumnRef[],
    values: RowChange['oldValues'],
    carried: (index: number) => boolean,
  ): CellValue[] {
    const input = values.map((value, i) =>
      carried(i) ? toTransformValue(value) : { kind: 'unchanged' as const },
    );
    return this.transformer.transformKey(table, columns, input).map(toCell);
  }

  private maxRows(columnCount: number): number {
    return Math.max(1, Math.min(MAX_ROWS_PER_INSERT, Math.floor(MAX_PARAMETERS / Math.max(1, columnCount))));
  }

  private async flushInserts(): Promise<void> {
    const pending = this.pendingInsert;
    if (!pending) return;
    this.pendingInsert = undefined;
    await this.run(
      insertRows(pending.relation.table!, pending.columns, pending.rows),
      pending.position,
      pending.relation.table,
    );
  }

  private async applyTruncate(truncate: Truncate, position: Position): Promise<void> {
    if (truncate.tables.length === 0) return;
    await this.run(
      truncateTables(truncate.tables, truncate.cascade, truncate.restartIdentity),
      position,
      truncate.tables[0],
    );
    this.stats.truncates++;
  }

  private async applyDdl(ddl: Ddl, position: Position): Promise<void> {
    // Snapshot statements come from pg_dump and run as they are (sequence setval calls included); captured ones
    // are the client's whole query text, of which only the schema changes are replayed.
    const statements = this.inBootstrap ? [ddl.sql] : schemaStatements(ddl.sql);
    if (statements.length === 0) {
      this.warn(
        `The DDL captured at ${describe(position)} holds no schema statement Kasho can replay (e.g. DDL inside DO or CALL); apply it to the target by hand if it changed the schema`,
      );
      return;
    }
    const { rows } = await this.client.query<{ path: string }>(
      `SELECT current_setting('search_path') AS path`,
    );
    const original = rows[0]?.path ?? '"$user", public';
    await this.run(setSearchPath(ddl.searchPath), position, undefined);
    // The source validated function bodies already; on the target they may name objects created later on.
    await this.run(
      { text: `SELECT set_config('check_function_bodies', 'off', true)`, values: [] },
      position,
      undefined,
    );
    for (const statement of statements) {
      const text = runnableInTransaction(statement);
      if (this.inBootstrap) await this.runTolerating(text, position);
      else await this.run({ text, values: [] }, position, undefined, 'DDL');
    }
    await this.run(setSearchPath(original), position, undefined);
    this.stats.ddl++;
  }

  /**
   * Snapshot DDL may meet objects the target already has (created by hand, or by an earlier bootstrap): those
   * statements are rolled back to a savepoint and the existing object is kept.
   */
  private async runTolerating(text: string, position: Position): Promise<void> {
    await this.client.query('SAVEPOINT kasho_bootstrap_ddl');
    try {
      await this.client.query(text);
      await this.client.query('RELEASE SAVEPOINT kasho_bootstrap_ddl');
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === undefined || !ALREADY_EXISTS.has(code))
        throw toApplyError(error, 'DDL', position, undefined);
      await this.client.query('ROLLBACK TO SAVEPOINT kasho_bootstrap_ddl');
    }
  }

  private async commitGroup(): Promise<AppliedState & { commitTimeUs: bigint }> {
    const last = this.lastCommit!;
    const state: AppliedState = {
      epoch: this.epoch,
      position: last.position,
      chainLsn: this.sequencer.chain,
    };
    await this.run(writeAppliedStateStatement(state), last.position, undefined);
    await this.run({ text: 'COMMIT', values: [] }, last.position, undefined);
    this.groupOpen = false;
    return { ...state, commitTimeUs: last.commitTimeUs };
  }

  private async run(
    statement: Statement,
    position: Position,
    table: TableRef | undefined,
    what?: string,
  ): Promise<void> {
    try {
      if (statement.values.length === 0) await this.client.query(statement.text);
      else await this.client.query(statement.text, statement.values);
    } catch (error) {
      throw toApplyError(error, what ?? statement.text.split(' ')[0]!, position, table);
    }
  }
}

function toApplyError(
  error: unknown,
  what: string,
  position: Position,
  table: TableRef | undefined,
): ApplyError {
  const pgError = error as { code?: string; message?: string };
  const code = pgError.code;
  const transient = code !== undefined && (TRANSIENT_SQLSTATE.test(code) || TRANSIENT_NODE_CODES.has(code));
  const where = table ? ` to ${qualifiedName(table)}` : '';
  const message = withoutValues(pgError.message ?? String(error), code);
  const sqlState = code && !TRANSIENT_NODE_CODES.has(code) ? ` (SQLSTATE ${code})` : '';
  return new ApplyError(
    `applying ${what} at ${describe(position)}${where} failed: ${message}${sqlState}`,
    code,
    transient,
  );
}

/** Data errors quote the offending value ("invalid input syntax for type integer: \"...\""): drop it. */
function withoutValues(message: string, code: string | undefined): string {
  if (code === undefined || !code.startsWith('22')) return message;
  return message.replace(/:\s*".*"\s*$/s, ': (value withheld)');
}

function describe(position: Position): string {
  return `position ${position.lsn}/${position.seq}`;
}
