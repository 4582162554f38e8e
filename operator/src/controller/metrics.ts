import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { PHASES, type PipelineStatus } from '../api/schema.js';

/** The operator's Prometheus metrics (served on /metrics next to /healthz and /readyz). */
export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconciles = new Counter({
    name: 'kasho_operator_reconciles_total',
    help: 'Reconciles of a KashoPipeline, by result (ok, error, conflict)',
    labelNames: ['result'],
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: 'kasho_operator_errors_total',
    help: 'Failures while reconciling, by kind (apply, action, status, event, observe)',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  readonly reconcileSeconds = new Histogram({
    name: 'kasho_operator_reconcile_seconds',
    help: 'Time one reconcile takes',
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'kasho_operator_queue_depth',
    help: 'Pipelines waiting in the work queue (including delayed retries)',
    registers: [this.registry],
  });
  readonly leader = new Gauge({
    name: 'kasho_operator_leader',
    help: '1 while this replica holds the leader Lease',
    registers: [this.registry],
  });
  private readonly lagBytes = new Gauge({
    name: 'kasho_pipeline_lag_bytes',
    help: 'WAL received and not yet applied to the target',
    labelNames: ['namespace', 'name'],
    registers: [this.registry],
  });
  private readonly lagSeconds = new Gauge({
    name: 'kasho_pipeline_lag_seconds',
    help: 'Age of the last applied source commit',
    labelNames: ['namespace', 'name'],
    registers: [this.registry],
  });
  private readonly retainedWal = new Gauge({
    name: 'kasho_pipeline_retained_wal_bytes',
    help: 'WAL the slot keeps on the source',
    labelNames: ['namespace', 'name'],
    registers: [this.registry],
  });
  private readonly phase = new Gauge({
    name: 'kasho_pipeline_phase',
    help: 'Phase of each pipeline: 1 for the current one',
    labelNames: ['namespace', 'name', 'phase'],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'kasho_operator_process_' });
  }

  observePipeline(namespace: string, name: string, status: PipelineStatus): void {
    const labels = { namespace, name };
    const set = (gauge: Gauge, value: number | undefined) => {
      if (value === undefined) gauge.remove(labels);
      else gauge.set(labels, value);
    };
    set(this.lagBytes, status.lagBytes);
    set(this.lagSeconds, status.lagSeconds);
    set(this.retainedWal, status.retainedWalBytes);
    for (const phase of PHASES) this.phase.set({ ...labels, phase }, status.phase === phase ? 1 : 0);
  }

  forgetPipeline(namespace: string, name: string): void {
    const labels = { namespace, name };
    this.lagBytes.remove(labels);
    this.lagSeconds.remove(labels);
    this.retainedWal.remove(labels);
    for (const phase of PHASES) this.phase.remove({ ...labels, phase });
  }
}
