/**
 * Change latency: a row with its commit time (clock_timestamp()) every 100 ms on the source; the target is polled
 * every 10 ms, and a row's latency is the time it was first seen there minus its committed_at. Both clocks are this
 * machine's.
 */
import type pg from 'pg';
import type { PgServer } from '../testing/local-servers.js';
import { connect, nowMs, sleep } from './db.js';

export interface ProbeResult {
  probes: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

export class Probe {
  private writing = false;
  private reading = false;
  private writer: Promise<void> | undefined;
  private reader: Promise<void> | undefined;
  private readonly committed = new Map<number, number>();
  private readonly latencies = new Map<number, number>();
  private lastSeen = 0;

  private constructor(
    private readonly source: pg.Client,
    private readonly target: pg.Client,
  ) {}

  static async open(source: PgServer, target: PgServer): Promise<Probe> {
    const probe = new Probe(await connect(source, 'bench-probe'), await connect(target, 'bench-probe'));
    const { rows } = await probe.target.query<{ max: string | null }>(
      'SELECT max(id)::text AS max FROM bench_probe',
    );
    probe.lastSeen = Number(rows[0]?.max ?? 0);
    return probe;
  }

  start(intervalMs = 100): void {
    this.writing = true;
    this.reading = true;
    this.writer = this.write(intervalMs);
    this.reader = this.read();
  }

  /** Stops writing; waits until every probe written is seen on the target (or the timeout). */
  async finish(timeoutMs: number): Promise<ProbeResult> {
    this.writing = false;
    await this.writer;
    const deadline = nowMs() + timeoutMs;
    while ([...this.committed.keys()].some((id) => !this.latencies.has(id)) && nowMs() < deadline) {
      await sleep(20);
    }
    this.reading = false;
    await this.reader;
    const missing = [...this.committed.keys()].filter((id) => !this.latencies.has(id)).length;
    if (missing > 0)
      throw new Error(`${missing} probe rows did not reach the target within ${timeoutMs / 1000} s`);
    const sorted = [...this.latencies.values()].sort((a, b) => a - b);
    const at = (q: number) => round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0);
    return {
      probes: sorted.length,
      p50Ms: at(0.5),
      p90Ms: at(0.9),
      p99Ms: at(0.99),
      maxMs: round(sorted[sorted.length - 1] ?? 0),
    };
  }

  async close(): Promise<void> {
    this.writing = false;
    this.reading = false;
    await Promise.allSettled([this.writer, this.reader]);
    await this.source.end().catch(() => undefined);
    await this.target.end().catch(() => undefined);
  }

  private async write(intervalMs: number): Promise<void> {
    const started = nowMs();
    for (let k = 1; this.writing; k++) {
      const { rows } = await this.source.query<{ id: string; ms: number }>(
        `INSERT INTO bench_probe (committed_at) VALUES (clock_timestamp())
         RETURNING id::text, extract(epoch FROM committed_at) * 1000 AS ms`,
      );
      const row = rows[0]!;
      this.committed.set(Number(row.id), Number(row.ms));
      const wait = started + k * intervalMs - nowMs();
      if (wait > 0) await sleep(wait);
    }
  }

  private async read(): Promise<void> {
    while (this.reading) {
      const { rows } = await this.target.query<{ id: string; ms: number }>(
        'SELECT id::text, extract(epoch FROM committed_at) * 1000 AS ms FROM bench_probe WHERE id > $1 ORDER BY id',
        [this.lastSeen],
      );
      const seen = nowMs();
      for (const row of rows) {
        const id = Number(row.id);
        this.latencies.set(id, seen - Number(row.ms));
        if (id > this.lastSeen) this.lastSeen = id;
      }
      await sleep(10);
    }
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
