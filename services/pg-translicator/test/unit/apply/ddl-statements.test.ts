import { expect } from 'chai';
import {
  runnableInTransaction,
  schemaStatements,
  splitStatements,
} from '../../../src/apply/ddl-statements.js';

describe('captured DDL text', () => {
  it('splits at top-level semicolons only', () => {
    const sql = `CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;
      COMMENT ON TABLE t IS 'a;b''c'; -- trailing; comment
      CREATE TABLE "odd;name" (x int) /* block; comment */ ;
      SELECT E'it\\'s;';`;
    expect(splitStatements(sql)).to.deep.equal([
      'CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql',
      "COMMENT ON TABLE t IS 'a;b''c'",
      '-- trailing; comment\n      CREATE TABLE "odd;name" (x int) /* block; comment */',
      "SELECT E'it\\'s;'",
    ]);
  });

  it('keeps only schema changes from a mixed query', () => {
    expect(
      schemaStatements(
        'BEGIN; CREATE TABLE a (id int); INSERT INTO a VALUES (1); ALTER TABLE a ADD b text; COMMIT',
      ),
    ).to.deep.equal(['CREATE TABLE a (id int)', 'ALTER TABLE a ADD b text']);
    expect(schemaStatements('  /* c */ drop table a')).to.deep.equal(['/* c */ drop table a']);
    expect(schemaStatements('WITH x AS (SELECT 1) SELECT * FROM x')).to.deep.equal([]);
  });

  it('leaves out privileges and ownership, and creates CREATE TABLE AS tables without their rows', () => {
    expect(
      schemaStatements(
        'CREATE TABLE a AS SELECT * FROM b; GRANT SELECT ON a TO app; ALTER TABLE a OWNER TO app; REVOKE ALL ON a FROM x',
      ),
    ).to.deep.equal(['CREATE TABLE a AS SELECT * FROM b WITH NO DATA']);
    expect(schemaStatements('create unlogged table c as (values (1)) with data')).to.deep.equal([
      'create unlogged table c as (values (1)) WITH NO DATA',
    ]);
    expect(schemaStatements('CREATE TABLE d (x int)')).to.deep.equal(['CREATE TABLE d (x int)']);
  });

  it('makes concurrent index builds runnable in a transaction', () => {
    expect(runnableInTransaction('CREATE UNIQUE INDEX CONCURRENTLY i ON t (x)')).to.equal(
      'CREATE UNIQUE INDEX i ON t (x)',
    );
    expect(runnableInTransaction('DROP INDEX CONCURRENTLY IF EXISTS i')).to.equal('DROP INDEX IF EXISTS i');
    expect(runnableInTransaction('CREATE TABLE concurrently (x int)')).to.equal(
      'CREATE TABLE concurrently (x int)',
    );
  });
});
