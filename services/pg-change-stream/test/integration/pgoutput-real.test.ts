/**
 * The decoder, the relation cache and the assembler on bytes a real PostgreSQL produced with pgoutput, read through
 * pg_logical_slot_get_binary_changes(). Every value must equal the server's text output of the source row.
 */
import { expect } from 'chai';
import pg from 'pg';
import {
  OldTuple,
  RowOperation,
  ValueKind,
  type Begin,
  type Change,
  type Relation,
  type RowChange,
  type Value,
} from '@kasho/common/gen/kasho/change_stream';
import { startLocalServers, type LocalServers } from '../../../../hack/testing/local-servers.js';
import { decodePgoutput, type PgoutputMessage } from '../../src/pgoutput/decoder.js';
import {
  RelationCache,
  builtinTypeName,
  builtinTypeOids,
  type TypeRef,
} from '../../src/pgoutput/relations.js';
import { TransactionAssembler, emptyOutput, type AssemblerOutput } from '../../src/pgoutput/to-changes.js';

const TYPES_TABLE = 'public.kasho_types';
const FULL_TABLE = '"Sales"."Full Orders"';

const text = (value: string): Value => ({ kind: ValueKind.TEXT, text: value });
const NULL: Value = { kind: ValueKind.NULL, text: '' };
const TOAST: Value = { kind: ValueKind.UNCHANGED_TOAST, text: '' };

interface Transaction {
  begin: Begin;
  body: Change[];
}

describe('pgoutput on a real PostgreSQL', function () {
  this.timeout(120_000);

  let servers: LocalServers;
  let work: pg.Client;
  let catalog: pg.Client;
  const resolverCalls: TypeRef[][] = [];

  async function resolveTypeNames(types: readonly TypeRef[]): Promise<string[]> {
    resolverCalls.push([...types]);
    const result = await catalog.query<{ name: string }>(
      `SELECT format_type(t.oid, t.typmod) AS name
         FROM unnest($1::oid[], $2::int4[]) WITH ORDINALITY AS t(oid, typmod, i) ORDER BY t.i`,
      [types.map((t) => t.oid), types.map((t) => t.typmod)],
    );
    return result.rows.map((row) => row.name);
  }

  /**
   * The row as the server prints it: the text output function of every column, in column order. Not ::text, which
   * differs for some types (boolean gives "true" instead of "t"; the cast from character(n) drops trailing blanks).
   */
  async function sourceRow(table: string, where: string): Promise<Value[]> {
    const result = await work.query<unknown[]>({
      text: `SELECT * FROM ${table} WHERE ${where}`,
      rowMode: 'array',
      types: { getTypeParser: () => (value: string) => value },
    });
    const row = result.rows[0];
    if (!row) throw new Error(`no row of ${table} where ${where}`);
    return row.map((value) => (value === null ? NULL : text(value as string)));
  }

  before(async () => {
    servers = await startLocalServers({ source: true });
    const url = servers.source!.superuserUrl;
    work = new pg.Client({ connectionString: url });
    catalog = new pg.Client({ connectionString: url });
    await work.connect();
    await catalog.connect();
    await catalog.query(`SET search_path = ''`);
    await work.query(`
      CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
      CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
      CREATE SCHEMA "Sales";
      CREATE TABLE kasho_types (
        id bigint PRIMARY KEY, t text, vc varchar(20), ch char(3), n numeric(30,10), nn numeric, r real,
        dp double precision, b boolean, by bytea, d date, ts timestamp(3), tstz timestamptz, tm time, tmtz timetz,
        iv interval, ivd interval day to second(2), j json, jb jsonb, u uuid, ip inet, net cidr, mac macaddr,
        ia integer[], ta text[], m mood, ma mood[], pi posint, rng int4range, tr tstzrange, pt point, bt bit(4),
        vb varbit, mo money, x xml, "MixedCase" text, big text
      );
      ALTER TABLE kasho_types ALTER COLUMN big SET STORAGE EXTERNAL;
      CREATE TABLE "Sales"."Full Orders" (id integer, note text);
      ALTER TABLE "Sales"."Full Orders" REPLICA IDENTITY FULL;
      CREATE TABLE kasho_ddl_log (
        id bigserial PRIMARY KEY, lsn pg_lsn NOT NULL, timestamp timestamptz NOT NULL DEFAULT now(),
        username text NOT NULL, database text NOT NULL, ddl text NOT NULL, search_path text
      );
      CREATE PUBLICATION p FOR ALL TABLES;
    `);
    await work.query(`SELECT pg_create_logical_replication_slot('s', 'pgoutput')`);
  });

  after(async () => {
    await work?.end();
    await catalog?.end();
    await servers?.stop();
  });

  it('names builtin types exactly as format_type() does', async () => {
    const typmods: Record<number, number[]> = {
      1700: [((10 << 16) | 2) + 4, ((30 << 16) | 10) + 4, ((5 << 16) | (-2 & 0x7ff)) + 4],
      1043: [4 + 255, 4 + 1],
      1042: [4 + 1, 4 + 10],
      1560: [1, 4],
      1562: [8],
      1083: [0, 3],
      1266: [6],
      1114: [3],
      1184: [0, 6],
    };
    const refs: TypeRef[] = [];
    for (const oid of builtinTypeOids()) {
      refs.push({ oid, typmod: -1 });
      for (const typmod of typmods[oid] ?? []) refs.push({ oid, typmod });
    }
    const arrays = new Map([
      [1231, 1700],
      [1015, 1043],
      [1014, 1042],
      [1185, 1184],
      [1561, 1560],
    ]);
    for (const [array, element] of arrays) {
      for (const typmod of typmods[element] ?? []) refs.push({ oid: array, typmod });
    }
    const expected = await resolveTypeNames(refs);
    const mine = refs.map((ref) => builtinTypeName(ref.oid, ref.typmod) ?? '(server)');
    const mismatches = refs.flatMap((ref, i) =>
      mine[i] === expected[i] || (mine[i] === '(server)' && ref.oid === 1186)
        ? []
        : [`${ref.oid}/${ref.typmod}: mine ${mine[i]}, server ${expected[i]}`],
    );
    expect(mismatches).to.deep.equal([]);
  });

  it('decodes and assembles inserts, updates, deletes, DDL log rows, messages and truncate from real bytes', async () => {
    const testStart = BigInt(Date.now()) * 1000n;
    const bigValue = (
      await work.query<{ v: string }>(
        `SELECT string_agg(md5(i::text), '') AS v FROM generate_series(1, 400) i`,
      )
    ).rows[0]!.v;

    await work.query(
      `INSERT INTO kasho_types VALUES (1, 'héllo "quoted" €', 'varchar', 'ab', 12345678901234567890.0123456789,
        'NaN', '-Infinity', 1.5e300, true, '\\x00ff', '2024-02-29', '2024-01-01 12:00:00.123', 'infinity', '24:00',
        '12:00+05:30', '1 year 2 mons 3 days 04:05:06.789', '1 day 02:03:04.56', '{"a": [1, 2]}', '{"b": null}',
        'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', '{1,NULL,3}',
        '{"a b",NULL,"c\\"d",""}', 'happy', '{sad,happy}', 5, '[1,10)', '[2024-01-01,infinity)', '(1.5,-2)',
        B'1010', B'101', 12.34, '<a>x</a>', 'mixed', $1)`,
      [bigValue],
    );
    const inserted = await sourceRow(TYPES_TABLE, 'id = 1');
    await work.query(`INSERT INTO kasho_types (id, t, vc) VALUES (2, '', NULL)`);
    const emptyAndNull = await sourceRow(TYPES_TABLE, 'id = 2');
    await work.query(`UPDATE kasho_types SET t = 'changed' WHERE id = 1`);
    const updatedKeepingBig = (await sourceRow(TYPES_TABLE, 'id = 1')).map((value, i, all) =>
      i === all.length - 1 ? TOAST : value,
    );
    await work.query(`UPDATE kasho_types SET id = 3 WHERE id = 2`);
    const keyChanged = await sourceRow(TYPES_TABLE, 'id = 3');

    await work.query('BEGIN');
    await work.query(`INSERT INTO ${FULL_TABLE} VALUES (1, 'n1')`);
    await work.query(`UPDATE ${FULL_TABLE} SET note = 'n2'`);
    await work.query(`DELETE FROM ${FULL_TABLE}`);
    await work.query('COMMIT');

    await work.query(`DELETE FROM kasho_types WHERE id = 3`);
    await work.query(`BEGIN; INSERT INTO kasho_types (id) VALUES (99); ROLLBACK`);

    const logDdl = (sql: string) =>
      `INSERT INTO kasho_ddl_log (lsn, username, database, ddl, search_path)
       VALUES (pg_current_wal_lsn(), current_user, current_database(), '${sql}', current_setting('search_path'))`;
    await work.query(logDdl('CREATE TABLE a ()'));
    await work.query(
      `BEGIN; ${logDdl('CREATE TABLE b ()')}; DELETE FROM kasho_ddl_log WHERE ddl = 'CREATE TABLE a ()'; COMMIT`,
    );
    await work.query(`DELETE FROM kasho_ddl_log`);

    await work.query(`ALTER TABLE kasho_types ADD COLUMN extra integer`);
    await work.query(`INSERT INTO kasho_types (id, extra) VALUES (4, 7)`);
    const widened = await sourceRow(TYPES_TABLE, 'id = 4');

    await work.query(`SELECT pg_logical_emit_message(true, 'kasho', 'in a transaction')`);
    await work.query(`SELECT pg_logical_emit_message(false, 'kasho', 'outside')`);
    await work.query(`TRUNCATE kasho_types, ${FULL_TABLE} RESTART IDENTITY CASCADE`);

    const raw = await work.query<{ data: Buffer }>(
      `SELECT data FROM pg_logical_slot_get_binary_changes('s', NULL, NULL,
         'proto_version', '1', 'publication_names', 'p', 'messages', 'true')`,
    );
    const testEnd = BigInt(Date.now()) * 1000n;

    const relations = new RelationCache(resolveTypeNames);
    const assembler = new TransactionAssembler({ relations, previousCommitLsn: 0n });
    const out: AssemblerOutput = emptyOutput();
    const decoded: PgoutputMessage[] = [];
    for (const { data } of raw.rows) {
      const message = decodePgoutput(data);
      decoded.push(message);
      await relations.prepare(message);
      assembler.process(message, out);
    }
    expect(assembler.inTransaction).to.equal(false);

    // Type messages precede the Relation for the enum, its array and the domain.
    expect(decoded.filter((m) => m.tag === 'type').length).to.be.at.least(3);

    // Relations: type names as format_type() prints them, one resolver call for the non-builtin ones.
    const typesRelations = out.relations.filter((r) => r.table?.name === 'kasho_types');
    expect(typesRelations.map((r) => r.version)).to.deep.equal([1, 2]);
    const serverTypes = await catalog.query<{ attname: string; type: string; key: boolean }>(
      `SELECT attname, format_type(atttypid, atttypmod) AS type,
              attnum = ANY ((SELECT indkey FROM pg_index WHERE indrelid = a.attrelid AND indisprimary)::int2[]) AS key
         FROM pg_attribute a WHERE attrelid = '${TYPES_TABLE}'::regclass AND attnum > 0 AND NOT attisdropped
        ORDER BY attnum`,
    );
    const latest = typesRelations[1] as Relation;
    expect(latest.columns.map((c) => [c.name, c.typeName, c.key])).to.deep.equal(
      serverTypes.rows.map((r) => [r.attname, r.type, r.key]),
    );
    expect(latest.columns.map((c) => c.typeName)).to.include.members([
      'public.mood',
      'public.mood[]',
      'public.posint',
      'interval day to second(2)',
    ]);
    expect(resolverCalls.flat().map((ref) => ref.oid)).to.have.length(
      new Set(resolverCalls.flat().map((ref) => `${ref.oid}:${ref.typmod}`)).size,
    );
    expect(out.relations.map((r) => r.table?.name)).to.not.include('kasho_ddl_log');
    const full = out.relations.find((r) => r.table?.name === 'Full Orders');
    expect(full?.table).to.deep.equal({ schema: 'Sales', name: 'Full Orders' });
    expect(full?.replicaIdentity).to.equal(3);

    // Split the stream into transactions, checking positions and the previous_commit_lsn chain on the way.
    const transactions: Transaction[] = [];
    let previousCommit = 0n;
    for (const change of out.changes) {
      const kind = change.kind!;
      if (kind.$case === 'begin') {
        expect(kind.value.previousCommitLsn).to.equal(previousCommit);
        expect(kind.value.commitLsn > previousCommit).to.equal(true);
        expect(
          kind.value.commitTimeUs >= testStart - 60_000_000n && kind.value.commitTimeUs <= testEnd,
        ).to.equal(true);
        expect(change.position).to.deep.equal({ lsn: kind.value.commitLsn, seq: 0n });
        transactions.push({ begin: kind.value, body: [] });
        continue;
      }
      const current = transactions.at(-1)!;
      expect(change.position).to.deep.equal({
        lsn: current.begin.commitLsn,
        seq: BigInt(current.body.length + 1),
      });
      current.body.push(change);
      if (kind.$case === 'commit') {
        expect(kind.value.commitLsn).to.equal(current.begin.commitLsn);
        expect(kind.value.endLsn > kind.value.commitLsn).to.equal(true);
        previousCommit = kind.value.commitLsn;
      }
    }
    const shapes = transactions.map((t) => t.body.map((c) => c.kind!.$case).join(','));
    // The rolled-back insert and the transaction that only cleans up the DDL log leave nothing.
    expect(shapes).to.deep.equal([
      'row,commit', // insert id 1
      'row,commit', // insert id 2
      'row,commit', // update id 1 (big unchanged)
      'row,commit', // key change 2 -> 3
      'row,row,row,commit', // insert, update, delete on the FULL table
      'row,commit', // delete id 3
      'ddl,commit', // DDL log insert
      'ddl,commit', // DDL log insert + cleanup delete (dropped)
      'row,commit', // insert id 4 after ALTER TABLE
      'message,commit', // transactional logical message
      'truncate,commit',
    ]);
    const row = (t: number, i = 0) => (transactions[t]!.body[i]!.kind as { value: RowChange }).value;

    expect(row(0)).to.deep.include({
      operation: RowOperation.INSERT,
      relationVersion: 1,
      oldTuple: OldTuple.OLD_TUPLE_NONE,
    });
    const named = (values: Value[]) =>
      values.map((v, i) => `${typesRelations[0]!.columns[i]?.name}=${v.kind}:${v.text}`);
    expect(named(row(0).newValues)).to.deep.equal(named(inserted));
    expect(row(1).newValues).to.deep.equal(emptyAndNull);
    expect(row(1).newValues[1]).to.deep.equal(text(''));
    expect(row(1).newValues[2]).to.deep.equal(NULL);

    expect(row(2)).to.deep.include({
      operation: RowOperation.UPDATE,
      oldTuple: OldTuple.OLD_TUPLE_NONE,
      oldValues: [],
    });
    expect(row(2).newValues).to.deep.equal(updatedKeepingBig);

    expect(row(3).oldTuple).to.equal(OldTuple.OLD_TUPLE_KEY);
    expect(row(3).oldValues).to.deep.equal([text('2'), ...keyChanged.slice(1).map(() => NULL)]);
    expect(row(3).newValues).to.deep.equal(keyChanged);

    expect(
      [0, 1, 2].map((i) => [
        row(4, i).operation,
        row(4, i).oldTuple,
        row(4, i).oldValues,
        row(4, i).newValues,
      ]),
    ).to.deep.equal([
      [RowOperation.INSERT, OldTuple.OLD_TUPLE_NONE, [], [text('1'), text('n1')]],
      [RowOperation.UPDATE, OldTuple.OLD_TUPLE_FULL, [text('1'), text('n1')], [text('1'), text('n2')]],
      [RowOperation.DELETE, OldTuple.OLD_TUPLE_FULL, [text('1'), text('n2')], []],
    ]);

    expect(row(5)).to.deep.include({
      operation: RowOperation.DELETE,
      oldTuple: OldTuple.OLD_TUPLE_KEY,
      newValues: [],
    });
    expect(row(5).oldValues[0]).to.deep.equal(text('3'));

    const ddl = (t: number) => transactions[t]!.body[0]!.kind;
    expect(ddl(6)).to.deep.include({ $case: 'ddl' });
    expect(ddl(6)).to.have.nested.property('value.sql', 'CREATE TABLE a ()');
    expect(ddl(6)).to.have.nested.property('value.ddlLogId', 1n);
    expect(ddl(6)).to.have.nested.property('value.searchPath', '"$user", public');
    expect(ddl(6)).to.have.nested.property('value.username', servers.source!.superuser);
    expect(ddl(7)).to.have.nested.property('value.sql', 'CREATE TABLE b ()');

    expect(row(8).relationVersion).to.equal(2);
    expect(row(8).newValues).to.deep.equal(widened);

    expect(transactions[9]!.body[0]!.kind).to.deep.equal({
      $case: 'message',
      value: { transactional: true, prefix: 'kasho', content: Buffer.from('in a transaction') },
    });
    expect(out.messages).to.deep.equal([
      { transactional: false, prefix: 'kasho', content: Buffer.from('outside') },
    ]);

    expect(transactions[10]!.body[0]!.kind).to.deep.equal({
      $case: 'truncate',
      value: {
        tables: [
          { schema: 'public', name: 'kasho_types' },
          { schema: 'Sales', name: 'Full Orders' },
        ],
        cascade: true,
        restartIdentity: true,
      },
    });
  });
});
