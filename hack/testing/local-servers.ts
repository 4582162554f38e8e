/**
 * Throwaway PostgreSQL (source and target) and Redis servers for mocha tests, on free loopback ports in a temporary
 * directory:
 *
 *   let servers: LocalServers;
 *   before(async () => { servers = await startLocalServers(); });
 *   after(async () => { await servers.stop(); });
 *
 * hack/local-servers.sh does all the work (creating, starting, stopping, killing), so tests, CI and developers
 * at a shell get the same servers; this module only calls it and reads the DIR/env file it writes.
 * Servers a test forgot to stop are stopped when the process exits or gets SIGINT/SIGTERM.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KashoError } from '@kasho/common/errors';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { QueryResultRow } from 'pg';

const script = join(dirname(fileURLToPath(import.meta.url)), '..', 'local-servers.sh');

export interface LocalServersOptions {
  /** Each server starts when its option is true, or when it is left out and no option is true: `{}` starts all
   * three, `{ source: true }` only the source, `{ redis: false }` the two PostgreSQL servers. */
  source?: boolean;
  target?: boolean;
  redis?: boolean;
  /** Sets Redis' requirepass; KV_URL then carries the password. */
  redisPassword?: string;
}

export interface PgServer {
  readonly role: 'source' | 'target';
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly superuser: string;
  readonly superuserPassword: string;
  readonly superuserUrl: string;
  /** The application's URL. The superuser's for now: the kasho role appears once the preparation script
   * (scripts/prepare-primary-db.sh) has run against these servers. */
  readonly url: string;
  /** The PostgreSQL binaries the server runs from (pg_dump, pg_recvlogical and psql of the same version). */
  readonly binDir: string;
  /** One statement on a fresh connection as the superuser. */
  query<R extends QueryResultRow = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
  /** Starts it again on the same port with the same data, after stop() or kill9(). */
  start(): Promise<void>;
  /** Fast shutdown. */
  stop(): Promise<void>;
  /** SIGKILLs the postmaster and all its processes at once, as a crash would; start() then runs crash recovery. */
  kill9(): Promise<void>;
}

export interface RedisServer {
  readonly host: string;
  readonly port: number;
  readonly url: string;
  readonly password: string | undefined;
  /** Starts it again on the same port; the append-only file brings the data back. */
  start(): Promise<void>;
  /** SIGTERM: Redis flushes its append-only file and exits. */
  stop(): Promise<void>;
  kill9(): Promise<void>;
  flushAll(): Promise<void>;
}

export interface LocalServers {
  readonly dir: string;
  readonly source?: PgServer;
  readonly target?: PgServer;
  readonly redis?: RedisServer;
  /** DIR/env as written by the script: the deployment guide's names (PRIMARY_DATABASE_URL, REPLICA_DATABASE_URL,
   * KV_URL, *_SU_USER, *_SU_PASSWORD, *_SU_URL, ports), ready to hand to a service under test. */
  readonly env: Record<string, string>;
  /** Stops every server and removes the directory. */
  stop(): Promise<void>;
}

type Server = 'source' | 'target' | 'redis';

const running = new Set<string>();
let hooksInstalled = false;

function stopSync(dir: string): void {
  try {
    execFileSync('bash', [script, 'stop', dir, '--clean'], { stdio: ['ignore', 'ignore', 'inherit'] });
  } catch {
    // The script has printed what went wrong; the other directories still need stopping.
  }
  running.delete(dir);
}

function stopAllSync(): void {
  for (const dir of [...running]) stopSync(dir);
}

/** A test that forgets stop(), a failing `before` or Ctrl-C must not leave servers behind. */
function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', stopAllSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      stopAllSync();
      // Dying of the signal as if nobody had listened keeps the exit status callers expect.
      process.kill(process.pid, signal);
    });
  }
}

function runScript(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('bash', [script, ...args], { maxBuffer: 16 * 1024 * 1024 }, (error, _stdout, stderr) => {
      if (!error) {
        resolve();
        return;
      }
      reject(
        new KashoError(
          `hack/local-servers.sh ${args.join(' ')} failed (exit code ${String(error.code)})`,
          stderr.trim() || 'The script printed nothing; run it by hand to see what happens.',
        ),
      );
    });
  });
}

/** Reads the `export NAME='value'` lines the script writes (values single-quoted, a quote as '\''). */
export function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^export ([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!match) continue;
    const raw = match[2] ?? '';
    let value = '';
    for (let i = 0; i < raw.length;) {
      const c = raw[i];
      if (c === "'") {
        const end = raw.indexOf("'", i + 1);
        if (end < 0) throw new KashoError(`unterminated quote in the env file line for ${match[1] ?? ''}`);
        value += raw.slice(i + 1, end);
        i = end + 1;
      } else if (c === '\\') {
        value += raw[i + 1] ?? '';
        i += 2;
      } else {
        value += c;
        i += 1;
      }
    }
    env[match[1] ?? ''] = value;
  }
  return env;
}

function required(env: Record<string, string>, name: string): string {
  const value = env[name];
  if (value === undefined) {
    throw new KashoError(
      `the env file of the local servers has no ${name}`,
      'Was it written by another version?',
    );
  }
  return value;
}

function pgServer(dir: string, role: 'source' | 'target', env: Record<string, string>): PgServer {
  const prefix = role === 'source' ? 'PRIMARY_DATABASE' : 'REPLICA_DATABASE';
  const superuserUrl = required(env, `${prefix}_SU_URL`);
  return {
    role,
    host: required(env, `${prefix}_HOST`),
    port: Number(required(env, `${prefix}_PORT`)),
    database: required(env, `${prefix}_NAME`),
    superuser: required(env, `${prefix}_SU_USER`),
    superuserPassword: required(env, `${prefix}_SU_PASSWORD`),
    superuserUrl,
    url: required(env, `${prefix}_URL`),
    binDir: required(env, 'PG_BIN_DIR'),
    async query<R extends QueryResultRow = Record<string, unknown>>(sql: string, params?: unknown[]) {
      const client = new pg.Client({ connectionString: superuserUrl });
      await client.connect();
      try {
        return (await client.query<R>(sql, params)).rows;
      } finally {
        await client.end();
      }
    },
    start: () => runScript(['start', dir, `--${role}`]),
    stop: () => runScript(['stop', dir, `--${role}`]),
    kill9: () => runScript(['kill', dir, `--${role}`]),
  };
}

function redisServer(dir: string, env: Record<string, string>): RedisServer {
  const url = required(env, 'KV_URL');
  return {
    host: '127.0.0.1',
    port: Number(required(env, 'KV_PORT')),
    url,
    password: env['KV_PASSWORD'],
    start: () => runScript(['start', dir, '--redis']),
    stop: () => runScript(['stop', dir, '--redis']),
    kill9: () => runScript(['kill', dir, '--redis']),
    async flushAll() {
      const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0 });
      try {
        await client.connect();
        await client.flushall();
      } finally {
        client.disconnect();
      }
    },
  };
}

export async function startLocalServers(options: LocalServersOptions = {}): Promise<LocalServers> {
  const anyChosen = options.source === true || options.target === true || options.redis === true;
  const chosen = (server: Server): boolean => options[server] ?? !anyChosen;
  const servers = (['source', 'target', 'redis'] as const).filter(chosen);
  if (servers.length === 0) throw new KashoError('startLocalServers was asked to start no server');

  const dir = mkdtempSync(join(tmpdir(), 'kasho-servers-'));
  installHooks();
  running.add(dir);
  const args = ['start', dir, ...servers.map((server) => `--${server}`)];
  if (options.redisPassword !== undefined) args.push('--redis-password', options.redisPassword);
  try {
    await runScript(args);
  } catch (error) {
    stopSync(dir);
    throw error;
  }
  const env = parseEnvFile(readFileSync(join(dir, 'env'), 'utf8'));
  return {
    dir,
    env,
    ...(chosen('source') ? { source: pgServer(dir, 'source', env) } : {}),
    ...(chosen('target') ? { target: pgServer(dir, 'target', env) } : {}),
    ...(chosen('redis') ? { redis: redisServer(dir, env) } : {}),
    async stop() {
      await runScript(['stop', dir, '--clean']);
      running.delete(dir);
    },
  };
}
