import { expect } from 'chai';
import pg from 'pg';
import { startLocalServers, type LocalServers, type PgServer } from '../hack/testing/local-servers.js';
import { KASHO_PASSWORD, kashoUrl, queryAs, runScript, type ScriptResult } from './support/scripts.js';

const APP_PASSWORD = 'app-password-1234';

describe('scripts/prepare-primary-db.sh', function () {
  this.timeout(180_000);
  let servers: LocalServers;
  let source: PgServer;
  let target: PgServer;
  let env: Record<string, string>;
  const outputs: string[] = [];

  async function prepare(args: string[] = [], extra: Record<string, string> = {}): Promise<ScriptResult> {
    const result = await runScript('prepare-primary-db.sh', { ...env, ...extra }, args);
    outputs.push(result.output);
    return result;
  }

  function expectSuccess(result: ScriptResult): void {
    expect(result.status, result.output).to.equal(0);
  }

  /** Log rows whose statement mentions `marker`. */
  async function logged(marker: string) {
    return source.query<{ ddl: string; search_path: string; username: string }>(
      'SELECT ddl, search_path, username FROM public.kasho_ddl_log WHERE strpos(ddl, $1) > 0 ORDER BY id',
      [marker],
    );
  }

  /** What a second run must leave exactly as it was (xmin changes with every rewrite of a catalog row). */
  async function catalogState(server: PgServer) {
    return server.query(`
      SELECT 'role' AS kind, rolname AS name, xmin::text AS version, rolpassword AS detail
        FROM pg_authid WHERE rolname = 'kasho'
      UNION ALL SELECT 'function', proname, xmin::text, NULL FROM pg_proc WHERE proname LIKE 'kasho\\_%'
      UNION ALL SELECT 'event trigger', evtname, xmin::text, NULL FROM pg_event_trigger
      UNION ALL SELECT 'publication', pubname, xmin::text, NULL FROM pg_publication
      UNION ALL SELECT 'table', oid::regclass::text, xmin::text, relacl::text FROM pg_class
       WHERE relnamespace IN ('public'::regnamespace, 'app'::regnamespace)
      UNION ALL SELECT 'default acl', defaclrole::regrole::text || defaclobjtype::text, xmin::text, defaclacl::text
        FROM pg_default_acl
      UNION ALL SELECT 'database', datname, xmin::text, datacl::text FROM pg_database
      UNION ALL SELECT 'schema', nspname, xmin::text, nspacl::text FROM pg_namespace
      ORDER BY 1, 2`);
  }

  before(async () => {
    servers = await startLocalServers({ source: true, target: true });
    source = servers.source!;
    target = servers.target!;
    env = {
      PRIMARY_DATABASE_URL: kashoUrl(source),
      REPLICA_DATABASE_URL: kashoUrl(target),
      PRIMARY_DATABASE_SU_USER: source.superuser,
      PRIMARY_DATABASE_SU_PASSWORD: source.superuserPassword,
      REPLICA_DATABASE_SU_USER: target.superuser,
      REPLICA_DATABASE_SU_PASSWORD: target.superuserPassword,
    };
    // An application that owns its schema, as in production: a non-superuser, a table with a key and rows, and a
    // table without any replica identity.
    await source.query(`CREATE ROLE app LOGIN PASSWORD '${APP_PASSWORD}'`);
    await source.query('CREATE SCHEMA app AUTHORIZATION app');
    await queryAs(
      source,
      'app',
      APP_PASSWORD,
      `CREATE TABLE app.items (id int PRIMARY KEY, name text);
       INSERT INTO app.items SELECT g, 'item ' || g FROM generate_series(1, 10) g;
       CREATE TABLE app.no_key (a int, b text);
       CREATE TABLE app."Odd Name" (a int)`,
    );
  });

  after(async () => {
    await servers?.stop();
  });

  it('--help prints usage and exits 0', async () => {
    const result = await runScript('prepare-primary-db.sh', {}, ['--help']);
    expect(result.status).to.equal(0);
    expect(result.output).to.contain('Usage: scripts/prepare-primary-db.sh');
    expect(result.output).to.contain('--replica-identity-full');
  });

  it('names every missing variable with the guide’s wording', async () => {
    const result = await runScript('prepare-primary-db.sh', {});
    expect(result.status).to.equal(1);
    expect(result.output).to.contain('PRIMARY_DATABASE_URL environment variable is required');
    expect(result.output).to.contain('PRIMARY_DATABASE_SU_USER environment variable is required');
    expect(result.output).to.contain('REPLICA_DATABASE_URL environment variable is required');
  });

  it('refuses a primary without wal_level = logical and says what to change', async () => {
    // The target runs with wal_level = replica.
    const result = await prepare(['--skip-replica'], {
      PRIMARY_DATABASE_URL: kashoUrl(target),
      PRIMARY_DATABASE_SU_PASSWORD: target.superuserPassword,
    });
    expect(result.status).to.equal(1);
    expect(result.output).to.contain("wal_level is 'replica'");
    expect(result.output).to.contain('wal_level = logical');
    expect(result.output).to.contain('restart PostgreSQL');
    expect(await target.query("SELECT 1 FROM pg_roles WHERE rolname = 'kasho'")).to.have.length(0);
  });

  it('lists the tables without replica identity and changes nothing', async () => {
    const result = await prepare();
    expect(result.status).to.equal(1);
    expect(result.output).to.contain('app.no_key');
    expect(result.output).to.contain('app."Odd Name"');
    expect(result.output).not.to.contain('app.items');
    expect(result.output).to.contain('--replica-identity-full');
    expect(result.output).to.contain('ALTER TABLE app.no_key REPLICA IDENTITY FULL;');
    expect(await source.query("SELECT 1 FROM pg_roles WHERE rolname = 'kasho'")).to.have.length(0);
    expect(await source.query('SELECT 1 FROM pg_publication')).to.have.length(0);
  });

  it('gives up on a busy table instead of queueing production queries behind its lock', async () => {
    const reader = new pg.Client({ connectionString: source.superuserUrl });
    await reader.connect();
    try {
      await reader.query('BEGIN');
      await reader.query('SELECT * FROM app.no_key');
      const result = await prepare(['--replica-identity-full', '--lock-timeout', '1s']);
      expect(result.status).to.equal(1);
      expect(result.output).to.contain(
        'could not set REPLICA IDENTITY FULL on app.no_key: canceling statement due to lock timeout',
      );
    } finally {
      await reader.end();
    }
    // Tables are altered one by one: the one before it keeps its new identity, nothing after it happened.
    const identities = await source.query<{ name: string; relreplident: string }>(
      "SELECT relname AS name, relreplident FROM pg_class WHERE oid IN ('app.no_key'::regclass, 'app.\"Odd Name\"'::regclass) ORDER BY 1",
    );
    expect(identities).to.deep.equal([
      { name: 'Odd Name', relreplident: 'f' },
      { name: 'no_key', relreplident: 'd' },
    ]);
    expect(await source.query("SELECT 1 FROM pg_roles WHERE rolname = 'kasho'")).to.have.length(0);
  });

  it('--dry-run shows the changes and rolls them back', async () => {
    const result = await prepare(['--replica-identity-full', '--dry-run']);
    expectSuccess(result);
    expect(result.output).to.contain('[would change] created role kasho');
    expect(result.output).to.contain('[would change] set REPLICA IDENTITY FULL on app.no_key');
    expect(await source.query("SELECT 1 FROM pg_roles WHERE rolname = 'kasho'")).to.have.length(0);
    expect(await target.query("SELECT 1 FROM pg_roles WHERE rolname = 'kasho'")).to.have.length(0);
    expect(await source.query('SELECT 1 FROM pg_event_trigger')).to.have.length(0);
    const [identity] = await source.query<{ relreplident: string }>(
      "SELECT relreplident FROM pg_class WHERE oid = 'app.no_key'::regclass",
    );
    expect(identity?.relreplident).to.equal('d');
  });

  it('with --replica-identity-full prepares both databases', async () => {
    const result = await prepare(['--replica-identity-full']);
    expectSuccess(result);
    expect(result.output).to.contain('set REPLICA IDENTITY FULL on app.no_key');
    expect(result.output).to.contain('kasho opens a replication connection to the primary');

    const identities = await source.query<{ name: string; relreplident: string }>(
      "SELECT relname AS name, relreplident FROM pg_class WHERE relnamespace = 'app'::regnamespace AND relkind = 'r' ORDER BY 1",
    );
    expect(identities).to.deep.equal([
      { name: 'Odd Name', relreplident: 'f' },
      { name: 'items', relreplident: 'd' },
      { name: 'no_key', relreplident: 'f' },
    ]);
    const [role] = await source.query(
      "SELECT rolcanlogin, rolreplication, rolsuper FROM pg_roles WHERE rolname = 'kasho'",
    );
    expect(role).to.deep.equal({ rolcanlogin: true, rolreplication: true, rolsuper: false });
    expect(
      await source.query("SELECT puballtables FROM pg_publication WHERE pubname = 'kasho_pub'"),
    ).to.deep.equal([{ puballtables: true }]);
    expect(await source.query('SELECT evtname, evtevent FROM pg_event_trigger ORDER BY 1')).to.deep.equal([
      { evtname: 'kasho_log_ddl_drop', evtevent: 'sql_drop' },
      { evtname: 'kasho_log_ddl_end', evtevent: 'ddl_command_end' },
    ]);
    const [replicaRole] = await target.query(
      "SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = 'kasho'",
    );
    expect(replicaRole).to.deep.equal({ rolcanlogin: true, rolsuper: false });
  });

  it('lets kasho read every table on the primary, now and later, and replicate', async () => {
    const rows = await queryAs<{ count: string }>(
      source,
      'kasho',
      KASHO_PASSWORD,
      'SELECT count(*) FROM app.items',
    );
    expect(rows[0]?.count).to.equal('10');
    await queryAs(
      source,
      'app',
      APP_PASSWORD,
      'CREATE TABLE app.later (id int PRIMARY KEY); INSERT INTO app.later VALUES (1)',
    );
    const later = await queryAs<{ id: number }>(source, 'kasho', KASHO_PASSWORD, 'SELECT id FROM app.later');
    expect(later).to.deep.equal([{ id: 1 }]);
    const system = await queryAs(source, 'kasho', KASHO_PASSWORD, 'IDENTIFY_SYSTEM', {
      replication: 'database',
    });
    expect(system).to.have.length(1);
    await expectRejected(
      queryAs(source, 'kasho', KASHO_PASSWORD, 'CREATE TABLE public.kasho_may_not (id int)'),
      'permission denied',
    );
  });

  it('lets kasho create schemas and apply DDL on the replica without superuser', async () => {
    await queryAs(
      target,
      'kasho',
      KASHO_PASSWORD,
      `CREATE SCHEMA kasho;
       CREATE TABLE kasho.position (id int PRIMARY KEY);
       CREATE SCHEMA app;
       CREATE TABLE app.items (id int PRIMARY KEY, name text);
       ALTER TABLE app.items ADD COLUMN price numeric;
       CREATE TABLE public.from_source (id int);
       TRUNCATE public.from_source;
       DROP TABLE public.from_source`,
    );
    // A table the superuser made before Kasho arrived: rows can be written, and the script says that its DDL
    // needs --replica-owner.
    await target.query('CREATE TABLE public.preexisting (id int PRIMARY KEY)');
    const result = await prepare(['--replica-identity-full']);
    expectSuccess(result);
    expect(result.output).to.contain('table public.preexisting');
    expect(result.output).to.contain('--replica-owner');
    await queryAs(
      target,
      'kasho',
      KASHO_PASSWORD,
      'INSERT INTO public.preexisting VALUES (1); DELETE FROM public.preexisting',
    );
    await expectRejected(
      queryAs(target, 'kasho', KASHO_PASSWORD, 'ALTER TABLE public.preexisting ADD COLUMN x int'),
      'must be owner',
    );
    expectSuccess(await prepare(['--replica-identity-full', '--replica-owner']));
    await queryAs(target, 'kasho', KASHO_PASSWORD, 'ALTER TABLE public.preexisting ADD COLUMN x int');
  });

  it('changes nothing when run again', async () => {
    const sourceBefore = await catalogState(source);
    const targetBefore = await catalogState(target);
    const result = await prepare(['--replica-identity-full']);
    expectSuccess(result);
    expect(result.output).to.contain('Nothing changed');
    expect(result.output).not.to.contain('[changed]');
    expect(await catalogState(source)).to.deep.equal(sourceBefore);
    expect(await catalogState(target)).to.deep.equal(targetBefore);
  });

  describe('DDL capture', () => {
    it('logs a CREATE TABLE by a non-superuser once, with its search_path', async () => {
      const client = await appClient();
      try {
        await client.query('SET search_path = app, public');
        await client.query('CREATE TABLE widgets (id int PRIMARY KEY)');
      } finally {
        await client.end();
      }
      expect(await logged('widgets')).to.deep.equal([
        { ddl: 'CREATE TABLE widgets (id int PRIMARY KEY)', search_path: 'app, public', username: 'app' },
      ]);
    });

    it('logs a query of several commands once', async () => {
      const text =
        'CREATE TABLE app.multi_a (id int PRIMARY KEY); CREATE TABLE app.multi_b (id int PRIMARY KEY); ALTER TABLE app.multi_a ADD COLUMN x int';
      await queryAs(source, 'app', APP_PASSWORD, text);
      expect(await logged('multi_a')).to.deep.equal([
        { ddl: text, search_path: '"$user", public', username: 'app' },
      ]);
    });

    it('logs nothing for temporary objects', async () => {
      const client = await appClient();
      try {
        await client.query('CREATE TEMP TABLE scratch_tmp (a int)');
        await client.query('CREATE INDEX scratch_tmp_a ON scratch_tmp (a)');
        await client.query('ALTER TABLE scratch_tmp ADD COLUMN b int');
        await client.query('DROP TABLE scratch_tmp');
      } finally {
        await client.end();
      }
      expect(await logged('scratch_tmp')).to.deep.equal([]);
    });

    it('logs drops of real tables', async () => {
      await queryAs(source, 'app', APP_PASSWORD, 'DROP TABLE app.multi_b');
      expect((await logged('DROP TABLE app.multi_b')).map((row) => row.ddl)).to.deep.equal([
        'DROP TABLE app.multi_b',
      ]);
    });

    it('warns whoever creates a table without replica identity', async () => {
      const client = await appClient();
      const warnings: string[] = [];
      client.on('notice', (notice) => warnings.push(notice.message ?? ''));
      try {
        await client.query('CREATE TABLE app.keyless (a int)');
      } finally {
        await client.end();
      }
      expect(warnings.join('\n')).to.contain('table app.keyless has no primary key or replica identity');
    });

    it('cannot be written to or forged by users', async () => {
      await expectRejected(
        queryAs(
          source,
          'app',
          APP_PASSWORD,
          "INSERT INTO public.kasho_ddl_log (lsn, username, database, ddl) VALUES ('0/0', 'x', 'y', 'DROP SCHEMA app')",
        ),
        'permission denied',
      );
      await expectRejected(
        queryAs(source, 'app', APP_PASSWORD, "SELECT public.kasho_record_ddl('x', 'y', 'CREATE TABLE')"),
        'can only be called in an event trigger function',
      );
    });
  });

  it('never prints a password', async () => {
    const wrong = await prepare([], { PRIMARY_DATABASE_SU_PASSWORD: 'Wrong-SU-Password-42' });
    expect(wrong.status).to.equal(1);
    expect(wrong.output).to.contain('password authentication failed');
    const all = outputs.join('\n');
    for (const secret of [
      KASHO_PASSWORD,
      encodeURIComponent(KASHO_PASSWORD),
      source.superuserPassword,
      target.superuserPassword,
      'Wrong-SU-Password-42',
    ]) {
      expect(all).not.to.contain(secret);
    }
  });

  async function appClient() {
    const client = new pg.Client({
      host: source.host,
      port: source.port,
      database: source.database,
      user: 'app',
      password: APP_PASSWORD,
    });
    await client.connect();
    return client;
  }
});

describe('scripts/prepare-primary-db.sh after the guide’s manual setup steps', function () {
  this.timeout(120_000);
  let servers: LocalServers;
  let source: PgServer;
  const guidePassword = 'your-secure-password';

  before(async () => {
    servers = await startLocalServers({ source: true });
    source = servers.source!;
    // "Manual Database Setup Steps" 2, 4 and 5 of the deployment guide, as written there.
    await source.query(`
      CREATE ROLE kasho WITH REPLICATION LOGIN PASSWORD '${guidePassword}';
      GRANT USAGE ON SCHEMA public TO kasho;
      GRANT CREATE ON SCHEMA public TO kasho;
      GRANT SELECT ON ALL TABLES IN SCHEMA public TO kasho;
      GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO kasho;
      ALTER DEFAULT PRIVILEGES IN SCHEMA public
      GRANT SELECT ON TABLES TO kasho;
      ALTER DEFAULT PRIVILEGES IN SCHEMA public
      GRANT SELECT ON SEQUENCES TO kasho;`);
    await source.query(`
      CREATE TABLE IF NOT EXISTS kasho_ddl_log (
          id BIGSERIAL PRIMARY KEY,
          lsn pg_lsn NOT NULL,
          timestamp TIMESTAMPTZ NOT NULL DEFAULT NOW(),
          username TEXT NOT NULL,
          database TEXT NOT NULL,
          ddl TEXT NOT NULL
      );
      CREATE OR REPLACE FUNCTION kasho_cleanup_ddl_log() RETURNS void AS $$
      BEGIN
          DELETE FROM kasho_ddl_log WHERE timestamp < NOW() - INTERVAL '7 days';
      END;
      $$ LANGUAGE plpgsql;
      CREATE OR REPLACE FUNCTION kasho_log_ddl() RETURNS event_trigger AS $$
      DECLARE
          current_lsn pg_lsn;
          ddl_text TEXT;
      BEGIN
          SELECT pg_current_wal_lsn() INTO current_lsn;
          SELECT current_query() INTO ddl_text;
          INSERT INTO kasho_ddl_log (lsn, username, database, ddl)
          VALUES (current_lsn, current_user, current_database(), ddl_text);
          PERFORM kasho_cleanup_ddl_log();
      END;
      $$ LANGUAGE plpgsql;
      CREATE EVENT TRIGGER kasho_log_ddl_start
      ON ddl_command_start
      EXECUTE FUNCTION kasho_log_ddl();
      CREATE EVENT TRIGGER kasho_log_ddl_end
      ON ddl_command_end
      EXECUTE FUNCTION kasho_log_ddl();`);
    await source.query('CREATE PUBLICATION kasho_pub FOR ALL TABLES;');
  });

  after(async () => {
    await servers?.stop();
  });

  it('upgrades the DDL capture in place and then logs each statement once', async () => {
    const env = {
      PRIMARY_DATABASE_URL: kashoUrl(source, guidePassword),
      PRIMARY_DATABASE_SU_USER: source.superuser,
      PRIMARY_DATABASE_SU_PASSWORD: source.superuserPassword,
    };
    const result = await runScript('prepare-primary-db.sh', env, ['--skip-replica']);
    expect(result.status, result.output).to.equal(0);
    expect(result.output).to.contain('dropped event trigger kasho_log_ddl_start');
    expect(result.output).to.contain('added columns search_path, txid, statement_ts to public.kasho_ddl_log');
    expect(result.output).to.contain('updated function public.kasho_log_ddl()');
    expect(result.output).to.contain('[ok] publication kasho_pub publishes all tables');
    expect(result.output).not.to.contain('set the password');

    await source.query('SET search_path = public; CREATE TABLE after_upgrade (id int PRIMARY KEY)');
    const rows = await source.query<{ ddl: string; search_path: string }>(
      "SELECT ddl, search_path FROM kasho_ddl_log WHERE strpos(ddl, 'after_upgrade') > 0",
    );
    expect(rows).to.deep.equal([
      {
        ddl: 'SET search_path = public; CREATE TABLE after_upgrade (id int PRIMARY KEY)',
        search_path: 'public',
      },
    ]);

    const again = await runScript('prepare-primary-db.sh', env, ['--skip-replica']);
    expect(again.status, again.output).to.equal(0);
    expect(again.output).to.contain('Nothing changed');
  });
});

async function expectRejected(promise: Promise<unknown>, message: string): Promise<void> {
  try {
    await promise;
  } catch (error) {
    expect((error as Error).message).to.contain(message);
    return;
  }
  expect.fail(`expected an error containing "${message}"`);
}
