#!/usr/bin/env bash
# Installs the Debian packages the tests and the demo need when they are missing: PostgreSQL (server, client,
# pg_dump, pgbench) and Redis. Safe to run again; does nothing when everything is there.
set -euo pipefail

missing=()
pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
[ -n "$pg_bin" ] && [ -x "$pg_bin/initdb" ] && [ -x "$pg_bin/pg_ctl" ] || missing+=(postgresql postgresql-contrib)
command -v psql >/dev/null 2>&1 && command -v pg_dump >/dev/null 2>&1 || missing+=(postgresql-client)
command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || missing+=(redis-server redis-tools)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "Installing missing system packages: ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "Error: need root or sudo to install ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
# apt's chatter (debconf warnings included) is only worth reading when something failed.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! { "${sudo_cmd[@]}" apt-get update -qq && "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "Error: could not install ${missing[*]} with apt-get (output above)" >&2
  exit 1
fi
# Debian's packages start a cluster and a redis service when an init system runs; the tests start their own.
"${sudo_cmd[@]}" sh -c 'command -v service >/dev/null && { service postgresql stop; service redis-server stop; } >/dev/null 2>&1 || true'
echo "System packages installed."
