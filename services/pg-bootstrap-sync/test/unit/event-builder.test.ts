import { expect } from 'chai';
import { ReplicaIdentity, ValueKind, type Change } from '@kasho/common/gen/kasho/change_stream';
import { EventBuilder, snapshotRelation, type Batch } from '../../src/event-builder.js';

const relation = snapshotRelation(1, { schema: 'public', name: 't' }, [
  { name: 'id', typeName: 'integer' },
  { name: 'note', typeName: 'text' },
]);

function collect(builder: EventBuilder, steps: ((b: EventBuilder) => Batch | undefined)[]): Batch[] {
  const batches: Batch[] = [];
  for (const step of steps) {
    const batch = step(builder);
    if (batch) batches.push(batch);
  }
  const last = builder.flush();
  if (last) batches.push(last);
  return batches;
}

const kinds = (changes: Change[]) => changes.map((c) => c.kind!.$case);

describe('event builder', () => {
  it('describes snapshot relations with synthetic ids, version 0 and no key', () => {
    expect(relation).to.deep.equal({
      relationId: 1,
      version: 0,
      table: { schema: 'public', name: 't' },
      replicaIdentity: ReplicaIdentity.REPLICA_IDENTITY_DEFAULT,
      columns: [
        { name: 'id', typeOid: 0, typeName: 'integer', typeModifier: -1, key: false },
        { name: 'note', typeOid: 0, typeName: 'text', typeModifier: -1, key: false },
      ],
    });
  });

  it('packs changes into bootstrap pseudo-transactions with contiguous positions from (0,1)', () => {
    const builder = new EventBuilder({ maxChanges: 3, maxBytes: 1 << 20 });
    const batches = collect(builder, [
      (b) => b.ddl('CREATE TABLE public.t (id integer, note text)', ''),
      (b) => b.truncate([{ schema: 'public', name: 't' }]),
      (b) => b.row(relation, ['1', 'a']),
      (b) => b.row(relation, ['2', null]),
      (b) => b.row(relation, ['3', '']),
      (b) => b.ddl('CREATE INDEX i ON public.t (id)', ''),
    ]);
    expect(batches.map((batch) => kinds(batch.changes))).to.deep.equal([
      ['begin', 'ddl', 'truncate', 'row', 'commit'],
      ['begin', 'row', 'row', 'ddl', 'commit'],
    ]);
    const positions = batches.flatMap((batch) => batch.changes.map((c) => c.position));
    expect(positions).to.deep.equal(Array.from({ length: 10 }, (_, i) => ({ lsn: 0n, seq: BigInt(i + 1) })));
    expect(builder.lastSeq).to.equal(10n);
    const begin = batches[0]!.changes[0]!.kind;
    expect(begin).to.deep.equal({
      $case: 'begin',
      value: { commitLsn: 0n, commitTimeUs: 0n, xid: 0, previousCommitLsn: 0n, bootstrap: true, origin: '' },
    });
    expect(batches[0]!.changes[4]!.kind).to.deep.equal({
      $case: 'commit',
      value: { commitLsn: 0n, endLsn: 0n, commitTimeUs: 0n },
    });
    expect(batches.map((batch) => batch.rows)).to.deep.equal([1, 2]);
  });

  it('stores each relation with the batch that first refers to it', () => {
    const other = snapshotRelation(2, { schema: 'public', name: 'u' }, [{ name: 'x', typeName: 'text' }]);
    const builder = new EventBuilder({ maxChanges: 2, maxBytes: 1 << 20 });
    const batches = collect(builder, [
      (b) => b.row(relation, ['1', 'a']),
      (b) => b.row(relation, ['2', 'b']),
      (b) => b.row(relation, ['3', 'c']),
      (b) => b.row(other, ['x']),
      (b) => b.row(other, ['y']),
    ]);
    expect(batches.map((batch) => batch.relations.map((r) => r.relationId))).to.deep.equal([[1], [2], []]);
  });

  it('encodes rows as INSERTs with TEXT and NULL values', () => {
    const builder = new EventBuilder({ maxChanges: 10, maxBytes: 1 << 20 });
    builder.row(relation, ['', null]);
    const row = builder.flush()!.changes[1]!.kind;
    expect(row?.$case === 'row' && row.value).to.deep.include({
      operation: 1,
      relationId: 1,
      relationVersion: 0,
      newValues: [
        { kind: ValueKind.TEXT, text: '' },
        { kind: ValueKind.NULL, text: '' },
      ],
    });
  });

  it('closes a pseudo-transaction early when its values reach the byte limit', () => {
    const builder = new EventBuilder({ maxChanges: 1000, maxBytes: 100 });
    const big = 'x'.repeat(60);
    const batches = collect(builder, [
      (b) => b.row(relation, ['1', big]),
      (b) => b.row(relation, ['2', big]),
      (b) => b.row(relation, ['3', 'small']),
    ]);
    expect(batches.map((batch) => batch.rows)).to.deep.equal([2, 1]);
  });

  it('has nothing to flush when nothing was added', () => {
    expect(new EventBuilder({ maxChanges: 5, maxBytes: 100 }).flush()).to.equal(undefined);
  });
});
