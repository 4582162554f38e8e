import pg from 'pg';
import type { ServiceError } from '@grpc/grpc-js';

import {
  ChangeStreamApi,
  formatLsn,
  KashoError,
  parseLsn,
  type Logger,
  type StreamResponse,
} from '@kasho/common';
import { Applier, ApplyError, newApplyStats } from './apply/applier.js';
import type { RowTransformer } from './apply/row-values.js';
import { StreamGapError } from './apply/sequencer.js';
import {
  APPLY_LOCK_KEY,
  ensurePositionTable,
  readAppliedState,
  type AppliedState,
} from './apply/target-store.js';
import type { TranslicatorMetrics } from './metrics.js';

export interface TranslicatorOptions {
  changeStreamService: string;
  replicaDatabaseUrl: string;
  transformer: RowTransformer;
  logger: Logger;
  metrics: TranslicatorMetrics;
  consumerName?: string;
}

/**
 * gRPC codes worth reconnecting for: the change-stream restarting or briefly unreachable, or still holding the
 * stream of a translicator that just died (ALREADY_EXISTS; this process holds the target's apply lock, so the
 * other consumer cannot be applying to this target).
 */
const RETRY_GRPC = new Set([1, 4, 6, 10, 13, 14]);

/**
 * pg-translicator's main loop: take the apply lock on the target, read the applied position, stream from there,
 * apply, acknowledge what is durable. Transient failures (network, restarts of either side) reconnect with backoff
 * and resume from the target's own position; anything else stops with the reason.
 */
export class Translicator {
  private stopped = false;
  private lockClient: pg.Client | undefined;
  private applyClient: pg.Client | undefined;
  private api: ChangeStreamApi | undefined;
  private stream: ReturnType<ChangeStreamApi['client']['stream']> | undefined;
  ready = false;
  applied: AppliedState | undefined;
  private readonly stats = newApplyStats();

  constructor(private readonly options: TranslicatorOptions) {}

  async run(): Promise<void> {
    const { logger } = this.options;
    let attempt = 0;
    let outage: string | undefined;
    while (!this.stopped) {
      try {
        await this.runOnce(() => {
          if (outage) logger.info(`Recovered from: ${outage}`);
          outage = undefined;
          attempt = 0;
        });
      } catch (error) {
        this.ready = false;
        if (this.stopped) break;
        const reason = retryReason(error);
        if (reason === undefined) throw error;
        this.options.metrics.errors.inc({ kind: 'transient' });
        if (outage !== reason) logger.warn(`${reason}; retrying with backoff`);
        outage = reason;
      } finally {
        await this.closeConnections();
      }
      if (this.stopped) break;
      await new Promise((resolve) =>
        setTimeout(resolve, Math.min(250 * 2 ** Math.min(attempt++, 6), 10_000)),
      );
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stream?.cancel();
    await this.closeConnections();
  }

  private async runOnce(onHealthy: () => void): Promise<void> {
    const { logger, metrics } = this.options;
    this.lockClient = await connect(this.options.replicaDatabaseUrl, 'kasho-translicator-lock');
    await this.takeApplyLock(this.lockClient);
    this.applyClient = await connect(this.options.replicaDatabaseUrl, 'kasho-translicator');
    await ensurePositionTable(this.applyClient);
    let state = await readAppliedState(this.applyClient);

    const api = new ChangeStreamApi(this.options.changeStreamService);
    this.api = api;
    const status = await api.getStatus();
    if (status.epoch && state.epoch && status.epoch !== state.epoch) {
      logger.warn(
        `The change-stream was bootstrapped again (epoch ${status.epoch}, target has ${state.epoch}): loading the target from the new snapshot`,
      );
      state = { epoch: status.epoch, position: { lsn: 0n, seq: 0n }, chainLsn: 0n };
    } else if (!state.epoch) {
      state = { ...state, epoch: status.epoch };
    }
    this.applied = state;
    const applier = new Applier(
      this.applyClient,
      this.options.transformer,
      state,
      (message) => logger.warn(message),
      this.stats,
    );
    logger.info(
      `Streaming from ${this.options.changeStreamService} after position ${state.position.lsn}/${state.position.seq}`,
    );
    const stream = api.client.stream({
      after: state.position,
      consumer: this.options.consumerName ?? 'pg-translicator',
      epoch: state.epoch,
    });
    this.stream = stream;
    this.ready = true;
    onHealthy();
    try {
      for await (const response of stream as AsyncIterable<StreamResponse>) {
        const started = process.hrtime.bigint();
        const durable = await applier.apply(response.changes);
        metrics.observeBatch(response.changes.length, Number(process.hrtime.bigint() - started) / 1e9);
        metrics.setStats(applier.stats);
        if (durable) {
          this.applied = durable;
          metrics.setApplied(durable.position.lsn, durable.commitTimeUs);
          await api.acknowledge(durable.position);
        }
      }
    } catch (error) {
      await applier.abandon();
      throw error;
    }
    throw Object.assign(new Error('the change-stream ended the stream'), { code: 14 });
  }

  private async takeApplyLock(client: pg.Client): Promise<void> {
    let warned = false;
    for (;;) {
      const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [
        APPLY_LOCK_KEY,
      ]);
      if (rows[0]?.locked) {
        if (warned)
          this.options.logger.info('Took the apply lock: this translicator now applies to the target');
        return;
      }
      if (!warned) {
        const holder = await client.query<{
          pid: number;
          application_name: string;
          client_addr: string | null;
        }>(
          `SELECT l.pid, a.application_name, a.client_addr::text AS client_addr
             FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.objid = $1 AND l.granted LIMIT 1`,
          [APPLY_LOCK_KEY & 0xffffffff],
        );
        const who = holder.rows[0];
        this.options.logger.warn(
          `Another pg-translicator holds the apply lock on this target${who ? ` (backend pid ${who.pid}, ${who.application_name}${who.client_addr ? ` from ${who.client_addr}` : ''})` : ''}: only one may apply at a time. Waiting for it to stop.`,
        );
        warned = true;
      }
      if (this.stopped) throw new KashoError('stopped while waiting for the apply lock');
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    }
  }

  /** Bytes between what the change-stream received and what the target applied. */
  async lagBytes(): Promise<number | undefined> {
    if (!this.api || !this.applied) return undefined;
    const status = await this.api.getStatus();
    if (!status.receivedLsn) return 0;
    const received = parseLsn(status.receivedLsn);
    const applied = this.applied.chainLsn;
    return received > applied ? Number(received - applied) : 0;
  }

  describeApplied(): string {
    return this.applied ? formatLsn(this.applied.chainLsn) : '';
  }

  private async closeConnections(): Promise<void> {
    this.stream?.cancel();
    this.stream = undefined;
    this.api?.close();
    this.api = undefined;
    await this.applyClient?.end().catch(() => undefined);
    await this.lockClient?.end().catch(() => undefined);
    this.applyClient = undefined;
    this.lockClient = undefined;
  }
}

async function connect(url: string, applicationName: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: applicationName });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** A short description of a failure worth retrying, or undefined when the pipeline must stop. */
function retryReason(error: unknown): string | undefined {
  if (error instanceof StreamGapError) return undefined;
  if (error instanceof ApplyError)
    return error.transient ? `Target database error: ${error.message}` : undefined;
  const grpcError = error as Partial<ServiceError>;
  if (typeof grpcError.code === 'number' && grpcError.details !== undefined) {
    return RETRY_GRPC.has(grpcError.code) ? `Change-stream unavailable: ${grpcError.details}` : undefined;
  }
  if (grpcError.code === 14) return 'The change-stream ended the stream';
  const code = (error as { code?: string }).code;
  if (typeof code === 'string' && /^(ECONN|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EPIPE|08|57P0)/.test(code)) {
    return `Target database unreachable (${code})`;
  }
  return undefined;
}
