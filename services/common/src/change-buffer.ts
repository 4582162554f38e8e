import type { Redis } from 'ioredis';
import {
  bufferKeys,
  ENTRY_FIELD,
  positionToStreamId,
  relationField,
  streamIdToPosition,
  type BufferKeys,
} from './buffer-layout.js';
import { KashoError } from './errors.js';
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

/** A guarded write found the state hash gone: Redis lost the buffer. */
export class BufferLostError extends KashoError {}

const BUFFER_LOST_REPLY = 'KASHO_BUFFER_LOST';

/**
 * KEYS: state hash, relations hash, stream. ARGV: guard ("1" to require the state hash), the number of relations,
 * (field, encoded relation) pairs, the number of changes, (id, encoded change, relation field or "") triples, then
 * (field, value) pairs for the state hash. Scripts run atomically, and the guard is checked before any write.
 */
const APPEND_SCRIPT = `
if ARGV[1] == '1' and redis.call('HEXISTS', KEYS[1], 'state') == 0 then
  return redis.error_reply('${BUFFER_LOST_REPLY}')
end
local i = 2
local relations = tonumber(ARGV[i])
i = i + 1
for _ = 1, relations do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
local changes = tonumber(ARGV[i])
i = i + 1
for _ = 1, changes do
  if ARGV[i + 2] == '' then
    redis.call('XADD', KEYS[3], ARGV[i], '${ENTRY_FIELD}', ARGV[i + 1])
  else
    redis.call('XADD', KEYS[3], ARGV[i], '${ENTRY_FIELD}', ARGV[i + 1], '${RELATION_FIELD}', ARGV[i + 2])
  end
  i = i + 3
end
while i < #ARGV do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 2
end
return changes
`;

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
   * Appends changes and relation definitions atomically (one Lua script, one round trip), plus any state fields to
   * record in the same step, so a crash never leaves the state claiming more than the stream holds. With
   * `requireState`, nothing is written and BufferLostError is thrown when the state hash has no `state` field: the
   * buffer was wiped (FLUSHALL, a Redis restarted without its data) and writing on would build a stream with a
   * hole in it.
   */
  async append(
    stream: StreamName,
    changes: Change[],
    relations: Relation[] = [],
    state: Record<string, string> = {},
    options: { requireState?: boolean } = {},
  ): Promise<void> {
    if (changes.length === 0 && relations.length === 0 && Object.keys(state).length === 0) return;
    const args: (string | Buffer)[] = [options.requireState ? '1' : '0', String(relations.length)];
    for (const relation of relations) {
      args.push(
        relationField(relation.relationId, relation.version),
        Buffer.from(Relation.encode(relation).finish()),
      );
    }
    args.push(String(changes.length));
    for (const change of changes) {
      if (!change.position) throw new Error('a buffered change must have a position');
      args.push(
        positionToStreamId(change.position),
        Buffer.from(Change.encode(change).finish()),
        relationOf(change) ?? '',
      );
    }
    for (const [name, value] of Object.entries(state)) args.push(name, value);
    await this.runScript(
      'kashoAppend',
      [this.keys.state, this.keys.relations, this.keys[stream]],
      args,
      'Redis refused a buffer write',
    );
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

  /**
   * The ID of the last entry ever added to a stream (XINFO STREAM last-generated-id), also when it was trimmed or
   * deleted since: Redis refuses to add an ID at or below it. Undefined when the stream does not exist.
   */
  async lastId(stream: StreamName): Promise<Position | undefined> {
    let info: unknown[];
    try {
      info = (await this.redis.call('XINFO', 'STREAM', this.keys[stream])) as unknown[];
    } catch (error) {
      if (/no such key/i.test((error as Error).message)) return undefined;
      throw error;
    }
    const index = info.indexOf('last-generated-id');
    const id = index >= 0 ? info[index + 1] : undefined;
    return typeof id === 'string' && id !== '0-0' ? streamIdToPosition(id) : undefined;
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

  /** Sets state fields; with `requireState`, only while the state hash still exists (see append). */
  async writeState(fields: Record<string, string>, options: { requireState?: boolean } = {}): Promise<void> {
    if (!options.requireState) {
      await this.redis.hset(this.keys.state, fields);
      return;
    }
    const args = ['1', '0', '0', ...Object.entries(fields).flat()];
    await this.runScript(
      'kashoAppend',
      [this.keys.state, this.keys.relations, this.keys.changes],
      args,
      'Redis refused a state write',
    );
  }

  /** Whether the state hash is there: false after the buffer was wiped. */
  async hasState(): Promise<boolean> {
    return (await this.redis.hexists(this.keys.state, 'state')) === 1;
  }

  /** Removes the buffer, the relations and the state. */
  async clear(): Promise<void> {
    await this.redis.del(this.keys.changes, this.keys.bootstrap, this.keys.relations, this.keys.state);
  }

  private async runScript(
    name: string,
    keys: string[],
    args: (string | Buffer)[],
    what: string,
  ): Promise<void> {
    const redis = this.redis as Redis & Record<string, unknown>;
    if (typeof redis[name] !== 'function') {
      redis.defineCommand(name, { numberOfKeys: keys.length, lua: APPEND_SCRIPT });
    }
    const run = redis[name] as (...params: (string | Buffer)[]) => Promise<unknown>;
    try {
      await run.call(redis, ...keys, ...args);
    } catch (error) {
      const message = (error as Error).message;
      if (message.includes(BUFFER_LOST_REPLY)) {
        throw new BufferLostError(
          `the Redis buffer ${this.keys.state} lost its state (wiped or restarted without its data)`,
          'pg-change-stream rebuilds the stream from the replication slot; consumers resume from their position.',
        );
      }
      throw new Error(`${what}: ${message}`, { cause: error });
    }
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
