import { expect } from 'chai';
import { Change, StreamResponse, ValueKind, RowOperation, OldTuple } from '@kasho/common';
import { encodeRelationEvent, encodeStreamResponse } from '../../../src/grpc/stream-encoding.js';

describe('stream response built from stored changes', () => {
  it('decodes as a StreamResponse holding the same changes, for small and large messages', () => {
    const big = 'x'.repeat(70_000);
    const changes: Change[] = [1n, 2n, 3n].map((seq) => ({
      position: { lsn: 42n, seq },
      kind: {
        $case: 'row',
        value: {
          operation: RowOperation.INSERT,
          relationId: 7,
          relationVersion: 1,
          newValues: [{ kind: ValueKind.TEXT, text: seq === 2n ? big : 'small' }],
          oldTuple: OldTuple.OLD_TUPLE_NONE,
          oldValues: [],
        },
      },
    }));
    const relation = encodeRelationEvent(
      { relationId: 7, version: 1, table: { schema: 'public', name: 't' }, replicaIdentity: 1, columns: [] },
      { lsn: 42n, seq: 1n },
    );
    const encoded = [relation, ...changes.map((change) => Buffer.from(Change.encode(change).finish()))];
    const decoded = StreamResponse.decode(encodeStreamResponse(encoded));
    expect(decoded.changes).to.have.length(4);
    expect(decoded.changes[0]?.kind?.$case).to.equal('relation');
    expect(decoded.changes.slice(1)).to.deep.equal(changes);
  });

  it('encodes an empty batch as an empty message', () => {
    expect(StreamResponse.decode(encodeStreamResponse([])).changes).to.deep.equal([]);
  });
});
