/**
 * `npm run bench`: the same pgbench work through PostgreSQL's native logical replication and through Kasho, one
 * after the other on fresh local servers, on this machine: bootstrap, catch-up of a backlog, live lag and latency,
 * transaction size, CPU and memory. Prints a table (native, Kasho, ratio), writes the same as JSON to
 * bench-results/<timestamp>.json, and ends with a correctness check of every target.
 *
 *   npm run bench -- --scale 10 --catchup-transactions 20000 --live-seconds 30
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, release } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { startLocalServers, type LocalServers } from '../testing/local-servers.js';
import { BENCH_TABLES_SQL, Markers, nowMs, PGBENCH_TABLES, pgbenchState, rowCounts } from './db.js';
import { KashoPipeline } from './kasho.js';
import { NativeReplication } from './native.js';
import { CHANGES_PER_TRANSACTION, initialise, runWork } from './pgbench.js';
import { Probe } from './probe.js';
import { loadAverage, machineMemoryBytes } from './procfs.js';
import { cpuDetail, goals, spread, table } from './report.js';
import type { BenchOptions, BenchResults, MachineInfo, ScenarioResult } from './results.js';
import { ResourceSampler } from './sampler.js';
import type { System } from './system.js';
import { compareTables } from './verify.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PHASE_TIMEOUT_MS = 60 * 60 * 1000;
const ALL_TABLES = [...PGBENCH_TABLES, 'bench_probe', 'bench_marker'];

/** Two text columns rewritten with keyed fakes: both tables get an UPDATE in every pgbench transaction. */
const TRANSFORMS_YAML = `version: v1
tables:
  public.pgbench_accounts:
    filler: FakeName
  public.pgbench_tellers:
    filler: FakeCompany
`;
const TRANSFORMED = { pgbench_accounts: ['filler'], pgbench_tellers: ['filler'] };

interface Scenario {
  name: string;
  description: string;
  /** Only the bootstrap is measured (the dump method, beside the full run with the direct one). */
  bootstrapOnly: boolean;
  make(servers: LocalServers, options: BenchOptions, profileDir: string | undefined): System;
  transformed: Record<string, readonly string[]>;
}

const SCENARIOS: Record<string, Scenario> = {
  native: {
    name: 'native',
    description: 'PostgreSQL logical replication: publication FOR ALL TABLES, subscription on the target',
    bootstrapOnly: false,
    make: (servers) => new NativeReplication(servers),
    transformed: {},
  },
  kasho: {
    name: 'kasho',
    description: 'Kasho, bootstrap BOOTSTRAP_METHOD=direct (COPY under the snapshot), no transforms',
    bootstrapOnly: false,
    make: (servers, _options, profileDir) =>
      new KashoPipeline(servers, {
        name: 'kasho',
        bootstrapMethod: 'direct',
        transformsYaml: undefined,
        profileDir,
      }),
    transformed: {},
  },
  'kasho-transforms': {
    name: 'kasho-transforms',
    description:
      'Kasho, direct bootstrap, transforms.yml rewriting pgbench_accounts.filler and pgbench_tellers.filler',
    bootstrapOnly: false,
    make: (servers, _options, profileDir) =>
      new KashoPipeline(servers, {
        name: 'kasho-transforms',
        bootstrapMethod: 'direct',
        transformsYaml: TRANSFORMS_YAML,
        profileDir,
      }),
    transformed: TRANSFORMED,
  },
  'kasho-dump': {
    name: 'kasho-dump',
    description:
      'Kasho, bootstrap BOOTSTRAP_METHOD=dump (pg_dump file, then pg-bootstrap-sync); bootstrap only',
    bootstrapOnly: true,
    make: (servers, _options, profileDir) =>
      new KashoPipeline(servers, {
        name: 'kasho-dump',
        bootstrapMethod: 'dump',
        transformsYaml: undefined,
        profileDir,
      }),
    transformed: {},
  },
};

function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      scale: { type: 'string', default: '10' },
      'catchup-transactions': { type: 'string', default: '20000' },
      'live-seconds': { type: 'string', default: '30' },
      clients: { type: 'string', default: '4' },
      jobs: { type: 'string', default: '2' },
      seed: { type: 'string', default: '1' },
      'transaction-sizes': { type: 'string' },
      repeat: { type: 'string', default: '1' },
      scenarios: { type: 'string', default: 'native,kasho,kasho-transforms,kasho-dump' },
      profile: { type: 'boolean', default: false },
      out: { type: 'string', default: join(root, 'bench-results') },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(`Usage: npm run bench -- [options]

  --scale N                  pgbench scale of the initial database (N x 100,000 accounts; default 10)
  --catchup-transactions N   pgbench transactions committed while the pipeline is stopped (default 20000)
  --live-seconds N           seconds of pgbench at full speed with the pipeline running (default 30)
  --clients N --jobs N       pgbench clients and threads (default 4 and 2)
  --seed N                   pgbench --random-seed, the same for every system (default 1)
  --transaction-sizes LIST   rows updated by single transactions, for memory against size (default 1000,10000,
                             100000,1000000, those up to the number of accounts)
  --repeat N                 run the scenarios N times, in rounds (native, kasho, ..., native, kasho, ...); the
                             table shows medians (default 1)
  --scenarios LIST           any of ${Object.keys(SCENARIOS).join(', ')} (default all, in that order)
  --profile                  run every Kasho process under node --cpu-prof (slower: not for the figures)
  --out DIR                  where the JSON goes (default bench-results/)`);
    process.exit(0);
  }
  const int = (name: string, text: string, min: number) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min)
      throw new Error(`--${name} must be an integer >= ${min}, got '${text}'`);
    return n;
  };
  const scenarios = values.scenarios
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const s of scenarios) {
    if (!SCENARIOS[s])
      throw new Error(`unknown scenario '${s}'; choose from ${Object.keys(SCENARIOS).join(', ')}`);
  }
  const scale = int('scale', values.scale, 1);
  const sizes =
    values['transaction-sizes'] === undefined
      ? [1_000, 10_000, 100_000, 1_000_000].filter((n) => n <= scale * 100_000)
      : values['transaction-sizes']
          .split(',')
          .filter(Boolean)
          .map((s) => int('transaction-sizes', s, 1));
  const tooBig = sizes.find((n) => n > scale * 100_000);
  if (tooBig)
    throw new Error(`--transaction-sizes: ${tooBig} rows is more than the ${scale * 100_000} accounts`);
  return {
    scale,
    catchupTransactions: int('catchup-transactions', values['catchup-transactions'], 1),
    liveSeconds: int('live-seconds', values['live-seconds'], 1),
    clients: int('clients', values.clients, 1),
    jobs: int('jobs', values.jobs, 1),
    seed: int('seed', values.seed, 0),
    transactionSizes: sizes,
    scenarios,
    repeat: int('repeat', values.repeat, 1),
    profile: values.profile,
    outDir: resolve(values.out),
  };
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: root, encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

function version(program: string): string {
  try {
    return execFileSync(program, ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

/** The binaries hack/local-servers.sh runs: KASHO_PG_BIN_DIR, else the newest /usr/lib/postgresql/N/bin. */
function postgresBinDir(): string {
  if (process.env.KASHO_PG_BIN_DIR) return process.env.KASHO_PG_BIN_DIR;
  const versions = readdirSync('/usr/lib/postgresql')
    .map(Number)
    .filter((n) => Number.isInteger(n))
    .sort((a, b) => a - b);
  return `/usr/lib/postgresql/${versions[versions.length - 1] ?? ''}/bin`;
}

function machineInfo(): MachineInfo {
  return {
    cpuModel: cpus()[0]?.model ?? '',
    nproc: availableParallelism(),
    memoryBytes: machineMemoryBytes(),
    kernel: release(),
    postgres: version(join(postgresBinDir(), 'postgres')),
    node: process.version,
    redis: version('redis-server'),
    gitCommit: git(['rev-parse', '--short', 'HEAD']),
    gitDirty: git(['status', '--porcelain', '--untracked-files=no']) !== '',
    loadAverageAtStart: loadAverage(),
  };
}

const log = (text: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${text}`);

async function runScenario(scenario: Scenario, options: BenchOptions, profileRoot: string | undefined) {
  const result: ScenarioResult = { name: scenario.name, description: scenario.description };
  log(`== ${scenario.name}: ${scenario.description}`);
  const servers = await startLocalServers(scenario.name === 'native' ? { redis: false } : {});
  const source = servers.source!;
  const target = servers.target!;
  let profileDir: string | undefined;
  if (profileRoot) {
    profileDir = join(profileRoot, scenario.name);
    mkdirSync(profileDir, { recursive: true });
  }
  const system = scenario.make(servers, options, profileDir);
  let sampler: ResourceSampler | undefined;
  let redis: Redis | undefined;
  let markers: Markers | undefined;
  let probe: Probe | undefined;
  try {
    log(`pgbench -i -s ${options.scale} on the source`);
    await initialise(source, options.scale);
    await source.query(BENCH_TABLES_SQL);
    // pgbench leaves the tellers' and branches' filler NULL, which a transform passes through untouched: give them
    // text, on every system's source alike, so the transformed run rewrites two columns in every transaction.
    await source.query(`UPDATE pgbench_tellers SET filler = 'teller ' || tid`);
    await source.query(`UPDATE pgbench_branches SET filler = 'branch ' || bid`);
    // The same source for every system: Kasho's preparation sets this (pgbench_history has no primary key).
    await source.query('ALTER TABLE pgbench_history REPLICA IDENTITY FULL');
    await source.query('VACUUM ANALYZE');
    await source.query('CHECKPOINT');
    const sourceCounts = await rowCounts(source, ALL_TABLES);
    const rows = Object.values(sourceCounts).reduce((a, b) => a + b, 0);
    log(`preparing ${scenario.name}`);
    await system.prepare();
    if (system.redisUrl) {
      redis = new Redis(system.redisUrl, { maxRetriesPerRequest: 1 });
      redis.on('error', () => undefined);
    }
    sampler = new ResourceSampler(system.classifier(), redis);
    sampler.start();
    markers = await Markers.open(source, target);

    log(`bootstrap: ${rows.toLocaleString('en')} rows`);
    await sampler.beginPhase();
    const bootstrapStart = nowMs();
    const parts = await system.bootstrap();
    const marker = await markers.commit();
    const seen = await markers.waitVisible(marker.id, PHASE_TIMEOUT_MS, 'the bootstrap');
    const targetCounts = await rowCounts(target, PGBENCH_TABLES);
    const bootstrapEnd = nowMs();
    for (const t of PGBENCH_TABLES) {
      if (targetCounts[t] !== sourceCounts[t]) {
        throw new Error(
          `after the bootstrap ${t} has ${targetCounts[t]} rows on the target, ${sourceCounts[t]} on the source`,
        );
      }
    }
    result.bootstrap = {
      seconds: round((bootstrapEnd - bootstrapStart) / 1000),
      rows,
      parts: { ...parts, markerSeenAfterSeconds: round((seen - bootstrapStart) / 1000) },
      resources: await sampler.endPhase(),
    };
    if (system instanceof KashoPipeline) result.bootstrap.log = system.scriptLog('bootstrap-kasho.sh');
    log(`bootstrap: ${result.bootstrap.seconds} s (${JSON.stringify(result.bootstrap.parts)})`);

    if (!scenario.bootstrapOnly) {
      log(`catch-up: pipeline stopped, pgbench commits ${options.catchupTransactions} transactions`);
      await system.stopPipeline();
      const backlog = await runWork(source, {
        clients: options.clients,
        jobs: options.jobs,
        transactions: options.catchupTransactions,
        seed: options.seed,
      });
      const last = await markers.commit();
      const expected = await pgbenchState(source);
      await sampler.beginPhase();
      const restartAt = nowMs();
      await system.startPipeline();
      const restarted = nowMs();
      const caughtUp = await markers.waitVisible(last.id, PHASE_TIMEOUT_MS, 'the catch-up');
      const resources = await sampler.endPhase();
      const got = await pgbenchState(target);
      if (got !== expected)
        throw new Error(
          `after the catch-up the target's balances/history are ${got}, the source's ${expected}`,
        );
      result.catchup = {
        seconds: round((caughtUp - restartAt) / 1000),
        restartSeconds: round((restarted - restartAt) / 1000),
        changes: backlog.transactions * CHANGES_PER_TRANSACTION + 1,
        pgbench: backlog,
        resources,
      };
      log(
        `catch-up: ${result.catchup.seconds} s (${backlog.transactions} transactions at ${backlog.tps} tps)`,
      );

      log(`live: pgbench for ${options.liveSeconds} s at full speed, probe every 100 ms`);
      probe = await Probe.open(source, target);
      await sampler.beginPhase();
      probe.start();
      const work = await runWork(source, {
        clients: options.clients,
        jobs: options.jobs,
        seconds: options.liveSeconds,
        seed: options.seed + 1,
      });
      const pgbenchEnd = nowMs();
      const end = await markers.commit();
      const endSeen = await markers.waitVisible(end.id, PHASE_TIMEOUT_MS, 'the end of the live run');
      const probes = await probe.finish(PHASE_TIMEOUT_MS);
      result.live = {
        pgbench: work,
        lagAtEndSeconds: round((endSeen - pgbenchEnd) / 1000),
        probe: probes,
        changes: work.transactions * CHANGES_PER_TRANSACTION + probes.probes + 1,
        resources: await sampler.endPhase(),
      };
      await probe.close();
      probe = undefined;
      log(
        `live: ${work.tps} tps; lag at end ${result.live.lagAtEndSeconds} s; probe p50 ${probes.p50Ms} ms, p99 ${probes.p99Ms} ms`,
      );

      result.transactionSizes = [];
      for (const size of options.transactionSizes) {
        await sampler.beginPhase();
        await source.query(`UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= ${size}`);
        const committed = nowMs();
        const m = await markers.commit();
        const visible = await markers.waitVisible(m.id, PHASE_TIMEOUT_MS, `the ${size}-row transaction`);
        result.transactionSizes.push({
          rows: size,
          seconds: round((visible - committed) / 1000),
          resources: await sampler.endPhase(),
        });
        log(`one ${size}-row transaction: applied in ${round((visible - committed) / 1000)} s`);
      }
    }

    log('correctness: comparing every table of the target with the source');
    result.correctness = await compareTables(source, target, ALL_TABLES, scenario.transformed);
    for (const check of result.correctness) {
      log(
        `  ${check.table}: ${check.equal ? 'equal' : 'DIFFERENT'} (${check.sourceRows} rows on the source, ${check.targetRows} on the target)` +
          (check.transformedColumnsLeftEqual !== undefined
            ? `; transformed columns unchanged in ${check.transformedColumnsLeftEqual} rows`
            : ''),
      );
    }
  } catch (error) {
    result.error = error instanceof Error ? error.message : String(error);
    log(`${scenario.name} FAILED: ${result.error}`);
    if (system instanceof KashoPipeline) console.log(system.logs());
  } finally {
    await probe?.close();
    sampler?.stop();
    await markers?.close();
    await system.close().catch(() => undefined);
    redis?.disconnect();
    if (system.profiles) result.profiles = system.profiles();
    await servers.stop();
  }
  return result;
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const startedAt = new Date();
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  mkdirSync(options.outDir, { recursive: true });
  const profileRoot = options.profile ? join(options.outDir, `${stamp}-profiles`) : undefined;
  const machine = machineInfo();
  log(
    `${machine.nproc} CPUs (${machine.cpuModel}), ${(machine.memoryBytes / 2 ** 30).toFixed(1)} GiB, load average ${machine.loadAverageAtStart.join(' ')}`,
  );
  const results: BenchResults = {
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    startedAt: startedAt.toISOString(),
    options,
    machine,
    scenarios: [],
  };
  const file = join(options.outDir, `${stamp}.json`);
  for (let round = 1; round <= options.repeat; round++) {
    for (const name of options.scenarios) {
      if (options.repeat > 1) log(`round ${round} of ${options.repeat}`);
      const result = await runScenario(
        SCENARIOS[name]!,
        options,
        profileRoot && join(profileRoot, `round-${round}`),
      );
      results.scenarios.push({ ...result, round });
      writeFileSync(file, JSON.stringify(results, null, 2));
    }
  }
  results.finishedAt = new Date().toISOString();
  machine.loadAverageAtEnd = loadAverage();
  writeFileSync(file, JSON.stringify(results, null, 2));

  console.log(
    `\nscale ${options.scale}, ${options.catchupTransactions} catch-up transactions, ${options.liveSeconds} s live, ${options.clients} clients`,
  );
  console.log(
    `ratio = native/Kasho for times, CPU, latency and memory, Kasho/native for rates: >= 1 means Kasho is as good or better\n`,
  );
  console.log(table(results));
  if (options.repeat > 1) console.log(`\nEvery round:\n${spread(results)}`);
  console.log(`\nCPU by process (seconds):\n${cpuDetail(results)}`);
  const goalLines = goals(results);
  if (goalLines.length) console.log(`\nGoals:\n${goalLines.map((g) => `  ${g}`).join('\n')}`);
  const failures: string[] = [];
  for (const s of results.scenarios) {
    if (s.error) failures.push(`${s.name}: ${s.error.split('\n')[0]}`);
    for (const c of s.correctness ?? [])
      if (!c.equal) failures.push(`${s.name}: ${c.table} differs from the source`);
  }
  console.log(
    `\nCorrectness: ${failures.length === 0 ? 'every target equals its source' : failures.join('; ')}`,
  );
  if (profileRoot) console.log(`CPU profiles: ${profileRoot}`);
  console.log(`Results: ${file}`);
  if (failures.length > 0) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(`Benchmark failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
