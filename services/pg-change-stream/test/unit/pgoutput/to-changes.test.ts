import { expect } from 'chai';
import {
  Change,
  OldTuple,
  RowOperation,
  ValueKind,
  type Relation,
  type RowChange,
  type Value,
} from '@kasho/common/gen/kasho/change_stream';
import { UNCHANGED_TOAST, decodePgoutput } from '../../../src/pgoutput/decoder.js';
import { RelationCache } from '../../../src/pgoutput/relations.js';
import {
  ProtocolSequenceError,
  TransactionAssembler,
  emptyOutput,
  type AssemblerOptions,
  type AssemblerOutput,
} from '../../../src/pgoutput/to-changes.js';
import * as pg from './pgoutput-encoder.js';

const T0 = 1_714_566_896_000_000n;
const USERS = 16_385;
const ORDERS = 16_390;
const DDL_LOG = 16_400;

const usersRelation = pg.relation(USERS, 'public', 'users', [
  { name: 'id', typeOid: 20, key: true },
  { name: 'email', typeOid: 25 },
  { name: 'bio', typeOid: 25 },
]);
const ordersRelation = pg.relation(
  ORDERS,
  'shop',
  'Orders',
  [
    { name: 'id', typeOid: 23, key: true },
    { name: 'note', typeOid: 25 },
  ],
  'f',
);
const ddlLogRelation = pg.relation(DDL_LOG, 'public', 'kasho_ddl_log', [
  { name: 'id', typeOid: 20, key: true },
  { name: 'lsn', typeOid: 3220 },
  { name: 'timestamp', typeOid: 1184 },
  { name: 'username', typeOid: 25 },
  { name: 'database', typeOid: 25 },
  { name: 'ddl', typeOid: 25 },
  { name: 'search_path', typeOid: 25 },
]);

function assembler(options: Partial<AssemblerOptions> = {}): TransactionAssembler {
  return new TransactionAssembler({
    relations: new RelationCache(async () => {
      throw new Error('only builtin types in these tests');
    }),
    previousCommitLsn: 0n,
    ...options,
  });
}

function feed(target: TransactionAssembler, buffers: readonly Buffer[]): AssemblerOutput {
  const out = emptyOutput();
  for (const buf of buffers) target.process(decodePgoutput(buf), out);
  return out;
}

/** A transaction with commit LSN `lsn` around the given messages. */
function txn(lsn: bigint, xid: number, body: readonly Buffer[]): Buffer[] {
  const time = T0 + (lsn % 1_000_000n);
  return [pg.begin(lsn, time, xid), ...body, pg.commit(lsn, lsn + 8n, time)];
}

const text = (value: string): Value => ({ kind: ValueKind.TEXT, text: value });
const NULL: Value = { kind: ValueKind.NULL, text: '' };
const TOAST: Value = { kind: ValueKind.UNCHANGED_TOAST, text: '' };

function rows(out: AssemblerOutput): RowChange[] {
  return out.changes.flatMap((c) => (c.kind?.$case === 'row' ? [c.kind.value] : []));
}

function kinds(out: AssemblerOutput): string[] {
  return out.changes.map((c) => `${c.kind?.$case}@${c.position?.lsn}/${c.position?.seq}`);
}

describe('TransactionAssembler', () => {
  it('positions a transaction: Begin at seq 0, changes 1..n, Commit n+1, all at the commit LSN', () => {
    const out = feed(
      assembler({ previousCommitLsn: 0x50n }),
      txn(0x100n, 900, [
        usersRelation,
        pg.insert(USERS, ['1', 'a@example.com', 'hello']),
        pg.update(USERS, ['1', 'b@example.com', UNCHANGED_TOAST]),
        pg.del(USERS, 'K', ['1', null, null]),
      ]),
    );
    expect(kinds(out)).to.deep.equal(['begin@256/0', 'row@256/1', 'row@256/2', 'row@256/3', 'commit@256/4']);
    expect(out.changes[0]?.kind).to.deep.equal({
      $case: 'begin',
      value: {
        commitLsn: 0x100n,
        commitTimeUs: T0 + 0x100n,
        xid: 900,
        previousCommitLsn: 0x50n,
        bootstrap: false,
        origin: '',
      },
    });
    expect(out.changes[4]?.kind).to.deep.equal({
      $case: 'commit',
      value: { commitLsn: 0x100n, endLsn: 0x108n, commitTimeUs: T0 + 0x100n },
    });
  });

  it('turns Insert, Update and Delete into row changes with the relation version and old tuple kind', () => {
    const out = feed(
      assembler(),
      txn(0x100n, 1, [
        usersRelation,
        ordersRelation,
        pg.insert(USERS, ['1', 'a@example.com', null]),
        pg.update(USERS, ['1', 'b@example.com', null]),
        pg.update(USERS, ['2', 'b@example.com', null], { kind: 'K', values: ['1', null, null] }),
        pg.update(ORDERS, ['5', 'new'], { kind: 'O', values: ['5', 'old'] }),
        pg.del(USERS, 'K', ['2', null, null]),
        pg.del(ORDERS, 'O', ['5', 'new']),
      ]),
    );
    expect(rows(out)).to.deep.equal([
      {
        operation: RowOperation.INSERT,
        relationId: USERS,
        relationVersion: 1,
        newValues: [text('1'), text('a@example.com'), NULL],
        oldTuple: OldTuple.OLD_TUPLE_NONE,
        oldValues: [],
      },
      {
        operation: RowOperation.UPDATE,
        relationId: USERS,
        relationVersion: 1,
        newValues: [text('1'), text('b@example.com'), NULL],
        oldTuple: OldTuple.OLD_TUPLE_NONE,
        oldValues: [],
      },
      {
        operation: RowOperation.UPDATE,
        relationId: USERS,
        relationVersion: 1,
        newValues: [text('2'), text('b@example.com'), NULL],
        oldTuple: OldTuple.OLD_TUPLE_KEY,
        oldValues: [text('1'), NULL, NULL],
      },
      {
        operation: RowOperation.UPDATE,
        relationId: ORDERS,
        relationVersion: 1,
        newValues: [text('5'), text('new')],
        oldTuple: OldTuple.OLD_TUPLE_FULL,
        oldValues: [text('5'), text('old')],
      },
      {
        operation: RowOperation.DELETE,
        relationId: USERS,
        relationVersion: 1,
        newValues: [],
        oldTuple: OldTuple.OLD_TUPLE_KEY,
        oldValues: [text('2'), NULL, NULL],
      },
      {
        operation: RowOperation.DELETE,
        relationId: ORDERS,
        relationVersion: 1,
        newValues: [],
        oldTuple: OldTuple.OLD_TUPLE_FULL,
        oldValues: [text('5'), text('new')],
      },
    ]);
  });

  it('keeps NULL, empty string and unchanged TOAST apart', () => {
    const out = feed(
      assembler(),
      txn(0x100n, 1, [
        usersRelation,
        pg.insert(USERS, ['1', '', null]),
        pg.update(USERS, ['1', '', UNCHANGED_TOAST]),
      ]),
    );
    expect(rows(out).map((r) => r.newValues)).to.deep.equal([
      [text('1'), text(''), NULL],
      [text('1'), text(''), TOAST],
    ]);
  });

  it('returns relation definitions apart from the positioned stream, once per version', () => {
    const out = feed(assembler(), [
      ...txn(0x100n, 1, [usersRelation, pg.insert(USERS, ['1', 'a', 'b'])]),
      ...txn(0x200n, 2, [usersRelation, pg.insert(USERS, ['2', 'a', 'b'])]),
    ]);
    expect(out.relations).to.deep.equal([
      {
        relationId: USERS,
        version: 1,
        table: { schema: 'public', name: 'users' },
        replicaIdentity: 1,
        columns: [
          { name: 'id', typeOid: 20, typeName: 'bigint', typeModifier: -1, key: true },
          { name: 'email', typeOid: 25, typeName: 'text', typeModifier: -1, key: false },
          { name: 'bio', typeOid: 25, typeName: 'text', typeModifier: -1, key: false },
        ],
      } satisfies Relation,
    ]);
    expect(out.changes.some((c) => c.kind?.$case === 'relation')).to.equal(false);
  });

  it('follows a relation change mid-stream: a new version, and later rows use the new columns', () => {
    const widened = pg.relation(USERS, 'public', 'users', [
      { name: 'id', typeOid: 20, key: true },
      { name: 'email', typeOid: 25 },
      { name: 'bio', typeOid: 25 },
      { name: 'age', typeOid: 23 },
    ]);
    const target = assembler();
    const out = feed(target, [
      ...txn(0x100n, 1, [usersRelation, pg.insert(USERS, ['1', 'a', 'b'])]),
      ...txn(0x200n, 2, [
        widened,
        pg.insert(USERS, ['2', 'a', 'b', '42']),
        pg.update(USERS, ['1', 'a', 'b', '7']),
      ]),
    ]);
    expect(out.relations.map((r) => [r.version, r.columns.map((c) => c.name)])).to.deep.equal([
      [1, ['id', 'email', 'bio']],
      [2, ['id', 'email', 'bio', 'age']],
    ]);
    expect(rows(out).map((r) => [r.relationVersion, r.newValues.length])).to.deep.equal([
      [1, 3],
      [2, 4],
      [2, 4],
    ]);
    expect(() => feed(target, txn(0x300n, 3, [pg.insert(USERS, ['3', 'a', 'b'])]))).to.throw(
      ProtocolSequenceError,
      /has 3 columns, its Relation message 4/,
    );
  });

  it('chains previous_commit_lsn from the constructor value through every emitted transaction', () => {
    const out = feed(assembler({ previousCommitLsn: 0x10n }), [
      ...txn(0x100n, 1, [usersRelation, pg.insert(USERS, ['1', 'a', 'b'])]),
      ...txn(0x200n, 2, [pg.insert(USERS, ['2', 'a', 'b'])]),
      ...txn(0x300n, 3, [pg.del(USERS, 'K', ['2', null, null])]),
    ]);
    const begins = out.changes.flatMap((c) => (c.kind?.$case === 'begin' ? [c.kind.value] : []));
    expect(begins.map((b) => [b.commitLsn, b.previousCommitLsn])).to.deep.equal([
      [0x100n, 0x10n],
      [0x200n, 0x100n],
      [0x300n, 0x200n],
    ]);
  });

  it('keeps positions contiguous inside each transaction and ordered across them', () => {
    const body = Array.from({ length: 50 }, (_, i) => pg.insert(USERS, [String(i), 'e', null]));
    const out = feed(assembler(), [...txn(0x100n, 1, [usersRelation, ...body]), ...txn(0x180n, 2, body)]);
    let previous = { lsn: 0n, seq: 0n };
    for (const change of out.changes) {
      const position = change.position!;
      const expected =
        change.kind?.$case === 'begin'
          ? { lsn: position.lsn, seq: 0n }
          : { lsn: previous.lsn, seq: previous.seq + 1n };
      expect(position).to.deep.equal(expected);
      if (change.kind?.$case === 'begin') expect(position.lsn > previous.lsn).to.equal(true);
      previous = position;
    }
    expect(out.changes).to.have.length(2 * 52);
    expect(out.changes.at(-1)?.position).to.deep.equal({ lsn: 0x180n, seq: 51n });
  });

  it('emits nothing for a transaction without changes and does not advance the chain', () => {
    const target = assembler({ previousCommitLsn: 0x10n });
    const empty = feed(target, txn(0x100n, 1, [usersRelation]));
    expect(empty.changes).to.deep.equal([]);
    expect(target.lastCommit).to.deep.equal({ commitLsn: 0x100n, endLsn: 0x108n });
    expect(target.lastDeliveredCommitLsn).to.equal(0x10n);
    const next = feed(target, txn(0x200n, 2, [pg.insert(USERS, ['1', 'a', 'b'])]));
    expect(next.changes[0]?.kind).to.have.nested.property('value.previousCommitLsn', 0x10n);
    expect(target.lastDeliveredCommitLsn).to.equal(0x200n);
  });

  it('drops transactions the slot resends that were delivered before, but still learns their relations', () => {
    const target = assembler({ previousCommitLsn: 0x200n });
    const out = feed(target, [
      ...txn(0x100n, 1, [usersRelation, pg.insert(USERS, ['1', 'a', 'b'])]),
      ...txn(0x200n, 2, [pg.insert(USERS, ['2', 'a', 'b'])]),
      ...txn(0x300n, 3, [pg.insert(USERS, ['3', 'a', 'b'])]),
    ]);
    expect(kinds(out)).to.deep.equal(['begin@768/0', 'row@768/1', 'commit@768/2']);
    expect(out.changes[0]?.kind).to.have.nested.property('value.previousCommitLsn', 0x200n);
    expect(out.relations).to.have.length(1);
    expect(target.replayedTransactionCount).to.equal(2);
  });

  it('turns rows of the DDL log table into Ddl events in place and drops its housekeeping', () => {
    const out = feed(
      assembler(),
      txn(0x100n, 1, [
        usersRelation,
        ddlLogRelation,
        pg.insert(USERS, ['1', 'a', 'b']),
        pg.insert(DDL_LOG, [
          '42',
          '0/100',
          '2024-05-01',
          'alice',
          'app',
          'ALTER TABLE users ADD age int',
          'app, public',
        ]),
        pg.del(DDL_LOG, 'K', ['1', null, null, null, null, null, null]),
        pg.update(DDL_LOG, ['42', '0/100', '2024-05-01', 'alice', 'app', 'x', '']),
        pg.truncate([DDL_LOG], 0),
        pg.insert(USERS, ['2', 'a', 'b']),
      ]),
    );
    expect(kinds(out)).to.deep.equal(['begin@256/0', 'row@256/1', 'ddl@256/2', 'row@256/3', 'commit@256/4']);
    expect(out.changes[2]?.kind).to.deep.equal({
      $case: 'ddl',
      value: {
        sql: 'ALTER TABLE users ADD age int',
        searchPath: 'app, public',
        username: 'alice',
        ddlLogId: 42n,
      },
    });
    expect(out.relations.map((r) => r.relationId)).to.deep.equal([USERS]);
  });

  it('reads a DDL log table without search_path under a configured name', () => {
    const guideTable = pg.relation(DDL_LOG, 'kasho', 'ddl_log', [
      { name: 'id', typeOid: 20, key: true },
      { name: 'username', typeOid: 25 },
      { name: 'ddl', typeOid: 25 },
    ]);
    const out = feed(
      assembler({ ddlLogTable: { schema: 'kasho', name: 'ddl_log' } }),
      txn(0x100n, 1, [guideTable, pg.insert(DDL_LOG, ['7', 'bob', 'CREATE TABLE x ()'])]),
    );
    expect(out.changes[1]?.kind).to.deep.equal({
      $case: 'ddl',
      value: { sql: 'CREATE TABLE x ()', searchPath: '', username: 'bob', ddlLogId: 7n },
    });
  });

  it('emits nothing for a transaction that only cleans up the DDL log', () => {
    const out = feed(
      assembler(),
      txn(0x100n, 1, [ddlLogRelation, pg.del(DDL_LOG, 'K', ['1', null, null, null, null, null, null])]),
    );
    expect(out.changes).to.deep.equal([]);
  });

  it('refuses a DDL log table without a ddl column', () => {
    const broken = pg.relation(DDL_LOG, 'public', 'kasho_ddl_log', [{ name: 'id', typeOid: 20, key: true }]);
    expect(() => feed(assembler(), [broken])).to.throw(/has no "ddl" column/);
  });

  it('resolves truncated tables through the relation cache and keeps the option bits', () => {
    const out = feed(
      assembler(),
      txn(0x100n, 1, [
        usersRelation,
        ordersRelation,
        ddlLogRelation,
        pg.truncate([USERS, DDL_LOG, ORDERS], 3),
      ]),
    );
    expect(out.changes[1]?.kind).to.deep.equal({
      $case: 'truncate',
      value: {
        tables: [
          { schema: 'public', name: 'users' },
          { schema: 'shop', name: 'Orders' },
        ],
        cascade: true,
        restartIdentity: true,
      },
    });
    const plain = feed(assembler(), txn(0x100n, 1, [usersRelation, pg.truncate([USERS], 0)]));
    expect(plain.changes[1]?.kind).to.have.deep.nested.property('value.cascade', false);
    expect(plain.changes[1]?.kind).to.have.deep.nested.property('value.restartIdentity', false);
  });

  it('positions transactional logical messages and returns non-transactional ones apart', () => {
    const content = Buffer.from('payload');
    const wire = pg.message(true, 0x90n, 'app', content);
    const out = feed(assembler(), [
      pg.message(false, 0x80n, 'audit', Buffer.from([1, 2])),
      ...txn(0x100n, 1, [wire]),
    ]);
    expect(out.messages).to.deep.equal([
      { transactional: false, prefix: 'audit', content: Buffer.from([1, 2]) },
    ]);
    expect(kinds(out)).to.deep.equal(['begin@256/0', 'message@256/1', 'commit@256/2']);
    const event = out.changes[1]?.kind;
    expect(event).to.deep.equal({ $case: 'message', value: { transactional: true, prefix: 'app', content } });
    wire.fill(0);
    expect(event).to.have.deep.nested.property('value.content', Buffer.from('payload'));
  });

  it('records the origin into Begin', () => {
    const out = feed(assembler(), [
      pg.begin(0x100n, T0, 1),
      pg.origin(0x42n, 'pg_16401'),
      usersRelation,
      pg.insert(USERS, ['1', 'a', 'b']),
      pg.commit(0x100n, 0x108n, T0),
    ]);
    expect(out.changes[0]?.kind).to.have.nested.property('value.origin', 'pg_16401');
  });

  it('hands out each change as it comes instead of holding the transaction', () => {
    const target = assembler();
    target.process(decodePgoutput(usersRelation));
    target.process(decodePgoutput(pg.begin(0x100n, T0, 1)));
    const insert = decodePgoutput(pg.insert(USERS, ['1', 'a', 'b']));
    expect(target.process(insert).changes.map((c) => c.kind?.$case)).to.deep.equal(['begin', 'row']);
    for (let i = 2; i <= 2_000; i++) {
      const out = target.process(insert);
      expect(out.changes).to.have.length(1);
      expect(out.changes[0]?.position?.seq).to.equal(BigInt(i));
    }
    expect(target.process(decodePgoutput(pg.commit(0x100n, 0x108n, T0))).changes[0]?.position?.seq).to.equal(
      2_001n,
    );
    expect(target.inTransaction).to.equal(false);
  });

  it('produces changes that survive protobuf encoding', () => {
    const out = feed(
      assembler({ previousCommitLsn: 0xffff_ffff_0000_0000n }),
      txn(0xffff_ffff_0000_0100n, 0xfffffff0, [
        usersRelation,
        pg.insert(USERS, ['1', '', null]),
        pg.update(USERS, ['1', 'x', UNCHANGED_TOAST], { kind: 'K', values: ['1', null, null] }),
        pg.truncate([USERS], 1),
        pg.message(true, 1n, 'p', Buffer.from([0])),
      ]),
    );
    for (const change of out.changes) {
      expect(Change.decode(Change.encode(change).finish())).to.deep.equal(change);
    }
  });

  describe('protocol violations', () => {
    it('refuses changes outside a transaction', () => {
      expect(() => feed(assembler(), [usersRelation, pg.insert(USERS, ['1', 'a', 'b'])])).to.throw(
        ProtocolSequenceError,
        /outside a transaction/,
      );
      expect(() => feed(assembler(), [pg.commit(1n, 2n, T0)])).to.throw(ProtocolSequenceError);
    });

    it('refuses a nested Begin and a Commit for another LSN', () => {
      expect(() => feed(assembler(), [pg.begin(1n, T0, 1), pg.begin(2n, T0, 2)])).to.throw(
        ProtocolSequenceError,
      );
      expect(() => feed(assembler(), [pg.begin(1n, T0, 1), pg.commit(2n, 3n, T0)])).to.throw(
        ProtocolSequenceError,
        /differs/,
      );
    });

    it('refuses a row of an unknown relation', () => {
      expect(() => feed(assembler(), txn(1n, 1, [pg.insert(USERS, ['1'])]))).to.throw(
        ProtocolSequenceError,
        /before its Relation/,
      );
    });

    it('refuses binary values without showing them', () => {
      expect(() =>
        feed(assembler(), txn(1n, 1, [usersRelation, pg.insert(USERS, ['1', Buffer.from('secret'), null])])),
      )
        .to.throw(/column email .* binary format/)
        .with.property('message')
        .that.does.not.include('secret');
    });
  });
});
