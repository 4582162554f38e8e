#!/bin/bash
# Creates the cluster on first start (see the Dockerfile for the variables), then runs the server with the given
# arguments. A first argument that is not an option runs that command instead (e.g. psql).
set -euo pipefail

if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  exec "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "Error: POSTGRES_PASSWORD environment variable is required (the superuser's password)" >&2
    exit 1
  fi
  user="${POSTGRES_USER:-postgres}"
  db="${POSTGRES_DB:-$user}"
  echo "Creating the cluster in $PGDATA (superuser $user, database $db)"
  initdb -D "$PGDATA" --username="$user" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") --auth-local=trust \
    --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  printf '%s\n' 'host all all all scram-sha-256' 'host replication all all scram-sha-256' >>"$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ] || [ -n "${POSTGRES_INIT_SQL:-}" ]; then
    # Local socket only, so nobody connects before the setup is done.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    if [ "$db" != postgres ]; then
      psql -X -q -v ON_ERROR_STOP=1 -U "$user" -d postgres -v db="$db" <<<'CREATE DATABASE :"db"'
    fi
    if [ -n "${POSTGRES_INIT_SQL:-}" ]; then
      psql -X -q -v ON_ERROR_STOP=1 -U "$user" -d "$db" <<<"$POSTGRES_INIT_SQL"
    fi
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  fi
fi
exec postgres -D "$PGDATA" "$@"
