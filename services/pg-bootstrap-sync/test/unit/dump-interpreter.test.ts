import { expect } from 'chai';
import { DumpInterpreter } from '../../src/dump-interpreter.js';
import { DumpSyntaxError } from '../../src/dump-tokenizer.js';

describe('dump interpreter', () => {
  it('gives each DDL statement the search_path in force at its place in the dump', () => {
    const interpreter = new DumpInterpreter();
    expect(interpreter.statement("SELECT pg_catalog.set_config('search_path', '', false)", 1)).to.deep.equal({
      kind: 'none',
    });
    expect(interpreter.statement('CREATE TABLE public.t (a integer)', 2)).to.deep.equal({
      kind: 'ddl',
      sql: 'CREATE TABLE public.t (a integer)',
      searchPath: '',
    });
    interpreter.statement('SET search_path = app, pg_catalog', 3);
    expect(interpreter.statement('CREATE TABLE t2 (b text)', 4)).to.include({
      searchPath: 'app, pg_catalog',
    });
    expect(interpreter.statement('COPY t2 (b) FROM stdin', 5)).to.deep.equal({
      kind: 'copy',
      header: { table: { schema: 'app', name: 't2' }, columns: ['b'] },
      kasho: false,
    });
  });

  it('creates routines with function body checks off when the dump turned them off', () => {
    const interpreter = new DumpInterpreter();
    const sql =
      'CREATE FUNCTION public.f() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM public.t $$';
    expect(interpreter.statement(sql, 1)).to.include({ sql });
    interpreter.statement('SET check_function_bodies = false', 2);
    expect(interpreter.statement(sql, 3)).to.include({
      sql: `SET LOCAL check_function_bodies = false;\n${sql}`,
    });
    expect(
      interpreter.statement('CREATE OR REPLACE PROCEDURE public.p() LANGUAGE sql AS $$ $$', 4),
    ).to.include({
      sql: 'SET LOCAL check_function_bodies = false;\nCREATE OR REPLACE PROCEDURE public.p() LANGUAGE sql AS $$ $$',
    });
    expect(interpreter.statement('CREATE TABLE public.t (a integer)', 5)).to.include({
      sql: 'CREATE TABLE public.t (a integer)',
    });
  });

  it('refuses a dump in another encoding than UTF8, at its line', () => {
    const interpreter = new DumpInterpreter();
    expect(interpreter.statement("SET client_encoding = 'UTF8'", 1)).to.deep.equal({ kind: 'none' });
    expect(() => interpreter.statement("SET client_encoding = 'LATIN1'", 7))
      .to.throw(DumpSyntaxError, 'client encoding LATIN1')
      .with.property('line', 7);
  });

  it('types COPY columns from CREATE TABLE and warns about the ones it cannot', () => {
    const warnings: string[] = [];
    const interpreter = new DumpInterpreter((message) => warnings.push(message));
    interpreter.statement('CREATE TABLE public.t (a numeric(30,10), "B" public.mood[])', 1);
    expect(
      interpreter.columnsFor({ table: { schema: 'public', name: 't' }, columns: ['a', 'B', 'zz'] }),
    ).to.deep.equal([
      { name: 'a', typeName: 'numeric(30,10)' },
      { name: 'B', typeName: 'public.mood[]' },
      { name: 'zz', typeName: 'text' },
    ]);
    expect(warnings).to.deep.equal([
      'public.t: the dump does not give the type of column(s) zz; they are sent as text',
    ]);
  });

  it('counts what it leaves out and warns once about large objects', () => {
    const warnings: string[] = [];
    const interpreter = new DumpInterpreter((message) => warnings.push(message));
    interpreter.statement('SET statement_timeout = 0', 1);
    interpreter.statement('ALTER TABLE public.t OWNER TO x', 2);
    interpreter.statement("SELECT pg_catalog.lo_create('1')", 3);
    interpreter.statement("SELECT pg_catalog.lo_create('2')", 4);
    interpreter.meta();
    expect(interpreter.describeSkipped()).to.equal(
      '1 session setting, 1 ownership, 2 large object, 1 psql meta-command',
    );
    expect(warnings).to.have.length(1);
    expect(warnings[0]).to.contain('Line 3: the dump holds large objects');
  });
});
