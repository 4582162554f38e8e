import { execFile, execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
} from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import pg from 'pg';
import { parseEnvFile, startLocalServers } from '../testing/local-servers.js';
import type { LocalServers, PgServer } from '../testing/local-servers.js';

const hack = join(dirname(fileURLToPath(import.meta.url)), '..');
const script = join(hack, 'local-servers.sh');
const helper = join(hack, 'testing', 'local-servers.ts');
const root = join(hack, '..');

/** Live (not zombie) processes whose working directory is inside dir: PostgreSQL works in its data directory,
 * Redis in its own directory. Independent of the script's own bookkeeping on purpose. */
function processesIn(dir: string): { pid: number; command: string }[] {
  const found: { pid: number; command: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cwd = readlinkSync(`/proc/${entry}/cwd`).replace(/ \(deleted\)$/, '');
      if (cwd !== dir && !cwd.startsWith(`${dir}/`)) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      const command = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      found.push({ pid: Number(entry), command });
    } catch {
      // The process ended while being read, or is not ours to read.
    }
  }
  return found;
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function withRedis<T>(url: string, use: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  // ioredis reports a refused handshake (NOAUTH) as an 'error' event and then only "Connection is closed".
  let refused: Error | undefined;
  client.on('error', (error: Error) => {
    refused = error;
  });
  try {
    await client.connect();
    return await use(client);
  } catch (error) {
    throw refused ? new Error(`${(error as Error).message} (${refused.message})`) : error;
  } finally {
    client.disconnect();
  }
}

function pgSetting(server: PgServer, name: string): Promise<string> {
  return server
    .query<{ setting: string }>('SELECT setting FROM pg_settings WHERE name = $1', [name])
    .then((rows) => rows[0]?.setting ?? '');
}

describe('hack/local-servers (PostgreSQL source and target, Redis)', function () {
  let servers: LocalServers;
  let source: PgServer;
  let target: PgServer;

  before(async function () {
    servers = await startLocalServers();
    if (!servers.source || !servers.target || !servers.redis)
      throw new Error('startLocalServers() left out a server');
    source = servers.source;
    target = servers.target;
  });

  after(async function () {
    await servers?.stop();
  });

  it('writes the deployment guide variables, matching the servers', function () {
    const env = servers.env;
    for (const name of [
      'PRIMARY_DATABASE_URL',
      'PRIMARY_DATABASE_SU_URL',
      'PRIMARY_DATABASE_SU_USER',
      'PRIMARY_DATABASE_SU_PASSWORD',
      'PRIMARY_DATABASE_PORT',
      'REPLICA_DATABASE_URL',
      'REPLICA_DATABASE_SU_URL',
      'REPLICA_DATABASE_SU_USER',
      'REPLICA_DATABASE_SU_PASSWORD',
      'REPLICA_DATABASE_PORT',
      'KV_URL',
      'KV_PORT',
    ]) {
      expect(env[name], name).to.be.a('string').and.not.equal('');
    }
    expect(env['PRIMARY_DATABASE_SU_USER']).to.equal('postgres');
    expect(source.superuserUrl).to.equal(
      `postgresql://postgres:${env['PRIMARY_DATABASE_SU_PASSWORD']}@127.0.0.1:${source.port}/app`,
    );
    expect(target.superuserUrl).to.equal(
      `postgresql://postgres:${env['REPLICA_DATABASE_SU_PASSWORD']}@127.0.0.1:${target.port}/app`,
    );
    expect(source.url).to.equal(source.superuserUrl);
    expect(env['KV_URL']).to.equal(`redis://127.0.0.1:${servers.redis?.port}`);
    expect(new Set([source.port, target.port, servers.redis?.port]).size).to.equal(3);
    expect(source.superuserPassword).to.not.equal(target.superuserPassword);
    expect(
      parseEnvFile(execFileSync('bash', [script, 'env', servers.dir], { encoding: 'utf8' })),
    ).to.deep.equal(env);
  });

  it('runs the source with wal_level=logical and room for replication slots', async function () {
    expect(await source.query('SHOW wal_level')).to.deep.equal([{ wal_level: 'logical' }]);
    expect(Number(await pgSetting(source, 'max_replication_slots'))).to.be.at.least(10);
    expect(Number(await pgSetting(source, 'max_wal_senders'))).to.be.at.least(10);
    expect(await pgSetting(source, 'listen_addresses')).to.equal('127.0.0.1');
    expect(await source.query('SELECT current_database() AS db, current_user AS who')).to.deep.equal([
      { db: 'app', who: 'postgres' },
    ]);
  });

  it('creates and drops a pgoutput logical replication slot on the source', async function () {
    const [created] = await source.query<{ slot_name: string; lsn: string }>(
      "SELECT * FROM pg_create_logical_replication_slot('local_servers_test', 'pgoutput')",
    );
    expect(created?.slot_name).to.equal('local_servers_test');
    expect(
      await source.query(
        "SELECT plugin, slot_type FROM pg_replication_slots WHERE slot_name = 'local_servers_test'",
      ),
    ).to.deep.equal([{ plugin: 'pgoutput', slot_type: 'logical' }]);
    await source.query("SELECT pg_drop_replication_slot('local_servers_test')");
    expect(await source.query('SELECT slot_name FROM pg_replication_slots')).to.deep.equal([]);
  });

  it('accepts a replication connection on the source with the URL password', async function () {
    const client = new pg.Client({ connectionString: `${source.url}?replication=database` });
    await client.connect();
    try {
      const result = await client.query('IDENTIFY_SYSTEM');
      expect(result.rows[0]).to.include({ dbname: 'app' });
    } finally {
      await client.end();
    }
  });

  it('refuses a wrong password (the URLs really carry credentials)', async function () {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: source.port,
      user: 'postgres',
      password: 'wrong',
      database: 'app',
    });
    client.on('error', () => {});
    let message = '';
    await client.connect().catch((error: Error) => {
      message = error.message;
    });
    expect(message).to.match(/password authentication failed/);
  });

  it('runs a target that accepts connections and queries', async function () {
    await target.query('CREATE TABLE accepted (id int PRIMARY KEY, note text)');
    await target.query('INSERT INTO accepted VALUES ($1, $2)', [1, 'héllo']);
    expect(await target.query('SELECT id, note FROM accepted')).to.deep.equal([{ id: 1, note: 'héllo' }]);
    expect(await target.query('SHOW server_encoding')).to.deep.equal([{ server_encoding: 'UTF8' }]);
  });

  it('runs Redis that answers PING at KV_URL', async function () {
    expect(await withRedis(servers.env['KV_URL'] ?? '', (client) => client.ping())).to.equal('PONG');
  });

  it('keeps committed rows through kill9() of the source and start() (crash recovery)', async function () {
    await source.query('CREATE TABLE survives (id int PRIMARY KEY)');
    await source.query('INSERT INTO survives SELECT generate_series(1, 100)');
    const [postmaster] = readFileSync(join(servers.dir, 'source', 'data', 'postmaster.pid'), 'utf8').split(
      '\n',
    );
    await source.kill9();
    expect(alive(Number(postmaster))).to.equal(false);
    expect(processesIn(join(servers.dir, 'source'))).to.deep.equal([]);
    expect(await portOpen(source.port)).to.equal(false);
    await source.start();
    expect(await source.query('SELECT count(*)::int AS n FROM survives')).to.deep.equal([{ n: 100 }]);
    expect(readFileSync(join(servers.dir, 'source', 'postgres.log'), 'utf8')).to.match(
      /database system was interrupted|not properly shut down/,
    );
  });

  it('keeps data through stop() and start() of the target', async function () {
    await target.query('CREATE TABLE kept (id int)');
    await target.stop();
    expect(await portOpen(target.port)).to.equal(false);
    await target.start();
    expect(await target.query('SELECT count(*)::int AS n FROM kept')).to.deep.equal([{ n: 0 }]);
  });

  it('keeps Redis data through kill9() and start() (append-only file)', async function () {
    const redis = servers.redis;
    if (!redis) throw new Error('no redis');
    await withRedis(redis.url, (client) => client.set('local-servers:key', 'value'));
    await redis.kill9();
    expect(await portOpen(redis.port)).to.equal(false);
    await redis.start();
    expect(await withRedis(redis.url, (client) => client.get('local-servers:key'))).to.equal('value');
    await redis.flushAll();
    expect(await withRedis(redis.url, (client) => client.dbsize())).to.equal(0);
  });

  it('leaves no process and no open port behind after stop()', async function () {
    const ports = [source.port, target.port, servers.redis?.port ?? 0];
    const before = processesIn(servers.dir);
    expect(before.some((p) => p.command.includes(`postgres -D ${servers.dir}/source/data`))).to.equal(true);
    expect(before.some((p) => p.command.includes(`postgres -D ${servers.dir}/target/data`))).to.equal(true);
    expect(before.some((p) => p.command.startsWith('redis-server'))).to.equal(true);
    for (const port of ports) expect(await portOpen(port), `port ${port} before stop`).to.equal(true);

    await servers.stop();

    expect(before.filter((p) => alive(p.pid))).to.deep.equal([]);
    expect(processesIn(servers.dir)).to.deep.equal([]);
    for (const port of ports) expect(await portOpen(port), `port ${port} after stop`).to.equal(false);
    expect(existsSync(servers.dir)).to.equal(false);
  });
});

describe('hack/local-servers with a Redis password', function () {
  let servers: LocalServers;
  const password = "p@ss:w/rd 'quoted' %41";

  before(async function () {
    servers = await startLocalServers({ redis: true, redisPassword: password });
  });

  after(async function () {
    await servers?.stop();
  });

  it('starts only Redis', function () {
    expect(servers.source).to.equal(undefined);
    expect(servers.target).to.equal(undefined);
    expect(servers.env['PRIMARY_DATABASE_URL']).to.equal(undefined);
    expect(servers.redis?.password).to.equal(password);
  });

  it('requires AUTH and accepts the credentials in KV_URL', async function () {
    const redis = servers.redis;
    if (!redis) throw new Error('no redis');
    let refused = '';
    await withRedis(`redis://127.0.0.1:${redis.port}`, (client) => client.ping()).catch((error: Error) => {
      refused = error.message;
    });
    expect(refused).to.match(/NOAUTH/);
    expect(redis.url).to.not.include(password);
    expect(await withRedis(servers.env['KV_URL'] ?? '', (client) => client.ping())).to.equal('PONG');
    await redis.stop();
    await redis.start();
    expect(await withRedis(redis.url, (client) => client.ping())).to.equal('PONG');
  });
});

describe('hack/local-servers cleanup when a test process ends without stop()', function () {
  const child = (mode: 'exit' | 'signal') => `
    import { startLocalServers } from ${JSON.stringify(helper)};
    const servers = await startLocalServers({ source: true, redis: true });
    console.log(servers.dir);
    if (${JSON.stringify(mode)} === 'exit') process.exit(0);
    setInterval(() => {}, 1000);
  `;

  function runChild(
    mode: 'exit' | 'signal',
  ): Promise<{ dir: string; code: number | null; signal: string | null }> {
    return new Promise((resolve, reject) => {
      const proc = spawn(
        process.execPath,
        ['--conditions=development', '--import', 'tsx', '--input-type=module', '-e', child(mode)],
        { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let out = '';
      proc.stdout.setEncoding('utf8');
      proc.stdout.on('data', (chunk: string) => {
        out += chunk;
        if (mode === 'signal' && out.includes('\n')) proc.kill('SIGTERM');
      });
      proc.once('error', reject);
      proc.once('exit', (code, signal) => resolve({ dir: out.trim(), code, signal }));
    });
  }

  it('stops the servers and removes the directory on process exit', async function () {
    const { dir, code } = await runChild('exit');
    expect(code).to.equal(0);
    expect(dir).to.match(/kasho-servers-/);
    expect(processesIn(dir)).to.deep.equal([]);
    expect(existsSync(dir)).to.equal(false);
  });

  it('stops the servers on SIGTERM and still dies of the signal', async function () {
    const { dir, signal } = await runChild('signal');
    expect(signal).to.equal('SIGTERM');
    expect(dir).to.match(/kasho-servers-/);
    expect(processesIn(dir)).to.deep.equal([]);
    expect(existsSync(dir)).to.equal(false);
  });
});

describe('hack/local-servers.sh run by a user other than root', function () {
  it('starts and stops the servers as that user', async function () {
    if (process.getuid?.() !== 0) {
      console.log(
        '    (skipped: this run is not root, so every other test already ran the script as a plain user)',
      );
      this.skip();
    }
    // The script as root runs PostgreSQL as `postgres` (or creates `kasho`); whichever exists is a plain user here.
    const user = ['postgres', 'kasho'].find((name) => {
      try {
        execFileSync('id', ['-u', name], { stdio: 'ignore' });
        return true;
      } catch {
        return false;
      }
    });
    if (!user) throw new Error('no unprivileged user: the root run above should have created one');
    const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
    const dir = mkdtempSync(join(tmpdir(), 'kasho-servers-'));
    chownSync(dir, uid, gid);
    chmodSync(dir, 0o700);
    const run = promisify(execFile);
    const asUser = (...args: string[]) =>
      run('runuser', ['-u', user, '--', 'bash', script, ...args], { cwd: '/' });
    try {
      await asUser('start', dir, '--source', '--redis', '--redis-password', 'secret');
      const env = parseEnvFile(readFileSync(join(dir, 'env'), 'utf8'));
      const owners = processesIn(dir).map(
        (p) => readFileSync(`/proc/${p.pid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)?.[1],
      );
      expect(owners).to.have.length.above(0);
      expect(new Set(owners)).to.deep.equal(new Set([String(uid)]));
      const client = new pg.Client({ connectionString: env['PRIMARY_DATABASE_URL'] });
      await client.connect();
      try {
        expect((await client.query('SHOW wal_level')).rows).to.deep.equal([{ wal_level: 'logical' }]);
      } finally {
        await client.end();
      }
      expect(await withRedis(env['KV_URL'] ?? '', (client) => client.ping())).to.equal('PONG');
      await asUser('stop', dir, '--clean');
      expect(processesIn(dir)).to.deep.equal([]);
      expect(existsSync(dir)).to.equal(false);
    } finally {
      if (existsSync(dir)) {
        execFileSync('bash', [script, 'stop', dir, '--clean'], { stdio: 'inherit' });
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });
});
