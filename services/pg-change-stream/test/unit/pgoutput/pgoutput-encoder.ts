/**
 * Builds pgoutput messages byte by byte, following "Logical Replication Message Formats" of the PostgreSQL
 * documentation, so the decoder is tested against the documented layout rather than against itself.
 */
import { UNCHANGED_TOAST, type ReplicaIdentityChar, type TupleValue } from '../../../src/pgoutput/decoder.js';
import { unixToPgMicros } from '../../../src/pgoutput/time.js';

export class ByteWriter {
  private readonly parts: Buffer[] = [];

  byte(char: string): this {
    return this.uint8(char.charCodeAt(0));
  }

  uint8(value: number): this {
    this.parts.push(Buffer.from([value]));
    return this;
  }

  int16(value: number): this {
    const buf = Buffer.alloc(2);
    buf.writeInt16BE(value);
    this.parts.push(buf);
    return this;
  }

  int32(value: number): this {
    const buf = Buffer.alloc(4);
    buf.writeInt32BE(value);
    this.parts.push(buf);
    return this;
  }

  uint32(value: number): this {
    const buf = Buffer.alloc(4);
    buf.writeUInt32BE(value);
    this.parts.push(buf);
    return this;
  }

  uint64(value: bigint): this {
    const buf = Buffer.alloc(8);
    buf.writeBigUInt64BE(value);
    this.parts.push(buf);
    return this;
  }

  int64(value: bigint): this {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64BE(value);
    this.parts.push(buf);
    return this;
  }

  cstring(value: string): this {
    this.parts.push(Buffer.from(value, 'utf8'), Buffer.from([0]));
    return this;
  }

  bytes(value: Buffer): this {
    this.parts.push(value);
    return this;
  }

  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function writeTuple(w: ByteWriter, values: readonly TupleValue[]): void {
  w.int16(values.length);
  for (const value of values) {
    if (value === null) w.byte('n');
    else if (value === UNCHANGED_TOAST) w.byte('u');
    else if (typeof value === 'string') {
      const text = Buffer.from(value, 'utf8');
      w.byte('t').int32(text.length).bytes(text);
    } else w.byte('b').int32(value.length).bytes(value);
  }
}

export function begin(finalLsn: bigint, commitTimeUs: bigint, xid: number): Buffer {
  return new ByteWriter().byte('B').uint64(finalLsn).int64(unixToPgMicros(commitTimeUs)).uint32(xid).done();
}

export function commit(commitLsn: bigint, endLsn: bigint, commitTimeUs: bigint): Buffer {
  return new ByteWriter()
    .byte('C')
    .uint8(0)
    .uint64(commitLsn)
    .uint64(endLsn)
    .int64(unixToPgMicros(commitTimeUs))
    .done();
}

export function origin(originLsn: bigint, name: string): Buffer {
  return new ByteWriter().byte('O').uint64(originLsn).cstring(name).done();
}

export interface TestColumn {
  name: string;
  typeOid: number;
  typmod?: number;
  key?: boolean;
}

export function relation(
  relationId: number,
  namespace: string,
  name: string,
  columns: readonly TestColumn[],
  replicaIdentity: ReplicaIdentityChar = 'd',
): Buffer {
  const w = new ByteWriter()
    .byte('R')
    .uint32(relationId)
    .cstring(namespace)
    .cstring(name)
    .byte(replicaIdentity)
    .int16(columns.length);
  for (const column of columns) {
    w.uint8(column.key ? 1 : 0)
      .cstring(column.name)
      .uint32(column.typeOid)
      .int32(column.typmod ?? -1);
  }
  return w.done();
}

export function type(typeOid: number, namespace: string, name: string): Buffer {
  return new ByteWriter().byte('Y').uint32(typeOid).cstring(namespace).cstring(name).done();
}

export function insert(relationId: number, values: readonly TupleValue[]): Buffer {
  const w = new ByteWriter().byte('I').uint32(relationId).byte('N');
  writeTuple(w, values);
  return w.done();
}

export function update(
  relationId: number,
  values: readonly TupleValue[],
  old?: { kind: 'K' | 'O'; values: readonly TupleValue[] },
): Buffer {
  const w = new ByteWriter().byte('U').uint32(relationId);
  if (old) {
    w.byte(old.kind);
    writeTuple(w, old.values);
  }
  w.byte('N');
  writeTuple(w, values);
  return w.done();
}

export function del(relationId: number, kind: 'K' | 'O', values: readonly TupleValue[]): Buffer {
  const w = new ByteWriter().byte('D').uint32(relationId).byte(kind);
  writeTuple(w, values);
  return w.done();
}

export function truncate(relationIds: readonly number[], options: number): Buffer {
  const w = new ByteWriter().byte('T').int32(relationIds.length).uint8(options);
  for (const id of relationIds) w.uint32(id);
  return w.done();
}

export function message(transactional: boolean, lsn: bigint, prefix: string, content: Buffer): Buffer {
  return new ByteWriter()
    .byte('M')
    .uint8(transactional ? 1 : 0)
    .uint64(lsn)
    .cstring(prefix)
    .int32(content.length)
    .bytes(content)
    .done();
}
