-- Everything scripts/prepare-primary-db.sh changes on the primary, in one transaction (after session.sql): the
-- kasho role and its read access, DDL capture, the publication. Each step looks before it acts, so a second run
-- changes nothing; it reports through NOTICEs that start with "changed:", "ok:" or "warning:".
-- psql variables: role, manage_role, set_password (then kasho_password, set from standard input), publication,
-- finish (COMMIT, or ROLLBACK for a dry run).
SET kasho_prepare.role = :'role';
SET kasho_prepare.publication = :'publication';

BEGIN;

-- ---- the kasho role ------------------------------------------------------------------------------------------------
\if :manage_role
DO $$
DECLARE
  role text := current_setting('kasho_prepare.role');
  r record;
BEGIN
  SELECT * INTO r FROM pg_roles WHERE rolname = role;
  IF NOT FOUND THEN
    EXECUTE format('CREATE ROLE %I WITH LOGIN REPLICATION', role);
    RAISE NOTICE 'changed: created role % with LOGIN and REPLICATION', role;
  ELSIF NOT (r.rolcanlogin AND (r.rolreplication OR r.rolsuper)) THEN
    EXECUTE format('ALTER ROLE %I WITH LOGIN REPLICATION', role);
    RAISE NOTICE 'changed: gave role % LOGIN and REPLICATION', role;
  ELSE
    RAISE NOTICE 'ok: role % has LOGIN and REPLICATION', role;
  END IF;
  IF r.rolsuper THEN
    RAISE NOTICE 'warning: role % is a superuser; Kasho needs only LOGIN, REPLICATION and read access', role;
  END IF;
END
$$;
\if :set_password
-- A top-level statement, not EXECUTE inside a function: an error then carries no CONTEXT line quoting it.
SELECT format('ALTER ROLE %I WITH PASSWORD %L', :'role', :'kasho_password') \gexec
DO $$
BEGIN
  RAISE NOTICE 'changed: set the password of role % (from PRIMARY_DATABASE_URL)', current_setting('kasho_prepare.role');
END
$$;
\endif
\endif

-- ---- DDL capture ---------------------------------------------------------------------------------------------------
-- The log table: every captured statement becomes one row, which the publication carries to pg-change-stream in
-- commit order between the row changes of its transaction. pg-change-stream reads ddl, search_path, username and id.
DO $$
DECLARE
  added text[] := '{}';
BEGIN
  IF to_regclass('public.kasho_ddl_log') IS NULL THEN
    CREATE TABLE public.kasho_ddl_log (
      id bigserial PRIMARY KEY,
      lsn pg_lsn NOT NULL,
      "timestamp" timestamptz NOT NULL DEFAULT now(),
      username text NOT NULL,
      database text NOT NULL,
      ddl text NOT NULL,
      search_path text NOT NULL DEFAULT '',
      txid bigint,
      statement_ts timestamptz
    );
    RAISE NOTICE 'changed: created table public.kasho_ddl_log';
  ELSE
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'public.kasho_ddl_log'::regclass
                     AND attname = 'ddl' AND NOT attisdropped) THEN
      RAISE EXCEPTION 'public.kasho_ddl_log exists but is not Kasho''s DDL log (it has no column "ddl")'
        USING HINT = 'Rename or drop that table, then run this script again.';
    END IF;
    -- A log made by the deployment guide's manual steps lacks the newer columns.
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'public.kasho_ddl_log'::regclass
                     AND attname = 'search_path' AND NOT attisdropped) THEN
      ALTER TABLE public.kasho_ddl_log ADD COLUMN search_path text NOT NULL DEFAULT '';
      added := added || 'search_path'::text;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'public.kasho_ddl_log'::regclass
                     AND attname = 'txid' AND NOT attisdropped) THEN
      ALTER TABLE public.kasho_ddl_log ADD COLUMN txid bigint;
      added := added || 'txid'::text;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'public.kasho_ddl_log'::regclass
                     AND attname = 'statement_ts' AND NOT attisdropped) THEN
      ALTER TABLE public.kasho_ddl_log ADD COLUMN statement_ts timestamptz;
      added := added || 'statement_ts'::text;
    END IF;
    IF cardinality(added) > 0 THEN
      RAISE NOTICE 'changed: added columns % to public.kasho_ddl_log', array_to_string(added, ', ');
    ELSE
      RAISE NOTICE 'ok: table public.kasho_ddl_log exists';
    END IF;
  END IF;
  -- The once-per-statement check looks rows up by transaction.
  IF to_regclass('public.kasho_ddl_log_txid_idx') IS NULL THEN
    CREATE INDEX kasho_ddl_log_txid_idx ON public.kasho_ddl_log (txid);
    RAISE NOTICE 'changed: created index public.kasho_ddl_log_txid_idx';
  END IF;
END
$$;

-- Replaces a function only when its definition differs, so that a second run leaves the catalog alone: an
-- identical replacement is rolled back by raising inside the block.
CREATE FUNCTION pg_temp.kasho_ensure_function(signature text, definition text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  before text;
BEGIN
  IF to_regprocedure(signature) IS NOT NULL THEN
    before := pg_get_functiondef(to_regprocedure(signature));
  END IF;
  BEGIN
    EXECUTE definition;
    IF pg_get_functiondef(to_regprocedure(signature)) IS NOT DISTINCT FROM before THEN
      RAISE EXCEPTION USING ERRCODE = 'KS000';
    END IF;
  EXCEPTION WHEN SQLSTATE 'KS000' THEN
    RAISE NOTICE 'ok: function % is up to date', signature;
    RETURN;
  END;
  RAISE NOTICE 'changed: % function %', CASE WHEN before IS NULL THEN 'created' ELSE 'updated' END, signature;
END
$$;

DO $do$
BEGIN
  -- The guide's version deleted old rows on every DDL statement; this runs about once a day (see
  -- kasho_record_ddl) and skips rows another transaction holds, so concurrent DDL never waits on it.
  PERFORM pg_temp.kasho_ensure_function('public.kasho_cleanup_ddl_log()', $def$
CREATE OR REPLACE FUNCTION public.kasho_cleanup_ddl_log() RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $fn$
  DELETE FROM public.kasho_ddl_log
   WHERE id IN (SELECT l.id FROM public.kasho_ddl_log l
                 WHERE l."timestamp" < now() - interval '7 days'
                   FOR UPDATE SKIP LOCKED)
$fn$
$def$);

  -- The privileged half of the capture. SECURITY DEFINER: users who run DDL need no right on the log table, and
  -- nobody can write rows to it directly (rows are statements the translicator runs on the target). Its own
  -- search_path (pg_catalog first, pg_temp last) keeps users' objects out of it; that is also why the caller's
  -- search_path arrives as an argument. pg_event_trigger_ddl_commands() fails outside an event trigger, so calling
  -- this function by hand records nothing.
  --   - once per statement: a query string of several commands fires the trigger once per command, and its
  --     text (current_query()) is recorded by the first of them;
  --   - commands that touch only temporary objects, or only Kasho's own objects, are not recorded; drops of
  --     temporary objects are recognised by kasho_log_ddl_drop;
  --   - publications and subscriptions belong to this server, not to the copy;
  --   - a warning tells whoever creates or alters a table without replica identity that UPDATE and DELETE on it
  --     fail while a FOR ALL TABLES publication exists.
  PERFORM pg_temp.kasho_ensure_function('public.kasho_record_ddl(text,text,text)', $def$
CREATE OR REPLACE FUNCTION public.kasho_record_ddl(caller_search_path text, caller text, command_tag text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  query text := current_query();
  started timestamptz := statement_timestamp();
  xid bigint;
  command record;
  commands integer := 0;
  skipped integer := 0;
BEGIN
  FOR command IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
    commands := commands + 1;
    IF command.schema_name = 'pg_temp'
       OR command.object_identity ~ '^public\.kasho_(ddl_log(_id_seq|_pkey|_txid_idx)?|log_ddl\(\)|log_ddl_drop\(\)|record_ddl\(text,text,text\)|cleanup_ddl_log\(\))$' THEN
      skipped := skipped + 1;
    ELSIF command.object_type = 'table'
      AND EXISTS (SELECT 1 FROM pg_publication WHERE puballtables)
      AND EXISTS (
        SELECT 1 FROM pg_class c
         WHERE c.oid = command.objid AND c.relkind = 'r' AND c.relpersistence = 'p'
           AND NOT (c.relreplident = 'f'
             OR (c.relreplident = 'd' AND EXISTS (
                   SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))
             OR (c.relreplident = 'i' AND EXISTS (
                   SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)))) THEN
      RAISE WARNING 'table % has no primary key or replica identity: UPDATE and DELETE on it fail while a publication includes all tables (Kasho)',
        command.object_identity
        USING HINT = format('Add a primary key, or run ALTER TABLE %s REPLICA IDENTITY FULL.', command.object_identity);
    END IF;
  END LOOP;
  IF current_setting('kasho.ddl_skip', true) = extract(epoch FROM started)::text THEN
    PERFORM set_config('kasho.ddl_skip', '', true);
    RETURN;
  END IF;
  IF query IS NULL OR (commands > 0 AND skipped = commands)
     OR command_tag IN ('CREATE PUBLICATION', 'ALTER PUBLICATION', 'DROP PUBLICATION',
                        'CREATE SUBSCRIPTION', 'ALTER SUBSCRIPTION', 'DROP SUBSCRIPTION') THEN
    RETURN;
  END IF;
  xid := txid_current();
  IF EXISTS (SELECT 1 FROM public.kasho_ddl_log l
              WHERE l.txid = xid AND l.statement_ts = started AND l.ddl = query) THEN
    RETURN;
  END IF;
  INSERT INTO public.kasho_ddl_log (lsn, username, database, ddl, search_path, txid, statement_ts)
  VALUES (pg_current_wal_lsn(), caller, current_database(), query, coalesce(caller_search_path, ''), xid, started);
  -- Rows are kept at least 7 days: the oldest row is one primary-key probe away, and the cleanup runs only once
  -- it is 8 days old, so about once a day instead of on every statement.
  IF (SELECT l."timestamp" FROM public.kasho_ddl_log l ORDER BY l.id LIMIT 1) < now() - interval '8 days' THEN
    PERFORM public.kasho_cleanup_ddl_log();
  END IF;
END
$fn$
$def$);

  -- Fired at the end of every DDL command. It runs as whoever issued the command (superusers included) and with
  -- their search_path, so it only hands both to kasho_record_ddl, through schema-qualified calls alone.
  PERFORM pg_temp.kasho_ensure_function('public.kasho_log_ddl()', $def$
CREATE OR REPLACE FUNCTION public.kasho_log_ddl() RETURNS event_trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM public.kasho_record_ddl(pg_catalog.current_setting('search_path'),
                                  CAST(current_user AS pg_catalog.text), tg_tag);
END
$fn$
$def$);

  -- Fired before ddl_command_end by commands that drop objects: when every dropped object is temporary or
  -- Kasho's own, the statement is marked (for its transaction only) so that kasho_record_ddl skips it.
  PERFORM pg_temp.kasho_ensure_function('public.kasho_log_ddl_drop()', $def$
CREATE OR REPLACE FUNCTION public.kasho_log_ddl_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  IF NOT EXISTS (
    SELECT 1 FROM pg_event_trigger_dropped_objects() d
     WHERE NOT d.is_temporary
       AND d.object_identity !~ '(^| )public\.kasho_(ddl_log(_id_seq|_pkey|_txid_idx|\[\]|\.[a-z_]+)?|log_ddl\(\)|log_ddl_drop\(\)|record_ddl\(text,text,text\)|cleanup_ddl_log\(\))$'
  ) THEN
    PERFORM set_config('kasho.ddl_skip', extract(epoch FROM statement_timestamp())::text, true);
  END IF;
END
$fn$
$def$);

  -- Only kasho_record_ddl (as the owner) calls the cleanup.
  IF EXISTS (SELECT 1 FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
              WHERE p.oid = 'public.kasho_cleanup_ddl_log()'::regprocedure AND a.grantee = 0) THEN
    REVOKE ALL ON FUNCTION public.kasho_cleanup_ddl_log() FROM PUBLIC;
    RAISE NOTICE 'changed: revoked EXECUTE on public.kasho_cleanup_ddl_log() from PUBLIC';
  END IF;
END
$do$;

DO $$
DECLARE
  wanted record;
  existing record;
  present boolean;
BEGIN
  -- The guide's setup also fired on ddl_command_start, which logged every statement twice.
  IF EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'kasho_log_ddl_start') THEN
    DROP EVENT TRIGGER kasho_log_ddl_start;
    RAISE NOTICE 'changed: dropped event trigger kasho_log_ddl_start (it logged every statement twice)';
  END IF;
  FOR wanted IN
    SELECT * FROM (VALUES
      ('kasho_log_ddl_end', 'ddl_command_end', 'public.kasho_log_ddl()'::regprocedure),
      ('kasho_log_ddl_drop', 'sql_drop', 'public.kasho_log_ddl_drop()'::regprocedure)) AS w(name, event, fn)
  LOOP
    SELECT * INTO existing FROM pg_event_trigger WHERE evtname = wanted.name;
    present := FOUND;
    IF present AND existing.evtevent = wanted.event AND existing.evtfoid = wanted.fn::oid
       AND existing.evtenabled = 'O' AND existing.evttags IS NULL THEN
      RAISE NOTICE 'ok: event trigger % is installed', wanted.name;
      CONTINUE;
    END IF;
    IF present THEN
      EXECUTE format('DROP EVENT TRIGGER %I', wanted.name);
    END IF;
    -- EXECUTE PROCEDURE: PostgreSQL 10 does not know EXECUTE FUNCTION.
    EXECUTE format('CREATE EVENT TRIGGER %I ON %s EXECUTE PROCEDURE %s', wanted.name, wanted.event, wanted.fn);
    RAISE NOTICE 'changed: % event trigger % on %', CASE WHEN present THEN 'recreated' ELSE 'created' END,
      wanted.name, wanted.event;
  END LOOP;
END
$$;

-- ---- read access for the kasho role --------------------------------------------------------------------------------
-- pg_dump (bootstrap) reads every table and sequence as kasho; streaming itself needs only REPLICATION. Kasho never
-- writes on the primary, so unlike the guide's manual steps this grants no CREATE on schema public: a source role
-- that can create objects in production would be a needless risk.
\if :manage_role
DO $$
DECLARE
  role text := current_setting('kasho_prepare.role');
  role_oid oid := (SELECT oid FROM pg_roles WHERE rolname = current_setting('kasho_prepare.role'));
  item record;
  schemas integer := 0;
  relations integer := 0;
  defaults integer := 0;
  owners text[] := '{}';
BEGIN
  FOR item IN
    SELECT n.oid, n.nspname FROM pg_namespace n
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
     ORDER BY n.nspname
  LOOP
    IF NOT has_schema_privilege(role, item.oid, 'USAGE') THEN
      EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', item.nspname, role);
      schemas := schemas + 1;
    END IF;
  END LOOP;
  FOR item IN
    SELECT c.oid, n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
       AND n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
     ORDER BY n.nspname, c.relname
  LOOP
    IF NOT has_table_privilege(role, item.oid, 'SELECT') THEN
      EXECUTE format('GRANT SELECT ON %s %I.%I TO %I',
        CASE item.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, item.nspname, item.relname, role);
      relations := relations + 1;
    END IF;
  END LOOP;
  IF schemas + relations > 0 THEN
    RAISE NOTICE 'changed: granted role % USAGE on % schemas and SELECT on % tables and sequences', role, schemas, relations;
  ELSE
    RAISE NOTICE 'ok: role % can read every schema, table and sequence', role;
  END IF;

  -- Default privileges apply to objects that the roles they name create later: this user, and the owners of the
  -- schemas, tables and sequences that exist now. Objects another role creates later are not covered: run this
  -- script again after adding such a role (it only adds what is missing) or grant SELECT to kasho by hand.
  FOR item IN
    SELECT r.oid, r.rolname FROM pg_roles r
     WHERE r.rolname <> role AND r.rolname NOT LIKE 'pg\_%'
       AND (r.rolname = current_user
         OR r.oid IN (SELECT n.nspowner FROM pg_namespace n
                       WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
                         AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%')
         OR r.oid IN (SELECT c.relowner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
                         AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                         AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'))
     ORDER BY r.rolname
  LOOP
    owners := owners || item.rolname::text;
    IF NOT EXISTS (SELECT 1 FROM pg_default_acl d, aclexplode(d.defaclacl) a
                    WHERE d.defaclrole = item.oid AND d.defaclnamespace = 0 AND d.defaclobjtype = 'r'
                      AND a.grantee = role_oid AND a.privilege_type = 'SELECT') THEN
      EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I GRANT SELECT ON TABLES TO %I', item.rolname, role);
      defaults := defaults + 1;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_default_acl d, aclexplode(d.defaclacl) a
                    WHERE d.defaclrole = item.oid AND d.defaclnamespace = 0 AND d.defaclobjtype = 'S'
                      AND a.grantee = role_oid AND a.privilege_type = 'SELECT') THEN
      EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I GRANT SELECT ON SEQUENCES TO %I', item.rolname, role);
      defaults := defaults + 1;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_default_acl d, aclexplode(d.defaclacl) a
                    WHERE d.defaclrole = item.oid AND d.defaclnamespace = 0 AND d.defaclobjtype = 'n'
                      AND a.grantee = role_oid AND a.privilege_type = 'USAGE') THEN
      EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I GRANT USAGE ON SCHEMAS TO %I', item.rolname, role);
      defaults := defaults + 1;
    END IF;
  END LOOP;
  IF defaults > 0 THEN
    RAISE NOTICE 'changed: schemas, tables and sequences that % create later are readable by %',
      array_to_string(owners, ', '), role;
  ELSE
    RAISE NOTICE 'ok: schemas, tables and sequences that % create later are readable by %',
      array_to_string(owners, ', '), role;
  END IF;
END
$$;
\endif

-- ---- the publication -----------------------------------------------------------------------------------------------
-- Not the replication slot: pg-change-stream creates it at StartBootstrap, with the snapshot the bootstrap reads.
DO $$
DECLARE
  pub text := current_setting('kasho_prepare.publication');
  p jsonb;
  missing text[] := '{}';
  action text;
BEGIN
  SELECT to_jsonb(x) INTO p FROM pg_publication x WHERE x.pubname = pub;
  IF p IS NULL THEN
    EXECUTE format('CREATE PUBLICATION %I FOR ALL TABLES', pub);
    RAISE NOTICE 'changed: created publication % FOR ALL TABLES', pub;
    RETURN;
  END IF;
  IF NOT (p ->> 'puballtables')::boolean THEN
    RAISE NOTICE 'warning: publication % exists but is not FOR ALL TABLES: only the tables it lists reach Kasho, and new tables are not added', pub;
  ELSE
    RAISE NOTICE 'ok: publication % publishes all tables', pub;
  END IF;
  -- pubtruncate exists from PostgreSQL 11 on.
  FOREACH action IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
    IF p ? ('pub' || action) AND NOT (p ->> ('pub' || action))::boolean THEN
      missing := missing || upper(action);
    END IF;
  END LOOP;
  IF cardinality(missing) > 0 THEN
    RAISE NOTICE 'warning: publication % does not publish %: those changes never reach the copy', pub,
      array_to_string(missing, ', ');
  END IF;
END
$$;

:finish;
