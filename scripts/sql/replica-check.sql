-- Read-only look at the replica (the target) for scripts/prepare-primary-db.sh: one "key<TAB>value" row per fact.
-- psql variables: role (the kasho role).
\set ON_ERROR_STOP 1
SELECT 'version_num', current_setting('server_version_num')
UNION ALL SELECT 'version', current_setting('server_version')
UNION ALL SELECT 'superuser', (SELECT rolsuper::text FROM pg_catalog.pg_roles WHERE rolname = current_user)
UNION ALL SELECT 'role', format('login=%s replication=%s superuser=%s', rolcanlogin, rolreplication, rolsuper)
  FROM pg_catalog.pg_roles WHERE rolname = :'role';
