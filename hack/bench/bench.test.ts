import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import type { BenchResults } from './results.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The benchmark's driver on tiny work: that it runs through and its checks hold, not how fast anything is. */
describe('npm run bench (hack/bench/run.ts)', function () {
  this.timeout(15 * 60_000);
  let out: string;
  let results: BenchResults;
  let printed = '';

  before(async () => {
    out = mkdtempSync(join(tmpdir(), 'kasho-bench-test-'));
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(
        process.execPath,
        [
          '--conditions=development',
          '--import',
          'tsx',
          'hack/bench/run.ts',
          '--scale=1',
          '--catchup-transactions=200',
          '--live-seconds=2',
          '--transaction-sizes=100',
          '--scenarios=native,kasho-transforms',
          `--out=${out}`,
        ],
        { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      child.stdout.on('data', (chunk: Buffer) => (printed += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (printed += chunk.toString()));
      child.once('exit', resolve);
    });
    const files = readdirSync(out).filter((f) => f.endsWith('.json'));
    if (code !== 0 || files.length !== 1) console.log(printed);
    expect(code, 'exit code of the benchmark').to.equal(0);
    results = JSON.parse(readFileSync(join(out, files[0]!), 'utf8')) as BenchResults;
  });

  after(() => {
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it('measures every phase of both systems and finds each target equal to its source', () => {
    expect(results.scenarios.map((s) => s.name)).to.deep.equal(['native', 'kasho-transforms']);
    for (const s of results.scenarios) {
      expect(s.error, `${s.name} failed`).to.equal(undefined);
      expect(s.bootstrap?.rows, 'accounts, branches and tellers at scale 1').to.equal(100_000 + 1 + 10);
      expect(s.catchup?.changes).to.equal(200 * 4 + 1);
      expect(s.live?.probe.probes).to.be.greaterThan(0);
      expect(s.transactionSizes?.map((t) => t.rows)).to.deep.equal([100]);
      expect(s.correctness?.map((c) => [c.table, c.equal])).to.deep.equal(
        [
          'pgbench_accounts',
          'pgbench_branches',
          'pgbench_tellers',
          'pgbench_history',
          'bench_probe',
          'bench_marker',
        ].map((t) => [t, true]),
      );
    }
  });

  it('counts the CPU of the processes doing the work', () => {
    const [native, kasho] = results.scenarios;
    expect(Object.keys(native!.live!.resources.cpuSecondsByRole)).to.include.members([
      'source walsender',
      'target apply worker',
    ]);
    expect(Object.keys(kasho!.live!.resources.cpuSecondsByRole)).to.include.members([
      'pg-change-stream',
      'pg-translicator',
      'redis-server',
      'source walsender',
      'target backends (kasho role)',
    ]);
    expect(kasho!.bootstrap!.resources.peakByRole['pg-bootstrap-sync']?.rssBytes).to.be.greaterThan(0);
  });

  it('rewrites the transformed columns and leaves the rest equal', () => {
    const checks = results.scenarios[1]!.correctness!;
    expect(checks.find((c) => c.table === 'pgbench_accounts')?.transformedColumnsLeftEqual).to.equal(0);
    expect(checks.find((c) => c.table === 'pgbench_tellers')?.transformedColumnsLeftEqual).to.equal(0);
  });

  it('prints the table with native, Kasho and their ratio', () => {
    expect(printed).to.match(/metric\s+native\s+kasho-transforms\s+ratio/);
    expect(printed).to.include('Correctness: every target equals its source');
  });
});
