/**
 * Runs the user-facing scripts (scripts/*.sh) and kasho-ctl the way a user does: as programs with an environment,
 * judged by exit code and output.
 */
import { spawn, spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import pg from 'pg';
import type { PgServer } from '../../hack/testing/local-servers.js';

const root = resolve(import.meta.dirname, '..', '..');

/** A password that needs every kind of escaping: URL, SQL literal, psql variable, shell. */
export const KASHO_PASSWORD = `Kasho-Pw'7"q\\x $@%&z`;

export interface ScriptResult {
  status: number | null;
  /** Standard output and standard error together. */
  output: string;
}

/** Runs scripts/NAME with only PATH and `env`, standard input closed (no terminal). */
export function runScript(
  name: string,
  env: Record<string, string>,
  args: string[] = [],
  timeoutMs = 120_000,
): Promise<ScriptResult> {
  return new Promise((done, fail) => {
    const child = spawn('bash', [join(root, 'scripts', name), ...args], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', fail);
    child.once('close', (status) => {
      clearTimeout(timer);
      done({ status, output });
    });
  });
}

/** The kasho role's URL for a local server. */
export function kashoUrl(server: PgServer, password = KASHO_PASSWORD): string {
  return `postgresql://kasho:${encodeURIComponent(password)}@${server.host}:${server.port}/${server.database}`;
}

/** One statement on a fresh connection as the given role. */
export async function queryAs<R extends pg.QueryResultRow = Record<string, unknown>>(
  server: PgServer,
  user: string,
  password: string,
  sql: string,
  options: { replication?: 'database' } = {},
): Promise<R[]> {
  const client = new pg.Client({
    host: server.host,
    port: server.port,
    database: server.database,
    user,
    password,
    ...options,
  });
  await client.connect();
  try {
    return (await client.query<R>(sql)).rows;
  } finally {
    await client.end();
  }
}

/** bin/kasho-ctl COMMAND against pg-change-stream at `address`, parsed. */
export function kashoCtl(address: string, command: string): Record<string, unknown> {
  const result = spawnSync(join(root, 'bin', 'kasho-ctl'), ['--address', address, command], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (result.status !== 0) throw new Error(`kasho-ctl ${command} failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as Record<string, unknown>;
}
