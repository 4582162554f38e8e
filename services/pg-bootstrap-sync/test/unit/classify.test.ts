import { expect } from 'chai';
import { classifyStatement, defaultSchema, type Classification } from '../../src/classify.js';

const context = { searchPath: '', standardConformingStrings: true };
const classify = (sql: string): Classification => classifyStatement(sql, context);
const action = (sql: string) => {
  const result = classify(sql);
  return result.action === 'skip' ? `skip: ${result.reason}` : result.action;
};

describe('statement classification', () => {
  it('applies schema DDL', () => {
    for (const sql of [
      'CREATE SCHEMA "Mixed"',
      'CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public',
      "CREATE TYPE public.mood AS ENUM ('sad', 'ok')",
      'CREATE SEQUENCE public.counter_seq START WITH 100',
      "CREATE TABLE public.t (a text DEFAULT 'x;y'::text NOT NULL)",
      "ALTER TABLE ONLY public.t ALTER COLUMN id SET DEFAULT nextval('public.t_id_seq'::regclass)",
      'ALTER TABLE ONLY public.t ADD CONSTRAINT t_pkey PRIMARY KEY (id)',
      'CREATE INDEX t_idx ON public.t USING btree (a)',
      'CREATE VIEW public.v AS SELECT 1',
      'CREATE FUNCTION public.f() RETURNS integer LANGUAGE sql AS $$ SELECT 1 $$',
      "COMMENT ON TABLE public.t IS 'about kasho_ddl_log'",
      "COMMENT ON SCHEMA public IS ''",
      'CREATE TRIGGER tr BEFORE INSERT ON public.t FOR EACH ROW EXECUTE FUNCTION public.f()',
      'CREATE USER MAPPING FOR public SERVER s',
      "SELECT pg_catalog.setval('public.counter_seq', 102, true)",
      'ALTER SEQUENCE public.t_id_seq OWNED BY public.t.id',
      'REFRESH MATERIALIZED VIEW public.mv',
    ]) {
      expect(action(sql), sql).to.equal('apply');
    }
  });

  it('tracks the search_path from set_config and SET', () => {
    expect(classify("SELECT pg_catalog.set_config('search_path', '', false)")).to.deep.equal({
      action: 'search-path',
      value: '',
    });
    expect(classify('SET search_path = public, pg_catalog')).to.deep.equal({
      action: 'search-path',
      value: 'public, pg_catalog',
    });
    expect(classify(`SET search_path TO "My Schema", 'other one', x`)).to.deep.equal({
      action: 'search-path',
      value: '"My Schema", "other one", x',
    });
  });

  it('reports the settings that change how the dump reads', () => {
    expect(classify("SET client_encoding = 'UTF8'")).to.deep.equal({
      action: 'setting',
      name: 'client_encoding',
      value: 'UTF8',
    });
    expect(classify('SET standard_conforming_strings = on')).to.deep.equal({
      action: 'setting',
      name: 'standard_conforming_strings',
      value: 'on',
    });
  });

  it('skips what the target must not get', () => {
    const skips: [string, string][] = [
      ['SET statement_timeout = 0', 'session setting'],
      ["SELECT pg_catalog.set_config('statement_timeout', '0', false)", 'session setting'],
      ["SET default_tablespace = ''", 'session setting'],
      ['RESET ALL', 'session setting'],
      ['ALTER TABLE public.t OWNER TO alice', 'ownership'],
      ['ALTER FUNCTION public.f() OWNER TO alice', 'ownership'],
      ['GRANT SELECT ON TABLE public.t TO bob', 'privileges'],
      ['REVOKE ALL ON SCHEMA public FROM PUBLIC', 'privileges'],
      ['ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO kasho', 'privileges'],
      ['CREATE EVENT TRIGGER audit ON ddl_command_end EXECUTE FUNCTION public.audit()', 'event trigger'],
      ['ALTER EVENT TRIGGER audit DISABLE', 'event trigger'],
      ["COMMENT ON EXTENSION pg_trgm IS 'text similarity'", 'extension comment'],
      ['CREATE PUBLICATION kasho_pub FOR ALL TABLES', 'publication or subscription'],
      ['ALTER PUBLICATION p ADD TABLE ONLY public.t', 'publication or subscription'],
      ["CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p", 'publication or subscription'],
      ['CREATE DATABASE app', 'database or role'],
      ['ALTER DATABASE app SET search_path = x', 'database or role'],
      ['CREATE ROLE alice', 'database or role'],
      ["SELECT pg_catalog.lo_create('16401')", 'large object'],
      ["SELECT pg_catalog.lowrite(0, '\\x00')", 'large object'],
      ['ALTER LARGE OBJECT 16401 OWNER TO alice', 'ownership'],
      ["SECURITY LABEL FOR selinux ON TABLE public.t IS 'x'", 'security label'],
      ['BEGIN', 'transaction control'],
      ['COMMIT', 'transaction control'],
    ];
    for (const [sql, reason] of skips) expect(action(sql), sql).to.equal(`skip: ${reason}`);
  });

  it("skips Kasho's own objects wherever they are named", () => {
    for (const sql of [
      'CREATE TABLE public.kasho_ddl_log (id bigint NOT NULL, ddl text NOT NULL)',
      'CREATE SEQUENCE public.kasho_ddl_log_id_seq START WITH 1',
      'ALTER SEQUENCE public.kasho_ddl_log_id_seq OWNED BY public.kasho_ddl_log.id',
      "ALTER TABLE ONLY public.kasho_ddl_log ALTER COLUMN id SET DEFAULT nextval('public.kasho_ddl_log_id_seq'::regclass)",
      'ALTER TABLE ONLY public.kasho_ddl_log ADD CONSTRAINT kasho_ddl_log_pkey PRIMARY KEY (id)',
      "SELECT pg_catalog.setval('public.kasho_ddl_log_id_seq', 1, true)",
      'CREATE FUNCTION public.kasho_log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$',
      'CREATE FUNCTION public.kasho_cleanup_ddl_log() RETURNS void LANGUAGE plpgsql AS $$ BEGIN END $$',
      'CREATE EVENT TRIGGER kasho_log_ddl_end ON ddl_command_end EXECUTE FUNCTION public.kasho_log_ddl()',
      'CREATE SCHEMA kasho',
      'CREATE TABLE kasho.state (k text)',
      'CREATE INDEX i ON kasho.state (k)',
      "COMMENT ON TABLE public.kasho_ddl_log IS 'x'",
    ]) {
      expect(action(sql), sql).to.equal('skip: kasho object');
    }
    expect(action('CREATE TABLE public.kasho_orders (id integer)')).to.equal('apply');
    expect(action('CREATE SCHEMA kashop')).to.equal('apply');
  });

  it('reads COPY headers and marks the data of Kasho tables', () => {
    expect(classify('COPY public.t (a, "B") FROM stdin')).to.deep.equal({
      action: 'copy',
      header: { table: { schema: 'public', name: 't' }, columns: ['a', 'B'] },
      kasho: false,
    });
    expect(classify('COPY public.kasho_ddl_log (id) FROM stdin')).to.include({ action: 'copy', kasho: true });
    expect(classify('COPY kasho.state (k) FROM stdin')).to.include({ action: 'copy', kasho: true });
    expect(
      classifyStatement('COPY t (a) FROM stdin', {
        searchPath: 'app, pg_catalog',
        standardConformingStrings: true,
      }),
    ).to.deep.include({ header: { table: { schema: 'app', name: 't' }, columns: ['a'] } });
  });

  it('parses the table definition of CREATE TABLE for the column types', () => {
    const result = classify('CREATE TABLE public.t (a numeric(30,10), b public.mood)');
    expect(result.action).to.equal('apply');
    expect(result.action === 'apply' && result.definition?.columns).to.deep.equal([
      { name: 'a', type: 'numeric(30,10)' },
      { name: 'b', type: 'public.mood' },
    ]);
  });

  it('finds the schema unqualified names go to', () => {
    expect(defaultSchema('')).to.equal('public');
    expect(defaultSchema('"$user", public')).to.equal('public');
    expect(defaultSchema('pg_catalog, "My Schema"')).to.equal('My Schema');
  });
});
