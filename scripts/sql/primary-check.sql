-- Read-only look at the primary for scripts/prepare-primary-db.sh: one "key<TAB>value" row per fact.
-- psql variables: role (the kasho role), publication.
\set ON_ERROR_STOP 1
SELECT 'version_num', current_setting('server_version_num')
UNION ALL SELECT 'version', current_setting('server_version')
UNION ALL SELECT 'wal_level', current_setting('wal_level')
UNION ALL SELECT 'max_replication_slots', current_setting('max_replication_slots')
UNION ALL SELECT 'max_wal_senders', current_setting('max_wal_senders')
UNION ALL SELECT 'slots_used', (SELECT count(*)::text FROM pg_catalog.pg_replication_slots)
UNION ALL SELECT 'superuser', (SELECT rolsuper::text FROM pg_catalog.pg_roles WHERE rolname = current_user)
UNION ALL SELECT 'role', format('login=%s replication=%s superuser=%s', rolcanlogin, rolreplication, rolsuper)
  FROM pg_catalog.pg_roles WHERE rolname = :'role'
UNION ALL SELECT 'publication', format('all_tables=%s', puballtables)
  FROM pg_catalog.pg_publication WHERE pubname = :'publication'
-- Tables a FOR ALL TABLES publication includes on which UPDATE and DELETE would fail: no replica identity (no
-- primary key under DEFAULT, a USING INDEX whose index is gone, or NOTHING). Partitioned parents hold no rows:
-- their partitions are listed.
UNION ALL (
  SELECT 'no_identity', format('%I.%I', n.nspname, c.relname)
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind = 'r'
     AND c.relpersistence = 'p'
     AND n.nspname NOT IN ('pg_catalog', 'information_schema')
     AND n.nspname NOT LIKE 'pg\_toast%'
     AND n.nspname NOT LIKE 'pg\_temp\_%'
     AND NOT (
       c.relreplident = 'f'
       OR (c.relreplident = 'd' AND EXISTS (
             SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))
       OR (c.relreplident = 'i' AND EXISTS (
             SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisreplident))
     )
   ORDER BY 2
);
