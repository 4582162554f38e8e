/**
 * bin/pg-bootstrap-sync --source-url --snapshot: the schema from pg_dump and the rows from COPY under a snapshot
 * exported by CREATE_REPLICATION_SLOT on a replication connection, several tables at once. Writes made after the
 * snapshot, also while the program runs, must not appear; the stream must run on an empty target.
 */
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

describe('pg-bootstrap-sync --source-url (direct mode)', function () {
  this.timeout(300_000);
  let servers: LocalServers;
  let redis: Redis;
  let replication: pg.Client;
  let snapshot: string;
  const expected = new Map<string, (string | null)[][]>();
  const columnsOf = new Map<string, string[]>();
  const typesOf = new Map<string, Map<string, string>>();

  before(async () => {
    servers = await startLocalServers();
    const source = servers.source!;
    await source.query(SCHEMA);
    await source.query(
      `INSERT INTO public.filler SELECT g, 'more ' || g FROM generate_series(2501, 12000) g`,
    );
    replication = new pg.Client({
      connectionString: source.superuserUrl,
      replication: 'database',
    } as pg.ClientConfig);
    await replication.connect();
    const created = await replication.query<{ snapshot_name: string }>(
      'CREATE_REPLICATION_SLOT bootstrap_test TEMPORARY LOGICAL pgoutput EXPORT_SNAPSHOT',
    );
    snapshot = created.rows[0]!.snapshot_name;

    // What the snapshot holds, read before anything changes.
    const client = new pg.Client({ connectionString: source.superuserUrl });
    await client.connect();
    try {
      for (const [schema, name] of DATA_TABLES) {
        const types = await formatTypes(client, sqlName(schema, name));
        const columns = [...types.keys()].filter((c) => c !== 'gen');
        columnsOf.set(tableKey(schema, name), columns);
        typesOf.set(tableKey(schema, name), types);
        expected.set(tableKey(schema, name), await textRows(client, sqlName(schema, name), columns));
      }
    } finally {
      await client.end();
    }
    // Written after the snapshot: none of it may reach the stream.
    await source.query(`
      INSERT INTO public.customers (email, note) VALUES ('late@x', 'after the snapshot');
      UPDATE public.customers SET note = 'changed' WHERE email = 'a@x';
      DELETE FROM public.orders WHERE "order" = 3;
      DELETE FROM public.filler WHERE id % 3 = 0;
      CREATE TABLE public.created_later (id integer);
      INSERT INTO public.created_later VALUES (1);
      SELECT nextval('public.counter_seq');
    `);
    redis = new Redis(servers.redis!.url);
  });

  after(async () => {
    await replication?.end();
    redis?.disconnect();
    await servers?.stop();
  });

  it('reads every table under the snapshot with several connections, while the source keeps changing', async () => {
    await redis.hset(KEYS.state, { state: 'ACCUMULATING', epoch: 'test-epoch' });
    const source = servers.source!;
    let writing = true;
    let concurrent = 0;
    const writer = (async () => {
      const client = new pg.Client({ connectionString: source.superuserUrl });
      await client.connect();
      try {
        while (writing) {
          concurrent += 1;
          await client.query(
            `INSERT INTO public.filler VALUES (100000 + $1, 'during'); UPDATE public.filler SET label = 'x' WHERE id = $1`.replace(
              /\$1/g,
              String(concurrent),
            ),
          );
        }
      } finally {
        await client.end();
      }
    })();
    const result = await runBootstrapSync(
      [
        `--source-url=${source.superuserUrl}`,
        `--snapshot=${snapshot}`,
        `--redis-url=${servers.redis!.url}`,
        '--jobs=3',
        '--batch-size=500',
      ],
      { PG_DUMP: `${source.binDir}/pg_dump` },
    );
    writing = false;
    await writer;
    expect(result.status, result.output).to.equal(0);
    console.log(`      ${/Done: (.*?);/.exec(result.output)?.[1] ?? 'no summary'}`);
    expect(result.output).to.not.contain(source.superuserPassword);
    expect(concurrent).to.be.greaterThan(0);

    const changes = await readBootstrap(redis);
    const relations = await readRelations(redis);
    const body = checkPseudoTransactions(changes, 500);
    const content = contentOf(body, relations);
    checkOrder(
      content,
      DATA_TABLES.map(([schema, name]) => tableKey(schema, name)),
    );
    expect(content.ddl.some((ddl) => /created_later/.test(ddl.sql))).to.equal(false);
    // Sequences are not transactional: like pg_dump, the direct mode reads their value as it is now (102 at the
    // snapshot, advanced once since), which is never behind what the rows used.
    expect(content.ddl.map((ddl) => ddl.sql)).to.include(
      "SELECT pg_catalog.setval('public.counter_seq', 103, true)",
    );
    for (const [key, rows] of expected) {
      const relation = [...relations.values()].find((r) => tableKey(r.table!.schema, r.table!.name) === key);
      expect(relation, key).to.not.equal(undefined);
      expect(relation!.columns.map((c) => c.name)).to.deep.equal(columnsOf.get(key));
      for (const column of relation!.columns) {
        expect(column.typeName, `${key}.${column.name}`).to.equal(typesOf.get(key)!.get(column.name));
        expect(column.typeOid).to.be.greaterThan(0);
      }
      const actual = content.rows.get(key) ?? [];
      expect(actual.length, `rows of ${key}`).to.equal(rows.length);
      expect(actual, `rows of ${key}`).to.have.deep.members(rows);
    }

    // Tables interleave across pseudo-transactions, each appended whole: some hold rows of several tables.
    let mixed = 0;
    let current = new Set<number>();
    for (const change of changes) {
      if (change.kind?.$case === 'begin') current = new Set();
      if (change.kind?.$case === 'row') current.add(change.kind.value.relationId);
      if (change.kind?.$case === 'commit' && current.size > 1) mixed += 1;
    }
    expect(mixed).to.be.greaterThan(0);

    const target = servers.target!;
    await target.query('CREATE DATABASE direct_target');
    const targetUrl = target.superuserUrl.replace(/\/app$/, '/direct_target');
    await applyToTarget(targetUrl, changes, relations);
    const replica = new pg.Client({ connectionString: targetUrl });
    await replica.connect();
    try {
      for (const [key, rows] of expected) {
        const relation = [...relations.values()].find(
          (r) => tableKey(r.table!.schema, r.table!.name) === key,
        )!;
        expect(
          await textRows(replica, sqlName(relation.table!.schema, relation.table!.name), columnsOf.get(key)!),
        ).to.deep.equal(rows);
      }
      const { rows } = await replica.query(`SELECT nextval('public.counter_seq') AS seq`);
      expect(rows[0].seq).to.equal('104');
    } finally {
      await replica.end();
    }
  });

  it('explains an expired snapshot', async () => {
    await redis.flushall();
    await redis.hset(KEYS.state, { state: 'ACCUMULATING', epoch: 'test-epoch' });
    const result = await runBootstrapSync(
      [
        `--source-url=${servers.source!.superuserUrl}`,
        '--snapshot=00000003-00000099-1',
        `--redis-url=${servers.redis!.url}`,
      ],
      { PG_DUMP: `${servers.source!.binDir}/pg_dump` },
    );
    expect(result.status).to.not.equal(0);
    expect(result.output).to.contain('The snapshot 00000003-00000099-1 cannot be imported');
    expect(result.output).to.not.contain(servers.source!.superuserPassword);
    expect(await redis.xlen(KEYS.bootstrap)).to.equal(0);
  });
});
