import type { Position } from './gen/kasho/change_stream.js';

/**
 * How the change stream lives in Redis. pg-change-stream writes live changes, pg-bootstrap-sync writes the
 * snapshot, pg-change-stream serves both. Every key is scoped by the slot name so several pipelines can share a
 * Redis.
 *
 * Entries are Redis stream entries whose ID *is* the event's position ("<lsn>-<seq>"), so ordering, resuming
 * strictly after a position (XRANGE with an exclusive start) and trimming what was acknowledged (XTRIM MINID)
 * are Redis operations. Snapshot events all have lsn 0 and would sort before live ones that already exist, so
 * they have a stream of their own, served first.
 */
export interface BufferKeys {
  /** Live changes, IDs "<commit lsn>-<seq>". */
  changes: string;
  /** Snapshot rows as pseudo-transactions, IDs "0-<seq>". */
  bootstrap: string;
  /** Hash: "<relation id>:<version>" -> encoded Relation. */
  relations: string;
  /** Hash: the change-stream's persisted state (see ChangeStreamState). */
  state: string;
}

export function bufferKeys(slotName: string): BufferKeys {
  const prefix = `kasho:${slotName}`;
  return {
    changes: `${prefix}:changes`,
    bootstrap: `${prefix}:bootstrap`,
    relations: `${prefix}:relations`,
    state: `${prefix}:state`,
  };
}

/** The field of a stream entry that holds the encoded Change. */
export const ENTRY_FIELD = 'c';

export function positionToStreamId(position: Position): string {
  return `${position.lsn}-${position.seq}`;
}

export function streamIdToPosition(id: string): Position {
  const dash = id.indexOf('-');
  if (dash <= 0) throw new Error(`"${id}" is not a stream entry ID`);
  return { lsn: BigInt(id.slice(0, dash)), seq: BigInt(id.slice(dash + 1)) };
}

export function relationField(relationId: number, version: number): string {
  return `${relationId}:${version}`;
}

export function comparePositions(a: Position, b: Position): number {
  if (a.lsn !== b.lsn) return a.lsn < b.lsn ? -1 : 1;
  if (a.seq !== b.seq) return a.seq < b.seq ? -1 : 1;
  return 0;
}

export const START_POSITION: Position = { lsn: 0n, seq: 0n };
