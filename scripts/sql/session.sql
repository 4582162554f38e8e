-- Session settings for every change scripts/prepare-primary-db.sh makes (included by the *-apply.sql files).
\set ON_ERROR_STOP 1
SET client_min_messages = notice;
SET search_path = pg_catalog, pg_temp;
-- Waiting for a lock held by a long query would queue every other query on that table behind this script: on a
-- busy production database, give up instead and say so.
SET lock_timeout = :'lock_timeout';

-- CREATE/ALTER ROLE ... PASSWORD would otherwise reach the server log with log_statement = ddl or all, or with the
-- statement of a failing command. A role that may not change these (managed services) still gets its work done.
DO $$
BEGIN
  PERFORM set_config('log_statement', 'none', false);
  PERFORM set_config('log_min_duration_statement', '-1', false);
  PERFORM set_config('log_min_error_statement', 'panic', false);
EXCEPTION WHEN insufficient_privilege THEN
  RAISE NOTICE 'warning: % may not turn off statement logging for its session: the password may appear in the server log',
    current_user;
END
$$;

-- The script's own DDL (grants, default privileges, replica identities) is housekeeping of this database, not a
-- schema change to replay on the target: event triggers do not fire in replica mode.
DO $$
BEGIN
  PERFORM set_config('session_replication_role', 'replica', false);
EXCEPTION WHEN insufficient_privilege THEN
  RAISE NOTICE 'warning: % may not set session_replication_role: the grants made now are captured as DDL too',
    current_user;
END
$$;
