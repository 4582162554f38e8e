import { expect } from 'chai';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalServers, type LocalServers, type PgServer } from '../hack/testing/local-servers.js';
import { freePort, startService, type RunningService } from '../hack/testing/services.js';
import { KASHO_PASSWORD, kashoCtl, kashoUrl, runScript, type ScriptResult } from './support/scripts.js';

const REDIS_PASSWORD = 'Redis-Secret-5150';
const ROWS = 2000;

describe('scripts/bootstrap-kasho.sh', function () {
  this.timeout(180_000);
  let servers: LocalServers;
  let source: PgServer;
  let changeStream: RunningService;
  let address: string;
  let dumpDir: string;
  let env: Record<string, string>;
  const outputs: string[] = [];

  async function bootstrap(extra: Record<string, string> = {}): Promise<ScriptResult> {
    const result = await runScript('bootstrap-kasho.sh', { ...env, ...extra });
    outputs.push(result.output);
    return result;
  }

  const state = () => kashoCtl(address, 'status').state;

  before(async () => {
    servers = await startLocalServers({ redisPassword: REDIS_PASSWORD });
    source = servers.source!;
    const target = servers.target!;
    await source.query(
      `CREATE TABLE public.customers (id int PRIMARY KEY, email text, created timestamptz DEFAULT now());
       INSERT INTO public.customers (id, email) SELECT g, 'user' || g || '@example.com' FROM generate_series(1, ${ROWS}) g`,
    );
    const prepared = await runScript('prepare-primary-db.sh', {
      PRIMARY_DATABASE_URL: kashoUrl(source),
      REPLICA_DATABASE_URL: kashoUrl(target),
      PRIMARY_DATABASE_SU_USER: source.superuser,
      PRIMARY_DATABASE_SU_PASSWORD: source.superuserPassword,
      REPLICA_DATABASE_SU_USER: target.superuser,
      REPLICA_DATABASE_SU_PASSWORD: target.superuserPassword,
    });
    expect(prepared.status, prepared.output).to.equal(0);
    const grpcPort = await freePort();
    const httpPort = await freePort();
    address = `127.0.0.1:${grpcPort}`;
    changeStream = await startService(
      'pg-change-stream',
      {
        PRIMARY_DATABASE_URL: kashoUrl(source),
        KV_URL: servers.env.KV_URL!,
        GRPC_PORT: String(grpcPort),
        HTTP_PORT: String(httpPort),
      },
      { httpPort },
    );
    dumpDir = mkdtempSync(join(tmpdir(), 'kasho-dump-dir-'));
    env = {
      PRIMARY_DATABASE_URL: kashoUrl(source),
      KV_URL: servers.env.KV_URL!,
      CHANGE_STREAM_SERVICE: address,
      DUMP_DIR: dumpDir,
    };
  });

  after(async () => {
    await changeStream?.stop();
    await servers?.stop();
    if (dumpDir) rmSync(dumpDir, { recursive: true, force: true });
  });

  it('--help prints usage and exits 0', async () => {
    const result = await runScript('bootstrap-kasho.sh', {}, ['--help']);
    expect(result.status).to.equal(0);
    expect(result.output).to.contain('Usage: scripts/bootstrap-kasho.sh');
    expect(result.output).to.contain('WAIT_FOR_BOOTSTRAP');
  });

  it('names its missing variables with the guide’s wording', async () => {
    const result = await runScript('bootstrap-kasho.sh', {});
    expect(result.status).to.equal(1);
    expect(result.output).to.contain('PRIMARY_DATABASE_URL environment variable is required');
    expect(result.output).to.contain('KV_URL environment variable is required');
  });

  it('refuses to start unless pg-change-stream is WAITING', async () => {
    kashoCtl(address, 'start-bootstrap');
    expect(state()).to.equal('ACCUMULATING');
    const result = await bootstrap({ WAIT_FOR_BOOTSTRAP: 'true' });
    expect(result.status).to.equal(1);
    expect(result.output).to.contain('pg-change-stream is ACCUMULATING');
    expect(result.output).to.contain('reset-bootstrap');
    kashoCtl(address, 'reset-bootstrap');
    expect(state()).to.equal('WAITING');
  });

  it('fails clearly when a step fails, removes the dump and leaves a state that ResetBootstrap clears', async () => {
    const result = await bootstrap({
      WAIT_FOR_BOOTSTRAP: 'true',
      PRIMARY_DATABASE_URL: kashoUrl(source, 'Wrong-Password-77'),
    });
    expect(result.status).to.equal(1);
    expect(result.output).to.contain('pg_dump failed');
    expect(result.output).to.contain('the bootstrap failed while dumping the source with pg_dump');
    expect(result.output).to.contain('kasho.ChangeStreamService/ResetBootstrap');
    expect(result.output).not.to.contain('Wrong-Password-77');
    expect(readdirSync(dumpDir)).to.deep.equal([]);
    expect(state()).to.equal('ACCUMULATING');
    expect(kashoCtl(address, 'status').snapshotHeld).to.equal(undefined);
    kashoCtl(address, 'reset-bootstrap');
    expect(state()).to.equal('WAITING');
  });

  it('reports a replication slot it did not create, as the guide’s troubleshooting describes', async () => {
    await source.query("SELECT pg_create_logical_replication_slot('kasho_slot', 'pgoutput')");
    try {
      const result = await bootstrap({ WAIT_FOR_BOOTSTRAP: 'true' });
      expect(result.status).to.equal(1);
      expect(result.output).to.contain('replication slot already exists');
      expect(result.output).to.contain("pg_drop_replication_slot('kasho_slot')");
      expect(result.output).to.contain('pg-change-stream is WAITING again');
      expect(state()).to.equal('WAITING');
    } finally {
      await source.query("SELECT pg_drop_replication_slot('kasho_slot')");
    }
  });

  it('without WAIT_FOR_BOOTSTRAP and without a terminal, loads and says how to complete', async () => {
    const result = await bootstrap();
    expect(result.status, result.output).to.equal(0);
    expect(result.output).to.contain('kasho.ChangeStreamService/CompleteBootstrap');
    expect(state()).to.equal('ACCUMULATING');
    kashoCtl(address, 'reset-bootstrap');
  });

  it('with WAIT_FOR_BOOTSTRAP=true dumps, loads, completes and ends STREAMING', async () => {
    const result = await bootstrap({ WAIT_FOR_BOOTSTRAP: 'true' });
    expect(result.status, result.output).to.equal(0);
    expect(result.output).to.match(
      /dump complete: \d+ tables, [\d.]+ (B|KiB|MiB) in [\d.]+ s \([\d.]+ (B|KiB|MiB)\/s\)/,
    );
    expect(result.output).to.contain('Bootstrap complete.');
    const status = kashoCtl(address, 'status');
    expect(status.state).to.equal('STREAMING');
    expect(Number(status.bootstrapChanges)).to.be.greaterThan(ROWS);
    expect(readdirSync(dumpDir)).to.deep.equal([]);
  });

  it('run again, finds the bootstrap complete and changes nothing', async () => {
    const epoch = kashoCtl(address, 'status').epoch;
    const result = await bootstrap({ WAIT_FOR_BOOTSTRAP: 'true' });
    expect(result.status, result.output).to.equal(0);
    expect(result.output).to.contain('already STREAMING');
    expect(kashoCtl(address, 'status')).to.include({ state: 'STREAMING', epoch });
  });

  it('BOOTSTRAP_METHOD=direct reads the source without a dump file', async () => {
    kashoCtl(address, 'reset-bootstrap');
    const result = await bootstrap({ WAIT_FOR_BOOTSTRAP: 'true', BOOTSTRAP_METHOD: 'direct' });
    expect(result.status, result.output).to.equal(0);
    const status = kashoCtl(address, 'status');
    expect(status.state).to.equal('STREAMING');
    expect(Number(status.bootstrapChanges)).to.be.greaterThan(ROWS);
  });

  it('never prints a password', () => {
    const all = outputs.join('\n');
    for (const secret of [
      KASHO_PASSWORD,
      encodeURIComponent(KASHO_PASSWORD),
      REDIS_PASSWORD,
      'Wrong-Password-77',
    ]) {
      expect(all).not.to.contain(secret);
    }
  });
});
