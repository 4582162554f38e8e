#!/usr/bin/env bash
# Prepares the source (primary) and target (replica) databases for Kasho, as the deployment guide's "Initial Setup"
# and "Manual Database Setup Steps" describe. Safe to run again: each step looks before it acts. The SQL it runs is
# in scripts/sql/, for reading or for running by hand.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
sql_dir="$here/sql"
# shellcheck source=SCRIPTDIR/lib/common.sh
source "$here/lib/common.sh"

usage() {
  cat <<'EOF'
Usage: scripts/prepare-primary-db.sh [options]

Prepares the databases for Kasho (as a superuser, once):
  primary  checks wal_level, max_replication_slots, max_wal_senders and the version; creates the kasho role
           (LOGIN, REPLICATION, read access to every schema, table and sequence, now and later); installs DDL
           capture (table public.kasho_ddl_log, functions public.kasho_*, event triggers kasho_log_ddl_end and
           kasho_log_ddl_drop); creates the publication FOR ALL TABLES. Not the replication slot: that is made
           during the bootstrap (scripts/bootstrap-kasho.sh).
  replica  creates the kasho role (LOGIN, no superuser) with what applying changes needs: CREATE on the database,
           USAGE and CREATE on every schema, all privileges on every table and sequence, now and later.
A second run changes nothing that is already right.

Environment:
  PRIMARY_DATABASE_URL          the kasho role's URL for the primary (required), e.g.
                                postgresql://kasho:password@primary:5432/app?sslmode=require
  PRIMARY_DATABASE_SU_USER      a superuser of the primary (required), e.g. postgres
  PRIMARY_DATABASE_SU_PASSWORD  its password (leave unset to use ~/.pgpass or a password-less method)
  REPLICA_DATABASE_URL          the kasho role's URL for the replica (required unless --skip-replica)
  REPLICA_DATABASE_SU_USER      a superuser of the replica (required unless --skip-replica)
  REPLICA_DATABASE_SU_PASSWORD  its password
  PUBLICATION_NAME              publication to create (default kasho_pub; --publication overrides)
  PSQL                          psql to use (default: psql on PATH, from postgresql-client)
The superusers connect to the same hosts, ports, databases and URL parameters as the kasho URLs. Passwords never
appear on a command line or in the output.

Options:
  --replica-identity-full  set REPLICA IDENTITY FULL on tables that have neither a primary key nor a replica
                           identity index (without it, such tables stop the script: once published, UPDATE and
                           DELETE on them fail)
  --replica-owner          make the kasho role the owner of the schemas, tables, sequences, types and functions
                           that already exist on the replica, so DDL from the source can alter and drop them
  --skip-replica           prepare only the primary
  --publication NAME       publication name (default kasho_pub)
  --lock-timeout DURATION  longest wait for a table lock before giving up (default 5s)
  --dry-run                check and show what would change, then roll everything back
  -h, --help               this help
EOF
}

usage_error() {
  echo "Error: $1" >&2
  echo "Run scripts/prepare-primary-db.sh --help for usage." >&2
  exit 2
}

replica_identity_full=0 replica_owner=0 skip_replica=0 dry_run=0
publication="${PUBLICATION_NAME:-kasho_pub}"
lock_timeout=5s
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help)
      usage
      exit 0
      ;;
    --replica-identity-full) replica_identity_full=1 ;;
    --replica-owner) replica_owner=1 ;;
    --skip-replica) skip_replica=1 ;;
    --dry-run) dry_run=1 ;;
    --publication)
      [ $# -ge 2 ] || usage_error "--publication needs a name"
      publication="$2"
      shift
      ;;
    --publication=*) publication="${1#*=}" ;;
    --lock-timeout)
      [ $# -ge 2 ] || usage_error "--lock-timeout needs a duration, e.g. 5s"
      lock_timeout="$2"
      shift
      ;;
    --lock-timeout=*) lock_timeout="${1#*=}" ;;
    *) usage_error "unknown option '$1'" ;;
  esac
  shift
done
[ -n "$publication" ] || usage_error "the publication name must not be empty"

# ---- configuration -------------------------------------------------------------------------------------------------

problems=()
[ -n "${PRIMARY_DATABASE_URL:-}" ] || problems+=("PRIMARY_DATABASE_URL environment variable is required")
[ -n "${PRIMARY_DATABASE_SU_USER:-}" ] ||
  problems+=("PRIMARY_DATABASE_SU_USER environment variable is required (a superuser of the primary, e.g. postgres)")
if [ "$skip_replica" -eq 0 ]; then
  [ -n "${REPLICA_DATABASE_URL:-}" ] ||
    problems+=("REPLICA_DATABASE_URL environment variable is required (or pass --skip-replica)")
  [ -n "${REPLICA_DATABASE_SU_USER:-}" ] ||
    problems+=("REPLICA_DATABASE_SU_USER environment variable is required (a superuser of the replica, e.g. postgres)")
fi
if [ "${#problems[@]}" -gt 0 ]; then
  for problem in "${problems[@]}"; do echo "Error: $problem" >&2; done
  echo "Run scripts/prepare-primary-db.sh --help for usage." >&2
  exit 1
fi

kasho_add_secret "${PRIMARY_DATABASE_SU_PASSWORD:-}"
kasho_add_secret "${REPLICA_DATABASE_SU_PASSWORD:-}"

psql_bin="${PSQL:-psql}"
command -v "$psql_bin" >/dev/null 2>&1 ||
  kasho_die "$psql_bin not found: install the PostgreSQL client (Debian: apt-get install postgresql-client) or set PSQL"

export PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-10}"

# Per side (P = primary, R = replica): the kasho role and password, the URLs without passwords.
kasho_parse_pg_url PRIMARY_DATABASE_URL "$PRIMARY_DATABASE_URL" || exit 1
P_ROLE="$PGURL_USER" P_PASSWORD="$PGURL_PASSWORD"
kasho_build_pg_url "$PRIMARY_DATABASE_SU_USER"
P_SU_URL="$REPLY"
kasho_build_pg_url "$P_ROLE"
P_KASHO_URL="$REPLY"
kasho_build_pg_url "$P_ROLE" replication=database
P_REPLICATION_URL="$REPLY"
kasho_pg_url_label
P_LABEL="$REPLY"
P_SU_PASSWORD="${PRIMARY_DATABASE_SU_PASSWORD:-}"
[ -n "$P_ROLE" ] || kasho_die "PRIMARY_DATABASE_URL names no user: put the kasho role in it (postgresql://kasho:password@host/db)"

if [ "$skip_replica" -eq 0 ]; then
  kasho_parse_pg_url REPLICA_DATABASE_URL "$REPLICA_DATABASE_URL" || exit 1
  R_ROLE="$PGURL_USER" R_PASSWORD="$PGURL_PASSWORD"
  kasho_build_pg_url "$REPLICA_DATABASE_SU_USER"
  R_SU_URL="$REPLY"
  kasho_build_pg_url "$R_ROLE"
  R_KASHO_URL="$REPLY"
  kasho_pg_url_label
  R_LABEL="$REPLY"
  R_SU_PASSWORD="${REPLICA_DATABASE_SU_PASSWORD:-}"
  [ -n "$R_ROLE" ] || kasho_die "REPLICA_DATABASE_URL names no user: put the kasho role in it (postgresql://kasho:password@host/db)"
fi

# ---- helpers -------------------------------------------------------------------------------------------------------

# run_psql URL PASSWORD [psql options]: runs psql with SQL from standard input; its output (both streams, secrets
# masked) lands in PSQL_OUT. The password reaches psql through its environment only.
run_psql() {
  local url="$1" password="$2" out status=0
  shift 2
  out="$(
    if [ -n "$password" ]; then export PGPASSWORD="$password"; else unset PGPASSWORD; fi
    export PGAPPNAME=kasho-prepare
    "$psql_bin" -X -q -w -v ON_ERROR_STOP=1 -d "$url" "$@" 2>&1
  )" || status=$?
  PSQL_OUT="$(kasho_mask "$out")"
  return "$status"
}

# The psql \set form of a value: single-quoted, with psql's escapes.
psql_literal() {
  local s="$1"
  s="${s//\\/\\\\}"
  s="${s//\'/\'\'}"
  s="${s//$'\n'/\\n}"
  s="${s//$'\r'/\\r}"
  s="${s//$'\t'/\\t}"
  REPLY="'$s'"
}

changes=0
say() { printf '%s\n' "$*"; }

# Prints the NOTICEs of an apply script as a report and counts the changes.
report() {
  local line kind text
  while IFS= read -r line; do
    case "$line" in
      'NOTICE:  changed: '* | 'NOTICE:  ok: '* | 'NOTICE:  warning: '*)
        text="${line#NOTICE:  }"
        kind="${text%%:*}"
        text="${text#*: }"
        if [ "$kind" = changed ]; then
          changes=$((changes + 1))
          if [ "$dry_run" -eq 1 ]; then kind='would change'; fi
        fi
        say "  [$kind] $text"
        ;;
      'WARNING:  '*) say "  [warning] ${line#WARNING:  }" ;;
      'NOTICE:  '*) ;;
      '') ;;
      *) say "  $line" ;;
    esac
  done <<<"$PSQL_OUT"
}

connect_failed() {
  kasho_error "could not query the $1 ($2) as $3:"
  printf '%s\n' "$PSQL_OUT" | sed 's/^/  /' >&2
  exit 1
}

# True when the kasho role can log in with the password from its URL (then the password needs no change).
can_log_in() {
  local url="$1" password="$2"
  [ -n "$password" ] || return 1
  run_psql "$url" "$password" -At -c 'SELECT 1' >/dev/null 2>&1 && [ "$PSQL_OUT" = 1 ]
}

# ---- checks (nothing changes before they pass) ---------------------------------------------------------------------

if [ "$dry_run" -eq 1 ]; then say "Dry run: every change is rolled back at the end."; fi
say "Primary: $P_LABEL (as $PRIMARY_DATABASE_SU_USER)"
run_psql "$P_SU_URL" "$P_SU_PASSWORD" -At -F $'\t' -v role="$P_ROLE" -v publication="$publication" \
  <"$sql_dir/primary-check.sql" || connect_failed primary "$P_LABEL" "$PRIMARY_DATABASE_SU_USER"

declare -A P=()
no_identity=()
while IFS=$'\t' read -r key value; do
  case "$key" in
    no_identity) no_identity+=("$value") ;;
    '') ;;
    *) P[$key]="$value" ;;
  esac
done <<<"$PSQL_OUT"

failed=()
if [ "${P[version_num]:-0}" -lt 100000 ]; then
  failed+=("PostgreSQL ${P[version]:-?} is too old: Kasho needs PostgreSQL 10 or newer.")
else
  say "  [ok] PostgreSQL ${P[version]}"
fi
if [ "${P[wal_level]:-}" != logical ]; then
  failed+=("wal_level is '${P[wal_level]:-?}', logical replication needs 'logical'. Set 'wal_level = logical' in postgresql.conf (or run ALTER SYSTEM SET wal_level = logical; on a managed service, in its parameter settings), then restart PostgreSQL.")
else
  say "  [ok] wal_level = logical"
fi
for setting in max_replication_slots max_wal_senders; do
  if [ "${P[$setting]:-0}" -lt 2 ]; then
    failed+=("$setting is ${P[$setting]:-?}, Kasho needs at least 2. Set '$setting = 10' in postgresql.conf (or run ALTER SYSTEM SET $setting = 10), then restart PostgreSQL.")
  else
    say "  [ok] $setting = ${P[$setting]}"
  fi
done
if [ "${#failed[@]}" -eq 0 ] && [ "${P[slots_used]:-0}" -ge "${P[max_replication_slots]}" ]; then
  say "  [warning] all ${P[max_replication_slots]} replication slots are in use: the bootstrap needs a free one (raise max_replication_slots or drop an unused slot)"
fi
if [ "${P[superuser]:-false}" != true ]; then
  say "  [warning] $PRIMARY_DATABASE_SU_USER is not a superuser: creating event triggers and the publication may fail"
fi
if [ "${#failed[@]}" -gt 0 ]; then
  for problem in "${failed[@]}"; do kasho_error "$problem"; done
  echo "Nothing was changed." >&2
  exit 1
fi

manage_role=1
if [ "$P_ROLE" = "$PRIMARY_DATABASE_SU_USER" ]; then
  manage_role=0
  say "  [warning] PRIMARY_DATABASE_URL names the superuser $P_ROLE itself: its role is left alone. Kasho should connect as a role of its own (e.g. kasho), which this script creates with only what Kasho needs."
fi

if [ "${#no_identity[@]}" -gt 0 ]; then
  if [ "$replica_identity_full" -eq 0 ]; then
    {
      echo "Error: ${#no_identity[@]} tables have neither a primary key nor a replica identity:"
      printf '  %s\n' "${no_identity[@]}"
      echo "Published FOR ALL TABLES (as Kasho needs), every UPDATE and DELETE on them fails on the primary."
      echo "Nothing was changed. Either:"
      echo "  - give each a primary key, or"
      echo "  - run this script again with --replica-identity-full (it runs ALTER TABLE ... REPLICA IDENTITY FULL on"
      echo "    each: updates and deletes then log the whole old row), or"
      echo "  - run it yourself, e.g.:"
      for table in "${no_identity[@]:0:5}"; do echo "      ALTER TABLE $table REPLICA IDENTITY FULL;"; done
    } >&2
    exit 1
  fi
fi

if [ "$skip_replica" -eq 0 ]; then
  say "Replica: $R_LABEL (as $REPLICA_DATABASE_SU_USER)"
  run_psql "$R_SU_URL" "$R_SU_PASSWORD" -At -F $'\t' -v role="$R_ROLE" <"$sql_dir/replica-check.sql" ||
    connect_failed replica "$R_LABEL" "$REPLICA_DATABASE_SU_USER"
  declare -A R=()
  while IFS=$'\t' read -r key value; do
    if [ -n "$key" ]; then R[$key]="$value"; fi
  done <<<"$PSQL_OUT"
  if [ "${R[version_num]:-0}" -lt 100000 ]; then
    kasho_die "the replica runs PostgreSQL ${R[version]:-?}: Kasho needs PostgreSQL 10 or newer. Nothing was changed."
  fi
  say "  [ok] PostgreSQL ${R[version]}"
  if [ "${R[superuser]:-false}" != true ]; then
    say "  [warning] $REPLICA_DATABASE_SU_USER is not a superuser: some grants may fail"
  fi
  if [ "$R_ROLE" = "$REPLICA_DATABASE_SU_USER" ]; then
    kasho_die "REPLICA_DATABASE_URL names the superuser $R_ROLE itself: Kasho applies changes as a role of its own (e.g. kasho), which this script creates. Nothing was changed."
  fi
fi

# ---- changes -------------------------------------------------------------------------------------------------------

# Input for an apply script: the password (when it changes) as a psql variable, then the SQL. Standard input keeps
# it off psql's command line.
apply_input() {
  local password="$1" set_password="$2"
  shift 2
  if [ "$set_password" -eq 1 ]; then
    psql_literal "$password"
    printf '\\set kasho_password %s\n' "$REPLY"
  fi
  cat "$sql_dir/session.sql" "$@"
}

finish=COMMIT
if [ "$dry_run" -eq 1 ]; then finish=ROLLBACK; fi

say "Preparing the primary"
if [ "${#no_identity[@]}" -gt 0 ]; then
  if [ "$dry_run" -eq 1 ]; then
    for table in "${no_identity[@]}"; do say "  [would change] set REPLICA IDENTITY FULL on $table"; done
    changes=$((changes + ${#no_identity[@]}))
  else
    identity_status=0
    run_psql "$P_SU_URL" "$P_SU_PASSWORD" -v lock_timeout="$lock_timeout" \
      < <(apply_input '' 0 "$sql_dir/replica-identity-full.sql") || identity_status=$?
    # psql echoes each ALTER TABLE before running it: after a failure, the last one echoed is the one that failed.
    altered=()
    while IFS= read -r line; do
      case "$line" in
        'ALTER TABLE '*' REPLICA IDENTITY FULL')
          line="${line#ALTER TABLE }"
          altered+=("${line% REPLICA IDENTITY FULL}")
          ;;
      esac
    done <<<"$PSQL_OUT"
    if [ "$identity_status" -ne 0 ] && [ "${#altered[@]}" -eq 0 ]; then
      printf '%s\n' "$PSQL_OUT" | grep -E 'ERROR|FATAL|error' | sed 's/^/  /' >&2
      kasho_die "setting REPLICA IDENTITY FULL failed; nothing was changed"
    fi
    failed_table=''
    if [ "$identity_status" -ne 0 ]; then
      failed_table="${altered[${#altered[@]} - 1]}"
      unset 'altered[${#altered[@]}-1]'
    fi
    for table in ${altered[@]+"${altered[@]}"}; do
      say "  [changed] set REPLICA IDENTITY FULL on $table"
      changes=$((changes + 1))
    done
    if [ -n "$failed_table" ]; then
      reason="$(printf '%s\n' "$PSQL_OUT" | grep -m 1 'ERROR:' | sed 's/.*ERROR: *//')"
      kasho_die "could not set REPLICA IDENTITY FULL on $failed_table: ${reason:-see above}. The tables before it keep theirs; run the script again (at a quieter time, or with a longer --lock-timeout, if a lock timed out)."
    fi
  fi
fi

p_set_password=0
if [ "$manage_role" -eq 1 ]; then
  if [ -z "$P_PASSWORD" ]; then
    say "  [warning] PRIMARY_DATABASE_URL has no password: role $P_ROLE keeps the password it has (if any)"
  elif [ -z "${P[role]:-}" ] || ! can_log_in "$P_KASHO_URL" "$P_PASSWORD"; then
    p_set_password=1
  fi
fi
if ! run_psql "$P_SU_URL" "$P_SU_PASSWORD" -v role="$P_ROLE" -v manage_role="$manage_role" \
  -v set_password="$p_set_password" -v publication="$publication" -v lock_timeout="$lock_timeout" \
  -v finish="$finish" < <(apply_input "$P_PASSWORD" "$p_set_password" "$sql_dir/primary-apply.sql"); then
  report
  kasho_die "preparing the primary failed; nothing of this step was changed (it runs in one transaction)"
fi
report

if [ "$skip_replica" -eq 0 ]; then
  say "Preparing the replica"
  r_set_password=0
  if [ -z "$R_PASSWORD" ]; then
    say "  [warning] REPLICA_DATABASE_URL has no password: role $R_ROLE keeps the password it has (if any)"
  elif [ -z "${R[role]:-}" ] || ! can_log_in "$R_KASHO_URL" "$R_PASSWORD"; then
    r_set_password=1
  fi
  if ! run_psql "$R_SU_URL" "$R_SU_PASSWORD" -v role="$R_ROLE" -v set_password="$r_set_password" \
    -v replica_owner="$replica_owner" -v lock_timeout="$lock_timeout" -v finish="$finish" \
    < <(apply_input "$R_PASSWORD" "$r_set_password" "$sql_dir/replica-apply.sql"); then
    report
    kasho_die "preparing the replica failed; nothing of this step was changed (it runs in one transaction)"
  fi
  report
fi

# ---- verification: connect the way Kasho will -----------------------------------------------------------------------

if [ "$dry_run" -eq 0 ]; then
  say "Checking Kasho's connections"
  if [ "$manage_role" -eq 1 ] && [ -n "$P_PASSWORD" ]; then
    if run_psql "$P_REPLICATION_URL" "$P_PASSWORD" -At -c 'IDENTIFY_SYSTEM' </dev/null; then
      say "  [ok] $P_ROLE opens a replication connection to the primary"
    else
      say "  [warning] $P_ROLE could not open a replication connection to the primary from here (pg-change-stream needs one; check pg_hba.conf):"
      printf '%s\n' "$PSQL_OUT" | sed 's/^/      /'
    fi
  fi
  if [ "$skip_replica" -eq 0 ] && [ -n "$R_PASSWORD" ]; then
    if run_psql "$R_KASHO_URL" "$R_PASSWORD" -At \
      -c "SELECT has_database_privilege(current_database(), 'CREATE')" </dev/null && [ "$PSQL_OUT" = t ]; then
      say "  [ok] $R_ROLE connects to the replica and may create schemas"
    else
      say "  [warning] $R_ROLE could not connect to the replica from here (check pg_hba.conf):"
      printf '%s\n' "$PSQL_OUT" | sed 's/^/      /'
    fi
  fi
fi

if [ "$dry_run" -eq 1 ]; then
  say "Dry run: $changes changes would be made; everything was rolled back."
elif [ "$changes" -eq 0 ]; then
  say "Nothing changed: the databases were already prepared."
else
  say "Done: $changes changes made."
fi
say "Next: start pg-change-stream (and pg-translicator), then run scripts/bootstrap-kasho.sh."
