import { expect } from 'chai';
import { PgoutputDecodeError } from '../../../src/pgoutput/decoder.js';
import {
  STANDBY_STATUS_UPDATE_LENGTH,
  decodeReplicationMessage,
  encodeStandbyStatusUpdate,
} from '../../../src/pgoutput/replication-messages.js';
import { PG_EPOCH_OFFSET_US } from '../../../src/pgoutput/time.js';

function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ''), 'hex');
}

describe('streaming replication messages', () => {
  it("decodes XLogData ('w'): start, end, server clock, and the payload as a view", () => {
    const buf = hex(`77
      00000001 00000010
      00000001 00000020
      00000000 00000064
      42 0102`);
    const message = decodeReplicationMessage(buf);
    expect(message).to.deep.equal({
      tag: 'xlogdata',
      walStart: 0x1_00000010n,
      walEnd: 0x1_00000020n,
      sendTimeUs: PG_EPOCH_OFFSET_US + 100n,
      payload: hex('420102'),
    });
    if (message.tag !== 'xlogdata') throw new Error('not XLogData');
    expect(message.payload.buffer).to.equal(buf.buffer);
  });

  it('decodes XLogData with an empty payload', () => {
    const message = decodeReplicationMessage(Buffer.concat([Buffer.from('w'), Buffer.alloc(24)]));
    expect(message).to.include({ tag: 'xlogdata', walStart: 0n });
    expect(message).to.have.property('payload').with.length(0);
  });

  it("decodes Primary keepalive ('k') with and without a reply request", () => {
    const asking = hex(`6B FFFFFFFF FFFFFFF0 0000000000000000 01`);
    expect(decodeReplicationMessage(asking)).to.deep.equal({
      tag: 'keepalive',
      walEnd: 0xffffffff_fffffff0n,
      sendTimeUs: PG_EPOCH_OFFSET_US,
      replyRequested: true,
    });
    const quiet = hex(`6B 0000000000000005 0000000000000001 00`);
    expect(decodeReplicationMessage(quiet)).to.include({ walEnd: 5n, replyRequested: false });
  });

  it('refuses unknown kinds and wrong lengths', () => {
    expect(() => decodeReplicationMessage(Buffer.alloc(0))).to.throw(PgoutputDecodeError, /empty/);
    expect(() => decodeReplicationMessage(hex('6B 00'))).to.throw(
      PgoutputDecodeError,
      /kind 0x6b with 2 bytes/,
    );
    expect(() => decodeReplicationMessage(Buffer.concat([Buffer.from('w'), Buffer.alloc(23)]))).to.throw(
      PgoutputDecodeError,
    );
    expect(() => decodeReplicationMessage(hex('72 00'))).to.throw(PgoutputDecodeError, /kind 0x72/);
  });

  it("encodes the Standby status update ('r') exactly as documented", () => {
    const buf = encodeStandbyStatusUpdate({
      written: 0x1_6b374d48n,
      flushed: 0x1_6b374d00n,
      applied: 0n,
      clockUs: PG_EPOCH_OFFSET_US + 0x0102n,
      replyRequested: true,
    });
    expect(buf.length).to.equal(STANDBY_STATUS_UPDATE_LENGTH);
    expect(buf.toString('hex')).to.equal(
      [
        '72',
        '000000016b374d48', // written
        '000000016b374d00', // flushed
        '0000000000000000', // applied
        '0000000000000102', // clock, microseconds since 2000-01-01
        '01', // reply requested
      ].join(''),
    );
  });

  it('encodes a clock before 2000 and no reply request', () => {
    const buf = encodeStandbyStatusUpdate({
      written: 1n,
      flushed: 1n,
      applied: 1n,
      clockUs: PG_EPOCH_OFFSET_US - 1n,
      replyRequested: false,
    });
    expect(buf.subarray(25).toString('hex')).to.equal('ffffffffffffffff00');
  });
});
