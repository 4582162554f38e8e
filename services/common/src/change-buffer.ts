import type { Redis } from 'ioredis';
import {
  bufferKeys,
  ENTRY_FIELD,
  positionToStreamId,
  relationField,
  streamIdToPosition,
  type BufferKeys,
} from './buffer-layout.js';
import { Change, Relation, type Position } from './gen/kasho/change_stream.js';

/** The field of an entry naming the relation ("id:version") a row change refers to, so readers need not decode. */
const RELATION_FIELD = 'r';

export interface BufferedEntry {
  position: Position;
  /** The encoded Change, as stored. */
  encoded: Buffer;
  /** "<relation id>:<version>" for row changes, else undefined. */
  relation: string | undefined;
}

export type StreamName = 'bootstrap' | 'changes';

function relationOf(change: Change): string | undefined {
  return change.kind?.$case === 'row'
    ? relationField(change.kind.value.relationId, change.kind.value.relationVersion)
    : undefined;
}

/** Entry IDs are positions; the next ID after a position, for exclusive bounds Redis cannot express directly. */
function nextId(position: Position): string {
  return `${position.lsn}-${position.seq + 1n}`;
}

/**
 * The Redis side of the change stream: appending batches in one round trip, reading in order after a position,
 * trimming what was acknowledged. Shared by pg-change-stream (live changes) and pg-bootstrap-sync (snapshot).
 */
export class ChangeBuffer {
  readonly keys: BufferKeys;

  constructor(
    readonly redis: Redis,
    slotName: string,
  ) {
    this.keys = bufferKeys(slotName);
  }

  /**
   * Appends changes and relation definitions atomically (MULTI/EXEC, one round trip), plus any state fields to
   * record in the same step, so a crash never leaves the state claiming more than the stream holds.
   */
  async append(
    stream: StreamName,
    changes: Change[],
    relations: Relation[] = [],
    state: Record<string, string> = {},
  ): Promise<void> {
    if (changes.length === 0 && relations.length === 0 && Object.keys(state).length === 0) return;
    const multi = this.redis.multi();
    for (const relation of relations) {
      multi.hset(
        this.keys.relations,
        relationField(relation.relationId, relation.version),
        Buffer.from(Relation.encode(relation).finish()),
      );
    }
    const key = this.keys[stream];
    for (const change of changes) {
      if (!change.position) throw new Error('a buffered change must have a position');
      const relation = relationOf(change);
      const encoded = Buffer.from(Change.encode(change).finish());
      if (relation === undefined) {
        multi.xadd(key, positionToStreamId(change.position), ENTRY_FIELD, encoded);
      } else {
        multi.xadd(key, positionToStreamId(change.position), ENTRY_FIELD, encoded, RELATION_FIELD, relation);
      }
    }
    if (Object.keys(state).length > 0) multi.hset(this.keys.state, state);
    const results = await multi.exec();
    const failed = results?.find(([error]) => error);
    if (!results || failed) {
      throw new Error(`Redis refused a buffer write: ${failed?.[0]?.message ?? 'transaction aborted'}`);
    }
  }

  /** Up to `count` entries strictly after `after`, in order. */
  async readAfter(stream: StreamName, after: Position, count: number): Promise<BufferedEntry[]> {
    const raw = await this.redis.xrangeBuffer(this.keys[stream], nextId(after), '+', 'COUNT', count);
    return raw.map(([id, fields]) => toEntry(id.toString(), fields));
  }

  /** The last entry of a stream, if any. */
  async last(stream: StreamName): Promise<BufferedEntry | undefined> {
    const raw = await this.redis.xrevrangeBuffer(this.keys[stream], '+', '-', 'COUNT', 1);
    const first = raw[0];
    return first ? toEntry(first[0].toString(), first[1]) : undefined;
  }

  /** Removes the entries of one transaction (a partial write left by a crash). */
  async deleteTransaction(lsn: bigint): Promise<number> {
    const ids = await this.redis.xrange(this.keys.changes, `${lsn}-0`, `${lsn}-18446744073709551615`);
    if (ids.length === 0) return 0;
    return this.redis.xdel(this.keys.changes, ...ids.map(([id]) => id));
  }

  /** Drops everything up to and including `position` (acknowledged by the consumer). */
  async trimThrough(position: Position): Promise<void> {
    if (position.lsn === 0n) {
      await this.redis.xtrim(this.keys.bootstrap, 'MINID', nextId(position));
      return;
    }
    await this.redis
      .multi()
      .del(this.keys.bootstrap)
      .xtrim(this.keys.changes, 'MINID', nextId(position))
      .exec();
  }

  async length(stream: StreamName): Promise<number> {
    return this.redis.xlen(this.keys[stream]);
  }

  async relation(field: string): Promise<Relation | undefined> {
    const raw = await this.redis.hgetBuffer(this.keys.relations, field);
    return raw ? Relation.decode(raw) : undefined;
  }

  async allRelations(): Promise<Relation[]> {
    const raw = await this.redis.hgetallBuffer(this.keys.relations);
    return Object.values(raw).map((encoded) => Relation.decode(encoded));
  }

  async readState(): Promise<Record<string, string>> {
    return this.redis.hgetall(this.keys.state);
  }

  async writeState(fields: Record<string, string>): Promise<void> {
    await this.redis.hset(this.keys.state, fields);
  }

  /** Removes the buffer, the relations and the state. */
  async clear(): Promise<void> {
    await this.redis.del(this.keys.changes, this.keys.bootstrap, this.keys.relations, this.keys.state);
  }
}

function toEntry(id: string, fields: Buffer[]): BufferedEntry {
  let encoded: Buffer | undefined;
  let relation: string | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!.toString();
    if (name === ENTRY_FIELD) encoded = fields[i + 1];
    else if (name === RELATION_FIELD) relation = fields[i + 1]!.toString();
  }
  if (!encoded) throw new Error(`buffer entry ${id} has no change`);
  return { position: streamIdToPosition(id), encoded, relation };
}
