import { EventEmitter } from 'node:events';
import type { Change, ChangeBuffer, Logger, Relation } from '@kasho/common';
import { decodePgoutput } from '../pgoutput/decoder.js';
import { RelationCache } from '../pgoutput/relations.js';
import { decodeReplicationMessage, encodeStandbyStatusUpdate } from '../pgoutput/replication-messages.js';
import { TransactionAssembler } from '../pgoutput/to-changes.js';
import { ReplicationSession } from '../source/replication-session.js';
import type { SourceDatabase } from '../source/source-database.js';
import { nextFlushLsn } from './flush-position.js';

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
  /** Commit LSN the chain continues from: the last buffered commit, or the slot's start/confirmed position. */
  chainFrom: bigint;
  /** Transactions committed at or before this LSN are already in the buffer (a restart re-sends them). */
  bufferedThrough: bigint | undefined;
  /** Commit LSN up to which the consumer has durably applied. */
  acknowledgedLsn: bigint | undefined;
  relations: Relation[];
  /** Changes per Redis write; a transaction larger than this is written in several batches. */
  batchSize?: number;
  /** Pause reading from PostgreSQL while the buffer holds more unacknowledged changes than this. */
  maxBufferedChanges?: number;
  statusIntervalMs?: number;
}

/** Queue length (CopyData messages waiting to be processed) at which the socket is paused. */
const QUEUE_HIGH_WATER = 10_000;
const QUEUE_LOW_WATER = 1_000;

/**
 * Reads the slot and writes every transaction to the Redis buffer, in commit order, in batches. Tells PostgreSQL
 * it may forget WAL only up to what the consumer acknowledged (or, with nothing pending, up to where the server
 * is). Reconnects with backoff when PostgreSQL goes away; a transaction cut off half-way is removed from the
 * buffer and received again whole.
 */
export class Capture extends EventEmitter {
  receivedLsn = 0n;
  lastCommitLsn: bigint | undefined;
  confirmedLsn = 0n;
  changesCaptured = 0;
  connected = false;

  private session: ReplicationSession | undefined;
  private stopped = false;
  private acknowledgedLsn: bigint | undefined;
  private serverWalEnd = 0n;
  /** Commit LSN of a transaction only partly written to the buffer (its first batches). */
  private partialTransactionLsn: bigint | undefined;
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
      await sleep(Math.min(250 * 2 ** Math.min(attempt++, 6), 10_000));
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
    await this.session?.end();
  }

  private async streamOnce(onConnected: () => void): Promise<void> {
    const session = await ReplicationSession.connect(this.options.databaseUrl, 'kasho-change-stream');
    this.session = session;
    if (this.partialTransactionLsn !== undefined) {
      await this.options.buffer.deleteTransaction(this.partialTransactionLsn);
      this.partialTransactionLsn = undefined;
    }
    this.pending = [];
    this.pendingRelations = [];
    this.queue = [];
    this.assembler = new TransactionAssembler({
      relations: this.relations,
      previousCommitLsn: this.lastCommitLsn ?? this.options.chainFrom,
      ddlLogTable: this.options.ddlLogTable,
    });
    this.bufferedLength = await this.options.buffer.length('changes');
    await new Promise<void>((resolve, reject) => {
      session.startStreaming(
        this.options.slotName,
        this.options.publicationName,
        this.options.protocolVersion,
        this.options.withMessages,
        0n,
        {
          onCopyData: (chunk) => {
            this.queue.push(chunk);
            this.updatePause();
            void this.drain().catch(async (error: Error) => {
              await session.end();
              reject(error);
            });
          },
          onEnd: (error) => (error ? reject(error) : reject(new Error('the server ended replication'))),
        },
      );
      this.connected = true;
      onConnected();
      this.statusTimer ??= setInterval(() => this.sendStatus(false), this.options.statusIntervalMs ?? 10_000);
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
    const changes = this.pending;
    const relations = this.pendingRelations;
    this.pending = [];
    this.pendingRelations = [];
    let committedThrough: bigint | undefined;
    for (const change of changes) {
      if (change.kind?.$case === 'commit') committedThrough = change.kind.value.commitLsn;
    }
    const last = changes[changes.length - 1];
    const endsInsideTransaction = last !== undefined && last.kind?.$case !== 'commit';
    await this.options.buffer.append(
      'changes',
      changes,
      relations,
      committedThrough !== undefined ? { lastCommitLsn: committedThrough.toString() } : {},
    );
    this.changesCaptured += changes.length;
    this.bufferedLength += changes.length;
    if (committedThrough !== undefined) {
      this.lastCommitLsn = committedThrough;
      this.emit('committed', committedThrough);
    }
    this.partialTransactionLsn = endsInsideTransaction ? last.position?.lsn : undefined;
    this.emit('appended', changes.length);
  }

  /** Sends the standby status update: what was received, and the position PostgreSQL may forget up to. */
  private sendStatus(replyRequested: boolean): void {
    if (!this.session || !this.connected) return;
    const flush = nextFlushLsn({
      confirmed: this.confirmedLsn,
      acknowledged: this.acknowledgedLsn,
      lastBufferedCommit: this.lastCommitLsn,
      insideTransaction: this.assembler.inTransaction || this.pending.length > 0 || this.queue.length > 0,
      serverWalEnd: this.serverWalEnd,
    });
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
