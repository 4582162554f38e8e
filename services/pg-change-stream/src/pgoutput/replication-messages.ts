/**
 * The messages of the streaming replication protocol carried in CopyData after START_REPLICATION ("Streaming
 * Replication Protocol" in the PostgreSQL documentation). These functions work on the CopyData payload; the
 * CopyData framing itself ('d', Int32 length) belongs to the connection. Clocks are microseconds since the Unix
 * epoch on this side and are converted to PostgreSQL's 2000-01-01 epoch on the wire.
 */
import { PgoutputDecodeError } from './decoder.js';
import { pgToUnixMicros, unixToPgMicros } from './time.js';

export interface XLogData {
  tag: 'xlogdata';
  walStart: bigint;
  walEnd: bigint;
  sendTimeUs: bigint;
  /** The pgoutput message: a view into the CopyData payload. */
  payload: Buffer;
}

export interface PrimaryKeepalive {
  tag: 'keepalive';
  walEnd: bigint;
  sendTimeUs: bigint;
  /** The server disconnects after wal_sender_timeout unless a standby status update follows soon. */
  replyRequested: boolean;
}

export type ReplicationMessage = XLogData | PrimaryKeepalive;

const XLOG_DATA_HEADER = 1 + 8 + 8 + 8;
const KEEPALIVE_LENGTH = 1 + 8 + 8 + 1;
export const STANDBY_STATUS_UPDATE_LENGTH = 1 + 8 + 8 + 8 + 8 + 1;

export function decodeReplicationMessage(buf: Buffer): ReplicationMessage {
  const kind = buf.length > 0 ? buf[0] : undefined;
  if (kind === 0x77 && buf.length >= XLOG_DATA_HEADER) {
    return {
      tag: 'xlogdata',
      walStart: buf.readBigUInt64BE(1),
      walEnd: buf.readBigUInt64BE(9),
      sendTimeUs: pgToUnixMicros(buf.readBigInt64BE(17)),
      payload: buf.subarray(XLOG_DATA_HEADER),
    };
  }
  if (kind === 0x6b && buf.length === KEEPALIVE_LENGTH) {
    return {
      tag: 'keepalive',
      walEnd: buf.readBigUInt64BE(1),
      sendTimeUs: pgToUnixMicros(buf.readBigInt64BE(9)),
      replyRequested: buf[17] !== 0,
    };
  }
  const what =
    kind === undefined ? 'an empty message' : `kind 0x${kind.toString(16)} with ${buf.length} bytes`;
  throw new PgoutputDecodeError(`unexpected replication CopyData message: ${what}`);
}

export interface StandbyStatus {
  /** Last WAL byte + 1 received and written. */
  written: bigint;
  /** Last WAL byte + 1 flushed: the slot's confirmed_flush_lsn follows this. */
  flushed: bigint;
  applied: bigint;
  /** This side's clock, microseconds since the Unix epoch. */
  clockUs: bigint;
  replyRequested: boolean;
}

/** The Standby status update ('r') payload, to send in a CopyData message. */
export function encodeStandbyStatusUpdate(status: StandbyStatus): Buffer {
  const buf = Buffer.allocUnsafe(STANDBY_STATUS_UPDATE_LENGTH);
  buf[0] = 0x72;
  buf.writeBigUInt64BE(status.written, 1);
  buf.writeBigUInt64BE(status.flushed, 9);
  buf.writeBigUInt64BE(status.applied, 17);
  buf.writeBigInt64BE(unixToPgMicros(status.clockUs), 25);
  buf[33] = status.replyRequested ? 1 : 0;
  return buf;
}
