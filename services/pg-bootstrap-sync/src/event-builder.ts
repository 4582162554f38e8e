/**
 * Turns the snapshot's DDL, TRUNCATE and rows into the bootstrap stream's events: pseudo-transactions
 * `Begin{bootstrap}` ... `Commit` of at most `maxChanges` changes (and about `maxBytes` of values), with positions
 * (lsn 0, seq 1, 2, 3, ...) contiguous across the whole snapshot. Pure: the caller appends each batch it gets back.
 */
import {
  OldTuple,
  ReplicaIdentity,
  RowOperation,
  ValueKind,
  type Change,
  type Relation,
  type TableName,
  type Value,
} from '@kasho/common/gen/kasho/change_stream';

export interface BatchLimits {
  /** Changes (rows, DDL, TRUNCATE) per pseudo-transaction. */
  maxChanges: number;
  /** A pseudo-transaction is closed once its values reach about this many bytes, however few rows it has. */
  maxBytes: number;
}

/** One pseudo-transaction, ready to append whole. */
export interface Batch {
  changes: Change[];
  /** Relations first referred to in this batch: stored with it. */
  relations: Relation[];
  rows: number;
}

export interface ColumnSpec {
  name: string;
  typeName: string;
  typeOid?: number;
  typeModifier?: number;
}

/**
 * The Relation of a snapshot table. Synthetic ids 1, 2, ... with version 0: live relations carry their OID and
 * versions from 1, so the two never share a "<id>:<version>" key in the relations hash.
 */
export function snapshotRelation(relationId: number, table: TableName, columns: ColumnSpec[]): Relation {
  return {
    relationId,
    version: 0,
    table: { schema: table.schema, name: table.name },
    replicaIdentity: ReplicaIdentity.REPLICA_IDENTITY_DEFAULT,
    columns: columns.map((column) => ({
      name: column.name,
      typeOid: column.typeOid ?? 0,
      typeName: column.typeName,
      typeModifier: column.typeModifier ?? -1,
      key: false,
    })),
  };
}

const NULL_VALUE: Value = Object.freeze({ kind: ValueKind.NULL, text: '' });
/** Protobuf and bookkeeping overhead counted per value, so rows of many empty columns still close a batch. */
const VALUE_OVERHEAD = 8;

type Body = NonNullable<Change['kind']>;

export class EventBuilder {
  private nextSeq = 1n;
  private body: Body[] = [];
  private bytes = 0;
  private rows = 0;
  private relations: Relation[] = [];
  private readonly described = new Set<number>();

  constructor(private readonly limits: BatchLimits) {
    if (limits.maxChanges < 1) throw new Error('a pseudo-transaction must hold at least one change');
  }

  /** Positions handed out so far (the last seq used). */
  get lastSeq(): bigint {
    return this.nextSeq - 1n;
  }

  ddl(sql: string, searchPath: string): Batch | undefined {
    this.bytes += sql.length;
    return this.add({ $case: 'ddl', value: { sql, searchPath, username: '', ddlLogId: 0n } });
  }

  truncate(tables: TableName[]): Batch | undefined {
    return this.add({
      $case: 'truncate',
      value: {
        tables: tables.map((t) => ({ schema: t.schema, name: t.name })),
        cascade: true,
        restartIdentity: false,
      },
    });
  }

  /** An INSERT of `values` (null = SQL NULL) into `relation`, in the order of its columns. */
  row(relation: Relation, values: (string | null)[]): Batch | undefined {
    if (!this.described.has(relation.relationId)) {
      this.described.add(relation.relationId);
      this.relations.push(relation);
    }
    const newValues: Value[] = new Array<Value>(values.length);
    let bytes = 0;
    for (let i = 0; i < values.length; i += 1) {
      const text = values[i];
      if (text === null || text === undefined) {
        newValues[i] = NULL_VALUE;
        bytes += VALUE_OVERHEAD;
      } else {
        newValues[i] = { kind: ValueKind.TEXT, text };
        bytes += text.length + VALUE_OVERHEAD;
      }
    }
    this.bytes += bytes;
    this.rows += 1;
    return this.add({
      $case: 'row',
      value: {
        operation: RowOperation.INSERT,
        relationId: relation.relationId,
        relationVersion: relation.version,
        newValues,
        oldTuple: OldTuple.OLD_TUPLE_NONE,
        oldValues: [],
      },
    });
  }

  /** Closes the open pseudo-transaction, if it holds anything. */
  flush(): Batch | undefined {
    if (this.body.length === 0) return undefined;
    const changes: Change[] = new Array<Change>(this.body.length + 2);
    let seq = this.nextSeq;
    changes[0] = {
      position: { lsn: 0n, seq },
      kind: {
        $case: 'begin',
        value: {
          commitLsn: 0n,
          commitTimeUs: 0n,
          xid: 0,
          previousCommitLsn: 0n,
          bootstrap: true,
          origin: '',
        },
      },
    };
    for (let i = 0; i < this.body.length; i += 1) {
      seq += 1n;
      changes[i + 1] = { position: { lsn: 0n, seq }, kind: this.body[i] };
    }
    seq += 1n;
    changes[changes.length - 1] = {
      position: { lsn: 0n, seq },
      kind: { $case: 'commit', value: { commitLsn: 0n, endLsn: 0n, commitTimeUs: 0n } },
    };
    this.nextSeq = seq + 1n;
    const batch: Batch = { changes, relations: this.relations, rows: this.rows };
    this.body = [];
    this.bytes = 0;
    this.rows = 0;
    this.relations = [];
    return batch;
  }

  private add(body: Body): Batch | undefined {
    this.body.push(body);
    if (this.body.length >= this.limits.maxChanges || this.bytes >= this.limits.maxBytes) return this.flush();
    return undefined;
  }
}
