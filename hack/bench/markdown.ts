/**
 * Prints a results file of `npm run bench` as Markdown (the machine, the table, every round, CPU by process), for
 * docs/performance.md.
 *
 *   node --import tsx hack/bench/markdown.ts bench-results/<timestamp>.json
 */
import { readFileSync } from 'node:fs';
import { cpuDetail, goals, spread, table } from './report.js';
import type { BenchResults } from './results.js';

const file = process.argv[2];
if (!file) {
  console.error('Usage: hack/bench/markdown.ts bench-results/<timestamp>.json');
  process.exit(2);
}
const results = JSON.parse(readFileSync(file, 'utf8')) as BenchResults;
const m = results.machine;
const o = results.options;
console.log(`- Command: \`${results.command}\`, ${results.startedAt} to ${results.finishedAt ?? '?'}`);
console.log(
  `- Machine: ${m.nproc} CPUs (${m.cpuModel}), ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB, Linux ${m.kernel}; ${m.postgres}; Node.js ${m.node}; ${m.redis}`,
);
console.log(`- Kasho at ${m.gitCommit}${m.gitDirty ? ' with uncommitted changes' : ''}`);
console.log(
  `- Load average (1, 5, 15 min): ${m.loadAverageAtStart.join(', ')} at the start, ${m.loadAverageAtEnd?.join(', ') ?? '?'} at the end`,
);
console.log(
  `- Work: pgbench scale ${o.scale}, ${o.clients} clients, ${o.jobs} threads, seed ${o.seed}; catch-up ${o.catchupTransactions} transactions; live ${o.liveSeconds} s; ${o.repeat} round(s), medians shown\n`,
);
console.log(table(results, true));
console.log('\nEvery round:\n');
console.log('```\n' + spread(results) + '\n```');
console.log('\nCPU by process:\n');
console.log('```\n' + cpuDetail(results) + '\n```');
console.log('\nGoals:\n');
for (const g of goals(results)) console.log(`- ${g}`);
