import { expect } from 'chai';
import {
  Change,
  ChangeStreamServiceClient,
  ChangeStreamServiceService,
  OldTuple,
  ReplicaIdentity,
  RowOperation,
  StreamResponse,
  ValueKind,
} from '@kasho/common/gen/kasho/change_stream';

describe('generated gRPC code', () => {
  it('defines the guide’s service and calls', () => {
    expect(Object.keys(ChangeStreamServiceService)).to.include.members([
      'getStatus',
      'startBootstrap',
      'completeBootstrap',
      'resetBootstrap',
      'releaseSnapshot',
      'stream',
      'acknowledge',
    ]);
    expect(ChangeStreamServiceService.getStatus.path).to.equal('/kasho.ChangeStreamService/GetStatus');
    expect(ChangeStreamServiceService.stream.responseStream).to.equal(true);
    expect(typeof ChangeStreamServiceClient).to.equal('function');
  });

  it('keeps every field of a change message through encode and decode', () => {
    const maxLsn = 2n ** 64n - 1n;
    const changes: Change[] = [
      {
        position: { lsn: maxLsn, seq: 0n },
        kind: {
          $case: 'begin',
          value: {
            commitLsn: maxLsn,
            commitTimeUs: -946684800000000n,
            xid: 4294967295,
            previousCommitLsn: 12n,
            bootstrap: false,
            origin: 'node_a',
          },
        },
      },
      {
        position: { lsn: maxLsn, seq: 1n },
        kind: {
          $case: 'relation',
          value: {
            relationId: 16384,
            version: 3,
            table: { schema: 'Mixed"Schema', name: 'order' },
            replicaIdentity: ReplicaIdentity.REPLICA_IDENTITY_FULL,
            columns: [
              { name: 'id', typeOid: 20, typeName: 'bigint', typeModifier: -1, key: true },
              {
                name: 'amount',
                typeOid: 1700,
                typeName: 'numeric(30,10)',
                typeModifier: 1966090,
                key: false,
              },
            ],
          },
        },
      },
      {
        position: { lsn: maxLsn, seq: 2n },
        kind: {
          $case: 'row',
          value: {
            operation: RowOperation.UPDATE,
            relationId: 16384,
            relationVersion: 3,
            newValues: [
              { kind: ValueKind.TEXT, text: '' },
              { kind: ValueKind.NULL, text: '' },
              { kind: ValueKind.UNCHANGED_TOAST, text: '' },
              { kind: ValueKind.TEXT, text: '12345678901234567890.0123456789 \\x00 😀\n\t' },
            ],
            oldTuple: OldTuple.OLD_TUPLE_FULL,
            oldValues: [{ kind: ValueKind.TEXT, text: 'NaN' }],
          },
        },
      },
      {
        position: { lsn: maxLsn, seq: 3n },
        kind: {
          $case: 'truncate',
          value: { tables: [{ schema: 'public', name: 'a' }], cascade: true, restartIdentity: true },
        },
      },
      {
        position: { lsn: maxLsn, seq: 4n },
        kind: {
          $case: 'ddl',
          value: {
            sql: 'ALTER TABLE t ADD c int',
            searchPath: '"$user", public',
            username: 'app',
            ddlLogId: 7n,
          },
        },
      },
      {
        position: { lsn: maxLsn, seq: 5n },
        kind: {
          $case: 'message',
          value: { transactional: true, prefix: 'p', content: Buffer.from([0, 255, 1]) },
        },
      },
      {
        position: { lsn: maxLsn, seq: 6n },
        kind: { $case: 'commit', value: { commitLsn: maxLsn, endLsn: maxLsn, commitTimeUs: 1n } },
      },
    ];
    const decoded = StreamResponse.decode(StreamResponse.encode({ changes }).finish());
    expect(decoded.changes).to.have.length(changes.length);
    decoded.changes.forEach((change, i) => {
      const original = changes[i]!;
      if (change.kind?.$case === 'message' && original.kind?.$case === 'message') {
        expect(Buffer.from(change.kind.value.content)).to.deep.equal(original.kind.value.content);
        return;
      }
      expect(change).to.deep.equal(original);
    });
  });

  it('tells NULL, empty string and unchanged TOAST apart', () => {
    const kinds = [ValueKind.NULL, ValueKind.TEXT, ValueKind.UNCHANGED_TOAST].map((kind) => {
      const change: Change = {
        position: { lsn: 1n, seq: 1n },
        kind: {
          $case: 'row',
          value: {
            operation: RowOperation.INSERT,
            relationId: 1,
            relationVersion: 1,
            newValues: [{ kind, text: '' }],
            oldTuple: OldTuple.OLD_TUPLE_NONE,
            oldValues: [],
          },
        },
      };
      const back = Change.decode(Change.encode(change).finish());
      return back.kind?.$case === 'row' ? back.kind.value.newValues[0]?.kind : undefined;
    });
    expect(kinds).to.deep.equal([ValueKind.NULL, ValueKind.TEXT, ValueKind.UNCHANGED_TOAST]);
  });
});
