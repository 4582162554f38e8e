/**
 * What comes out of bin/pg-change-stream's Stream call for what was written to the source: every value exactly as
 * the server prints it, unchanged TOAST, NULL and '' apart, old keys for each replica identity, TRUNCATE, rolled
 * back work, DDL log rows.
 */
import { expect } from 'chai';
import { OldTuple, ReplicaIdentity, RowOperation } from '@kasho/common';
import {
  NULL,
  UNCHANGED_TOAST,
  printOutputOnFailure,
  serverText,
  startPipeline,
  text,
  type Consumer,
  type Pipeline,
  type ReceivedRow,
} from './support.js';

const SETUP = `
  CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
  CREATE TABLE all_types (
    id int PRIMARY KEY, i2 int2, i4 int4, i8 int8, n numeric, n2 numeric(40,15), f4 float4, f8 float8,
    t text, by bytea, b bool, d date, ts timestamp, tstz timestamptz, tm time, tmtz timetz, iv interval,
    u uuid, j json, jb jsonb, ai int[], at text[], m mood, ma mood[], ip inet, net cidr, mac macaddr,
    pt point, tv tsvector, rng numrange, vc varchar(10), ch char(4)
  );
  CREATE TABLE toasty (id int PRIMARY KEY, big text, small text);
  ALTER TABLE toasty ALTER COLUMN big SET STORAGE EXTERNAL;
  CREATE TABLE by_key (id int PRIMARY KEY, v text);
  CREATE TABLE by_index (a int NOT NULL, b text NOT NULL, c text);
  CREATE UNIQUE INDEX by_index_ab ON by_index (a, b);
  ALTER TABLE by_index REPLICA IDENTITY USING INDEX by_index_ab;
  CREATE TABLE by_full (a int, b text);
  ALTER TABLE by_full REPLICA IDENTITY FULL;
  CREATE TABLE parent (id serial PRIMARY KEY, v text);
  CREATE TABLE child (id serial PRIMARY KEY, parent_id int REFERENCES parent (id));
`;

describe('pg-change-stream: values and row events through the Stream call', function () {
  this.timeout(180_000);

  let pipeline: Pipeline;
  let consumer: Consumer;

  before(async () => {
    pipeline = await startPipeline(SETUP);
    const started = await pipeline.bootstrap();
    consumer = pipeline.consumer({ epoch: started.epoch }).start();
  });

  afterEach(function () {
    printOutputOnFailure(this, pipeline);
  });

  after(async () => {
    await pipeline?.close();
  });

  const rowsOf = (table: string): ReceivedRow[] => consumer.rows().filter((row) => row.table === table);

  it('carries every common type exactly as the server prints it', async () => {
    await pipeline.sql.query(`
      INSERT INTO all_types VALUES
        (1, -32768, 2147483647, -9223372036854775808, 123456789012345678901234567890.123456789012345678901,
         -1234567890123456789012345.123456789012345, 'NaN', 'Infinity',
         E'line one\\nline two\\r\\n\\ttab \\\\ backslash "quote" ''apos'' 😀 ü', '\\x00ff0000',
         true, 'infinity', '-infinity', '2024-02-29 12:34:56.789012+05:30', '23:59:59.999999', '12:00:00+05:30',
         '1 year 2 mons 3 days 04:05:06.789', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
         '{ "b": 1,  "a": [1, 2], "a": null }', '{ "b": 1,  "a": [1, 2] }', '{1,NULL,3}',
         '{"a b",NULL,"NULL","x\\"y",""}', 'happy', '{sad,NULL,ok}', '192.168.0.1/24', '10.0.0.0/8',
         '08:00:2b:01:02:03', '(1.5,-2.25)', 'a fat cat sat on the mat', '[1.5,2.5)', 'short', 'ab'),
        (2, 0, 0, 0, 'NaN', 0.000000000000001, '-Infinity', 'NaN', '', '\\x', false, '-infinity', 'infinity',
         '-infinity', '00:00', '00:00:00-05:30', '-1 days -00:00:01', '00000000-0000-0000-0000-000000000000',
         '[]', '{}', '{}', '{}', 'sad', '{}', '::1', '::/0', 'ff:ff:ff:ff:ff:ff', '(0,0)', '', 'empty',
         '', ''),
        (3, NULL, NULL, NULL, NULL, NULL, 3.14159274, '-Infinity', NULL, NULL, NULL, '1999-12-31', '2000-01-01 00:00:00.5',
         'infinity', NULL, NULL, '1 microsecond', NULL, 'null', 'null', '{{1,2},{3,NULL}}', NULL, NULL, NULL,
         NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    `);
    const expected = await serverText(pipeline.sql, 'SELECT * FROM all_types ORDER BY id');
    await consumer.until('the three rows of all_types', () => rowsOf('public.all_types').length >= 3);
    const rows = rowsOf('public.all_types');
    expect(rows.map((row) => row.operation)).to.deep.equal([
      RowOperation.INSERT,
      RowOperation.INSERT,
      RowOperation.INSERT,
    ]);
    const relation = rows[0]!.relation;
    expect(relation.columns.map((column) => column.typeName)).to.deep.equal([
      'integer',
      'smallint',
      'integer',
      'bigint',
      'numeric',
      'numeric(40,15)',
      'real',
      'double precision',
      'text',
      'bytea',
      'boolean',
      'date',
      'timestamp without time zone',
      'timestamp with time zone',
      'time without time zone',
      'time with time zone',
      'interval',
      'uuid',
      'json',
      'jsonb',
      'integer[]',
      'text[]',
      'public.mood',
      'public.mood[]',
      'inet',
      'cidr',
      'macaddr',
      'point',
      'tsvector',
      'numrange',
      'character varying(10)',
      'character(4)',
    ]);
    rows.forEach((row, i) => expect(row.newValues, `row ${i + 1}`).to.deep.equal(expected[i]));
    // The server's own output, not a re-rendering: spot checks of what would go wrong first.
    const first = rows[0]!.newValues;
    expect(first[4]).to.deep.equal(text('123456789012345678901234567890.123456789012345678901'));
    expect(first[6]).to.deep.equal(text('NaN'));
    expect(first[7]).to.deep.equal(text('Infinity'));
    expect(first[9]).to.deep.equal(text('\\x00ff0000'));
    expect(first[18]).to.deep.equal(text('{ "b": 1,  "a": [1, 2], "a": null }'));
    expect(first[19]).to.deep.equal(text('{"a": [1, 2], "b": 1}'));
    expect(first[20]).to.deep.equal(text('{1,NULL,3}'));
    expect(rows[1]!.newValues[8]).to.deep.equal(text(''));
    expect(rows[2]!.newValues[8]).to.deep.equal(NULL);
  });

  it('marks an unchanged TOASTed column UNCHANGED_TOAST and keeps NULL and the empty string apart', async () => {
    const big = Array.from({ length: 4000 }, (_, i) => String.fromCharCode(33 + ((i * 7919) % 90))).join('');
    await pipeline.sql.query(`INSERT INTO toasty VALUES (1, $1, 'before'), (2, NULL, ''), (3, '', NULL)`, [
      big,
    ]);
    await pipeline.sql.query(`UPDATE toasty SET small = 'after' WHERE id = 1`);
    await pipeline.sql.query(`UPDATE toasty SET small = NULL WHERE id = 2`);
    await consumer.until('the toasty updates', () => rowsOf('public.toasty').length >= 5);
    const [insert1, insert2, insert3, update1, update2] = rowsOf('public.toasty');
    expect(insert1!.newValues).to.deep.equal([text('1'), text(big), text('before')]);
    expect(insert2!.newValues).to.deep.equal([text('2'), NULL, text('')]);
    expect(insert3!.newValues).to.deep.equal([text('3'), text(''), NULL]);
    expect(update1!.operation).to.equal(RowOperation.UPDATE);
    expect(update1!.newValues).to.deep.equal([text('1'), UNCHANGED_TOAST, text('after')]);
    expect(update2!.newValues).to.deep.equal([text('2'), NULL, NULL]);
  });

  it('gives deletes and key-changing updates usable old keys with DEFAULT, USING INDEX and FULL identity', async () => {
    await pipeline.sql.query(`
      INSERT INTO by_key VALUES (1, 'one'), (2, 'two');
      UPDATE by_key SET v = 'uno' WHERE id = 1;
      UPDATE by_key SET id = 10 WHERE id = 1;
      DELETE FROM by_key WHERE id = 2;
      INSERT INTO by_index VALUES (1, 'x', 'c1'), (2, 'y', 'c2');
      UPDATE by_index SET c = 'c1b' WHERE a = 1;
      UPDATE by_index SET b = 'x2' WHERE a = 1;
      DELETE FROM by_index WHERE a = 2;
      INSERT INTO by_full VALUES (1, 'f1'), (2, 'f2');
      UPDATE by_full SET b = 'f1b' WHERE a = 1;
      DELETE FROM by_full WHERE a = 2;
    `);
    await consumer.until('the replica identity rows', () => rowsOf('public.by_full').length >= 4);

    const byKey = rowsOf('public.by_key');
    expect(byKey[0]!.relation.replicaIdentity).to.equal(ReplicaIdentity.REPLICA_IDENTITY_DEFAULT);
    expect(byKey[0]!.relation.columns.map((c) => c.key)).to.deep.equal([true, false]);
    const [, , keyKept, keyChanged, keyDeleted] = byKey;
    expect(keyKept!.oldTuple).to.equal(OldTuple.OLD_TUPLE_NONE);
    expect(keyKept!.newValues).to.deep.equal([text('1'), text('uno')]);
    expect(keyChanged!.oldTuple).to.equal(OldTuple.OLD_TUPLE_KEY);
    expect(keyChanged!.oldValues[0]).to.deep.equal(text('1'));
    expect(keyChanged!.newValues).to.deep.equal([text('10'), text('uno')]);
    expect(keyDeleted!.operation).to.equal(RowOperation.DELETE);
    expect(keyDeleted!.oldTuple).to.equal(OldTuple.OLD_TUPLE_KEY);
    expect(keyDeleted!.oldValues[0]).to.deep.equal(text('2'));

    const byIndex = rowsOf('public.by_index');
    expect(byIndex[0]!.relation.replicaIdentity).to.equal(ReplicaIdentity.REPLICA_IDENTITY_INDEX);
    expect(byIndex[0]!.relation.columns.map((c) => c.key)).to.deep.equal([true, true, false]);
    const [, , indexKept, indexChanged, indexDeleted] = byIndex;
    expect(indexKept!.oldTuple).to.equal(OldTuple.OLD_TUPLE_NONE);
    expect(indexChanged!.oldTuple).to.equal(OldTuple.OLD_TUPLE_KEY);
    expect(indexChanged!.oldValues.slice(0, 2)).to.deep.equal([text('1'), text('x')]);
    expect(indexChanged!.newValues).to.deep.equal([text('1'), text('x2'), text('c1b')]);
    expect(indexDeleted!.oldTuple).to.equal(OldTuple.OLD_TUPLE_KEY);
    expect(indexDeleted!.oldValues.slice(0, 2)).to.deep.equal([text('2'), text('y')]);

    const byFull = rowsOf('public.by_full');
    expect(byFull[0]!.relation.replicaIdentity).to.equal(ReplicaIdentity.REPLICA_IDENTITY_FULL);
    const [, , fullUpdated, fullDeleted] = byFull;
    expect(fullUpdated!.oldTuple).to.equal(OldTuple.OLD_TUPLE_FULL);
    expect(fullUpdated!.oldValues).to.deep.equal([text('1'), text('f1')]);
    expect(fullUpdated!.newValues).to.deep.equal([text('1'), text('f1b')]);
    expect(fullDeleted!.oldTuple).to.equal(OldTuple.OLD_TUPLE_FULL);
    expect(fullDeleted!.oldValues).to.deep.equal([text('2'), text('f2')]);
  });

  it('delivers TRUNCATE ... RESTART IDENTITY CASCADE as one event, and never rolled-back work', async () => {
    await pipeline.sql.query(`
      INSERT INTO parent (v) VALUES ('p1'), ('p2');
      INSERT INTO child (parent_id) VALUES (1), (2);
    `);
    await pipeline.sql.query('BEGIN');
    await pipeline.sql.query(`INSERT INTO parent (v) VALUES ('rolled back')`);
    await pipeline.sql.query('ROLLBACK');
    await pipeline.sql.query(`
      BEGIN;
      INSERT INTO parent (v) VALUES ('kept');
      SAVEPOINT s;
      INSERT INTO parent (v) VALUES ('rolled back to savepoint');
      ROLLBACK TO SAVEPOINT s;
      COMMIT;
    `);
    await pipeline.sql.query('TRUNCATE parent RESTART IDENTITY CASCADE');
    await pipeline.sql.query(`INSERT INTO parent (v) VALUES ('after truncate')`);
    const last = await consumer.transactionWith(
      'public.parent',
      (row) => row.newValues[1]?.text === 'after truncate',
    );
    expect(last.events).to.have.length(1);
    const truncating = consumer.transactions.filter((txn) => txn.events.some((e) => e.kind === 'truncate'));
    expect(truncating).to.have.length(1);
    expect(truncating[0]!.events).to.have.length(1);
    const event = truncating[0]!.events[0]!;
    if (event.kind !== 'truncate') throw new Error('expected a truncate event');
    expect(event.truncate.cascade).to.equal(true);
    expect(event.truncate.restartIdentity).to.equal(true);
    expect(event.truncate.tables.map((t) => `${t.schema}.${t.name}`).sort()).to.deep.equal([
      'public.child',
      'public.parent',
    ]);
    // The sequence restarted, so the first row after the truncate has id 1 again.
    expect(last.events[0]).to.have.nested.property('row.newValues[0].text', '1');
    const parentValues = rowsOf('public.parent').map((row) => row.newValues[1]?.text);
    expect(parentValues).to.deep.equal(['p1', 'p2', 'kept', 'after truncate']);
    const everything = JSON.stringify(consumer.rows().map((row) => row.newValues.map((value) => value.text)));
    expect(everything).not.to.include('rolled back');
  });

  it('turns rows of the DDL log into Ddl events at their place in the transaction', async () => {
    await pipeline.sql.query(`
      BEGIN;
      INSERT INTO by_key VALUES (100, 'before ddl');
      INSERT INTO kasho_ddl_log (ddl, search_path) VALUES ('ALTER TABLE by_key ADD COLUMN extra text', 'app, public');
      INSERT INTO by_key VALUES (101, 'after ddl');
      COMMIT;
      UPDATE kasho_ddl_log SET search_path = 'ignored';
      DELETE FROM kasho_ddl_log;
      INSERT INTO by_key VALUES (102, 'marker');
    `);
    const txn = await consumer.transactionWith('public.by_key', (row) => row.newValues[0]?.text === '100');
    expect(txn.events.map((event) => event.kind)).to.deep.equal(['row', 'ddl', 'row']);
    const ddl = txn.events[1]!;
    if (ddl.kind !== 'ddl') throw new Error('expected a ddl event');
    expect(ddl.ddl.sql).to.equal('ALTER TABLE by_key ADD COLUMN extra text');
    expect(ddl.ddl.searchPath).to.equal('app, public');
    expect(ddl.ddl.username).to.equal(pipeline.source.superuser);
    expect(ddl.ddl.ddlLogId > 0n).to.equal(true);
    await consumer.transactionWith('public.by_key', (row) => row.newValues[0]?.text === '102');
    const ddlTable = consumer.rows().filter((row) => row.table === 'public.kasho_ddl_log');
    expect(ddlTable, 'the DDL log housekeeping is not streamed').to.have.length(0);
    const kinds = consumer.transactions.flatMap((t) => t.events).map((e) => e.kind);
    expect(kinds.filter((kind) => kind === 'ddl')).to.have.length(1);
  });
});
