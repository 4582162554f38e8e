import { expect } from 'chai';
import {
  PgoutputDecodeError,
  UNCHANGED_TOAST,
  decodePgoutput,
  type DeleteMessage,
  type InsertMessage,
  type TruncateMessage,
  type UpdateMessage,
} from '../../../src/pgoutput/decoder.js';
import { PG_EPOCH_OFFSET_US } from '../../../src/pgoutput/time.js';
import * as pg from './pgoutput-encoder.js';

// 2024-05-01T12:34:56.789012Z in microseconds since the Unix epoch.
const COMMIT_TIME_US = 1_714_566_896_789_012n;
// Above 2^53: LSNs must stay exact bigints.
const BIG_LSN = 0x1234_5678_9abc_def0n;

function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ''), 'hex');
}

describe('decodePgoutput', () => {
  describe('layout anchors (bytes written out by hand from the documentation)', () => {
    it('Begin: final LSN, commit time since 2000-01-01, xid', () => {
      const buf = hex(`42
        00000001 6B374D48
        0000000000000001
        000004D2`);
      expect(decodePgoutput(buf)).to.deep.equal({
        tag: 'begin',
        finalLsn: 0x1_6b374d48n,
        commitTimeUs: PG_EPOCH_OFFSET_US + 1n,
        xid: 1234,
      });
    });

    it('Insert: relation OID, N, TupleData with null, unchanged TOAST, text and binary', () => {
      const buf = hex(`49 00004000 4E 0004
        6E
        75
        74 00000002 6869
        62 00000003 010203`);
      expect(decodePgoutput(buf)).to.deep.equal({
        tag: 'insert',
        relationId: 0x4000,
        newTuple: [null, UNCHANGED_TOAST, 'hi', Buffer.from([1, 2, 3])],
      });
    });
  });

  it('decodes Begin with an LSN above 2^53, a Unix-epoch commit time and an xid above 2^31', () => {
    expect(decodePgoutput(pg.begin(BIG_LSN, COMMIT_TIME_US, 0xfffffff0))).to.deep.equal({
      tag: 'begin',
      finalLsn: BIG_LSN,
      commitTimeUs: COMMIT_TIME_US,
      xid: 0xfffffff0,
    });
  });

  it('decodes Commit', () => {
    expect(decodePgoutput(pg.commit(BIG_LSN, BIG_LSN + 40n, COMMIT_TIME_US))).to.deep.equal({
      tag: 'commit',
      flags: 0,
      commitLsn: BIG_LSN,
      endLsn: BIG_LSN + 40n,
      commitTimeUs: COMMIT_TIME_US,
    });
  });

  it('decodes a commit time before 2000 (negative on the wire)', () => {
    const unix1990 = 631_152_000_000_000n;
    const message = decodePgoutput(pg.begin(1n, unix1990, 1));
    expect(message).to.include({ commitTimeUs: unix1990 });
  });

  it('decodes Origin', () => {
    expect(decodePgoutput(pg.origin(77n, 'node_a'))).to.deep.equal({
      tag: 'origin',
      originLsn: 77n,
      name: 'node_a',
    });
  });

  it('decodes Relation with key flags, typmods, UTF-8 and mixed-case names', () => {
    const buf = pg.relation(
      16385,
      'Sales',
      'Ordrë Items',
      [
        { name: 'id', typeOid: 20, key: true },
        { name: 'Amount', typeOid: 1700, typmod: (10 << 16) + 2 + 4 },
        { name: 'note', typeOid: 25 },
      ],
      'i',
    );
    expect(decodePgoutput(buf)).to.deep.equal({
      tag: 'relation',
      relationId: 16385,
      namespace: 'Sales',
      name: 'Ordrë Items',
      replicaIdentity: 'i',
      columns: [
        { key: true, name: 'id', typeOid: 20, typeModifier: -1 },
        { key: false, name: 'Amount', typeOid: 1700, typeModifier: (10 << 16) + 6 },
        { key: false, name: 'note', typeOid: 25, typeModifier: -1 },
      ],
    });
  });

  it('keeps the empty namespace pgoutput sends for pg_catalog', () => {
    const message = decodePgoutput(pg.relation(1, '', 't', [], 'f'));
    expect(message).to.include({ namespace: '', replicaIdentity: 'f' });
  });

  it('decodes every replica identity setting and refuses others', () => {
    for (const identity of ['d', 'n', 'f', 'i'] as const) {
      expect(decodePgoutput(pg.relation(1, 'public', 't', [], identity))).to.include({
        replicaIdentity: identity,
      });
    }
    const bad = pg.relation(1, 'public', 't', []);
    bad[bad.length - 3] = 'x'.charCodeAt(0);
    expect(() => decodePgoutput(bad)).to.throw(PgoutputDecodeError, /replica identity 'x'/);
  });

  it('decodes Type', () => {
    expect(decodePgoutput(pg.type(3_000_000_000, 'public', 'mood'))).to.deep.equal({
      tag: 'type',
      typeOid: 3_000_000_000,
      namespace: 'public',
      name: 'mood',
    });
  });

  it('keeps NULL, empty string and unchanged TOAST apart', () => {
    const message = decodePgoutput(pg.insert(5, [null, '', UNCHANGED_TOAST, 'x'])) as InsertMessage;
    expect(message.newTuple).to.deep.equal([null, '', UNCHANGED_TOAST, 'x']);
  });

  it('decodes multi-byte UTF-8 text and long values exactly', () => {
    const long = 'ж'.repeat(100_000);
    const message = decodePgoutput(pg.insert(5, ['€ 𝄞 日本', long])) as InsertMessage;
    expect(message.newTuple).to.deep.equal(['€ 𝄞 日本', long]);
  });

  it('decodes binary values as views into the message', () => {
    const buf = pg.insert(5, [Buffer.from([0, 255])]);
    const value = (decodePgoutput(buf) as InsertMessage).newTuple[0] as Buffer;
    expect([...value]).to.deep.equal([0, 255]);
    expect(value.buffer).to.equal(buf.buffer);
  });

  it('decodes Update without an old tuple', () => {
    expect(decodePgoutput(pg.update(7, ['1', 'b']))).to.deep.equal({
      tag: 'update',
      relationId: 7,
      oldKind: null,
      oldTuple: null,
      newTuple: ['1', 'b'],
    });
  });

  it("decodes Update with a key ('K') old tuple", () => {
    const message = decodePgoutput(
      pg.update(7, ['2', 'b'], { kind: 'K', values: ['1', null] }),
    ) as UpdateMessage;
    expect(message).to.deep.equal({
      tag: 'update',
      relationId: 7,
      oldKind: 'key',
      oldTuple: ['1', null],
      newTuple: ['2', 'b'],
    });
  });

  it("decodes Update with a full ('O') old tuple and unchanged TOAST in the new one", () => {
    const message = decodePgoutput(
      pg.update(7, ['1', UNCHANGED_TOAST], { kind: 'O', values: ['1', 'old'] }),
    ) as UpdateMessage;
    expect(message.oldKind).to.equal('full');
    expect(message.oldTuple).to.deep.equal(['1', 'old']);
    expect(message.newTuple).to.deep.equal(['1', UNCHANGED_TOAST]);
  });

  it("decodes Delete with 'K' and 'O' old tuples", () => {
    expect(decodePgoutput(pg.del(9, 'K', ['1', null]))).to.deep.equal({
      tag: 'delete',
      relationId: 9,
      oldKind: 'key',
      oldTuple: ['1', null],
    } satisfies DeleteMessage);
    expect(decodePgoutput(pg.del(9, 'O', ['1', 'x']))).to.include({ oldKind: 'full' });
  });

  it('decodes Truncate with each combination of option bits', () => {
    const cases = [
      [0, false, false],
      [1, true, false],
      [2, false, true],
      [3, true, true],
    ] as const;
    for (const [options, cascade, restartIdentity] of cases) {
      expect(decodePgoutput(pg.truncate([16385, 16390], options))).to.deep.equal({
        tag: 'truncate',
        options,
        cascade,
        restartIdentity,
        relationIds: [16385, 16390],
      } satisfies TruncateMessage);
    }
  });

  it('decodes transactional and non-transactional logical decoding messages', () => {
    const content = Buffer.from([0, 1, 2, 0xff]);
    expect(decodePgoutput(pg.message(true, 99n, 'kasho', content))).to.deep.equal({
      tag: 'message',
      transactional: true,
      lsn: 99n,
      prefix: 'kasho',
      content,
    });
    expect(decodePgoutput(pg.message(false, 100n, 'p', Buffer.alloc(0)))).to.deep.equal({
      tag: 'message',
      transactional: false,
      lsn: 100n,
      prefix: 'p',
      content: Buffer.alloc(0),
    });
  });

  describe('malformed input', () => {
    it('refuses an empty buffer', () => {
      expect(() => decodePgoutput(Buffer.alloc(0))).to.throw(PgoutputDecodeError, /empty/);
    });

    it('refuses a truncated fixed-size field', () => {
      const buf = pg.begin(1n, COMMIT_TIME_US, 1);
      expect(() => decodePgoutput(buf.subarray(0, buf.length - 1))).to.throw(
        PgoutputDecodeError,
        /truncated 'B'/,
      );
    });

    it('refuses a value length past the end', () => {
      const buf = pg.insert(1, ['abc']);
      expect(() => decodePgoutput(buf.subarray(0, buf.length - 1))).to.throw(
        PgoutputDecodeError,
        /runs past the end/,
      );
    });

    it('refuses a Truncate whose relation count exceeds the message', () => {
      const buf = pg.truncate([1, 2], 0);
      buf.writeInt32BE(1_000_000_000, 1);
      expect(() => decodePgoutput(buf)).to.throw(PgoutputDecodeError, /runs past the end/);
    });

    it('refuses an unterminated string', () => {
      const buf = pg.origin(1n, 'abc');
      expect(() => decodePgoutput(buf.subarray(0, buf.length - 1))).to.throw(
        PgoutputDecodeError,
        /unterminated/,
      );
    });

    it('refuses trailing bytes (a layout mismatch)', () => {
      const buf = Buffer.concat([pg.commit(1n, 2n, COMMIT_TIME_US), Buffer.from([0])]);
      expect(() => decodePgoutput(buf)).to.throw(PgoutputDecodeError, /1 unexpected trailing bytes/);
    });

    it('refuses an unknown tuple column kind without showing the data', () => {
      const buf = pg.insert(1, ['secret']);
      buf[buf.length - 11] = 'x'.charCodeAt(0);
      expect(() => decodePgoutput(buf))
        .to.throw(PgoutputDecodeError, /unknown tuple column kind 'x'/)
        .with.property('message')
        .that.does.not.include('secret');
    });

    it('refuses a missing new tuple marker', () => {
      const buf = pg.insert(1, []);
      buf[5] = 'X'.charCodeAt(0);
      expect(() => decodePgoutput(buf)).to.throw(PgoutputDecodeError, /expected 'N'/);
    });

    it('refuses streaming and two-phase messages with the setting to change', () => {
      for (const kind of ['S', 'E', 'c', 'A', 'b', 'P', 'K', 'r', 'p']) {
        expect(() => decodePgoutput(Buffer.from(kind + '\0\0\0\0'))).to.throw(
          PgoutputDecodeError,
          /streaming and two_phase off/,
        );
      }
    });

    it('refuses an unknown message kind', () => {
      expect(() => decodePgoutput(Buffer.from('Z'))).to.throw(
        PgoutputDecodeError,
        /unknown pgoutput message kind 'Z'/,
      );
    });
  });
});
