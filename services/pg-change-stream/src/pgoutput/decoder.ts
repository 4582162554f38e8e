/**
 * Decoder for the messages of PostgreSQL's pgoutput logical decoding plugin ("Logical Replication Message Formats"
 * in the protocol chapter of the PostgreSQL documentation).
 *
 * Supported: protocol version 1 (PostgreSQL 10+) and version 2 (14+) with `streaming` off. Version 2 only adds an
 * xid field to messages sent inside a streamed in-progress transaction (between Stream Start and Stream Stop); with
 * streaming off those never occur, so the layouts are the version 1 layouts. The Message ('M') kind exists from
 * PostgreSQL 14 when the `messages` option is on; binary tuple values ('b') only with the `binary` option. Stream
 * and two-phase messages (versions 2 and 3 with `streaming` or `two_phase` on) are refused with an explanation
 * rather than misread, because their layout depends on state outside the single message.
 *
 * The decoder is pure and makes one pass over the buffer: text is decoded straight from it, binary values and
 * message contents are views into it (no copies).
 */
import { KashoError } from '@kasho/common/errors';
import { pgToUnixMicros } from './time.js';

/** The server did not send the value of an unchanged TOASTed column: the target keeps what it has. */
export const UNCHANGED_TOAST: unique symbol = Symbol('unchanged TOAST value');

/**
 * One column of a TupleData: `null` for NULL, UNCHANGED_TOAST, a string for a text-format value (the type's output
 * function, exact), or a Buffer for a binary-format value (a view into the decoded message).
 */
export type TupleValue = string | null | typeof UNCHANGED_TOAST | Buffer;

export interface BeginMessage {
  tag: 'begin';
  /** The commit LSN of the transaction ("final LSN"). */
  finalLsn: bigint;
  /** Microseconds since the Unix epoch. */
  commitTimeUs: bigint;
  xid: number;
}

export interface CommitMessage {
  tag: 'commit';
  flags: number;
  commitLsn: bigint;
  endLsn: bigint;
  /** Microseconds since the Unix epoch. */
  commitTimeUs: bigint;
}

export interface OriginMessage {
  tag: 'origin';
  originLsn: bigint;
  name: string;
}

/** pg_class.relreplident: default (primary key), nothing, full, index. */
export type ReplicaIdentityChar = 'd' | 'n' | 'f' | 'i';

export interface RelationColumn {
  /** Part of the replica identity (flag bit 1). */
  key: boolean;
  name: string;
  typeOid: number;
  typeModifier: number;
}

export interface RelationMessage {
  tag: 'relation';
  relationId: number;
  /** As sent: the empty string stands for pg_catalog. */
  namespace: string;
  name: string;
  replicaIdentity: ReplicaIdentityChar;
  columns: RelationColumn[];
}

export interface TypeMessage {
  tag: 'type';
  typeOid: number;
  /** As sent: the empty string stands for pg_catalog. For a domain the server sends its base type's name. */
  namespace: string;
  name: string;
}

export interface InsertMessage {
  tag: 'insert';
  relationId: number;
  newTuple: TupleValue[];
}

/** 'key': the old replica identity columns ('K'); 'full': the whole old row ('O', REPLICA IDENTITY FULL). */
export type OldTupleKind = 'key' | 'full';

export interface UpdateMessage {
  tag: 'update';
  relationId: number;
  /** Absent when the replica identity did not change (and the identity is not FULL). */
  oldKind: OldTupleKind | null;
  oldTuple: TupleValue[] | null;
  newTuple: TupleValue[];
}

export interface DeleteMessage {
  tag: 'delete';
  relationId: number;
  oldKind: OldTupleKind;
  oldTuple: TupleValue[];
}

export interface TruncateMessage {
  tag: 'truncate';
  /** The raw option bits: 1 CASCADE, 2 RESTART IDENTITY. */
  options: number;
  cascade: boolean;
  restartIdentity: boolean;
  relationIds: number[];
}

/** A message written with pg_logical_emit_message(). */
export interface LogicalDecodingMessage {
  tag: 'message';
  transactional: boolean;
  lsn: bigint;
  prefix: string;
  /** A view into the decoded buffer. */
  content: Buffer;
}

export type PgoutputMessage =
  | BeginMessage
  | CommitMessage
  | OriginMessage
  | RelationMessage
  | TypeMessage
  | InsertMessage
  | UpdateMessage
  | DeleteMessage
  | TruncateMessage
  | LogicalDecodingMessage;

export const TRUNCATE_CASCADE = 1;
export const TRUNCATE_RESTART_IDENTITY = 2;

const DECODE_HINT =
  'Kasho reads pgoutput protocol version 1 or 2 with streaming and two_phase off; this is a bug or an unsupported ' +
  'server setting. Report it with the PostgreSQL version.';

/** A message does not have the layout pgoutput defines. Never carries row values. */
export class PgoutputDecodeError extends KashoError {
  constructor(message: string) {
    super(message, DECODE_HINT);
  }
}

const UNSUPPORTED_KINDS: Readonly<Record<string, string>> = {
  S: 'Stream Start',
  E: 'Stream Stop',
  c: 'Stream Commit',
  A: 'Stream Abort',
  p: 'Stream Prepare',
  b: 'Begin Prepare',
  P: 'Prepare',
  K: 'Commit Prepared',
  r: 'Rollback Prepared',
};

class Reader {
  offset = 0;

  constructor(readonly buf: Buffer) {}

  uint8(): number {
    return this.buf.readUInt8(this.offset++);
  }

  int16(): number {
    const value = this.buf.readInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  int32(): number {
    const value = this.buf.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  /** OIDs and xids are unsigned 32-bit. */
  uint32(): number {
    const value = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  uint64(): bigint {
    const value = this.buf.readBigUInt64BE(this.offset);
    this.offset += 8;
    return value;
  }

  int64(): bigint {
    const value = this.buf.readBigInt64BE(this.offset);
    this.offset += 8;
    return value;
  }

  /** A NUL-terminated UTF-8 string. */
  cstring(): string {
    const end = this.buf.indexOf(0, this.offset);
    if (end < 0)
      throw new PgoutputDecodeError(`unterminated string at byte ${this.offset} of ${this.buf.length}`);
    const value = this.buf.toString('utf8', this.offset, end);
    this.offset = end + 1;
    return value;
  }

  /** Checks a length field before it is used: toString and subarray would silently clamp it. */
  ensure(length: number): void {
    if (length < 0 || this.offset + length > this.buf.length) {
      throw new PgoutputDecodeError(
        `length ${length} at byte ${this.offset} runs past the end (${this.buf.length} bytes)`,
      );
    }
  }

  span(length: number): number {
    this.ensure(length);
    const start = this.offset;
    this.offset = start + length;
    return start;
  }

  text(length: number): string {
    const start = this.span(length);
    return this.buf.toString('utf8', start, this.offset);
  }

  bytes(length: number): Buffer {
    const start = this.span(length);
    return this.buf.subarray(start, this.offset);
  }

  tupleData(): TupleValue[] {
    const count = this.int16();
    const values = new Array<TupleValue>(count);
    for (let i = 0; i < count; i++) {
      const kind = this.uint8();
      switch (kind) {
        case 0x74: // 't'
          values[i] = this.text(this.int32());
          break;
        case 0x6e: // 'n'
          values[i] = null;
          break;
        case 0x75: // 'u'
          values[i] = UNCHANGED_TOAST;
          break;
        case 0x62: // 'b'
          values[i] = this.bytes(this.int32());
          break;
        default:
          throw new PgoutputDecodeError(
            `unknown tuple column kind ${describeByte(kind)} at byte ${this.offset - 1} (column ${i + 1} of ${count})`,
          );
      }
    }
    return values;
  }

  expectNewTuple(): void {
    const byte = this.uint8();
    if (byte !== 0x4e) {
      throw new PgoutputDecodeError(
        `expected 'N' (new tuple) at byte ${this.offset - 1}, got ${describeByte(byte)}`,
      );
    }
  }
}

function oldTupleKind(byte: number): OldTupleKind | null {
  if (byte === 0x4b) return 'key'; // 'K'
  if (byte === 0x4f) return 'full'; // 'O'
  return null;
}

function describeByte(byte: number): string {
  return byte >= 0x20 && byte < 0x7f ? `'${String.fromCharCode(byte)}'` : `0x${byte.toString(16)}`;
}

function decodeBegin(r: Reader): BeginMessage {
  const finalLsn = r.uint64();
  const commitTimeUs = pgToUnixMicros(r.int64());
  return { tag: 'begin', finalLsn, commitTimeUs, xid: r.uint32() };
}

function decodeCommit(r: Reader): CommitMessage {
  const flags = r.uint8();
  const commitLsn = r.uint64();
  const endLsn = r.uint64();
  return { tag: 'commit', flags, commitLsn, endLsn, commitTimeUs: pgToUnixMicros(r.int64()) };
}

function decodeOrigin(r: Reader): OriginMessage {
  const originLsn = r.uint64();
  return { tag: 'origin', originLsn, name: r.cstring() };
}

function decodeRelation(r: Reader): RelationMessage {
  const relationId = r.uint32();
  const namespace = r.cstring();
  const name = r.cstring();
  const identityByte = r.uint8();
  const replicaIdentity = String.fromCharCode(identityByte);
  if (
    replicaIdentity !== 'd' &&
    replicaIdentity !== 'n' &&
    replicaIdentity !== 'f' &&
    replicaIdentity !== 'i'
  ) {
    throw new PgoutputDecodeError(
      `unknown replica identity ${describeByte(identityByte)} in a Relation message`,
    );
  }
  const count = r.int16();
  const columns = new Array<RelationColumn>(count);
  for (let i = 0; i < count; i++) {
    const flags = r.uint8();
    const columnName = r.cstring();
    const typeOid = r.uint32();
    columns[i] = { key: (flags & 1) !== 0, name: columnName, typeOid, typeModifier: r.int32() };
  }
  return { tag: 'relation', relationId, namespace, name, replicaIdentity, columns };
}

function decodeType(r: Reader): TypeMessage {
  const typeOid = r.uint32();
  const namespace = r.cstring();
  return { tag: 'type', typeOid, namespace, name: r.cstring() };
}

function decodeInsert(r: Reader): InsertMessage {
  const relationId = r.uint32();
  r.expectNewTuple();
  return { tag: 'insert', relationId, newTuple: r.tupleData() };
}

function decodeUpdate(r: Reader): UpdateMessage {
  const relationId = r.uint32();
  const marker = r.uint8();
  const oldKind = oldTupleKind(marker);
  let oldTuple: TupleValue[] | null = null;
  if (oldKind) {
    oldTuple = r.tupleData();
    r.expectNewTuple();
  } else if (marker !== 0x4e) {
    throw new PgoutputDecodeError(
      `expected 'K', 'O' or 'N' in an Update message, got ${describeByte(marker)}`,
    );
  }
  return { tag: 'update', relationId, oldKind, oldTuple, newTuple: r.tupleData() };
}

function decodeDelete(r: Reader): DeleteMessage {
  const relationId = r.uint32();
  const marker = r.uint8();
  const oldKind = oldTupleKind(marker);
  if (!oldKind)
    throw new PgoutputDecodeError(`expected 'K' or 'O' in a Delete message, got ${describeByte(marker)}`);
  return { tag: 'delete', relationId, oldKind, oldTuple: r.tupleData() };
}

function decodeTruncate(r: Reader): TruncateMessage {
  const count = r.int32();
  const options = r.uint8();
  r.ensure(count * 4);
  const relationIds = new Array<number>(count);
  for (let i = 0; i < count; i++) relationIds[i] = r.uint32();
  return {
    tag: 'truncate',
    options,
    cascade: (options & TRUNCATE_CASCADE) !== 0,
    restartIdentity: (options & TRUNCATE_RESTART_IDENTITY) !== 0,
    relationIds,
  };
}

function decodeMessage(r: Reader): LogicalDecodingMessage {
  const flags = r.uint8();
  const lsn = r.uint64();
  const prefix = r.cstring();
  return { tag: 'message', transactional: (flags & 1) !== 0, lsn, prefix, content: r.bytes(r.int32()) };
}

function decodeBody(kind: number, r: Reader): PgoutputMessage {
  switch (kind) {
    case 0x49: // 'I'
      return decodeInsert(r);
    case 0x55: // 'U'
      return decodeUpdate(r);
    case 0x44: // 'D'
      return decodeDelete(r);
    case 0x42: // 'B'
      return decodeBegin(r);
    case 0x43: // 'C'
      return decodeCommit(r);
    case 0x52: // 'R'
      return decodeRelation(r);
    case 0x59: // 'Y'
      return decodeType(r);
    case 0x4f: // 'O'
      return decodeOrigin(r);
    case 0x54: // 'T'
      return decodeTruncate(r);
    case 0x4d: // 'M'
      return decodeMessage(r);
  }
  const unsupported = UNSUPPORTED_KINDS[String.fromCharCode(kind)];
  if (unsupported) {
    throw new PgoutputDecodeError(
      `pgoutput sent a ${unsupported} message: start replication with streaming and two_phase off`,
    );
  }
  throw new PgoutputDecodeError(`unknown pgoutput message kind ${describeByte(kind)}`);
}

/** Decodes one pgoutput message (the payload of one XLogData, or one row of pg_logical_slot_*_binary_changes). */
export function decodePgoutput(buf: Buffer): PgoutputMessage {
  if (buf.length === 0) throw new PgoutputDecodeError('empty pgoutput message');
  const r = new Reader(buf);
  const kind = r.uint8();
  let message: PgoutputMessage;
  try {
    message = decodeBody(kind, r);
  } catch (error) {
    if (error instanceof RangeError) {
      throw new PgoutputDecodeError(`truncated ${describeByte(kind)} message (${buf.length} bytes)`);
    }
    throw error;
  }
  if (r.offset !== buf.length) {
    throw new PgoutputDecodeError(
      `${buf.length - r.offset} unexpected trailing bytes after a ${describeByte(kind)} message`,
    );
  }
  return message;
}
