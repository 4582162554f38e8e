import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ApplyStats } from './apply/applier.js';

/** Prometheus metrics of pg-translicator. */
export class TranslicatorMetrics {
  readonly registry = new Registry();
  readonly errors = new Counter({
    name: 'kasho_translicator_errors_total',
    help: 'Errors by kind (transient: retried; fatal: stopped the pipeline)',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  private readonly rows = new Counter({
    name: 'kasho_translicator_rows_total',
    help: 'Row changes applied, by kind',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  private readonly transactions = new Counter({
    name: 'kasho_translicator_transactions_total',
    help: 'Source transactions applied',
    registers: [this.registry],
  });
  private readonly appliedLsn = new Gauge({
    name: 'kasho_translicator_applied_lsn',
    help: 'Commit LSN of the last source transaction applied',
    registers: [this.registry],
  });
  private readonly batchSize = new Histogram({
    name: 'kasho_translicator_batch_changes',
    help: 'Changes per batch received from the change-stream',
    buckets: [1, 10, 100, 500, 1000, 5000],
    registers: [this.registry],
  });
  private readonly batchSeconds = new Histogram({
    name: 'kasho_translicator_batch_apply_seconds',
    help: 'Time to apply one batch',
    buckets: [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  private lastCommitTimeUs = 0n;
  private previous: ApplyStats | undefined;

  constructor(lagBytes: () => Promise<number | undefined>) {
    collectDefaultMetrics({ register: this.registry, prefix: 'kasho_translicator_process_' });
    const lastCommit = () => this.lastCommitTimeUs;
    new Gauge({
      name: 'kasho_translicator_lag_seconds',
      help: 'Time since the source committed the last applied transaction',
      registers: [this.registry],
      collect() {
        const at = lastCommit();
        this.set(at > 0n ? Math.max(0, Date.now() / 1000 - Number(at) / 1e6) : 0);
      },
    });
    new Gauge({
      name: 'kasho_translicator_lag_bytes',
      help: 'WAL received by the change-stream and not yet applied to the target',
      registers: [this.registry],
      async collect() {
        this.set((await lagBytes().catch(() => undefined)) ?? 0);
      },
    });
  }

  observeBatch(changes: number, seconds: number): void {
    this.batchSize.observe(changes);
    this.batchSeconds.observe(seconds);
  }

  setApplied(lsn: bigint, commitTimeUs: bigint): void {
    if (lsn > 0n) this.appliedLsn.set(Number(lsn));
    if (commitTimeUs > 0n) this.lastCommitTimeUs = commitTimeUs;
  }

  setStats(stats: ApplyStats): void {
    const previous = this.previous ?? {
      inserted: 0,
      updated: 0,
      deleted: 0,
      truncates: 0,
      ddl: 0,
      transactions: 0,
    };
    this.rows.inc({ kind: 'insert' }, stats.inserted - previous.inserted);
    this.rows.inc({ kind: 'update' }, stats.updated - previous.updated);
    this.rows.inc({ kind: 'delete' }, stats.deleted - previous.deleted);
    this.rows.inc({ kind: 'truncate' }, stats.truncates - previous.truncates);
    this.rows.inc({ kind: 'ddl' }, stats.ddl - previous.ddl);
    this.transactions.inc(stats.transactions - previous.transactions);
    this.previous = { ...stats };
  }
}
