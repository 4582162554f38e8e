-- REPLICA IDENTITY FULL on every table that a FOR ALL TABLES publication includes and that has no replica
-- identity (the list primary-check.sql prints as no_identity). Each ALTER TABLE is its own short transaction, so an
-- ACCESS EXCLUSIVE lock is held for one table at a time and only for an instant; lock_timeout (session.sql) makes a
-- busy table fail the run instead of stalling the queries queued behind it. Echoed, so the caller sees each table.
\set ECHO queries
SELECT format('ALTER TABLE %I.%I REPLICA IDENTITY FULL', n.nspname, c.relname)
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
 ORDER BY n.nspname, c.relname
\gexec
\set ECHO none
