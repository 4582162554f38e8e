import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startLocalServers, type LocalServers, type PgServer } from '../hack/testing/local-servers.js';
import { eventually, freePort, startService, type RunningService } from '../hack/testing/services.js';
import {
  createTransformer,
  parseTransforms,
  type ColumnInfo,
} from '../services/pg-translicator/src/transforms/index.js';
import { kashoUrl, runScript } from './support/scripts.js';

const TRANSFORM_SECRET = 'e2e-pipeline-secret';
const TRANSFORMS = `version: v1
tables:
  public.users:
    email: FakeEmail
    name: FakeName
  public.orders:
    email: FakeEmail
    name: FakeName
`;

/** Created on the source only: the bootstrap copies the schema to the empty target. */
const SCHEMA = `
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE all_types (
  id int PRIMARY KEY, n numeric(30,10), f float8, t text, b bytea, flag bool, d date, ts timestamptz,
  iv interval, u uuid, j json, jb jsonb, arr int[], m mood, ip inet
);
CREATE SCHEMA "Mixed Case";
CREATE TABLE "Mixed Case"."Order" ("Id" int PRIMARY KEY, "select" text, "From" int);
CREATE TABLE no_pk (a int, b text);
CREATE TABLE users (id int PRIMARY KEY, email text, name text, note text);
CREATE TABLE orders (id int PRIMARY KEY, user_id int, email text, name text, amount numeric(12,2));
CREATE TABLE small (id int PRIMARY KEY, v text);
CREATE TABLE kasho_test_marker (id bigint PRIMARY KEY);

INSERT INTO all_types VALUES
  (1, 12345678901234567890.0123456789, 'NaN', E'line one\\nline "two"\\n''three''', '\\x00ff10', true,
   '2024-02-29', '2024-01-01 12:34:56.789+05', '1 year 2 mons 3 days 04:05:06', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
   '{"a": [1, 2, {"b": null}]}', '{"z": 1, "a": "x\\"y"}', '{1,NULL,3}', 'happy', '192.168.0.1/24'),
  (2, -0.0000000001, 'Infinity', '', '\\x', false, '1999-12-31', '1970-01-01 00:00:00+00', '-1 days', NULL,
   '[]', '{}', '{}', 'sad', '::1'),
  (3, NULL, '-Infinity', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '{NULL}', NULL, NULL),
  (4, 0, 1.5e-300, 'tab\there', '\\xdeadbeef', true, 'infinity', 'infinity', '00:00:00.000001',
   '00000000-0000-0000-0000-000000000000', 'null', '"str"', '{-2147483648,2147483647}', 'ok', '10.0.0.0/8');
INSERT INTO "Mixed Case"."Order" SELECT g, 'sel ' || g, g * 2 FROM generate_series(1, 50) g;
INSERT INTO no_pk SELECT g % 20, 'row ' || (g % 20) FROM generate_series(1, 60) g;
INSERT INTO users SELECT g, CASE WHEN g % 7 = 0 THEN NULL ELSE 'person' || (g % 40) || '@example.com' END,
  CASE WHEN g % 11 = 0 THEN NULL ELSE 'Name ' || g END, E'note\\n' || g FROM generate_series(1, 200) g;
INSERT INTO orders SELECT g, g % 200 + 1, CASE WHEN g % 9 = 0 THEN NULL ELSE 'person' || (g % 40) || '@example.com' END,
  'Buyer ' || (g % 30), g * 1.25 FROM generate_series(1, 300) g;
INSERT INTO small SELECT g, 'small ' || g FROM generate_series(1, 10) g;
`;

interface TableName {
  schema: string;
  name: string;
}

const TABLES: TableName[] = [
  { schema: 'public', name: 'all_types' },
  { schema: 'Mixed Case', name: 'Order' },
  { schema: 'public', name: 'no_pk' },
  { schema: 'public', name: 'users' },
  { schema: 'public', name: 'orders' },
  { schema: 'public', name: 'small' },
  { schema: 'public', name: 'kasho_test_marker' },
];

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;
const qualified = (table: TableName) => `${ident(table.schema)}.${ident(table.name)}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Row = (string | null)[];

/** A connection that returns every value in PostgreSQL's text form, with settings equal on both servers. */
async function textClient(server: PgServer): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: server.superuserUrl,
    types: { getTypeParser: () => (v: string) => v },
  });
  await client.connect();
  await client.query(`SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'postgres'`);
  return client;
}

async function columnsOf(client: pg.Client, table: TableName): Promise<ColumnInfo[]> {
  const result = await client.query<{ name: string; type_name: string }>(
    `SELECT attname AS name, format_type(atttypid, atttypmod) AS type_name FROM pg_attribute
      WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [qualified(table)],
  );
  return result.rows.map((r) => ({ name: r.name, typeName: r.type_name }));
}

const sortRows = (rows: Row[]) =>
  rows
    .map((row) => JSON.stringify(row))
    .sort()
    .map((text) => JSON.parse(text) as Row);

async function rowsOf(client: pg.Client, table: TableName, columns: ColumnInfo[]): Promise<Row[]> {
  const result = await client.query({
    text: `SELECT ${columns.map((c) => ident(c.name)).join(', ')} FROM ${qualified(table)}`,
    rowMode: 'array',
  });
  return sortRows(result.rows as Row[]);
}

/** A loop of small transactions on the source (about one every 20 ms) until stopped. */
class Writer {
  private stopped = false;
  private done: Promise<void> | undefined;
  private client: pg.Client | undefined;
  transactions = 0;
  error: unknown;

  constructor(
    private readonly source: PgServer,
    private nextId: number,
  ) {}

  async start(): Promise<void> {
    this.client = new pg.Client({ connectionString: this.source.superuserUrl });
    await this.client.connect();
    const client = this.client;
    this.done = (async () => {
      try {
        while (!this.stopped) {
          const id = this.nextId++;
          const email = id % 5 === 0 ? null : `person${id % 40}@example.com`;
          await client.query('BEGIN');
          await client.query('INSERT INTO users (id, email, name, note) VALUES ($1, $2, $3, $4)', [
            id,
            email,
            `Writer ${id}`,
            `w\n${id}`,
          ]);
          await client.query(
            'INSERT INTO orders (id, user_id, email, name, amount) VALUES ($1, $1, $2, $3, $4)',
            [id, email, `Writer buyer ${id % 13}`, (id % 1000) / 4],
          );
          await client.query(`UPDATE users SET name = name || '+' WHERE id = $1`, [(id % 200) + 1]);
          await client.query(`UPDATE all_types SET n = coalesce(n, 0) + 1, ts = now() WHERE id = $1`, [
            (id % 4) + 1,
          ]);
          await client.query(`UPDATE "Mixed Case"."Order" SET "select" = $2 WHERE "Id" = $1`, [
            (id % 50) + 1,
            `w ${id}`,
          ]);
          if (id % 3 === 0) await client.query('DELETE FROM orders WHERE id = $1', [id - 1]);
          await client.query('COMMIT');
          this.transactions++;
          await sleep(20);
        }
      } catch (error) {
        this.error = error;
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
    await this.client?.end();
    if (this.error) throw this.error;
  }
}

describe('the whole pipeline as the guide runs it: scripts, both services, DML, DDL, crashes and a Redis wipe', function () {
  this.timeout(1_200_000);
  let servers: LocalServers;
  let source: PgServer;
  let target: PgServer;
  let dumpDir: string;
  let transformsFile: string;
  let env: Record<string, string>;
  let grpcPort: number;
  let changeStreamHttp: number;
  let translicatorHttp: number;
  let changeStream: RunningService | undefined;
  let translicator: RunningService | undefined;
  const allServices: RunningService[] = [];
  const tables = [...TABLES];
  let markers = 0;
  let nextWriterId = 100_000;
  const transformer = createTransformer(parseTransforms(TRANSFORMS, 'transforms.yml'), {
    secret: TRANSFORM_SECRET,
  });

  async function startChangeStream(): Promise<void> {
    changeStream = await startService(
      'pg-change-stream',
      {
        PRIMARY_DATABASE_URL: env.PRIMARY_DATABASE_URL!,
        KV_URL: env.KV_URL!,
        GRPC_PORT: String(grpcPort),
        HTTP_PORT: String(changeStreamHttp),
      },
      { httpPort: changeStreamHttp, waitFor: 'healthz', timeoutMs: 180_000 },
    );
    allServices.push(changeStream);
  }

  async function startTranslicator(): Promise<void> {
    translicator = await startService(
      'pg-translicator',
      {
        CHANGE_STREAM_SERVICE: `127.0.0.1:${grpcPort}`,
        REPLICA_DATABASE_URL: env.REPLICA_DATABASE_URL!,
        TRANSFORMS_FILE: transformsFile,
        TRANSFORM_SECRET,
        HTTP_PORT: String(translicatorHttp),
      },
      { httpPort: translicatorHttp, waitFor: 'readyz', timeoutMs: 180_000 },
    );
    allServices.push(translicator);
  }

  /** Commits a marker row on the source and waits for it on the target: all earlier commits are applied then. */
  async function caughtUp(): Promise<void> {
    const marker = ++markers;
    await source.query('INSERT INTO kasho_test_marker (id) VALUES ($1)', [marker]);
    await eventually(
      `the target to apply marker ${marker}`,
      async () => {
        const rows = await target.query('SELECT 1 FROM kasho_test_marker WHERE id = $1', [marker]);
        return rows.length > 0 ? true : undefined;
      },
      300_000,
    );
  }

  /** target == transform(source), table by table, plus the masking properties checked on the target itself. */
  async function expectTargetEqualsTransformedSource(): Promise<void> {
    const s = await textClient(source);
    const t = await textClient(target);
    try {
      for (const table of tables) {
        const columns = await columnsOf(s, table);
        expect(await columnsOf(t, table), `columns of ${qualified(table)}`).to.deep.equal(columns);
        const sourceRows = await rowsOf(s, table, columns);
        const ref = { schema: table.schema, name: table.name };
        const expected = transformer.hasRules(ref)
          ? sortRows(
              sourceRows.map((row) =>
                transformer
                  .transformRow(
                    ref,
                    columns,
                    row.map((v) =>
                      v === null ? { kind: 'null' as const } : { kind: 'text' as const, text: v },
                    ),
                  )
                  .map((v) => (v.kind === 'text' ? v.text : null)),
              ),
            )
          : sourceRows;
        const actual = await rowsOf(t, table, columns);
        expect(actual.length, `row count of ${qualified(table)}`).to.equal(expected.length);
        expect(actual, `rows of ${qualified(table)}`).to.deep.equal(expected);
      }

      const fakes = new Map<string, string>();
      for (const table of ['users', 'orders']) {
        const sql = `SELECT id, email, name FROM ${table}`;
        const original = new Map((await s.query(sql)).rows.map((r: Record<string, string>) => [r.id, r]));
        const copies = (await t.query(sql)).rows as Record<string, string | null>[];
        expect(copies.length).to.equal(original.size);
        for (const copy of copies) {
          const row = original.get(copy.id!) as Record<string, string | null>;
          for (const column of ['email', 'name']) {
            if (row[column] === null) expect(copy[column], `${table}.${column} NULL kept`).to.equal(null);
            else
              expect(copy[column], `${table}.${column} masked`).to.be.a('string').and.not.equal(row[column]);
          }
          if (row.email !== null) {
            const seen = fakes.get(row.email!);
            if (seen === undefined) fakes.set(row.email!, copy.email!);
            else expect(copy.email, `the fake of one email in ${table}`).to.equal(seen);
          }
        }
      }
      expect(fakes.size).to.be.greaterThan(10);
    } finally {
      await s.end();
      await t.end();
    }
  }

  /** Runs a writer, does `action` at a random moment of it, keeps writing a little, then stops the writer. */
  async function duringBurst(action: () => Promise<void>): Promise<void> {
    const writer = new Writer(source, nextWriterId);
    nextWriterId += 100_000;
    await writer.start();
    await sleep(300 + Math.random() * 2000);
    await action();
    await sleep(500);
    await writer.stop();
    expect(writer.transactions).to.be.greaterThan(0);
  }

  before(async () => {
    servers = await startLocalServers();
    source = servers.source!;
    target = servers.target!;
    dumpDir = mkdtempSync(join(tmpdir(), 'kasho-e2e-dump-'));
    transformsFile = join(servers.dir, 'transforms.yml');
    writeFileSync(transformsFile, TRANSFORMS);
    await source.query(SCHEMA);
    env = {
      PATH: `${source.binDir}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      PRIMARY_DATABASE_URL: kashoUrl(source),
      REPLICA_DATABASE_URL: kashoUrl(target),
      PRIMARY_DATABASE_SU_USER: source.superuser,
      PRIMARY_DATABASE_SU_PASSWORD: source.superuserPassword,
      REPLICA_DATABASE_SU_USER: target.superuser,
      REPLICA_DATABASE_SU_PASSWORD: target.superuserPassword,
      KV_URL: servers.env.KV_URL!,
    };
    const prepared = await runScript('prepare-primary-db.sh', env, ['--replica-identity-full'], 300_000);
    expect(prepared.status, prepared.output).to.equal(0);

    grpcPort = await freePort();
    changeStreamHttp = await freePort();
    translicatorHttp = await freePort();
    await startChangeStream();

    const writer = new Writer(source, nextWriterId);
    nextWriterId += 100_000;
    await writer.start();
    const bootstrapped = await runScript(
      'bootstrap-kasho.sh',
      {
        ...env,
        CHANGE_STREAM_SERVICE: `127.0.0.1:${grpcPort}`,
        WAIT_FOR_BOOTSTRAP: 'true',
        DUMP_DIR: dumpDir,
      },
      [],
      600_000,
    );
    await writer.stop();
    expect(bootstrapped.status, bootstrapped.output).to.equal(0);
    expect(writer.transactions, 'transactions of the concurrent writer').to.be.greaterThan(0);
    await startTranslicator();
  });

  afterEach(function () {
    if (this.currentTest?.state !== 'failed') return;
    for (const service of allServices) {
      console.log(`----- ${service.name} (pid ${service.pid}) -----\n${service.output()}`);
    }
  });

  after(async () => {
    await translicator?.stop();
    await changeStream?.stop();
    await servers?.stop();
    if (dumpDir) rmSync(dumpDir, { recursive: true, force: true });
  });

  it('after a bootstrap with a concurrent writer, the target equals transform(source)', async () => {
    await caughtUp();
    await expectTargetEqualsTransformedSource();
  });

  it('applies a DML workload: inserts, updates with key changes, deletes and a TRUNCATE', async () => {
    await source.query(`
      INSERT INTO users SELECT g, CASE WHEN g % 4 = 0 THEN NULL ELSE 'person' || (g % 40) || '@example.com' END,
        'Later ' || g, NULL FROM generate_series(1001, 1100) g;
      INSERT INTO orders SELECT g, g, 'person' || (g % 40) || '@example.com', NULL, 9.99 FROM generate_series(1001, 1050) g;
      UPDATE users SET email = 'changed' || id || '@example.com' WHERE id % 13 = 1;
      UPDATE users SET email = NULL, name = NULL WHERE id % 17 = 2;
      UPDATE users SET id = id + 500000 WHERE id % 10 = 3 AND id < 1000;
      UPDATE "Mixed Case"."Order" SET "Id" = "Id" + 1000, "From" = NULL WHERE "Id" % 5 = 0;
      UPDATE all_types SET f = 'NaN', t = E'new\\n"quoted"', arr = '{NULL,NULL}', jb = '{"k": [true, null]}', m = 'ok'
        WHERE id = 2;
      UPDATE all_types SET b = NULL, iv = '-3 hours', ip = '2001:db8::/32' WHERE id = 1;
      INSERT INTO all_types (id, n, f, t) VALUES (5, 1e-10, -0.0, 'x');
      UPDATE no_pk SET b = b || '!' WHERE a % 3 = 0;
      DELETE FROM no_pk WHERE a = 7;
      INSERT INTO no_pk VALUES (NULL, NULL), (99, 'new');
      DELETE FROM users WHERE id % 19 = 4;
      DELETE FROM orders WHERE amount > 300;
      TRUNCATE small;
      INSERT INTO small VALUES (100, 'after truncate');
    `);
    await caughtUp();
    await expectTargetEqualsTransformedSource();
  });

  it('applies DDL run on the source: ADD COLUMN with a default, a new table with rows', async () => {
    await source.query(`
      ALTER TABLE users ADD COLUMN tier text NOT NULL DEFAULT 'free';
      UPDATE users SET tier = 'pro' WHERE id % 3 = 0;
      CREATE TABLE "Mixed Case"."New Table" ("Id" int PRIMARY KEY, "user" text, at timestamptz DEFAULT now());
      INSERT INTO "Mixed Case"."New Table" ("Id", "user") SELECT g, 'u' || g FROM generate_series(1, 30) g;
      INSERT INTO users (id, email, name, tier) VALUES (2001, 'person1@example.com', 'After DDL', 'gold');
    `);
    tables.push({ schema: 'Mixed Case', name: 'New Table' });
    await caughtUp();
    await expectTargetEqualsTransformedSource();
  });

  it('recovers from kill -9 of pg-change-stream at a random moment of a write burst', async () => {
    await duringBurst(async () => {
      await changeStream!.kill9();
      await startChangeStream();
    });
    await caughtUp();
    await expectTargetEqualsTransformedSource();
  });

  it('recovers from kill -9 of pg-translicator at a random moment of a write burst', async () => {
    await duringBurst(async () => {
      await translicator!.kill9();
      await startTranslicator();
    });
    await caughtUp();
    await expectTargetEqualsTransformedSource();
  });

  it('recovers from a Redis wipe (FLUSHALL) during a write burst', async () => {
    await duringBurst(() => servers.redis!.flushAll());
    await caughtUp();
    await expectTargetEqualsTransformedSource();
  });
});
