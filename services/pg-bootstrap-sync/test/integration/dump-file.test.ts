/**
 * bin/pg-bootstrap-sync --dump-file on a real pg_dump of a schema with everything a dump can make hard: the stream it
 * writes is well formed, every row equals the source's text output, and running the stream on an empty target
 * database in order works and gives the source's contents.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import pg from 'pg';
import { startLocalServers, type LocalServers } from '../../../../hack/testing/local-servers.js';
import {
  DATA_TABLES,
  KEYS,
  SCHEMA,
  applyToTarget,
  checkOrder,
  checkPseudoTransactions,
  contentOf,
  formatTypes,
  readBootstrap,
  readRelations,
  runBootstrapSync,
  sqlName,
  tableKey,
  textRows,
} from './support.js';

const run = promisify(execFile);

describe('pg-bootstrap-sync --dump-file', function () {
  this.timeout(300_000);
  let servers: LocalServers;
  let redis: Redis;
  let dumpFile: string;
  let redisUrl: string;

  before(async () => {
    servers = await startLocalServers();
    const source = servers.source!;
    await source.query(SCHEMA);
    dumpFile = join(servers.dir, 'dump.sql');
    await run(join(source.binDir, 'pg_dump'), [
      '--no-owner',
      '--no-privileges',
      '-f',
      dumpFile,
      source.superuserUrl,
    ]);
    redisUrl = servers.redis!.url;
    redis = new Redis(redisUrl);
  });

  after(async () => {
    redis?.disconnect();
    await servers?.stop();
  });

  beforeEach(async () => {
    await redis.flushall();
    await redis.hset(KEYS.state, { state: 'ACCUMULATING', epoch: 'test-epoch' });
  });

  it('writes the dump as bootstrap pseudo-transactions with contiguous positions, every row as the source prints it', async () => {
    const result = await runBootstrapSync([
      `--dump-file=${dumpFile}`,
      `--redis-url=${redisUrl}`,
      '--batch-size=1000',
    ]);
    expect(result.status, result.output).to.equal(0);
    expect(result.output).to.match(/Done: tables 10\/10, 2,5\d\d rows/);
    expect(result.output).to.not.contain('sent as text');
    const changes = await readBootstrap(redis);
    const body = checkPseudoTransactions(changes, 1000);
    const relations = await readRelations(redis);
    const content = contentOf(body, relations);

    expect([...relations.values()].map((r) => r.relationId).sort((a, b) => a - b)).to.deep.equal(
      Array.from({ length: DATA_TABLES.length }, (_, i) => i + 1),
    );
    const client = new pg.Client({ connectionString: servers.source!.superuserUrl });
    await client.connect();
    try {
      for (const relation of relations.values()) {
        const { schema, name } = relation.table!;
        const types = await formatTypes(client, sqlName(schema, name));
        for (const column of relation.columns) {
          expect(column.typeName, `type of ${name}.${column.name}`).to.equal(types.get(column.name));
          expect(column.key).to.equal(false);
        }
        const expected = await textRows(
          client,
          sqlName(schema, name),
          relation.columns.map((c) => c.name),
        );
        const actual = content.rows.get(tableKey(schema, name)) ?? [];
        expect(actual.length, `rows of ${name}`).to.equal(expected.length);
        expect(actual, `rows of ${name}`).to.have.deep.members(expected);
      }
    } finally {
      await client.end();
    }
    const customers = content.rows.get('public.customers')!;
    const notes = customers.map((row) => row[2]);
    expect(notes).to.include.members(['tab\there', '', '\\N', '\\.', 'back\\slash \\. and\nnewline\r\\.']);
    expect(notes).to.include.members([
      'ends with backslash\\',
      '\\.\n\\.\n',
      '\b\f\v',
      'ünïcødé 日本 🎉\u0001\u007f',
    ]);
    expect(customers.map((row) => row[3])).to.include(null);
  });

  it('orders schema, TRUNCATE, rows and post-data DDL so an empty target accepts them, without Kasho objects', async () => {
    const result = await runBootstrapSync([`--dump-file=${dumpFile}`, `--redis-url=${redisUrl}`]);
    expect(result.status, result.output).to.equal(0);
    expect(result.output).to.match(/left out: .*kasho object/);
    const changes = await readBootstrap(redis);
    const relations = await readRelations(redis);
    const content = contentOf(checkPseudoTransactions(changes, 10_000), relations);
    checkOrder(
      content,
      DATA_TABLES.map(([schema, name]) => tableKey(schema, name)),
    );
    expect(content.ddl.every((ddl) => ddl.searchPath === '')).to.equal(true);
    expect(content.ddl.map((ddl) => ddl.sql)).to.include(
      "SELECT pg_catalog.setval('public.counter_seq', 102, true)",
    );

    const target = servers.target!;
    await applyToTarget(target.superuserUrl, changes, relations);
    const source = new pg.Client({ connectionString: servers.source!.superuserUrl });
    const replica = new pg.Client({ connectionString: target.superuserUrl });
    await source.connect();
    await replica.connect();
    try {
      for (const [schema, name] of [...DATA_TABLES, ['public', 'order_totals'] as [string, string]]) {
        const columns = [...(await formatTypes(source, sqlName(schema, name))).keys()];
        expect(await textRows(replica, sqlName(schema, name), columns), name).to.deep.equal(
          await textRows(source, sqlName(schema, name), columns),
        );
      }
      const probe = async (client: pg.Client) =>
        (
          await client.query(
            `SELECT public.bump(1) AS bump, public.dollars() AS dollars, nextval('public.counter_seq') AS seq,
                    public.count_orders() AS count_orders,
                    (SELECT count(*) FROM public.customer_orders) AS view_rows,
                    (SELECT count(*) FROM pg_indexes WHERE schemaname = 'public') AS indexes,
                    (SELECT count(*) FROM pg_constraint WHERE contype = 'f') AS fks,
                    (SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal) AS triggers,
                    (SELECT obj_description('public.customers'::regclass)) AS comment,
                    to_regclass('public.kasho_ddl_log') AS ddl_log, to_regnamespace('kasho') AS kasho_schema,
                    (SELECT count(*) FROM pg_event_trigger) AS event_triggers,
                    (SELECT count(*) FROM pg_publication) AS publications`,
          )
        ).rows[0] as Record<string, unknown>;
      const onSource = await probe(source);
      const onTarget = await probe(replica);
      expect(onTarget).to.deep.include({
        bump: onSource.bump,
        dollars: '$$;',
        count_orders: onSource.count_orders,
        seq: onSource.seq,
        view_rows: onSource.view_rows,
        fks: onSource.fks,
        triggers: onSource.triggers,
        comment: 'People; with a semicolon',
        ddl_log: null,
        kasho_schema: null,
        event_triggers: '0',
        publications: '0',
      });
      // The source has kasho_ddl_log's primary key index too.
      expect(Number(onTarget.indexes)).to.equal(Number(onSource.indexes) - 1);
    } finally {
      await source.end();
      await replica.end();
    }
  });

  it('refuses to run unless pg-change-stream is ACCUMULATING, and leaves the stream alone', async () => {
    for (const state of [undefined, 'WAITING', 'STREAMING']) {
      await redis.del(KEYS.state);
      if (state) await redis.hset(KEYS.state, { state, epoch: 'e' });
      const result = await runBootstrapSync([`--dump-file=${dumpFile}`, `--redis-url=${redisUrl}`]);
      expect(result.status).to.not.equal(0);
      expect(result.output).to.contain('not ACCUMULATING');
      expect(await redis.xlen(KEYS.bootstrap)).to.equal(0);
    }
    const other = await runBootstrapSync([`--dump-file=${dumpFile}`, `--redis-url=${redisUrl}`], {
      SLOT_NAME: 'other_slot',
    });
    expect(other.output).to.contain('for slot other_slot');
  });

  it('refuses a bootstrap stream left by an earlier run unless --replace, which starts it over', async () => {
    const first = await runBootstrapSync([`--dump-file=${dumpFile}`, `--redis-url=${redisUrl}`]);
    expect(first.status, first.output).to.equal(0);
    const length = await redis.xlen(KEYS.bootstrap);
    const again = await runBootstrapSync([`--dump-file=${dumpFile}`, `--redis-url=${redisUrl}`]);
    expect(again.status).to.not.equal(0);
    expect(again.output).to.contain(`already holds ${length} events`);
    expect(again.output).to.contain('--replace');
    const replaced = await runBootstrapSync([
      `--dump-file=${dumpFile}`,
      `--redis-url=${redisUrl}`,
      '--replace',
    ]);
    expect(replaced.status, replaced.output).to.equal(0);
    expect(await redis.xlen(KEYS.bootstrap)).to.equal(length);
    checkPseudoTransactions(await readBootstrap(redis), 10_000);

    await redis.xtrim(KEYS.bootstrap, 'MAXLEN', 0);
    const trimmed = await runBootstrapSync([`--dump-file=${dumpFile}`, `--redis-url=${redisUrl}`]);
    expect(trimmed.status).to.not.equal(0);
    expect(trimmed.output).to.contain('exists (its events were trimmed)');
    const reloaded = await runBootstrapSync([
      `--dump-file=${dumpFile}`,
      `--redis-url=${redisUrl}`,
      '--replace',
    ]);
    expect(reloaded.status, reloaded.output).to.equal(0);
    expect(await redis.xlen(KEYS.bootstrap)).to.equal(length);
  });

  it('points at the file and line of a cut-off COPY block, and never prints row values', async () => {
    const text = readFileSync(dumpFile, 'utf8');
    const lines = text.split('\n');
    const copyLine = lines.findIndex((line) => line.startsWith('COPY public.customers '));
    const cut = join(servers.dir, 'cut.sql');
    writeFileSync(cut, `${lines.slice(0, copyLine + 3).join('\n')}\n`);
    const result = await runBootstrapSync([`--dump-file=${cut}`, `--redis-url=${redisUrl}`]);
    expect(result.status).to.not.equal(0);
    expect(result.output).to.contain(
      `${cut}:${copyLine + 1}: the COPY block starting here has no end-of-data line`,
    );
    expect(result.output).to.not.contain('a@x');

    const broken = join(servers.dir, 'broken.sql');
    const rowLine = copyLine + 2;
    writeFileSync(
      broken,
      lines.map((line, i) => (i === rowLine ? line.replace(/\t[^\t]*$/, '') : line)).join('\n'),
    );
    const short = await runBootstrapSync([`--dump-file=${broken}`, `--redis-url=${redisUrl}`]);
    expect(short.status).to.not.equal(0);
    expect(short.output).to.contain(
      `${broken}:${rowLine + 1}: the COPY row of public.customers has 8 fields`,
    );
    expect(short.output).to.not.contain('a@x');
  });
});
