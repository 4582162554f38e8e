import { Change, type Position, type Relation } from '@kasho/common';

/**
 * Builds StreamResponse wire bytes from already-encoded Change messages: `repeated Change changes = 1` is each
 * change as field 1, length-delimited. Buffered entries are sent as stored, without decoding and re-encoding.
 */
export function encodeStreamResponse(encodedChanges: readonly Buffer[]): Buffer {
  let size = 0;
  for (const change of encodedChanges) size += 1 + varintLength(change.length) + change.length;
  const out = Buffer.allocUnsafe(size);
  let offset = 0;
  for (const change of encodedChanges) {
    out[offset++] = 0x0a;
    offset = writeVarint(out, offset, change.length);
    change.copy(out, offset);
    offset += change.length;
  }
  return out;
}

/** A Relation event placed just before the row that first refers to it on a connection. */
export function encodeRelationEvent(relation: Relation, position: Position): Buffer {
  return Buffer.from(Change.encode({ position, kind: { $case: 'relation', value: relation } }).finish());
}

function varintLength(value: number): number {
  let length = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    length++;
  }
  return length;
}

function writeVarint(out: Buffer, offset: number, value: number): number {
  while (value >= 0x80) {
    out[offset++] = (value & 0x7f) | 0x80;
    value = Math.floor(value / 128);
  }
  out[offset++] = value;
  return offset;
}
