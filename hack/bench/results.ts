/** The shape of a benchmark run, as written to bench-results/<timestamp>.json. */
import type { PgbenchRun } from './pgbench.js';
import type { ProbeResult } from './probe.js';
import type { PhaseResources } from './sampler.js';
import type { TableCheck } from './verify.js';

export interface BootstrapResult {
  /** From the start of the bootstrap until the target has every row (a marker committed after it arrived). */
  seconds: number;
  rows: number;
  /** Named parts of `seconds` (native: schema copy; Kasho: the bootstrap script loading the buffer). */
  parts: Record<string, number>;
  resources: PhaseResources;
  /** What the bootstrap printed (Kasho: scripts/bootstrap-kasho.sh's steps and sizes). */
  log?: string;
}

export interface CatchupResult {
  /** From the restart of the stopped pipeline until the last change of the backlog is on the target. */
  seconds: number;
  /** Part of `seconds` spent starting the pipeline again (Kasho: both processes up and ready). */
  restartSeconds: number;
  changes: number;
  pgbench: PgbenchRun;
  resources: PhaseResources;
}

export interface LiveResult {
  pgbench: PgbenchRun;
  /** From the end of pgbench until its last change is on the target. */
  lagAtEndSeconds: number;
  probe: ProbeResult;
  changes: number;
  resources: PhaseResources;
}

export interface TransactionSizeResult {
  rows: number;
  /** From the commit of one transaction updating `rows` rows until it is on the target. */
  seconds: number;
  resources: PhaseResources;
}

export interface ScenarioResult {
  name: string;
  /** 1..repeat: scenarios run in rounds. */
  round?: number;
  description: string;
  bootstrap?: BootstrapResult;
  catchup?: CatchupResult;
  live?: LiveResult;
  transactionSizes?: TransactionSizeResult[];
  correctness?: TableCheck[];
  profiles?: Record<string, string>;
  /** Set when the scenario failed; the phases before the failure are kept. */
  error?: string;
}

export interface MachineInfo {
  cpuModel: string;
  nproc: number;
  memoryBytes: number;
  kernel: string;
  postgres: string;
  node: string;
  redis: string;
  gitCommit: string;
  gitDirty: boolean;
  loadAverageAtStart: [number, number, number];
  loadAverageAtEnd?: [number, number, number];
}

export interface BenchOptions {
  scale: number;
  catchupTransactions: number;
  liveSeconds: number;
  clients: number;
  jobs: number;
  seed: number;
  transactionSizes: number[];
  scenarios: string[];
  repeat: number;
  profile: boolean;
  outDir: string;
}

export interface BenchResults {
  command: string;
  startedAt: string;
  finishedAt?: string;
  options: BenchOptions;
  machine: MachineInfo;
  scenarios: ScenarioResult[];
}
