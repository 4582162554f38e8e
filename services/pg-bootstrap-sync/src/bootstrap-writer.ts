/**
 * Writes the snapshot's pseudo-transactions to the bootstrap stream of the Redis buffer, after checking that
 * pg-change-stream is ACCUMULATING and the stream is empty. One batch is stored while the next is being built;
 * every append is awaited before the next is sent, so a failed append stops everything after it.
 */
import type { Redis } from 'ioredis';
import {
  BootstrapState,
  ChangeBuffer,
  ChangeStreamApi,
  KashoError,
  type GetStatusResponse,
  type Logger,
} from '@kasho/common';
import type { Batch } from './event-builder.js';

export interface BatchSink {
  /** Resolves once the caller may build the next batch (the one before this is stored). */
  write(batch: Batch): Promise<void>;
}

export interface WriterOptions {
  slotName: string;
  /** Clear a bootstrap stream left by an earlier run instead of refusing. */
  replace: boolean;
  /** pg-change-stream's gRPC address (host:port), to ask its state directly as well. */
  changeStream: string | undefined;
  logger: Logger;
}

const STATUS_TIMEOUT_MS = 15_000;

/** GetStatus of pg-change-stream, with a deadline and a message that says where it tried. */
export async function changeStreamStatus(address: string): Promise<GetStatusResponse> {
  const api = new ChangeStreamApi(address);
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      api.getStatus(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${STATUS_TIMEOUT_MS / 1000}s`)),
          STATUS_TIMEOUT_MS,
        );
      }),
    ]);
  } catch (error) {
    throw new KashoError(
      `Cannot get the status of pg-change-stream at ${address}: ${(error as Error).message}`,
      'Check --change-stream (or CHANGE_STREAM_SERVICE) and that pg-change-stream is running.',
    );
  } finally {
    clearTimeout(timer);
    api.close();
  }
}

export class BootstrapWriter implements BatchSink {
  /** Events stored so far. */
  events = 0;
  private tail: Promise<void> = Promise.resolve();

  private constructor(
    private readonly buffer: ChangeBuffer,
    private readonly slotName: string,
    private readonly epoch: string,
  ) {}

  /** Checks the preconditions, clears a stale stream with `replace`, and returns a writer. */
  static async open(redis: Redis, options: WriterOptions): Promise<BootstrapWriter> {
    const buffer = new ChangeBuffer(redis, options.slotName);
    if (options.changeStream) {
      const status = await changeStreamStatus(options.changeStream);
      if (status.slotName && status.slotName !== options.slotName) {
        throw new KashoError(
          `pg-change-stream at ${options.changeStream} uses slot ${status.slotName}, not ${options.slotName}`,
          'Pass the same slot name with --slot-name (or SLOT_NAME) as pg-change-stream uses.',
        );
      }
      if (status.state !== BootstrapState.ACCUMULATING) {
        throw notAccumulating(BootstrapState[status.state] ?? String(status.state), options.slotName);
      }
    }
    const state = await buffer.readState();
    if (state.state !== 'ACCUMULATING') {
      throw notAccumulating(
        state.state ?? 'not started (no state in Redis)',
        options.slotName,
        buffer.keys.state,
      );
    }
    const existing = await buffer.length('bootstrap');
    // An emptied (trimmed) stream still refuses IDs at or below its last one: only a new key starts at 0-1.
    if (existing > 0 || (await redis.exists(buffer.keys.bootstrap)) === 1) {
      if (!options.replace) {
        throw new KashoError(
          `The bootstrap stream ${buffer.keys.bootstrap} ${existing > 0 ? `already holds ${existing} events` : 'exists (its events were trimmed)'}, from an earlier run`,
          'Run again with --replace to clear it and load the snapshot from the start.',
        );
      }
      await clearBootstrap(buffer);
      options.logger.warn(
        `Cleared ${existing} events of an earlier run from ${buffer.keys.bootstrap} (--replace)`,
      );
    }
    return new BootstrapWriter(buffer, options.slotName, state.epoch ?? '');
  }

  write(batch: Batch): Promise<void> {
    const previous = this.tail;
    const stored = previous.then(() => this.append(batch));
    // Seen by the next write() or by finish(); this keeps it from counting as unhandled meanwhile.
    stored.catch(() => undefined);
    this.tail = stored;
    return previous;
  }

  /** Waits for the last append and checks nothing changed the bootstrap under us. */
  async finish(): Promise<void> {
    await this.tail;
    await this.checkState();
  }

  private async append(batch: Batch): Promise<void> {
    await this.checkState();
    try {
      await this.buffer.append('bootstrap', batch.changes, batch.relations, {}, { requireState: true });
    } catch (error) {
      if (error instanceof KashoError) throw error;
      throw new KashoError(
        `Writing the snapshot to ${this.buffer.keys.bootstrap} failed: ${(error as Error).message}`,
        'The bootstrap stream is incomplete: run pg-bootstrap-sync again with --replace.',
      );
    }
    this.events += batch.changes.length;
  }

  private async checkState(): Promise<void> {
    const [state, epoch] = await this.buffer.redis.hmget(this.buffer.keys.state, 'state', 'epoch');
    if (state !== 'ACCUMULATING') {
      throw new KashoError(
        `pg-change-stream left ACCUMULATING (now ${state ?? 'no state'}) while the snapshot was being written`,
        'The snapshot is incomplete. Reset the bootstrap (ResetBootstrap) and run it again.',
      );
    }
    if ((epoch ?? '') !== this.epoch) {
      throw new KashoError(
        `The bootstrap of slot ${this.slotName} was started again (new epoch) while the snapshot was being written`,
        'Run pg-bootstrap-sync again with the new snapshot and --replace.',
      );
    }
  }
}

function notAccumulating(state: string, slotName: string, key?: string): KashoError {
  return new KashoError(
    `pg-change-stream is ${state} for slot ${slotName}${key ? ` (${key})` : ''}, not ACCUMULATING`,
    'Run pg-bootstrap-sync after StartBootstrap and before CompleteBootstrap (scripts/bootstrap-kasho.sh does), ' +
      'and give it the slot name pg-change-stream uses (--slot-name or SLOT_NAME).',
  );
}

/** Drops the bootstrap stream and the snapshot's relations (version 0; live relations start at version 1). */
async function clearBootstrap(buffer: ChangeBuffer): Promise<void> {
  const fields = await buffer.redis.hkeys(buffer.keys.relations);
  const snapshot = fields.filter((field) => field.endsWith(':0'));
  const multi = buffer.redis.multi().del(buffer.keys.bootstrap);
  if (snapshot.length > 0) multi.hdel(buffer.keys.relations, ...snapshot);
  await multi.exec();
}
