-- Everything scripts/prepare-primary-db.sh changes on the replica (the target), in one transaction (after
-- session.sql): the kasho role and what applying changes needs, without superuser. Each step looks before it acts,
-- so a second run changes nothing; it reports through NOTICEs that start with "changed:", "ok:" or "warning:".
-- psql variables: role, set_password (then kasho_password, set from standard input), replica_owner, finish
-- (COMMIT, or ROLLBACK for a dry run).
SET kasho_prepare.role = :'role';
SET kasho_prepare.replica_owner = :'replica_owner';

BEGIN;

-- LOGIN only: the translicator connects as an ordinary client. The guide's manual steps also give REPLICATION,
-- which nothing on the target uses; a role that already has it keeps it.
DO $$
DECLARE
  role text := current_setting('kasho_prepare.role');
  r record;
BEGIN
  SELECT * INTO r FROM pg_roles WHERE rolname = role;
  IF NOT FOUND THEN
    EXECUTE format('CREATE ROLE %I WITH LOGIN', role);
    RAISE NOTICE 'changed: created role % with LOGIN', role;
  ELSIF NOT r.rolcanlogin THEN
    EXECUTE format('ALTER ROLE %I WITH LOGIN', role);
    RAISE NOTICE 'changed: gave role % LOGIN', role;
  ELSE
    RAISE NOTICE 'ok: role % has LOGIN', role;
  END IF;
  IF r.rolsuper THEN
    RAISE NOTICE 'warning: role % is a superuser; applying changes does not need that', role;
  END IF;
END
$$;
\if :set_password
-- A top-level statement, not EXECUTE inside a function: an error then carries no CONTEXT line quoting it.
SELECT format('ALTER ROLE %I WITH PASSWORD %L', :'role', :'kasho_password') \gexec
DO $$
BEGIN
  RAISE NOTICE 'changed: set the password of role % (from REPLICA_DATABASE_URL)', current_setting('kasho_prepare.role');
END
$$;
\endif

DO $$
DECLARE
  role text := current_setting('kasho_prepare.role');
  role_oid oid := (SELECT oid FROM pg_roles WHERE rolname = current_setting('kasho_prepare.role'));
  transfer boolean := current_setting('kasho_prepare.replica_owner')::boolean;
  item record;
  schemas integer := 0;
  relations integer := 0;
  defaults integer := 0;
  owned integer := 0;
  foreign_owned text[] := '{}';
  owners text[] := '{}';
  keyword text;
BEGIN
  -- CREATE on the database: the translicator creates schema kasho for its applied position, and schemas created
  -- on the source arrive as CREATE SCHEMA, run as this role.
  IF NOT (has_database_privilege(role, current_database(), 'CONNECT')
          AND has_database_privilege(role, current_database(), 'CREATE')) THEN
    EXECUTE format('GRANT CONNECT, CREATE ON DATABASE %I TO %I', current_database(), role);
    RAISE NOTICE 'changed: granted role % CONNECT and CREATE on database %', role, current_database();
  ELSE
    RAISE NOTICE 'ok: role % may connect to database % and create schemas in it', role, current_database();
  END IF;

  FOR item IN
    SELECT n.oid, n.nspname FROM pg_namespace n
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
     ORDER BY n.nspname
  LOOP
    IF NOT (has_schema_privilege(role_oid, item.oid, 'USAGE') AND has_schema_privilege(role_oid, item.oid, 'CREATE')) THEN
      EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO %I', item.nspname, role);
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
    IF item.relkind = 'S' THEN
      IF NOT (has_sequence_privilege(role_oid, item.oid, 'USAGE') AND has_sequence_privilege(role_oid, item.oid, 'SELECT')
              AND has_sequence_privilege(role_oid, item.oid, 'UPDATE')) THEN
        EXECUTE format('GRANT ALL ON SEQUENCE %I.%I TO %I', item.nspname, item.relname, role);
        relations := relations + 1;
      END IF;
    ELSIF NOT (SELECT bool_and(has_table_privilege(role_oid, item.oid, p))
                 FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p) THEN
      EXECUTE format('GRANT ALL ON TABLE %I.%I TO %I', item.nspname, item.relname, role);
      relations := relations + 1;
    END IF;
  END LOOP;
  IF schemas + relations > 0 THEN
    RAISE NOTICE 'changed: granted role % USAGE and CREATE on % schemas and all privileges on % tables and sequences',
      role, schemas, relations;
  ELSE
    RAISE NOTICE 'ok: role % has USAGE and CREATE on every schema and all privileges on every table and sequence', role;
  END IF;

  -- Rows can be written with the grants above, but ALTER and DROP need the owner: DDL replayed from the source
  -- (as this role) fails on objects someone else owns. Objects the bootstrap and the replayed DDL create belong
  -- to this role already; what is listed here was there before. Extension members stay with their extension.
  FOR item IN
    SELECT 'SCHEMA' AS kind, format('%I', n.nspname) AS name, n.nspname = 'public' AS is_public
      FROM pg_namespace n
     WHERE n.nspowner <> role_oid
       AND n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid
                         AND d.deptype = 'e')
    UNION ALL
    SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE'
                          WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
           format('%I.%I', n.nspname, c.relname), false
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relowner <> role_oid
       AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
       AND n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                         AND (d.deptype = 'e' OR (c.relkind = 'S' AND d.deptype IN ('a', 'i')
                                                  AND d.refclassid = 'pg_class'::regclass)))
    UNION ALL
    SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, format('%I.%I', n.nspname, t.typname), false
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE t.typowner <> role_oid
       AND (t.typtype IN ('e', 'd', 'r')
         OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c'))
       AND n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid
                         AND d.deptype = 'e')
    UNION ALL
    -- prokind exists from PostgreSQL 11 on; before, aggregates had proisagg.
    SELECT CASE coalesce(to_jsonb(p) ->> 'prokind', CASE WHEN (to_jsonb(p) ->> 'proisagg')::boolean THEN 'a' END)
             WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,
           p.oid::regprocedure::text, false
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE p.proowner <> role_oid
       AND n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                         AND d.deptype = 'e')
    ORDER BY 1, 2
  LOOP
    IF transfer THEN
      EXECUTE format('ALTER %s %s OWNER TO %I', item.kind, item.name, role);
      owned := owned + 1;
    ELSIF NOT item.is_public THEN
      foreign_owned := foreign_owned || format('%s %s', lower(item.kind), item.name);
    END IF;
  END LOOP;
  IF owned > 0 THEN
    RAISE NOTICE 'changed: made role % the owner of % schemas, tables, sequences, types and functions', role, owned;
  ELSIF cardinality(foreign_owned) > 0 THEN
    RAISE NOTICE 'warning: % objects on the replica belong to other roles (%): DDL from the source that alters or drops them fails there. Pass --replica-owner to make % their owner.',
      cardinality(foreign_owned),
      array_to_string(foreign_owned[1:5], ', ') || CASE WHEN cardinality(foreign_owned) > 5 THEN ', ...' ELSE '' END,
      role;
  ELSE
    RAISE NOTICE 'ok: role % owns every schema, table, type and function on the replica (or there are none yet)', role;
  END IF;

  -- Default privileges apply to objects that the roles they name create later: this user, and the owners of the
  -- schemas, tables and sequences that exist now. Objects that the translicator creates belong to kasho anyway.
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
    IF (SELECT count(DISTINCT a.privilege_type) FROM pg_default_acl d, aclexplode(d.defaclacl) a
         WHERE d.defaclrole = item.oid AND d.defaclnamespace = 0 AND d.defaclobjtype = 'r' AND a.grantee = role_oid
           AND a.privilege_type IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER')) < 7 THEN
      EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I GRANT ALL ON TABLES TO %I', item.rolname, role);
      defaults := defaults + 1;
    END IF;
    IF (SELECT count(DISTINCT a.privilege_type) FROM pg_default_acl d, aclexplode(d.defaclacl) a
         WHERE d.defaclrole = item.oid AND d.defaclnamespace = 0 AND d.defaclobjtype = 'S' AND a.grantee = role_oid
           AND a.privilege_type IN ('USAGE', 'SELECT', 'UPDATE')) < 3 THEN
      EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I GRANT ALL ON SEQUENCES TO %I', item.rolname, role);
      defaults := defaults + 1;
    END IF;
    IF (SELECT count(DISTINCT a.privilege_type) FROM pg_default_acl d, aclexplode(d.defaclacl) a
         WHERE d.defaclrole = item.oid AND d.defaclnamespace = 0 AND d.defaclobjtype = 'n' AND a.grantee = role_oid
           AND a.privilege_type IN ('USAGE', 'CREATE')) < 2 THEN
      EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I GRANT USAGE, CREATE ON SCHEMAS TO %I', item.rolname, role);
      defaults := defaults + 1;
    END IF;
  END LOOP;
  IF defaults > 0 THEN
    RAISE NOTICE 'changed: schemas, tables and sequences that % create later are fully usable by %',
      array_to_string(owners, ', '), role;
  ELSIF cardinality(owners) > 0 THEN
    RAISE NOTICE 'ok: schemas, tables and sequences that % create later are fully usable by %',
      array_to_string(owners, ', '), role;
  END IF;
END
$$;

:finish;
