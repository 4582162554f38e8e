import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  BufferLostError,
  Change,
  ChangeBuffer,
  KashoError,
  formatLsn,
  type Logger,
  type Position,
} from '@kasho/common';
import { Capture } from './capture/capture.js';
import type { ChangeStreamConfig } from './config.js';
import {
  captures,
  completeBootstrap,
  reconcile,
  resetBootstrap,
  startBootstrap,
  type BootstrapStateName,
  type PersistedState,
} from './state/bootstrap-state.js';
import { encodePersistedState, loadStoredState } from './state/persisted-state.js';
import { ReplicationSession } from './source/replication-session.js';
import type { SourceDatabase } from './source/source-database.js';

/** A call that is not possible now; the gRPC layer answers FAILED_PRECONDITION with this message. */
export class PreconditionError extends KashoError {}

/** A call that may succeed when retried shortly (the buffer is being rebuilt); answered with UNAVAILABLE. */
export class UnavailableError extends KashoError {}

interface HeldSnapshot {
  name: string;
  session: ReplicationSession;
  timer: NodeJS.Timeout;
}

const DEFAULT_SNAPSHOT_TIMEOUT_SECONDS = 3600;
const DDL_LOG_TABLE = { schema: 'public', name: 'kasho_ddl_log' };
/** How often the buffer is checked for a wipe while nothing is written to it. */
const WATCHDOG_INTERVAL_MS = 1_000;
/** How long to wait for the walsender of a stopped capture to let go of the slot. */
const SLOT_RELEASE_TIMEOUT_MS = 10_000;

/**
 * pg-change-stream's core: the bootstrap state, the slot, the capture into the buffer and the acknowledgements.
 * Emits 'state' whenever the state changes.
 *
 * The world is reconciled with the persisted state at start-up, and again while running whenever it changes
 * under the service: Redis lost the buffer (a guarded write fails, or the watchdog finds the state hash gone) or
 * the slot was dropped. `generation` counts the times the buffer was started over (bootstrap, reset, rebuild), so
 * that open streams end and their consumers resume against the new buffer.
 */
export class ChangeStream extends EventEmitter {
  state: PersistedState = { state: 'WAITING', epoch: '', startLsn: undefined };
  lastError = '';
  acknowledged: Position | undefined;
  serverVersion = '';
  readonly startedAt = Date.now();
  private capture: Capture | undefined;
  private captureRun: Promise<void> | undefined;
  private snapshot: HeldSnapshot | undefined;
  private versionNum = 0;
  private database = '';
  private busy: Promise<unknown> = Promise.resolve();
  private watchdog: NodeJS.Timeout | undefined;
  private checking = false;
  private recovering = false;
  private recoveryFailed = false;
  generation = 0;

  constructor(
    readonly config: ChangeStreamConfig,
    readonly buffer: ChangeBuffer,
    private readonly source: SourceDatabase,
    private readonly logger: Logger,
  ) {
    super();
  }

  /** Reconciles what Redis remembers with the slot that really exists, then captures if the state says so. */
  async start(): Promise<void> {
    this.versionNum = await this.source.serverVersionNum();
    this.serverVersion = await this.source.serverVersion();
    this.database = await this.source.currentDatabase();
    if (this.versionNum < 100000) {
      throw new KashoError(
        `PostgreSQL ${this.serverVersion} is too old`,
        'Kasho needs PostgreSQL 10 or newer.',
      );
    }
    if (!(await this.source.publicationExists(this.config.publicationName))) {
      this.logger.warn(
        `Publication ${this.config.publicationName} does not exist on the source yet; run scripts/prepare-primary-db.sh before the bootstrap`,
      );
    }
    await this.reconcileWithSlot();
    this.watchdog = setInterval(() => void this.checkBuffer(), WATCHDOG_INTERVAL_MS);
    this.watchdog.unref();
  }

  /** Decides the state from what Redis remembers and the slot that really exists, and acts on it. */
  private async reconcileWithSlot(): Promise<void> {
    const stored = await loadStoredState(this.buffer);
    const slot = await this.source.slot(this.config.slotName);
    const decision = reconcile({
      persisted: stored,
      slot,
      slotName: this.config.slotName,
      database: this.database,
    });
    switch (decision.action) {
      case 'refuse':
        throw new KashoError(decision.error);
      case 'slot-lost':
        this.logger.error(decision.error);
        this.lastError = decision.error;
        await this.buffer.clear();
        break;
      case 'foreign-slot':
        this.logger.error(decision.error);
        this.lastError = decision.error;
        break;
      case 'rebuild-from-slot':
        this.logger.warn(decision.warning);
        this.lastError = decision.warning;
        await this.buffer.clear();
        break;
      default:
        break;
    }
    if (decision.action !== 'keep') this.generation++;
    this.acknowledged = decision.action === 'keep' ? stored?.acknowledged : undefined;
    await this.persist(decision.next);
    this.logger.info(`State ${this.state.state} (slot ${this.config.slotName})`);
    if (captures(this.state.state)) await this.startCapture();
  }

  /** The watchdog: notices a wiped buffer even when nothing is written, and retries a failed recovery. */
  private async checkBuffer(): Promise<void> {
    if (this.checking || this.recovering) return;
    this.checking = true;
    try {
      if (this.recoveryFailed) this.recover('retrying the reconciliation with the slot');
      else if (!(await this.buffer.hasState())) this.recover('the Redis buffer lost its state');
    } catch {
      // Redis is unreachable: the connection logs the outage and the next round checks again.
    } finally {
      this.checking = false;
    }
  }

  /**
   * Stops capturing and reconciles again, one call at a time. A watchdog alarm is checked once more inside, since
   * a bootstrap or reset clears the buffer on purpose just before it writes the new state.
   */
  private recover(reason: string, confirmed = false): void {
    if (this.recovering) return;
    this.recovering = true;
    void this.exclusive(async () => {
      if (!confirmed && !this.recoveryFailed && (await this.buffer.hasState())) return;
      this.logger.warn(`${reason}: reconciling the state with replication slot ${this.config.slotName}`);
      await this.stopCapture();
      await this.source.waitForSlotRelease(this.config.slotName, SLOT_RELEASE_TIMEOUT_MS);
      await this.reconcileWithSlot();
      this.recoveryFailed = false;
    })
      .catch((error: unknown) => {
        this.recoveryFailed = true;
        this.lastError = `reconciling with the slot failed: ${(error as Error).message}`;
        this.logger.error(`${this.lastError}; retrying`);
      })
      .finally(() => {
        this.recovering = false;
      });
  }

  async stop(): Promise<void> {
    if (this.watchdog) clearInterval(this.watchdog);
    await this.releaseSnapshot();
    await this.stopCapture();
  }

  async retainedWalBytes(): Promise<bigint | undefined> {
    if (this.state.state === 'WAITING') return undefined;
    return this.source.retainedWalBytes(this.config.slotName);
  }

  get captureStats() {
    return this.capture;
  }

  async startBootstrap(request: { startLsn: string; snapshotName: string; timeoutSeconds: number }) {
    return this.exclusive(async () => {
      const epoch = randomUUID();
      const next = startBootstrap(this.state, epoch);
      if (request.snapshotName || request.startLsn) {
        throw new PreconditionError(
          'StartBootstrap does not accept a snapshot or LSN from another slot: changes committed between that ' +
            "snapshot and the permanent slot's consistent point would be lost.",
          'Call StartBootstrap with no arguments: the permanent slot exports its own snapshot, and the response ' +
            'gives its name for pg_dump --snapshot and its start LSN. scripts/bootstrap-kasho.sh does this.',
        );
      }
      const existing = await this.source.slot(this.config.slotName);
      if (existing) {
        throw new PreconditionError(
          `replication slot already exists: ${this.config.slotName}`,
          `If no other Kasho uses it, drop it with SELECT pg_drop_replication_slot('${this.config.slotName}') or call ResetBootstrap, then try again.`,
        );
      }
      await this.buffer.clear();
      this.generation++;
      await this.persist(next);
      let session: ReplicationSession | undefined;
      try {
        session = await ReplicationSession.connect(this.config.primaryDatabaseUrl, 'kasho-snapshot');
        const created = await session.createSlotWithSnapshot(this.config.slotName);
        await this.persist({ ...next, startLsn: created.consistentPoint });
        const timeout = (request.timeoutSeconds || DEFAULT_SNAPSHOT_TIMEOUT_SECONDS) * 1000;
        const held: HeldSnapshot = {
          name: created.snapshotName,
          session,
          timer: setTimeout(() => {
            this.logger.warn(`Exported snapshot ${created.snapshotName} released after ${timeout / 1000}s`);
            void this.releaseSnapshot();
          }, timeout),
        };
        held.timer.unref();
        this.snapshot = held;
        this.lastError = '';
        this.logger.info(
          `Bootstrap started: slot ${created.slotName} at ${formatLsn(created.consistentPoint)}, snapshot ${created.snapshotName} exported`,
        );
        await this.startCapture();
        return { startLsn: created.consistentPoint, snapshotName: created.snapshotName, epoch };
      } catch (error) {
        await session?.end();
        await this.persist(resetBootstrap());
        throw error;
      }
    });
  }

  async releaseSnapshot(): Promise<boolean> {
    const held = this.snapshot;
    if (!held) return false;
    this.snapshot = undefined;
    clearTimeout(held.timer);
    await held.session.end();
    this.logger.info(`Exported snapshot ${held.name} released`);
    return true;
  }

  get heldSnapshotName(): string | undefined {
    return this.snapshot?.name;
  }

  async completeBootstrap() {
    return this.exclusive(async () => {
      const next = completeBootstrap(this.state);
      await this.releaseSnapshot();
      await this.closeBootstrapStream(next.startLsn ?? 0n);
      await this.persist(next, { requireState: true });
      this.logger.info('Bootstrap complete: streaming');
      return {
        bootstrapChanges: BigInt(await this.buffer.length('bootstrap')),
        accumulatedChanges: BigInt(await this.buffer.length('changes')),
      };
    });
  }

  async resetBootstrap() {
    return this.exclusive(async () => {
      await this.releaseSnapshot();
      await this.stopCapture();
      const dropped = await this.source.dropSlot(this.config.slotName);
      await this.buffer.clear();
      this.generation++;
      this.acknowledged = undefined;
      this.lastError = '';
      await this.persist(resetBootstrap());
      this.logger.info(
        `Bootstrap reset: ${dropped ? `slot ${this.config.slotName} dropped, ` : ''}buffer cleared`,
      );
      return { slotDropped: dropped };
    });
  }

  /** The consumer durably applied everything up to `position`: trim the buffer, let the slot move on. */
  async acknowledge(position: Position): Promise<void> {
    const previous = this.acknowledged;
    if (
      previous &&
      (position.lsn < previous.lsn || (position.lsn === previous.lsn && position.seq < previous.seq))
    ) {
      return;
    }
    try {
      await this.buffer.writeState(
        { ackLsn: position.lsn.toString(), ackSeq: position.seq.toString() },
        { requireState: true },
      );
    } catch (error) {
      if (!(error instanceof BufferLostError)) throw error;
      this.recover(error.message, true);
      throw new UnavailableError(
        'the Redis buffer lost its state and is being rebuilt from the replication slot',
        'Acknowledge again once the stream is back.',
      );
    }
    this.acknowledged = position;
    await this.buffer.trimThrough(position);
    if (position.lsn > 0n) this.capture?.acknowledge(position.lsn);
    this.capture?.setBufferedLength(await this.buffer.length('changes'));
  }

  /**
   * Ends the snapshot's pseudo-transactions with one whose Commit carries the slot's consistent point, so the
   * consumer's chain reaches the first live transaction (see proto/kasho/change_stream.proto).
   */
  private async closeBootstrapStream(startLsn: bigint): Promise<void> {
    const last = await this.buffer.last('bootstrap');
    const seq = last ? last.position.seq + 1n : 1n;
    const begin: Change = {
      position: { lsn: 0n, seq },
      kind: {
        $case: 'begin',
        value: {
          commitLsn: 0n,
          commitTimeUs: 0n,
          xid: 0,
          previousCommitLsn: 0n,
          bootstrap: true,
          origin: '',
        },
      },
    };
    const commit: Change = {
      position: { lsn: 0n, seq: seq + 1n },
      kind: { $case: 'commit', value: { commitLsn: startLsn, endLsn: startLsn, commitTimeUs: 0n } },
    };
    await this.buffer.append('bootstrap', [begin, commit], [], {}, { requireState: true });
  }

  private async startCapture(): Promise<void> {
    const stored = await loadStoredState(this.buffer);
    const relations = await this.buffer.allRelations();
    const capture = new Capture({
      databaseUrl: this.config.primaryDatabaseUrl,
      slotName: this.config.slotName,
      publicationName: this.config.publicationName,
      protocolVersion: this.versionNum >= 140000 ? 2 : 1,
      withMessages: this.versionNum >= 140000,
      ddlLogTable: DDL_LOG_TABLE,
      buffer: this.buffer,
      source: this.source,
      logger: this.logger,
      chainFrom: this.state.startLsn ?? 0n,
      bufferedThrough: stored?.lastCommitLsn,
      appendedThrough: await this.buffer.lastId('changes'),
      acknowledgedLsn: this.acknowledged && this.acknowledged.lsn > 0n ? this.acknowledged.lsn : undefined,
      relations,
    });
    capture.on('error-state', (message: string) => {
      this.lastError = message;
      this.emit('capture-error');
    });
    capture.on('appended', () => this.emit('appended'));
    capture.on('buffer-lost', (message: string) => this.recover(message, true));
    capture.on('slot-missing', (message: string) => this.recover(message, true));
    this.capture = capture;
    this.captureRun = capture.run();
  }

  private async stopCapture(): Promise<void> {
    const capture = this.capture;
    this.capture = undefined;
    await capture?.stop();
    await this.captureRun;
    this.captureRun = undefined;
  }

  /** Writes the state; with requireState only into a buffer that was not wiped in the meantime. */
  private async persist(next: PersistedState, options: { requireState?: boolean } = {}): Promise<void> {
    await this.buffer.writeState(encodePersistedState(next), options);
    const changed = next.state !== this.state.state;
    this.state = next;
    if (changed) this.emit('state', next.state as BootstrapStateName);
  }

  /** Runs state-changing calls one at a time. */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.busy.then(work, work);
    this.busy = run.catch(() => undefined);
    return run;
  }
}
