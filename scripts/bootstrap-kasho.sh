#!/usr/bin/env bash
# Loads the data that already exists in the source into Kasho, then starts streaming: the deployment guide's
# "Bootstrap Process", made consistent. pg-change-stream's permanent slot exports the snapshot that the dump reads, so
# the snapshot and the stream meet exactly (the guide's temporary slot left a gap between two LSNs).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=SCRIPTDIR/lib/common.sh
source "$here/lib/common.sh"

usage() {
  cat <<'EOF'
Usage: scripts/bootstrap-kasho.sh

Copies the data that already exists in the source into Kasho, then starts streaming:
  1. checks that pg-change-stream is WAITING
  2. StartBootstrap: pg-change-stream creates its replication slot, which exports a snapshot, and starts
     accumulating every change committed after it
  3. pg_dump --snapshot of that snapshot (or, with BOOTSTRAP_METHOD=direct, pg-bootstrap-sync reads the source
     itself under the snapshot), then releases the snapshot
  4. pg-bootstrap-sync turns the dump into change events in pg-change-stream's buffer, ahead of the live changes
  5. CompleteBootstrap: ACCUMULATING -> STREAMING (asks first, unless WAIT_FOR_BOOTSTRAP=true)
The dump is written to a private temporary directory and removed at the end, also on failure.

Environment:
  PRIMARY_DATABASE_URL   the source, as the kasho role (required), e.g. postgresql://kasho:password@primary:5432/app
  KV_URL                 pg-change-stream's Redis buffer (required), e.g. redis://redis:6379
  CHANGE_STREAM_SERVICE  pg-change-stream's gRPC address (default localhost:8080)
  WAIT_FOR_BOOTSTRAP     true: complete the bootstrap without asking
  BOOTSTRAP_METHOD       dump (default: pg_dump, then pg-bootstrap-sync --dump-file) or direct
                         (pg-bootstrap-sync --source-url --snapshot, no dump file)
  RESET_ON_FAILURE       true: after a failure, call ResetBootstrap (drops the slot and the buffer) so that the
                         script can simply be run again
  DUMP_DIR               where the temporary dump goes (default TMPDIR, else /tmp); it needs room for the dump
  PG_DUMP, KASHO_CTL, PG_BOOTSTRAP_SYNC
                         the programs to use (default: from PATH, else bin/ of this repository or /app)

If it fails after StartBootstrap, pg-change-stream stays ACCUMULATING and its slot keeps WAL on the source. Clear
that for a retry with one of:
  kasho-ctl --address pg-change-stream:8080 reset-bootstrap
  grpcurl -plaintext pg-change-stream:8080 kasho.ChangeStreamService/ResetBootstrap
EOF
}

case "${1:-}" in
  '') ;;
  -h | --help)
    usage
    exit 0
    ;;
  *)
    echo "Error: unknown argument '$1' (settings come from the environment)" >&2
    echo "Run scripts/bootstrap-kasho.sh --help for usage." >&2
    exit 2
    ;;
esac

# ---- configuration -------------------------------------------------------------------------------------------------

problems=()
[ -n "${PRIMARY_DATABASE_URL:-}" ] || problems+=("PRIMARY_DATABASE_URL environment variable is required")
[ -n "${KV_URL:-}" ] || problems+=("KV_URL environment variable is required")
method="${BOOTSTRAP_METHOD:-dump}"
case "$method" in
  dump | direct) ;;
  *) problems+=("BOOTSTRAP_METHOD must be dump or direct") ;;
esac
if [ "${#problems[@]}" -gt 0 ]; then
  for problem in "${problems[@]}"; do echo "Error: $problem" >&2; done
  echo "Run scripts/bootstrap-kasho.sh --help for usage." >&2
  exit 1
fi
address="${CHANGE_STREAM_SERVICE:-localhost:8080}"

kasho_parse_pg_url PRIMARY_DATABASE_URL "$PRIMARY_DATABASE_URL" || exit 1
source_password="$PGURL_PASSWORD"
source_user="$PGURL_USER"
kasho_build_pg_url "$PGURL_USER"
source_url="$REPLY"
kasho_pg_url_label
source_label="$REPLY"
# A Redis password (redis://[user]:password@host) is masked in everything printed too.
kv_userinfo="${KV_URL#*://}"
case "$kv_userinfo" in
  *:*@*)
    kv_userinfo="${kv_userinfo%%@*}"
    kasho_url_decode "${kv_userinfo#*:}" && kasho_add_secret "$REPLY"
    ;;
esac

# A program: the override variable, else PATH, else this repository's bin/ (../bin from here), else /app (the
# image keeps the scripts in /app/scripts and the programs in /app and /app/bin).
find_program() {
  local name="$1" override="$2" dir
  if [ -n "$override" ]; then
    command -v "$override" || kasho_die "$override not found"
    return
  fi
  if command -v "$name"; then return; fi
  for dir in "$root/bin" "$root" /app/bin /app; do
    if [ -x "$dir/$name" ]; then
      echo "$dir/$name"
      return
    fi
  done
  return 1
}

command -v node >/dev/null 2>&1 || kasho_die "node not found: kasho-ctl and pg-bootstrap-sync need Node.js 20 or newer"
ctl="$(find_program kasho-ctl "${KASHO_CTL:-}")" ||
  kasho_die "kasho-ctl not found: run from the Kasho repository after npm run build, use the kasho image, or set KASHO_CTL"
sync="$(find_program pg-bootstrap-sync "${PG_BOOTSTRAP_SYNC:-}")" ||
  kasho_die "pg-bootstrap-sync not found: run from the Kasho repository after npm run build, use the kasho image, or set PG_BOOTSTRAP_SYNC"
pg_dump=''
if [ "$method" = dump ]; then
  pg_dump="$(find_program pg_dump "${PG_DUMP:-}")" ||
    kasho_die "pg_dump not found: install the PostgreSQL client (Debian: apt-get install postgresql-client) or set PG_DUMP"
fi

# ---- helpers -------------------------------------------------------------------------------------------------------

say() { printf '%s\n' "$*"; }

now_ms() {
  local t="${EPOCHREALTIME/[.,]/}"
  echo $((t / 1000))
}

human_bytes() {
  awk -v b="$1" 'BEGIN {
    split("B KiB MiB GiB TiB", unit, " "); i = 1
    while (b >= 1024 && i < 5) { b /= 1024; i++ }
    if (i == 1) printf "%d B", b; else printf "%.1f %s", b, unit[i]
  }'
}

# "3.4 MiB in 2.0 s (1.7 MiB/s)"
size_and_rate() {
  local bytes="$1" ms="$2"
  [ "$ms" -gt 0 ] || ms=1
  printf '%s in %s s (%s/s)' "$(human_bytes "$bytes")" "$(awk -v ms="$ms" 'BEGIN { printf "%.1f", ms / 1000 }')" \
    "$(human_bytes $((bytes * 1000 / ms)))"
}

tmp="$(mktemp -d "${DUMP_DIR:-${TMPDIR:-/tmp}}/kasho-bootstrap.XXXXXX")" ||
  kasho_die "could not create a temporary directory in ${DUMP_DIR:-${TMPDIR:-/tmp}} (set DUMP_DIR to a writable directory)"
chmod 700 "$tmp"

# ctl COMMAND [kasho-ctl options]: the JSON answer in CTL_JSON; on failure, kasho-ctl's message in CTL_ERROR.
ctl() {
  local command="$1" status=0
  shift
  CTL_JSON="$("$ctl" --address "$address" "$@" "$command" 2>"$tmp/ctl.err")" || status=$?
  CTL_ERROR="$(kasho_mask "$(cat "$tmp/ctl.err")")"
  return "$status"
}

# Reads the top-level fields of CTL_JSON into the associative array J.
declare -A J=()
# shellcheck disable=SC2016 # the single quotes hold JavaScript
read_json() {
  local key value
  J=()
  while IFS=$'\t' read -r key value; do
    if [ -n "$key" ]; then J[$key]="$value"; fi
  done < <(node -e '
    const json = JSON.parse(require("fs").readFileSync(0, "utf8"));
    for (const [key, value] of Object.entries(json)) {
      if (value !== null && typeof value !== "object") process.stdout.write(`${key}\t${value}\n`);
    }' <<<"$CTL_JSON")
}

step=''
started=0
child=''

on_exit() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$child" ]; then
    kill "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  rm -f "$tmp/dump.sql"
  if [ "$status" -ne 0 ] && [ -n "$step" ]; then
    echo "Error: the bootstrap failed while $step." >&2
    if [ "$started" -eq 1 ]; then
      # The exported snapshot holds back vacuum on the source until released: never leave it behind.
      ctl release-snapshot || true
      if [ "${RESET_ON_FAILURE:-}" = true ] && ctl reset-bootstrap; then
        echo "ResetBootstrap done (RESET_ON_FAILURE=true): pg-change-stream is WAITING again; run this script again." >&2
      elif ctl status && read_json && [ "${J[state]:-}" = WAITING ]; then
        echo "pg-change-stream is WAITING again (it undid the failed call): run this script again once the cause is fixed." >&2
      else
        cat >&2 <<EOF
pg-change-stream stays ACCUMULATING, and its slot keeps WAL on the source until the bootstrap completes or is
reset. To clear the state and run this script again:
  $ctl --address $address reset-bootstrap
or
  grpcurl -plaintext $address kasho.ChangeStreamService/ResetBootstrap
EOF
      fi
    fi
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs a program in the background and waits for it, so that a signal reaches on_exit (which stops it) at once.
run_child() {
  "$@" &
  child=$!
  local status=0
  wait "$child" || status=$?
  child=''
  return "$status"
}

# ---- 1. pg-change-stream must be WAITING ---------------------------------------------------------------------------

say "Kasho bootstrap: source $source_label as $source_user, pg-change-stream at $address"
step="checking pg-change-stream"
say "[1/5] Checking pg-change-stream"
ctl status --wait 30 || kasho_die "could not reach pg-change-stream at $address (CHANGE_STREAM_SERVICE): $CTL_ERROR"
read_json
state="${J[state]:-}"
case "$state" in
  WAITING)
    say "      WAITING (slot ${J[slotName]:-?}, publication ${J[publicationName]:-?})"
    if [ -n "${J[lastError]:-}" ]; then say "      last error: $(kasho_mask "${J[lastError]}")"; fi
    ;;
  STREAMING)
    step=''
    say "pg-change-stream is already STREAMING: the bootstrap is complete, nothing to do."
    say "To load the target again from scratch, reset first (this drops the slot and the buffer):"
    say "  $ctl --address $address reset-bootstrap"
    exit 0
    ;;
  ACCUMULATING)
    step=''
    kasho_error "pg-change-stream is ACCUMULATING: a bootstrap is in progress, or one failed before completing."
    cat >&2 <<EOF
  If no other bootstrap is running, clear it and run this script again:
    $ctl --address $address reset-bootstrap
  (or: grpcurl -plaintext $address kasho.ChangeStreamService/ResetBootstrap)
  If an earlier run of this script loaded everything and only waits for the go-ahead to stream:
    $ctl --address $address complete-bootstrap
EOF
    if [ -n "${J[lastError]:-}" ]; then
      echo "  Last error reported by pg-change-stream: $(kasho_mask "${J[lastError]}")" >&2
    fi
    exit 1
    ;;
  *) kasho_die "pg-change-stream reports the unexpected state '${state:-none}'" ;;
esac

# ---- 2. StartBootstrap ---------------------------------------------------------------------------------------------

step="starting the bootstrap (StartBootstrap)"
say "[2/5] StartBootstrap"
# From here on a failure leaves state behind; pg-change-stream itself goes back to WAITING if this call fails.
started=1
ctl start-bootstrap --wait 10 || kasho_die "StartBootstrap failed: $CTL_ERROR"
read_json
snapshot="${J[snapshotName]:-}"
[ -n "$snapshot" ] || kasho_die "StartBootstrap answered without a snapshot name"
say "      slot ${J[slotName]:-?} created at ${J[startLsn]:-?}; snapshot $snapshot exported; accumulating changes"
# pg-bootstrap-sync writes under the slot's Redis keys and checks over gRPC that pg-change-stream is ACCUMULATING.
export SLOT_NAME="${J[slotName]:-kasho_slot}" CHANGE_STREAM_SERVICE="$address"

# ---- 3. the snapshot's data ----------------------------------------------------------------------------------------

export_password() {
  if [ -n "$source_password" ]; then export PGPASSWORD="$source_password"; fi
}

release_snapshot() {
  step="releasing the snapshot (ReleaseSnapshot)"
  ctl release-snapshot --wait 10 || kasho_die "ReleaseSnapshot failed: $CTL_ERROR"
  say "      snapshot released"
}

if [ "$method" = dump ]; then
  step="dumping the source with pg_dump"
  say "[3/5] Dumping the source under the snapshot (pg_dump)"
  dump="$tmp/dump.sql"
  (umask 077 && : >"$dump")
  begun="$(now_ms)"
  # Kasho's own objects stay out: the DDL log is the source's business, and publications and subscriptions
  # belong to that server. Large objects are not replicated by logical decoding, so the copy cannot keep them
  # current either. The password travels in PGPASSWORD, never on the command line.
  (
    export_password
    export PGAPPNAME=kasho-bootstrap
    exec "$pg_dump" --dbname="$source_url" --snapshot="$snapshot" --no-owner --no-privileges \
      --no-publications --no-subscriptions --no-blobs \
      --exclude-table=public.kasho_ddl_log --exclude-table=public.kasho_ddl_log_id_seq \
      --verbose --file="$dump" 2>"$tmp/pg_dump.log"
  ) &
  child=$!
  last_report="$begun"
  while kill -0 "$child" 2>/dev/null; do
    sleep 0.5
    now="$(now_ms)"
    if [ $((now - last_report)) -ge 5000 ]; then
      last_report="$now"
      tables="$(grep -c 'dumping contents of table' "$tmp/pg_dump.log" || true)"
      say "      $tables tables so far, $(size_and_rate "$(stat -c %s "$dump")" $((now - begun)))"
    fi
  done
  dump_status=0
  wait "$child" || dump_status=$?
  child=''
  if [ "$dump_status" -ne 0 ]; then
    kasho_error "pg_dump failed (exit code $dump_status):"
    # Without --verbose's progress lines; when nothing else is there, its last lines tell where it stopped.
    messages="$(grep -E 'pg_dump: (error|detail|hint|warning)|FATAL|ERROR|DETAIL|HINT' "$tmp/pg_dump.log" || tail -n 10 "$tmp/pg_dump.log")"
    printf '%s\n' "$(kasho_mask "$messages")" | sed 's/^/  /' >&2
    if grep -q 'version mismatch' "$tmp/pg_dump.log"; then
      echo "  pg_dump must be of the source's major version or newer: install that client or set PG_DUMP." >&2
    fi
    exit 1
  fi
  elapsed=$(($(now_ms) - begun))
  tables="$(grep -c 'dumping contents of table' "$tmp/pg_dump.log" || true)"
  say "      dump complete: $tables tables, $(size_and_rate "$(stat -c %s "$dump")" "$elapsed")"
  # pg_dump imported the snapshot when it started; holding it longer only holds back vacuum on the source.
  release_snapshot

  step="converting the dump into change events (pg-bootstrap-sync)"
  say "[4/5] Loading the dump into pg-change-stream's buffer (pg-bootstrap-sync)"
  begun="$(now_ms)"
  # KV_URL reaches pg-bootstrap-sync through its environment (its --redis-url default), so that a Redis password
  # stays off the command line.
  run_child "$sync" --dump-file="$dump" || kasho_die "pg-bootstrap-sync failed (see its output above)"
  elapsed=$(($(now_ms) - begun))
  rm -f "$dump"
else
  step="reading the source under the snapshot (pg-bootstrap-sync --snapshot)"
  say "[3/5] Reading the source under the snapshot (pg-bootstrap-sync, direct)"
  begun="$(now_ms)"
  # The URL carries no password: PGPASSWORD does, in this child's environment only.
  sync_direct() {
    export_password
    exec "$sync" --source-url="$source_url" --snapshot="$snapshot"
  }
  run_child sync_direct || kasho_die "pg-bootstrap-sync failed (see its output above)"
  elapsed=$(($(now_ms) - begun))
  release_snapshot
  say "[4/5] Loaded into pg-change-stream's buffer"
fi

step="checking the loaded snapshot"
ctl status --wait 10 || kasho_die "could not reach pg-change-stream at $address: $CTL_ERROR"
read_json
[ "${J[state]:-}" = ACCUMULATING ] ||
  kasho_die "pg-change-stream left ACCUMULATING during the load (now ${J[state]:-unknown}): ${J[lastError]:-no error reported}"
rows="${J[bootstrapChanges]:-0}"
say "      $rows snapshot events in the buffer after $(awk -v ms="$elapsed" 'BEGIN { printf "%.1f", ms / 1000 }') s; ${J[accumulatedChanges]:-0} changes accumulated meanwhile"

# ---- 5. CompleteBootstrap ------------------------------------------------------------------------------------------

complete=0
step="waiting for the go-ahead to stream (the load is complete: '$ctl --address $address complete-bootstrap' starts streaming)"
if [ "${WAIT_FOR_BOOTSTRAP:-}" = true ]; then
  complete=1
elif [ -t 0 ]; then
  read -r -p "Complete bootstrap and start streaming? [y/N] " answer || answer=''
  case "$answer" in y | Y | yes | YES | Yes) complete=1 ;; esac
fi
if [ "$complete" -eq 0 ]; then
  step=''
  cat <<EOF
The snapshot is loaded; pg-change-stream keeps accumulating changes (and its slot keeps WAL on the source) until
streaming starts. Start it when ready with:
  grpcurl -plaintext $address kasho.ChangeStreamService/CompleteBootstrap
or
  $ctl --address $address complete-bootstrap
EOF
  exit 0
fi

step="completing the bootstrap (CompleteBootstrap)"
say "[5/5] CompleteBootstrap"
ctl complete-bootstrap --wait 10 || kasho_die "CompleteBootstrap failed: $CTL_ERROR"
read_json
step=''
say "      ${J[state]:-STREAMING}: ${J[bootstrapChanges]:-0} snapshot events, then ${J[accumulatedChanges]:-0} accumulated changes, then live changes go to pg-translicator"
say "Bootstrap complete."
