import { EventEmitter } from 'node:events';
import {
  BufferLostError,
  comparePositions,
  KashoError,
  type Change,
  type ChangeBuffer,
  type Logger,
  type Position,
  type Relation,
} from '@kasho/common';
import { decodePgoutput } from '../pgoutput/decoder.js';
import { RelationCache } from '../pgoutput/relations.js';
import { decodeReplicationMessage, encodeStandbyStatusUpdate } from '../pgoutput/replication-messages.js';
import { TransactionAssembler } from '../pgoutput/to-changes.js';
import { ReplicationSession } from '../source/replication-session.js';
import type { SourceDatabase } from '../source/source-database.js';
import { heartbeatLsn, nextFlushLsn } from './flush-position.js';

export interface CaptureOptions {
  databaseUrl: string;
  slotName: string;
  publicationName: string;
  protocolVersion: number;
  withMessages: boolean;
  ddlLogTable: { schema: string; name: string };
  buffer: ChangeBuffer;
  source: SourceDatabase;
  logger: Logger;
  /** Commit LSN the chain continues from when nothing is buffered yet: the slot's start or confirmed position. */
  chainFrom: bigint;
  /** Transactions committed at or before this LSN are already in the buffer (a restart re-sends them). */
  bufferedThrough: bigint | undefined;
  /**
   * The last ID ever added to the changes stream. A transaction cut off half-way by a crash is received again
   * whole; its events up to here are in the buffer already (or were acknowledged and trimmed) and are not written
   * again (Redis refuses IDs at or below the last one anyway).
   */
  appendedThrough: Position | undefined;
  /** Commit LSN up to which the consumer has durably applied. */
  acknowledgedLsn: bigint | undefined;
  relations: Relation[];
  /** Changes per Redis write; a transaction larger than this is written in several batches. */
  batchSize?: number;
  /** Pause reading from PostgreSQL while the buffer holds more unacknowledged changes than this. */
  maxBufferedChanges?: number;
  statusIntervalMs?: number;
}

/** The replication slot is gone: capturing cannot go on, the state has to be reconciled. */
export class SlotMissingError extends KashoError {}

/** Queue length (CopyData messages waiting to be processed) at which the socket is paused. */
const QUEUE_HIGH_WATER = 10_000;
const QUEUE_LOW_WATER = 1_000;

/**
 * Reads the slot and writes every transaction to the Redis buffer, in commit order, in batches. Tells PostgreSQL
 * it may forget WAL only up to what the consumer acknowledged; on an idle database it buffers heartbeats for the
 * consumer to acknowledge (see flush-position.ts). Reconnects with backoff when PostgreSQL goes away; a transaction cut off half-way is received again whole
 * and continues where its written part ends. Stops for good, emitting 'buffer-lost' or 'slot-missing', when the
 * buffer was wiped or the slot dropped: those need the state reconciled, not a retry.
 */
export class Capture extends EventEmitter {
  receivedLsn = 0n;
  lastCommitLsn: bigint | undefined;
  confirmedLsn = 0n;
  changesCaptured = 0;
  connected = false;

  private session: ReplicationSession | undefined;
  private stopped = false;
  /** Ends the backoff wait early when stopping. */
  private wake: () => void = () => undefined;
  /** Ends the current replication session with an error (it reconnects, or stops for good). */
  private failSession: (error: Error) => void = () => undefined;
  private acknowledgedLsn: bigint | undefined;
  private serverWalEnd = 0n;
  private appendedThrough: Position | undefined;
  private queue: Buffer[] = [];
  private draining = false;
  private paused = false;
  private pending: Change[] = [];
  private pendingRelations: Relation[] = [];
  private statusTimer: NodeJS.Timeout | undefined;
  private readonly relations: RelationCache;
  private assembler!: TransactionAssembler;
  private readonly batchSize: number;
  private readonly maxBuffered: number;
  private bufferedLength = 0;

  constructor(private readonly options: CaptureOptions) {
    super();
    this.batchSize = options.batchSize ?? 2_000;
    this.maxBuffered = options.maxBufferedChanges ?? 2_000_000;
    this.acknowledgedLsn = options.acknowledgedLsn;
    this.lastCommitLsn = options.bufferedThrough;
    this.appendedThrough = options.appendedThrough;
    this.relations = new RelationCache((types) => options.source.typeNames(types));
    this.relations.restore(options.relations);
  }

  /** Runs until stop(): connects, streams, and reconnects with capped exponential backoff. */
  async run(): Promise<void> {
    let attempt = 0;
    let outage = false;
    while (!this.stopped) {
      try {
        await this.streamOnce(() => {
          attempt = 0;
          if (outage) this.options.logger.info('Replication connection to the source is back');
          outage = false;
        });
      } catch (error) {
        if (this.stopped) break;
        if (error instanceof BufferLostError || error instanceof SlotMissingError) {
          this.stopped = true;
          if (this.statusTimer) clearInterval(this.statusTimer);
          this.emit(error instanceof BufferLostError ? 'buffer-lost' : 'slot-missing', error.message);
          break;
        }
        if (!outage) {
          this.options.logger.warn(
            `Replication from slot ${this.options.slotName} stopped: ${(error as Error).message}; reconnecting with backoff`,
          );
          this.emit('error-state', (error as Error).message);
        }
        outage = true;
      }
      this.connected = false;
      if (this.stopped) break;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, Math.min(250 * 2 ** Math.min(attempt++, 6), 10_000));
      });
    }
  }

  /** The consumer durably applied every transaction committed at or before `lsn`. */
  acknowledge(lsn: bigint): void {
    if (this.acknowledgedLsn === undefined || lsn > this.acknowledgedLsn) this.acknowledgedLsn = lsn;
    this.sendStatus(false);
  }

  /** The consumer trimmed the buffer; capture may resume if it paused for space. */
  setBufferedLength(length: number): void {
    this.bufferedLength = length;
    this.updatePause();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.statusTimer) clearInterval(this.statusTimer);
    this.wake();
    await this.session?.end();
  }

  private async streamOnce(onConnected: () => void): Promise<void> {
    const slot = await this.options.source.slot(this.options.slotName);
    if (!slot) {
      throw new SlotMissingError(
        `replication slot ${this.options.slotName} does not exist any more: it was dropped while pg-change-stream used it`,
      );
    }
    // The server takes a standby status update at its word: reporting less than the slot's confirmed position
    // would move it backwards.
    if (slot.confirmedFlushLsn !== undefined && slot.confirmedFlushLsn > this.confirmedLsn) {
      this.confirmedLsn = slot.confirmedFlushLsn;
    }
    const session = await ReplicationSession.connect(this.options.databaseUrl, 'kasho-change-stream');
    if (this.stopped) {
      await session.end();
      return;
    }
    this.session = session;
    this.paused = false;
    this.pending = [];
    this.pendingRelations = [];
    this.queue = [];
    this.assembler = new TransactionAssembler({
      relations: this.relations,
      previousCommitLsn: this.lastCommitLsn ?? this.options.chainFrom,
      deliveredThrough: this.lastCommitLsn,
      ddlLogTable: this.options.ddlLogTable,
    });
    this.bufferedLength = await this.options.buffer.length('changes');
    await new Promise<void>((_resolve, reject) => {
      this.failSession = (error) => {
        reject(error);
        void session.end();
      };
      session.startStreaming(
        this.options.slotName,
        this.options.publicationName,
        this.options.protocolVersion,
        this.options.withMessages,
        0n,
        {
          onCopyData: (chunk) => {
            // pg reuses its receive buffer once this event returns; the queue outlives it.
            this.queue.push(Buffer.from(chunk));
            this.updatePause();
            void this.drain().catch((error: Error) => this.failSession(error));
          },
          onEnd: (error) => {
            if (isSlotMissing(error)) {
              reject(
                new SlotMissingError(`replication slot ${this.options.slotName} does not exist any more`),
              );
            } else {
              reject(error ?? new Error('the server ended replication'));
            }
          },
        },
      );
      this.connected = true;
      onConnected();
      this.statusTimer ??= setInterval(() => {
        void this.heartbeat().then(() => this.sendStatus(false));
      }, this.options.statusIntervalMs ?? 10_000);
    }).finally(() => {
      this.connected = false;
    });
  }

  private updatePause(): void {
    const shouldPause = this.queue.length > QUEUE_HIGH_WATER || this.bufferedLength > this.maxBuffered;
    const canResume = this.queue.length < QUEUE_LOW_WATER && this.bufferedLength <= this.maxBuffered;
    if (shouldPause && !this.paused) {
      this.paused = true;
      this.session?.pause();
    } else if (this.paused && canResume) {
      this.paused = false;
      this.session?.resume();
    }
  }

  /** Buffers a heartbeat when one is due, in between the received messages (it counts as a transaction). */
  private async heartbeat(): Promise<void> {
    if (this.draining || !this.connected) return;
    const lsn = heartbeatLsn({
      confirmed: this.confirmedLsn,
      acknowledged: this.acknowledgedLsn,
      lastBufferedCommit: this.lastCommitLsn,
      chainFrom: this.options.chainFrom,
      insideTransaction: this.assembler.inTransaction || this.pending.length > 0 || this.queue.length > 0,
      serverWalEnd: this.serverWalEnd,
    });
    if (lsn === undefined) return;
    this.draining = true;
    try {
      const timeUs = BigInt(Date.now()) * 1000n;
      this.pending = [
        {
          position: { lsn, seq: 0n },
          kind: {
            $case: 'begin',
            value: {
              commitLsn: lsn,
              commitTimeUs: timeUs,
              xid: 0,
              previousCommitLsn: this.assembler.lastDeliveredCommitLsn,
              bootstrap: false,
              origin: '',
            },
          },
        },
        {
          position: { lsn, seq: 1n },
          kind: {
            $case: 'commit',
            value: { commitLsn: lsn, endLsn: this.serverWalEnd, commitTimeUs: timeUs },
          },
        },
      ];
      await this.flush();
      this.assembler.markDelivered(lsn);
    } catch (error) {
      this.failSession(error as Error);
    } finally {
      this.draining = false;
    }
    if (this.queue.length > 0) void this.drain().catch((error: Error) => this.failSession(error));
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        const chunk = this.queue.shift()!;
        await this.process(chunk);
        if (this.pending.length >= this.batchSize || (this.queue.length === 0 && this.pending.length > 0)) {
          await this.flush();
        }
        this.updatePause();
      }
    } finally {
      this.draining = false;
    }
  }

  private async process(chunk: Buffer): Promise<void> {
    const message = decodeReplicationMessage(chunk);
    if (message.tag === 'keepalive') {
      if (message.walEnd > this.serverWalEnd) this.serverWalEnd = message.walEnd;
      if (message.replyRequested) this.sendStatus(false);
      return;
    }
    if (message.walEnd > this.receivedLsn) this.receivedLsn = message.walEnd;
    const decoded = decodePgoutput(message.payload);
    const preparing = this.relations.prepare(decoded);
    if (preparing) await preparing;
    const out = this.assembler.process(decoded);
    this.pending.push(...out.changes);
    this.pendingRelations.push(...out.relations);
  }

  private async flush(): Promise<void> {
    const through = this.appendedThrough;
    const changes = through
      ? this.pending.filter((change) => comparePositions(change.position!, through) > 0)
      : this.pending;
    const relations = this.pendingRelations;
    this.pending = [];
    this.pendingRelations = [];
    let committedThrough: bigint | undefined;
    for (const change of changes) {
      if (change.kind?.$case === 'commit') committedThrough = change.kind.value.commitLsn;
    }
    await this.options.buffer.append(
      'changes',
      changes,
      relations,
      committedThrough !== undefined ? { lastCommitLsn: committedThrough.toString() } : {},
      { requireState: true },
    );
    const last = changes[changes.length - 1];
    if (last) this.appendedThrough = last.position;
    this.changesCaptured += changes.length;
    this.bufferedLength += changes.length;
    if (committedThrough !== undefined) {
      this.lastCommitLsn = committedThrough;
      this.emit('committed', committedThrough);
    }
    if (changes.length > 0) this.emit('appended', changes.length);
  }

  /** Sends the standby status update: what was received, and the position PostgreSQL may forget up to. */
  private sendStatus(replyRequested: boolean): void {
    if (!this.session || !this.connected) return;
    const flush = nextFlushLsn({ confirmed: this.confirmedLsn, acknowledged: this.acknowledgedLsn });
    this.confirmedLsn = flush;
    const written = this.receivedLsn > flush ? this.receivedLsn : flush;
    this.session.send(
      encodeStandbyStatusUpdate({
        written,
        flushed: flush,
        applied: flush,
        clockUs: BigInt(Date.now()) * 1000n,
        replyRequested,
      }),
    );
  }
}

/** START_REPLICATION of a slot that does not exist fails with undefined_object. */
function isSlotMissing(error: Error | undefined): boolean {
  return (error as { code?: string } | undefined)?.code === '42704';
}
