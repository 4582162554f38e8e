/** The printed table: native first, then each Kasho scenario with its ratio to native. */
import type { BenchResults, ScenarioResult } from './results.js';
import type { PhaseResources } from './sampler.js';

const MiB = 1024 * 1024;

interface Metric {
  label: string;
  value: (s: ScenarioResult) => number | undefined;
  /** 'lower': ratio native/x (time, CPU, memory); 'higher': x/native (throughput). Either way >= 1 favours Kasho. */
  better: 'lower' | 'higher';
  digits: number;
  /** Context only (e.g. PostgreSQL processes' memory, measured over different phases): no ratio. */
  noRatio?: boolean;
}

function cpuTotal(resources: PhaseResources | undefined): number | undefined {
  if (!resources) return undefined;
  return Object.values(resources.cpuSecondsByRole).reduce((a, b) => a + b, 0);
}

function per10k(cpu: number | undefined, count: number | undefined): number | undefined {
  return cpu === undefined || !count ? undefined : (cpu / count) * 10_000;
}

function peakOf(s: ScenarioResult, role: string, anon = false): number | undefined {
  const phases = [s.bootstrap?.resources, s.catchup?.resources, s.live?.resources];
  for (const size of s.transactionSizes ?? []) phases.push(size.resources);
  let peak: number | undefined;
  for (const p of phases) {
    const r = p?.peakByRole[role];
    if (r) peak = Math.max(peak ?? 0, anon ? r.rssAnonBytes : r.rssBytes);
  }
  return peak === undefined ? undefined : peak / MiB;
}

function redisPeak(s: ScenarioResult): number | undefined {
  const phases = [s.bootstrap?.resources, s.catchup?.resources, s.live?.resources];
  for (const size of s.transactionSizes ?? []) phases.push(size.resources);
  const values = phases.map((p) => p?.redisPeakUsedMemoryBytes).filter((v): v is number => v !== undefined);
  return values.length ? Math.max(...values) / MiB : undefined;
}

export function metrics(results: BenchResults): Metric[] {
  const list: Metric[] = [
    { label: 'bootstrap: time (s)', value: (s) => s.bootstrap?.seconds, better: 'lower', digits: 1 },
    {
      label: 'bootstrap: rows/s',
      value: (s) => (s.bootstrap ? s.bootstrap.rows / s.bootstrap.seconds : undefined),
      better: 'higher',
      digits: 0,
    },
    {
      label: 'bootstrap: CPU s per 10k rows',
      value: (s) => per10k(cpuTotal(s.bootstrap?.resources), s.bootstrap?.rows),
      better: 'lower',
      digits: 3,
    },
    {
      label: 'bootstrap: of which snapshot into Redis (s)',
      value: (s) => s.bootstrap?.parts.snapshotToBufferSeconds,
      better: 'lower',
      digits: 1,
    },
    { label: 'catch-up: time (s)', value: (s) => s.catchup?.seconds, better: 'lower', digits: 1 },
    {
      label: 'catch-up: of which restarting (s)',
      value: (s) => (s.name === 'native' ? undefined : s.catchup?.restartSeconds),
      better: 'lower',
      digits: 1,
    },
    {
      label: 'catch-up: changes/s',
      value: (s) => (s.catchup ? s.catchup.changes / s.catchup.seconds : undefined),
      better: 'higher',
      digits: 0,
    },
    {
      label: 'catch-up: CPU s per 10k changes',
      value: (s) => per10k(cpuTotal(s.catchup?.resources), s.catchup?.changes),
      better: 'lower',
      digits: 3,
    },
    {
      label: 'live: pgbench tps on the source',
      value: (s) => s.live?.pgbench.tps,
      better: 'higher',
      digits: 0,
    },
    {
      label: 'live: lag when pgbench ends (s)',
      value: (s) => s.live?.lagAtEndSeconds,
      better: 'lower',
      digits: 2,
    },
    { label: 'live: probe p50 latency (ms)', value: (s) => s.live?.probe.p50Ms, better: 'lower', digits: 1 },
    { label: 'live: probe p99 latency (ms)', value: (s) => s.live?.probe.p99Ms, better: 'lower', digits: 1 },
    {
      label: 'live: CPU s per 10k changes',
      value: (s) => per10k(cpuTotal(s.live?.resources), s.live?.changes),
      better: 'lower',
      digits: 3,
    },
  ];
  for (const rows of results.options.transactionSizes) {
    list.push({
      label: `one ${rows.toLocaleString('en')}-row transaction: apply (s)`,
      value: (s) => s.transactionSizes?.find((t) => t.rows === rows)?.seconds,
      better: 'lower',
      digits: 2,
    });
  }
  for (const role of ['pg-change-stream', 'pg-translicator', 'redis used_memory']) {
    for (const rows of results.options.transactionSizes) {
      list.push({
        label: `  ${role} growth during it (MiB) [${rows.toLocaleString('en')} rows]`,
        value: (s) => {
          const r = s.transactionSizes?.find((t) => t.rows === rows)?.resources;
          if (!r) return undefined;
          const [peak, start] =
            role === 'redis used_memory'
              ? [r.redisPeakUsedMemoryBytes, r.redisStartUsedMemoryBytes]
              : [r.peakByRole[role]?.rssBytes, r.startRssByRole[role]];
          return peak === undefined || start === undefined ? undefined : Math.max(0, peak - start) / MiB;
        },
        better: 'lower',
        digits: 0,
      });
    }
  }
  for (const role of ['pg-change-stream', 'pg-translicator', 'pg-bootstrap-sync']) {
    list.push({ label: `peak RSS ${role} (MiB)`, value: (s) => peakOf(s, role), better: 'lower', digits: 0 });
  }
  list.push({ label: 'peak Redis used_memory (MiB)', value: redisPeak, better: 'lower', digits: 0 });
  list.push({
    label: 'peak RSS redis-server (MiB)',
    value: (s) => peakOf(s, 'redis-server'),
    better: 'lower',
    digits: 0,
  });
  for (const role of ['source walsender', 'target apply worker', 'target tablesync worker']) {
    list.push({
      label: `peak anon RSS ${role} (MiB)`,
      value: (s) => peakOf(s, role, true),
      better: 'lower',
      digits: 0,
      noRatio: true,
    });
  }
  return list;
}

function format(value: number | undefined, digits: number): string {
  if (value === undefined || !Number.isFinite(value)) return '-';
  return value.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function ratio(native: number | undefined, other: number | undefined, better: 'lower' | 'higher'): string {
  if (native === undefined || other === undefined || native === 0 || other === 0) return '-';
  return (better === 'lower' ? native / other : other / native).toFixed(2);
}

function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Scenario names in the order they ran, each with its runs (one per round). */
function byName(results: BenchResults): [string, ScenarioResult[]][] {
  const groups = new Map<string, ScenarioResult[]>();
  for (const s of results.scenarios) groups.set(s.name, [...(groups.get(s.name) ?? []), s]);
  return [...groups.entries()];
}

function medianOf(metric: Metric, runs: ScenarioResult[] | undefined): number | undefined {
  if (!runs) return undefined;
  return median(runs.map(metric.value).filter((v): v is number => v !== undefined && Number.isFinite(v)));
}

/**
 * Native, then each other scenario and its ratio to native; medians when the scenarios ran several rounds.
 * `markdown` gives the same as a Markdown table, for docs/performance.md.
 */
export function table(results: BenchResults, markdown = false): string {
  const groups = byName(results);
  const native = groups.find(([name]) => name === 'native')?.[1];
  const others = groups.filter(([name]) => name !== 'native');
  const header = ['metric', 'native', ...others.flatMap(([name]) => [name, 'ratio'])];
  const rows: string[][] = [];
  for (const metric of metrics(results)) {
    const n = medianOf(metric, native);
    const values = others.map(([, runs]) => medianOf(metric, runs));
    if (n === undefined && values.every((v) => v === undefined)) continue;
    rows.push([
      metric.label,
      format(n, metric.digits),
      ...values.flatMap((v) => [format(v, metric.digits), metric.noRatio ? '-' : ratio(n, v, metric.better)]),
    ]);
  }
  if (markdown) {
    const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
    return [line(header), line(header.map((_, i) => (i === 0 ? '---' : '---:'))), ...rows.map(line)].join(
      '\n',
    );
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Each round's value of the main metrics, to show how much they vary on this machine. */
export function spread(results: BenchResults): string {
  const out: string[] = [];
  const keep = metrics(results).filter((m) => !m.label.startsWith('peak'));
  for (const metric of keep) {
    const parts = byName(results)
      .map(([name, runs]) => {
        const values = runs.map((r) => format(metric.value(r), metric.digits));
        return values.every((v) => v === '-') ? '' : `${name} ${values.join(' / ')}`;
      })
      .filter(Boolean);
    if (parts.length) out.push(`${metric.label}: ${parts.join('; ')}`);
  }
  return out.join('\n');
}

/** CPU seconds per role and phase, the detail behind "CPU s per 10k". */
export function cpuDetail(results: BenchResults): string {
  const out: string[] = [];
  for (const s of results.scenarios) {
    const phases: [string, PhaseResources | undefined][] = [
      ['bootstrap', s.bootstrap?.resources],
      ['catch-up', s.catchup?.resources],
      ['live', s.live?.resources],
    ];
    for (const [phase, r] of phases) {
      if (!r) continue;
      const roles = Object.entries(r.cpuSecondsByRole)
        .sort((a, b) => b[1] - a[1])
        .map(([role, cpu]) => `${role} ${cpu.toFixed(1)}`)
        .join(', ');
      out.push(
        `${s.name} ${phase}: ${r.wallSeconds.toFixed(1)} s wall; CPU s: ${roles}; machine busy ${r.machineBusySeconds.toFixed(1)} CPU s; load ${r.loadAverageAtEnd.join(' ')}`,
      );
    }
  }
  return out.join('\n');
}

/** The goals, checked against the figures (medians over rounds). */
export function goals(results: BenchResults): string[] {
  const groups = new Map(byName(results));
  const native = groups.get('native');
  const kasho = groups.get('kasho');
  if (!native || !kasho) return [];
  const m = (runs: ScenarioResult[], value: (s: ScenarioResult) => number | undefined) =>
    median(runs.map(value).filter((v): v is number => v !== undefined));
  const out: string[] = [];
  const check = (label: string, ok: boolean | undefined, detail: string) =>
    out.push(`${ok === undefined ? '?' : ok ? 'met' : 'NOT met'}: ${label} (${detail})`);
  const ratioOf = (value: (s: ScenarioResult) => number | undefined) => {
    const n = m(native, value);
    const k = m(kasho, value);
    return n === undefined || k === undefined ? undefined : n / k;
  };
  const b = ratioOf((s) => s.bootstrap?.seconds);
  check(
    'native/Kasho bootstrap time >= 1.0',
    b === undefined ? undefined : b >= 1,
    `ratio ${b?.toFixed(2) ?? '-'}`,
  );
  const c = ratioOf((s) => s.catchup?.seconds);
  check(
    'native/Kasho catch-up time >= 1.0',
    c === undefined ? undefined : c >= 1,
    `ratio ${c?.toFixed(2) ?? '-'}`,
  );
  const kl = m(kasho, (s) => s.live?.lagAtEndSeconds);
  const nl = m(native, (s) => s.live?.lagAtEndSeconds);
  check(
    'live lag within 0.5 s of native',
    kl === undefined || nl === undefined ? undefined : kl - nl <= 0.5,
    `Kasho ${kl?.toFixed(2) ?? '-'} s, native ${nl?.toFixed(2) ?? '-'} s`,
  );
  const sizes = results.options.transactionSizes;
  if (sizes.length >= 2) {
    const big = sizes[sizes.length - 1]!;
    const small = sizes[sizes.length - 2]!;
    for (const role of ['pg-change-stream', 'pg-translicator', 'redis used_memory']) {
      const growth = (rows: number) =>
        m(kasho, (s) => {
          const r = s.transactionSizes?.find((t) => t.rows === rows)?.resources;
          if (!r) return undefined;
          const [peak, start] =
            role === 'redis used_memory'
              ? [r.redisPeakUsedMemoryBytes, r.redisStartUsedMemoryBytes]
              : [r.peakByRole[role]?.rssBytes, r.startRssByRole[role]];
          return peak === undefined || start === undefined ? undefined : Math.max(0, peak - start);
        });
      const a = growth(small);
      const z = growth(big);
      if (a === undefined || z === undefined) continue;
      check(
        `${role} flat in transaction size`,
        z < 2 * a + 16 * MiB,
        `grew ${(a / MiB).toFixed(0)} MiB during a ${small.toLocaleString('en')}-row transaction, ${(z / MiB).toFixed(0)} MiB during a ${big.toLocaleString('en')}-row one; flat = less than twice as much plus 16 MiB`,
      );
    }
  }
  return out;
}
