/** pgbench against the source: initialising the database and running the TPC-B-like workload. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { PgServer } from '../testing/local-servers.js';

/** Row changes per TPC-B-like transaction: three UPDATEs (account, teller, branch) and one INSERT (history). */
export const CHANGES_PER_TRANSACTION = 4;

export interface PgbenchRun {
  transactions: number;
  tps: number;
  seconds: number;
  failed: number;
}

export interface PgbenchWork {
  clients: number;
  jobs: number;
  /** Fixed number of transactions in all (split evenly over the clients), or ... */
  transactions?: number;
  /** ... a duration at full speed. */
  seconds?: number;
  seed: number;
}

function run(server: PgServer, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      join(server.binDir, 'pgbench'),
      ['-h', server.host, '-p', String(server.port), '-U', server.superuser, ...args, server.database],
      {
        env: { ...process.env, PGPASSWORD: server.superuserPassword, PGAPPNAME: 'bench-pgbench' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code === 0) resolve(output);
      else reject(new Error(`pgbench ${args.join(' ')} exited with code ${code}:\n${output.slice(-4000)}`));
    });
  });
}

/** pgbench -i: the four tables with scale × 100,000 accounts, primary keys, vacuumed. */
export async function initialise(server: PgServer, scale: number): Promise<void> {
  await run(server, ['-i', '-s', String(scale), '-q']);
}

export async function runWork(server: PgServer, work: PgbenchWork): Promise<PgbenchRun> {
  const args = ['-n', '-M', 'prepared', '-c', String(work.clients), '-j', String(work.jobs)];
  args.push(`--random-seed=${work.seed}`);
  if (work.transactions !== undefined) {
    args.push('-t', String(Math.ceil(work.transactions / work.clients)));
  } else {
    args.push('-T', String(work.seconds ?? 10));
  }
  const started = performance.now();
  const output = await run(server, args);
  const seconds = (performance.now() - started) / 1000;
  const processed = /number of transactions actually processed: (\d+)/.exec(output);
  const failed = /number of failed transactions: (\d+)/.exec(output);
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(output);
  if (!processed || !tps) throw new Error(`could not read pgbench's summary:\n${output.slice(-2000)}`);
  return {
    transactions: Number(processed[1]),
    tps: Number(tps[1]),
    seconds,
    failed: failed ? Number(failed[1]) : 0,
  };
}
