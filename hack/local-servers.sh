#!/usr/bin/env bash
# Throwaway servers for tests and local runs, all inside one directory and on free loopback ports: a source
# PostgreSQL (wal_level=logical, replication slots), a target PostgreSQL and Redis (append-only file on), from
# Debian's packages, installed when missing. hack/testing/local-servers.ts drives this script, so this is the one
# place that knows how the servers are made, started and stopped.
#
#   hack/local-servers.sh start DIR [--source] [--target] [--redis] [--redis-password PASSWORD]
#       Creates the servers that DIR does not have yet, starts those that are not running and waits until they
#       accept connections, then writes DIR/env. No server flag means all three. A server keeps its port across
#       stop/start. --redis-password applies when Redis is created (it sets requirepass).
#   hack/local-servers.sh stop DIR [--source] [--target] [--redis] [--clean]
#       Stops the servers (PostgreSQL: fast shutdown; Redis: SIGTERM, which flushes the append-only file) and
#       kills whatever of them is left. No server flag means all. --clean stops all and removes DIR.
#   hack/local-servers.sh kill DIR [--source] [--target] [--redis]
#       SIGKILLs the servers with all their processes, as a crash would (crash-recovery tests).
#   hack/local-servers.sh env DIR
#       Prints DIR/env: `export NAME='value'` lines with the deployment guide's variable names
#       (PRIMARY_DATABASE_URL, REPLICA_DATABASE_URL, KV_URL, *_SU_USER, *_SU_PASSWORD, *_SU_URL, ports).
#
# PostgreSQL refuses to run as root: as root, the clusters belong to and run as the `postgres` system user
# (Debian's package creates it) or, when that does not exist, a system user `kasho` created here. Otherwise
# everything runs as the calling user. The newest /usr/lib/postgresql/*/bin is used unless KASHO_PG_BIN_DIR names
# another directory of PostgreSQL binaries.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
marker=.kasho-local-servers
db_name=app
su_user=postgres

die() {
  echo "local-servers: error: $*" >&2
  exit 1
}

usage() {
  sed -n '7,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# ---- arguments ----------------------------------------------------------------------------------------------------

[ $# -ge 2 ] || usage
cmd="$1"
dir_arg="$2"
shift 2
want_source=0 want_target=0 want_redis=0 clean=0 redis_password='' redis_password_set=0
while [ $# -gt 0 ]; do
  case "$1" in
    --source) want_source=1 ;;
    --target) want_target=1 ;;
    --redis) want_redis=1 ;;
    --clean) clean=1 ;;
    --redis-password)
      [ $# -ge 2 ] || die "--redis-password needs a value"
      redis_password="$2" redis_password_set=1
      shift
      ;;
    --redis-password=*) redis_password="${1#*=}" redis_password_set=1 ;;
    *) die "unknown option '$1'" ;;
  esac
  shift
done
if [ $((want_source + want_target + want_redis)) -eq 0 ] || [ "$clean" -eq 1 ]; then
  want_source=1 want_target=1 want_redis=1
fi
case "$cmd" in
  start | stop | kill | env) ;;
  *) usage ;;
esac
if [ "$redis_password_set" -eq 1 ] && [ -z "$redis_password" ]; then
  die "--redis-password must not be empty (leave it out for a Redis without password)"
fi

# ---- helpers ------------------------------------------------------------------------------------------------------

random_hex() {
  od -An -tx1 -N16 /dev/urandom | tr -d ' \n'
}

# Single-quoted for the shell.
shell_quote() {
  printf "'%s'" "${1//\'/\'\\\'\'}"
}

# Percent-encodes everything but RFC 3986's unreserved characters, for credentials inside URLs.
url_encode() {
  local s="$1" out='' c i
  for ((i = 0; i < ${#s}; i++)); do
    c="${s:i:1}"
    case "$c" in
      [A-Za-z0-9._~-]) out+="$c" ;;
      *) out+="$(printf '%%%02X' "'$c")" ;;
    esac
  done
  printf '%s' "$out"
}

# True when PID is a live process. Zombies count as gone: the init process of some containers never reaps them. The
# command name in /proc/PID/stat may contain spaces and parentheses, so the state is read after the last ')'.
alive() {
  local line
  read -r line 2>/dev/null <"/proc/$1/stat" || return 1
  line="${line##*) }"
  [ "${line%% *}" != Z ]
}

cmdline_has() {
  tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"
}

# Live processes working in directory $1. PostgreSQL's processes all work in their data directory and Redis in its
# `dir`, and unlike pids or process groups (every PostgreSQL child is its own session leader) that survives the
# parent's death. Plain bash tests, no forks: this reads every process.
pids_in() {
  local p
  for p in /proc/[0-9]*; do
    if [ "$p/cwd" -ef "$1" ] 2>/dev/null && alive "${p#/proc/}"; then echo "${p#/proc/}"; fi
  done
}

# SIGKILLs every process working in directory $1 and waits until they are gone.
kill_in() {
  local pids
  pids="$(pids_in "$1")"
  [ -n "$pids" ] || return 0
  # shellcheck disable=SC2086
  kill -9 $pids 2>/dev/null || true
  # shellcheck disable=SC2086
  wait_gone 100 $pids || die "processes $(echo $pids) in $1 survived SIGKILL"
}

# Waits up to $1 tenths of a second until none of the remaining arguments is alive.
wait_gone() {
  local tenths="$1" pid any
  shift
  while :; do
    any=0
    for pid in "$@"; do alive "$pid" && any=1; done
    [ "$any" -eq 0 ] && return 0
    [ "$tenths" -le 0 ] && return 1
    tenths=$((tenths - 1))
    sleep 0.1
  done
}

# Free TCP port on 127.0.0.1, below the kernel's ephemeral range so that outgoing connections cannot take it
# between now and the server's bind. Two harnesses can still pick the same port: the caller retries on a failed bind.
pick_port() {
  local lo hi p attempt
  read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
  if [ "$lo" -gt 12000 ]; then hi=$((lo - 1)) lo=10000; else lo=$((hi + 1)) hi=65535; fi
  [ "$hi" -gt "$lo" ] || { lo=20000 hi=30000; }
  for attempt in $(seq 1 100); do
    p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  die "found no free port on 127.0.0.1 between $lo and $hi"
}

# ---- directory and users ------------------------------------------------------------------------------------------

[ "$cmd" = start ] || [ -e "$dir_arg" ] || { [ "$cmd" = env ] && die "$dir_arg does not exist"; exit 0; }
mkdir -p "$dir_arg"
dir="$(cd "$dir_arg" && pwd -P)"
state="$dir/state"

if [ "$cmd" = start ] && [ ! -e "$dir/$marker" ]; then
  [ -z "$(ls -A "$dir")" ] || die "$dir is not empty and was not made by this script; give an empty or new directory"
  touch "$dir/$marker"
  mkdir -m 700 "$state"
elif [ ! -e "$dir/$marker" ]; then
  die "$dir was not made by hack/local-servers.sh (no $marker); not touching it"
fi

if [ "$cmd" = env ]; then
  [ -f "$dir/env" ] || die "$dir/env does not exist yet; run: $0 start $dir"
  cat "$dir/env"
  exit 0
fi

# Serializes commands on one DIR (the test helper's exit hook may run while a command is in flight). Server
# processes are started with this descriptor closed, or they would hold the lock for their whole life.
exec 9>>"$dir/.lock"
flock -w 300 9 || die "another hack/local-servers.sh command on $dir did not finish within 300 s"

if [ "$cmd" = start ]; then
  bash "$here/ensure-system-deps.sh" >&2
fi

pg_bin="${KASHO_PG_BIN_DIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)}"
if [ "$cmd" = start ] && { [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; }; then
  die "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin; run hack/ensure-system-deps.sh"
fi

# The user PostgreSQL runs as, chosen once per DIR.
if [ -f "$state/pg-user" ]; then
  pg_user="$(cat "$state/pg-user")"
elif [ "$(id -u)" -eq 0 ]; then
  if id -u postgres >/dev/null 2>&1; then
    pg_user=postgres
  else
    id -u kasho >/dev/null 2>&1 ||
      useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin kasho ||
      die "could not create the system user 'kasho' to run PostgreSQL as (PostgreSQL refuses to run as root)"
    pg_user=kasho
  fi
  echo "$pg_user" >"$state/pg-user"
else
  pg_user="$(id -un)"
  echo "$pg_user" >"$state/pg-user"
fi
pg_uid="$(id -u "$pg_user")"

# Runs a command as the PostgreSQL user, from DIR (the caller's working directory may be closed to that user).
as_pg() {
  if [ "$(id -u)" -eq 0 ] && [ "$pg_uid" -ne 0 ]; then
    (cd "$dir" && runuser -u "$pg_user" -- "$@")
  else
    (cd "$dir" && "$@")
  fi
}

# ---- PostgreSQL ---------------------------------------------------------------------------------------------------

# Prints the postmaster's pid when the cluster $1 runs.
pg_pid() {
  local data="$dir/$1/data" pid
  [ -f "$data/postmaster.pid" ] || return 1
  pid="$(head -n 1 "$data/postmaster.pid" 2>/dev/null)" || return 1
  [ -n "$pid" ] && alive "$pid" && cmdline_has "$pid" "$data" && echo "$pid"
}

pg_write_conf() {
  local name="$1" port="$2" conf="$dir/$1/data/kasho.conf"
  {
    echo "# Written by hack/local-servers.sh: a throwaway $name server on loopback. It keeps commits through a killed"
    echo "# server, not through a crashed machine."
    echo "listen_addresses = '127.0.0.1'"
    echo "port = $port"
    echo "unix_socket_directories = ''"
    echo "password_encryption = 'scram-sha-256'"
    echo "fsync = off"
    # Committed transactions must survive a SIGKILLed server (crash tests). With fsync off a commit costs one
    # write() and no flush, so synchronous_commit=off measured no faster (pgbench, 4 clients: ~4000 tps either way).
    echo "synchronous_commit = on"
    echo "full_page_writes = off"
    echo "max_wal_senders = 10"
    echo "max_replication_slots = 10"
    if [ "$name" = source ]; then echo "wal_level = logical"; else echo "wal_level = replica"; fi
    echo "log_line_prefix = '%m [%p] %q%u@%d '"
  } >"$conf"
  [ "$pg_uid" -eq "$(id -u)" ] || chown "$pg_user:" "$conf"
}

pg_create() {
  local name="$1" cdir="$dir/$1" password locale=C
  password="$(random_hex)"
  mkdir -p -m 700 "$cdir"
  [ "$pg_uid" -eq "$(id -u)" ] || chown "$pg_user:" "$cdir"
  as_pg test -w "$cdir" ||
    die "$pg_user cannot write to $cdir (is a parent of $dir closed to $pg_user?); use a directory under /tmp"
  # initdb reads the password from a file, which the PostgreSQL user must be able to open.
  (umask 077 && printf '%s\n' "$password" >"$cdir/pwfile")
  [ "$pg_uid" -eq "$(id -u)" ] || chown "$pg_user:" "$cdir/pwfile"
  if locale -a 2>/dev/null | grep -qix 'c\.utf-\{0,1\}8'; then locale=C.UTF-8; fi
  if ! as_pg "$pg_bin/initdb" -D "$cdir/data" -U "$su_user" --pwfile="$cdir/pwfile" -A scram-sha-256 \
    -E UTF8 --locale="$locale" --no-sync >"$dir/$name-initdb.log" 2>&1; then
    cat "$dir/$name-initdb.log" >&2
    die "initdb of the $name cluster failed"
  fi
  rm -f "$cdir/pwfile" "$dir/$name-initdb.log"
  {
    echo "# Written by hack/local-servers.sh: TCP on loopback with a password (SCRAM), so URLs carry credentials."
    echo "host all all 127.0.0.1/32 scram-sha-256"
    echo "host replication all 127.0.0.1/32 scram-sha-256"
  } >"$cdir/data/pg_hba.conf"
  echo "include 'kasho.conf'" >>"$cdir/data/postgresql.conf"
  (umask 077 && echo "$password" >"$state/$name.password")
}

pg_start() {
  local name="$1" cdir="$dir/$1" port='' fixed=0 attempt log_size password
  [ -d "$cdir/data" ] || pg_create "$name"
  pg_pid "$name" >/dev/null && return 0
  password="$(cat "$state/$name.password")"
  if [ -f "$state/$name.port" ]; then port="$(cat "$state/$name.port")" fixed=1; fi
  for attempt in 1 2 3 4 5; do
    if [ "$fixed" -eq 0 ]; then port="$(pick_port)"; fi
    pg_write_conf "$name" "$port"
    log_size="$(stat -c %s "$cdir/postgres.log" 2>/dev/null || echo 0)"
    if as_pg "$pg_bin/pg_ctl" start -D "$cdir/data" -l "$cdir/postgres.log" -w -t 120 -s 9>&- >/dev/null; then
      break
    fi
    if [ "$fixed" -eq 0 ] && [ "$attempt" -lt 5 ] &&
      tail -c +$((log_size + 1)) "$cdir/postgres.log" | grep -q 'Address already in use'; then
      continue
    fi
    tail -c +$((log_size + 1)) "$cdir/postgres.log" | tail -n 20 >&2
    die "the $name PostgreSQL did not start (log: $cdir/postgres.log)"
  done
  echo "$port" >"$state/$name.port"
  pg_pid "$name" >/dev/null || die "the $name PostgreSQL exited right after starting (log: $cdir/postgres.log)"
  PGCONNECT_TIMEOUT=5 "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$port" -t 60 ||
    die "the $name PostgreSQL does not accept connections on 127.0.0.1:$port (log: $cdir/postgres.log)"
  if [ ! -f "$state/$name.database" ]; then
    PGPASSWORD="$password" "$pg_bin/createdb" -h 127.0.0.1 -p "$port" -U "$su_user" "$db_name" ||
      die "could not create the database $db_name in the $name PostgreSQL"
    echo "$db_name" >"$state/$name.database"
  fi
}

# Kills what is left of a cluster and drops a stale postmaster.pid, which a zombie postmaster would otherwise keep
# "in use" for the next start (the init process of some containers never reaps).
pg_sweep() {
  local name="$1"
  kill_in "$dir/$name/data"
  if [ -f "$dir/$name/data/postmaster.pid" ] && ! pg_pid "$name" >/dev/null; then
    rm -f "$dir/$name/data/postmaster.pid"
  fi
}

pg_stop() {
  local name="$1"
  [ -d "$dir/$name/data" ] || return 0
  if pg_pid "$name" >/dev/null; then
    as_pg "$pg_bin/pg_ctl" stop -D "$dir/$name/data" -m fast -w -t 60 -s >/dev/null 2>&1 ||
      as_pg "$pg_bin/pg_ctl" stop -D "$dir/$name/data" -m immediate -w -t 30 -s >/dev/null 2>&1 || true
  fi
  pg_sweep "$name"
}

pg_kill() {
  local name="$1" pid
  [ -d "$dir/$name/data" ] || return 0
  # A stopped postmaster cannot fork new children while its processes are being killed.
  if pid="$(pg_pid "$name")"; then kill -STOP "$pid" 2>/dev/null || true; fi
  pg_sweep "$name"
}

# ---- Redis --------------------------------------------------------------------------------------------------------

redis_pid() {
  local pid port
  [ -f "$state/redis.pid" ] && [ -f "$state/redis.port" ] || return 1
  pid="$(cat "$state/redis.pid")" port="$(cat "$state/redis.port")"
  alive "$pid" && cmdline_has "$pid" "redis-server" && cmdline_has "$pid" ":$port" && echo "$pid"
}

redis_write_conf() {
  local port="$1" rdir="$dir/redis" password
  password="$(cat "$state/redis.password")"
  (
    umask 077
    {
      echo "# Written by hack/local-servers.sh: a throwaway Redis on loopback."
      echo "bind 127.0.0.1"
      echo "port $port"
      echo "protected-mode yes"
      echo "daemonize yes"
      echo "pidfile $rdir/redis.pid"
      echo "logfile $rdir/redis.log"
      echo "dir $rdir"
      # Writes reach the append-only file before Redis answers, so a SIGKILLed Redis keeps them; only a machine
      # crash can lose the last second.
      echo "appendonly yes"
      echo "appendfsync everysec"
      echo 'save ""'
      if [ -n "$password" ]; then
        password="${password//\\/\\\\}"
        echo "requirepass \"${password//\"/\\\"}\""
      fi
    } >"$rdir/redis.conf"
  )
}

redis_ping() {
  local password
  password="$(cat "$state/redis.password")"
  if [ -n "$password" ]; then
    REDISCLI_AUTH="$password" redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null
  else
    redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null
  fi
}

redis_start() {
  local rdir="$dir/redis" port='' fixed=0 attempt log_size tenths pid started
  if [ ! -d "$rdir" ]; then
    mkdir -m 700 "$rdir"
    (umask 077 && printf '%s' "$redis_password" >"$state/redis.password")
  fi
  redis_pid >/dev/null && return 0
  if [ -f "$state/redis.port" ]; then port="$(cat "$state/redis.port")" fixed=1; fi
  for attempt in 1 2 3 4 5; do
    if [ "$fixed" -eq 0 ]; then port="$(pick_port)"; fi
    redis_write_conf "$port"
    log_size="$(stat -c %s "$rdir/redis.log" 2>/dev/null || echo 0)"
    rm -f "$rdir/redis.pid"
    redis-server "$rdir/redis.conf" 9>&- >/dev/null 2>&1 || true
    started=0
    for tenths in $(seq 1 300); do
      if [ "$(redis_ping "$port")" = PONG ]; then
        started=1
        break
      fi
      if tail -c +$((log_size + 1)) "$rdir/redis.log" 2>/dev/null | grep -q -e 'Could not create server TCP' -e '# Fatal'; then
        break
      fi
      sleep 0.1
    done
    [ "$started" -eq 1 ] && break
    if [ "$fixed" -eq 0 ] && [ "$attempt" -lt 5 ] &&
      tail -c +$((log_size + 1)) "$rdir/redis.log" 2>/dev/null | grep -q 'Address already in use'; then
      continue
    fi
    tail -c +$((log_size + 1)) "$rdir/redis.log" 2>/dev/null | tail -n 20 >&2 || true
    die "Redis did not start on 127.0.0.1:$port (log: $rdir/redis.log)"
  done
  echo "$port" >"$state/redis.port"
  pid="$(cat "$rdir/redis.pid" 2>/dev/null)" || die "Redis wrote no pid file ($rdir/redis.pid)"
  echo "$pid" >"$state/redis.pid"
  redis_pid >/dev/null || die "Redis answers on 127.0.0.1:$port but its pid file does not name it"
}

redis_stop() {
  local pid
  [ -d "$dir/redis" ] || return 0
  if pid="$(redis_pid)"; then
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone 600 "$pid" || true
  fi
  kill_in "$dir/redis"
}

redis_kill() {
  [ -d "$dir/redis" ] || return 0
  kill_in "$dir/redis"
  rm -f "$dir/redis/redis.pid"
}

# ---- env file -----------------------------------------------------------------------------------------------------

write_env() {
  local tmp="$dir/env.tmp" prefix name port password url kv_password
  (
    umask 077
    {
      echo "# Written by hack/local-servers.sh for the servers in $dir."
      echo "export LOCAL_SERVERS_DIR=$(shell_quote "$dir")"
      echo "export PG_BIN_DIR=$(shell_quote "$pg_bin")"
      for name in source target; do
        [ -f "$state/$name.port" ] || continue
        if [ "$name" = source ]; then prefix=PRIMARY_DATABASE; else prefix=REPLICA_DATABASE; fi
        port="$(cat "$state/$name.port")" password="$(cat "$state/$name.password")"
        url="postgresql://$su_user:$(url_encode "$password")@127.0.0.1:$port/$db_name"
        # Only the superuser exists so far; the application URL becomes the kasho role once the preparation
        # script creates it.
        echo "export ${prefix}_URL=$(shell_quote "$url")"
        echo "export ${prefix}_SU_URL=$(shell_quote "$url")"
        echo "export ${prefix}_SU_USER=$(shell_quote "$su_user")"
        echo "export ${prefix}_SU_PASSWORD=$(shell_quote "$password")"
        echo "export ${prefix}_HOST=127.0.0.1"
        echo "export ${prefix}_PORT=$port"
        echo "export ${prefix}_NAME=$(shell_quote "$db_name")"
      done
      if [ -f "$state/redis.port" ]; then
        port="$(cat "$state/redis.port")" kv_password="$(cat "$state/redis.password")"
        if [ -n "$kv_password" ]; then
          echo "export KV_URL=$(shell_quote "redis://:$(url_encode "$kv_password")@127.0.0.1:$port")"
          echo "export KV_PASSWORD=$(shell_quote "$kv_password")"
        else
          echo "export KV_URL=$(shell_quote "redis://127.0.0.1:$port")"
        fi
        echo "export KV_PORT=$port"
      fi
    } >"$tmp"
  )
  mv -f "$tmp" "$dir/env"
}

# ---- commands -----------------------------------------------------------------------------------------------------

case "$cmd" in
  start)
    if [ "$(id -u)" -eq 0 ] && [ "$pg_uid" -ne 0 ] && [ $((want_source + want_target)) -gt 0 ]; then
      # DIR stays the caller's; the PostgreSQL user only needs to pass through it to its own subdirectories.
      chmod o+x "$dir"
    fi
    # In parallel: initdb dominates and the two clusters do not depend on each other.
    jobs=()
    if [ "$want_source" -eq 1 ]; then pg_start source & jobs+=($!); fi
    if [ "$want_target" -eq 1 ]; then pg_start target & jobs+=($!); fi
    if [ "$want_redis" -eq 1 ]; then redis_start & jobs+=($!); fi
    status=0
    for job in "${jobs[@]}"; do wait "$job" || status=1; done
    [ "$status" -eq 0 ] || die "not every server in $dir started (see above)"
    write_env
    ;;
  stop | kill)
    status=0
    for name in source target; do
      [ "$name" = source ] && [ "$want_source" -eq 0 ] && continue
      [ "$name" = target ] && [ "$want_target" -eq 0 ] && continue
      ("pg_$cmd" "$name") || status=1
    done
    if [ "$want_redis" -eq 1 ]; then ("redis_$cmd") || status=1; fi
    [ "$status" -eq 0 ] || die "could not $cmd every server in $dir"
    if [ "$clean" -eq 1 ]; then
      rm -rf "$dir"
    fi
    ;;
esac
