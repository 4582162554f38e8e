/**
 * Turns the decoded pgoutput message sequence into positioned `Change` events (see the header of
 * proto/kasho/change_stream.proto): Begin is (commit_lsn, 0), the changes of the transaction (commit_lsn, 1..n) in
 * order, Commit (commit_lsn, n+1). Events are handed out as the messages arrive, so a large transaction is never
 * held in memory; the caller writes them out in batches.
 *
 * Choices made here:
 * - A transaction without any event (only rows of unpublished tables, or only cleanup of the DDL log; PostgreSQL
 *   before 15 sends those as Begin + Commit) produces nothing: Begin is emitted with the first event.
 * - A transaction whose commit LSN is not after the last one delivered is a replay from the slot (the slot resends
 *   from its confirmed position after a restart, the transaction committed exactly there included) and is
 *   dropped whole. What counts as delivered is the chain LSN unless told otherwise: a stream rebuilt from the slot
 *   chains from the slot's confirmed position but must deliver everything the slot sends.
 * - Rows inserted into the DDL log table become Ddl events in their place; its updates, deletes and truncation are
 *   Kasho's own housekeeping and are dropped, as is its Relation.
 * - Relation messages are not events: new relation versions are returned for the caller to store, and the gRPC
 *   layer sends them ahead of their first use on each connection.
 * - Non-transactional logical messages are returned apart from the positioned stream.
 */
import { KashoError } from '@kasho/common/errors';
import {
  OldTuple,
  RowOperation,
  ValueKind,
  type Begin,
  type Change,
  type LogicalMessage,
  type Relation,
  type TableName,
  type Value,
} from '@kasho/common/gen/kasho/change_stream';
import {
  UNCHANGED_TOAST,
  type BeginMessage,
  type CommitMessage,
  type DeleteMessage,
  type InsertMessage,
  type LogicalDecodingMessage,
  type OldTupleKind,
  type PgoutputMessage,
  type RelationMessage,
  type TruncateMessage,
  type TupleValue,
  type UpdateMessage,
} from './decoder.js';
import { CATALOG_NAMESPACE, type RelationCache } from './relations.js';

export const DEFAULT_DDL_LOG_TABLE: Readonly<TableName> = { schema: 'public', name: 'kasho_ddl_log' };

export interface AssemblerOptions {
  relations: RelationCache;
  /**
   * Commit LSN of the last transaction known delivered, or the slot's confirmed position after the buffer was
   * rebuilt; 0 when nothing was ever delivered. The first Begin names it as previous_commit_lsn.
   */
  previousCommitLsn: bigint;
  /**
   * Transactions committed at or before this LSN are replays and are dropped; undefined drops none. Defaults to
   * previousCommitLsn (when that is not 0).
   */
  deliveredThrough?: bigint | undefined;
  ddlLogTable?: TableName;
}

export interface AssemblerOutput {
  /** Positioned events, in stream order. */
  changes: Change[];
  /** Relation versions that became current, to store before the changes that refer to them. */
  relations: Relation[];
  /** Non-transactional logical decoding messages: not part of the positioned stream. */
  messages: LogicalMessage[];
}

export function emptyOutput(): AssemblerOutput {
  return { changes: [], relations: [], messages: [] };
}

/** The server sent messages in an order pgoutput never produces. */
export class ProtocolSequenceError extends KashoError {
  constructor(message: string) {
    super(
      message,
      'This is a bug in pg-change-stream or an unsupported server; restart to resume from the slot.',
    );
  }
}

interface DdlColumns {
  ddl: number;
  searchPath: number;
  username: number;
  id: number;
}

interface OpenTransaction {
  begin: Begin;
  /** Begin has been emitted (with the first event of the transaction). */
  started: boolean;
  /** A replay of a transaction delivered before. */
  skip: boolean;
  seq: bigint;
}

const NULL_VALUE: Value = Object.freeze({ kind: ValueKind.NULL, text: '' });
const UNCHANGED_TOAST_VALUE: Value = Object.freeze({ kind: ValueKind.UNCHANGED_TOAST, text: '' });

function toValues(tuple: readonly TupleValue[], relation: Relation): Value[] {
  if (tuple.length !== relation.columns.length) {
    throw new ProtocolSequenceError(
      `a row of relation ${relation.relationId} has ${tuple.length} columns, its Relation message ${relation.columns.length}`,
    );
  }
  const values = new Array<Value>(tuple.length);
  for (let i = 0; i < tuple.length; i++) {
    const value = tuple[i];
    if (typeof value === 'string') values[i] = { kind: ValueKind.TEXT, text: value };
    else if (value === null) values[i] = NULL_VALUE;
    else if (value === UNCHANGED_TOAST) values[i] = UNCHANGED_TOAST_VALUE;
    else {
      throw new KashoError(
        `column ${relation.columns[i]?.name} of relation ${relation.relationId} arrived in binary format`,
        'Start replication without the pgoutput "binary" option: Kasho carries values in text form.',
      );
    }
  }
  return values;
}

function oldTupleOf(kind: OldTupleKind | null): OldTuple {
  if (kind === 'key') return OldTuple.OLD_TUPLE_KEY;
  if (kind === 'full') return OldTuple.OLD_TUPLE_FULL;
  return OldTuple.OLD_TUPLE_NONE;
}

const INTEGER = /^-?\d+$/;

function textOf(tuple: readonly TupleValue[], index: number): string {
  const value = index < 0 ? undefined : tuple[index];
  return typeof value === 'string' ? value : '';
}

export class TransactionAssembler {
  private readonly relations: RelationCache;
  private readonly ddlLogTable: TableName;
  private readonly ddlLogRelations = new Map<number, DdlColumns>();
  private previousCommitLsn: bigint;
  private deliveredThrough: bigint | undefined;
  private transaction: OpenTransaction | null = null;
  private lastSeenCommit: { commitLsn: bigint; endLsn: bigint } | null = null;
  private replayedTransactions = 0;

  constructor(options: AssemblerOptions) {
    this.relations = options.relations;
    this.previousCommitLsn = options.previousCommitLsn;
    this.deliveredThrough =
      'deliveredThrough' in options
        ? options.deliveredThrough
        : options.previousCommitLsn !== 0n
          ? options.previousCommitLsn
          : undefined;
    this.ddlLogTable = options.ddlLogTable ?? DEFAULT_DDL_LOG_TABLE;
  }

  /** Commit LSN of the last transaction emitted (or given at construction). */
  get lastDeliveredCommitLsn(): bigint {
    return this.previousCommitLsn;
  }

  /** The last Commit processed, emitted or not: how far the server's stream has been consumed. */
  get lastCommit(): { commitLsn: bigint; endLsn: bigint } | null {
    return this.lastSeenCommit;
  }

  get inTransaction(): boolean {
    return this.transaction !== null;
  }

  /** A transaction made elsewhere (a heartbeat) was delivered between two of the server's: the chain moves on. */
  markDelivered(commitLsn: bigint): void {
    if (this.transaction) throw new ProtocolSequenceError('a heartbeat was placed inside a transaction');
    this.previousCommitLsn = commitLsn;
    this.deliveredThrough = commitLsn;
  }

  /** Transactions dropped because they had been delivered before. */
  get replayedTransactionCount(): number {
    return this.replayedTransactions;
  }

  /**
   * Adds the events of one message to `out` (a fresh output when omitted) and returns it. A Relation message must
   * have gone through RelationCache.prepare() first.
   */
  process(message: PgoutputMessage, out: AssemblerOutput = emptyOutput()): AssemblerOutput {
    switch (message.tag) {
      case 'begin':
        this.begin(message);
        break;
      case 'commit':
        this.commit(message, out);
        break;
      case 'origin':
        // Origin follows Begin, so it still reaches the Begin event, which waits for the first change.
        if (this.transaction && !this.transaction.started && !this.transaction.begin.origin) {
          this.transaction.begin.origin = message.name;
        }
        break;
      case 'relation':
        this.relation(message, out);
        break;
      case 'type':
        this.relations.applyType(message);
        break;
      case 'insert':
        this.insert(message, out);
        break;
      case 'update':
        this.update(message, out);
        break;
      case 'delete':
        this.delete(message, out);
        break;
      case 'truncate':
        this.truncate(message, out);
        break;
      case 'message':
        this.logicalMessage(message, out);
        break;
    }
    return out;
  }

  private begin(message: BeginMessage): void {
    if (this.transaction) {
      throw new ProtocolSequenceError('a Begin message arrived inside a transaction');
    }
    this.transaction = {
      begin: {
        commitLsn: message.finalLsn,
        commitTimeUs: message.commitTimeUs,
        xid: message.xid,
        previousCommitLsn: this.previousCommitLsn,
        bootstrap: false,
        origin: '',
      },
      started: false,
      skip: this.deliveredThrough !== undefined && message.finalLsn <= this.deliveredThrough,
      seq: 0n,
    };
  }

  private commit(message: CommitMessage, out: AssemblerOutput): void {
    const txn = this.transaction;
    if (!txn) throw new ProtocolSequenceError('a Commit message arrived outside a transaction');
    if (message.commitLsn !== txn.begin.commitLsn) {
      throw new ProtocolSequenceError(
        `Commit LSN ${message.commitLsn} differs from the final LSN ${txn.begin.commitLsn} its Begin announced`,
      );
    }
    this.transaction = null;
    this.lastSeenCommit = { commitLsn: message.commitLsn, endLsn: message.endLsn };
    if (txn.skip) {
      this.replayedTransactions++;
      return;
    }
    if (!txn.started) return;
    out.changes.push({
      position: { lsn: txn.begin.commitLsn, seq: txn.seq + 1n },
      kind: {
        $case: 'commit',
        value: { commitLsn: message.commitLsn, endLsn: message.endLsn, commitTimeUs: message.commitTimeUs },
      },
    });
    this.previousCommitLsn = message.commitLsn;
    this.deliveredThrough = message.commitLsn;
  }

  /** The open transaction, or undefined when its events are dropped (a replay). */
  private current(what: string): OpenTransaction | undefined {
    const txn = this.transaction;
    if (!txn) throw new ProtocolSequenceError(`${what} arrived outside a transaction`);
    return txn.skip ? undefined : txn;
  }

  private emit(txn: OpenTransaction, kind: NonNullable<Change['kind']>, out: AssemblerOutput): void {
    if (!txn.started) {
      txn.started = true;
      out.changes.push({
        position: { lsn: txn.begin.commitLsn, seq: 0n },
        kind: { $case: 'begin', value: txn.begin },
      });
    }
    txn.seq += 1n;
    out.changes.push({ position: { lsn: txn.begin.commitLsn, seq: txn.seq }, kind });
  }

  private relation(message: RelationMessage, out: AssemblerOutput): void {
    const { relation, changed } = this.relations.applyRelation(message);
    const schema = message.namespace || CATALOG_NAMESPACE;
    if (schema === this.ddlLogTable.schema && message.name === this.ddlLogTable.name) {
      this.ddlLogRelations.set(message.relationId, this.ddlColumns(message));
      return;
    }
    this.ddlLogRelations.delete(message.relationId);
    if (changed) out.relations.push(relation);
  }

  private ddlColumns(message: RelationMessage): DdlColumns {
    const index = (name: string) => message.columns.findIndex((column) => column.name === name);
    const columns = {
      ddl: index('ddl'),
      searchPath: index('search_path'),
      username: index('username'),
      id: index('id'),
    };
    if (columns.ddl < 0) {
      throw new KashoError(
        `the DDL log table ${this.ddlLogTable.schema}.${this.ddlLogTable.name} has no "ddl" column`,
        'Run scripts/prepare-primary-db.sh again to recreate the DDL log table.',
      );
    }
    return columns;
  }

  private knownRelation(relationId: number): Relation {
    const relation = this.relations.get(relationId);
    if (!relation)
      throw new ProtocolSequenceError(`a change of relation ${relationId} arrived before its Relation`);
    return relation;
  }

  private insert(message: InsertMessage, out: AssemblerOutput): void {
    const txn = this.current('an Insert message');
    if (!txn) return;
    const ddl = this.ddlLogRelations.get(message.relationId);
    if (ddl) {
      const id = textOf(message.newTuple, ddl.id);
      this.emit(
        txn,
        {
          $case: 'ddl',
          value: {
            sql: textOf(message.newTuple, ddl.ddl),
            searchPath: textOf(message.newTuple, ddl.searchPath),
            username: textOf(message.newTuple, ddl.username),
            ddlLogId: INTEGER.test(id) ? BigInt(id) : 0n,
          },
        },
        out,
      );
      return;
    }
    const relation = this.knownRelation(message.relationId);
    this.emit(
      txn,
      {
        $case: 'row',
        value: {
          operation: RowOperation.INSERT,
          relationId: relation.relationId,
          relationVersion: relation.version,
          newValues: toValues(message.newTuple, relation),
          oldTuple: OldTuple.OLD_TUPLE_NONE,
          oldValues: [],
        },
      },
      out,
    );
  }

  private update(message: UpdateMessage, out: AssemblerOutput): void {
    const txn = this.current('an Update message');
    if (!txn || this.ddlLogRelations.has(message.relationId)) return;
    const relation = this.knownRelation(message.relationId);
    this.emit(
      txn,
      {
        $case: 'row',
        value: {
          operation: RowOperation.UPDATE,
          relationId: relation.relationId,
          relationVersion: relation.version,
          newValues: toValues(message.newTuple, relation),
          oldTuple: oldTupleOf(message.oldKind),
          oldValues: message.oldTuple ? toValues(message.oldTuple, relation) : [],
        },
      },
      out,
    );
  }

  private delete(message: DeleteMessage, out: AssemblerOutput): void {
    const txn = this.current('a Delete message');
    if (!txn || this.ddlLogRelations.has(message.relationId)) return;
    const relation = this.knownRelation(message.relationId);
    this.emit(
      txn,
      {
        $case: 'row',
        value: {
          operation: RowOperation.DELETE,
          relationId: relation.relationId,
          relationVersion: relation.version,
          newValues: [],
          oldTuple: oldTupleOf(message.oldKind),
          oldValues: toValues(message.oldTuple, relation),
        },
      },
      out,
    );
  }

  private truncate(message: TruncateMessage, out: AssemblerOutput): void {
    const txn = this.current('a Truncate message');
    if (!txn) return;
    const tables: TableName[] = [];
    for (const relationId of message.relationIds) {
      if (this.ddlLogRelations.has(relationId)) continue;
      const table = this.knownRelation(relationId).table;
      if (table) tables.push({ schema: table.schema, name: table.name });
    }
    if (tables.length === 0) return;
    this.emit(
      txn,
      {
        $case: 'truncate',
        value: { tables, cascade: message.cascade, restartIdentity: message.restartIdentity },
      },
      out,
    );
  }

  private logicalMessage(message: LogicalDecodingMessage, out: AssemblerOutput): void {
    // A copy, so that the event does not keep the whole received network buffer alive.
    const value: LogicalMessage = {
      transactional: message.transactional,
      prefix: message.prefix,
      content: Buffer.from(message.content),
    };
    if (!message.transactional) {
      out.messages.push(value);
      return;
    }
    const txn = this.current('a transactional logical decoding message');
    if (txn) this.emit(txn, { $case: 'message', value }, out);
  }
}
