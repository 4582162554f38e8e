#!/usr/bin/env bash
# The Docker engine for the image builds, the Docker Compose test and kind, on machines without systemd:
#   hack/docker/engine.sh start    installs Debian's docker.io (+ runc, CNI plugins, iptables, debootstrap,
#                                  docker-compose) when missing, starts dockerd in the background, waits for it
#   hack/docker/engine.sh stop     stops the dockerd that start started (its containers stop with it)
#   hack/docker/engine.sh status   says whether an engine answers; exit code 0 when it does, 3 when not
# An engine that already answers (a desktop's or a CI service's) is used as it is and never stopped here.
# dockerd's state lives in ${KASHO_CACHE_DIR:-~/.cache/kasho}/docker (data-root/ holds images, containers and
# volumes; dockerd.log its log), so images survive across sessions; it listens on the default socket, so `docker`
# and `docker-compose` need no settings. Where the capability bounding set lacks CAP_SYS_RESOURCE, the default
# runtime is runc-wrapper.sh, which privileged containers (kind's node) need here.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kasho_log_prefix=engine
# shellcheck source=lib.sh
. "$here/lib.sh"

pid_file="$kasho_docker_dir/dockerd.pid"
log_file="$kasho_docker_dir/dockerd.log"
config_file="$kasho_docker_dir/daemon.json"
wrapper="$kasho_docker_dir/bin/kasho-runc"
runtime_name=kasho-runc

usage() {
  awk 'NR == 1 { next } /^# shellcheck/ || !/^#/ { exit } { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"
}

our_pid() {
  local pid
  [ -f "$pid_file" ] || return 1
  pid="$(cat "$pid_file" 2>/dev/null)"
  alive "$pid" && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] || return 1
  echo "$pid"
}

# True while the process runs (a killed dockerd may linger as a zombie until its parent reaps it).
alive() {
  local state
  [ -n "$1" ] && state="$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" && [ -n "$state" ] && [ "$state" != Z ]
}

describe_engine() {
  docker info --format 'server {{.ServerVersion}}, storage {{.Driver}}, cgroup driver {{.CgroupDriver}}, default runtime {{.DefaultRuntime}}, data {{.DockerRootDir}}' 2>/dev/null
}

# CAP_SYS_RESOURCE is capability 24.
bounding_set_lacks_sys_resource() {
  local bnd
  bnd="$(awk '/^CapBnd:/ { print $2 }' /proc/self/status)"
  [ -n "$bnd" ] && [ $((16#$bnd >> 24 & 1)) -eq 0 ]
}

install_packages() {
  local -a missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v runc >/dev/null 2>&1 || missing+=(runc)
  [ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
  command -v iptables >/dev/null 2>&1 || missing+=(iptables)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  command -v jq >/dev/null 2>&1 || missing+=(jq)
  [ ${#missing[@]} -gt 0 ] || return 0
  [ "$(id -u)" -eq 0 ] || die "installing ${missing[*]} needs root (apt-get); run this as root or install them first"
  local started=$SECONDS apt_log
  log "installing Debian packages: ${missing[*]}"
  apt_log="$(mktemp)"
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$apt_log" 2>&1; then
    cat "$apt_log" >&2
    rm -f "$apt_log"
    die "apt-get could not install ${missing[*]} (output above)"
  fi
  rm -f "$apt_log"
  log "installed in $(elapsed_since "$started")"
}

check_compose_version() {
  local version
  version="$(docker-compose version --short 2>/dev/null || true)"
  if [ "$version" != "$DOCKER_COMPOSE_VERSION" ]; then
    log "note: docker-compose is ${version:-unknown}, the pinned one is $DOCKER_COMPOSE_VERSION (hack/versions.env)"
  fi
}

write_config() {
  mkdir -p "$kasho_docker_dir/data-root" "$kasho_docker_dir/bin"
  local runtimes='{}' default_runtime=runc
  if bounding_set_lacks_sys_resource; then
    install -m 0755 "$here/runc-wrapper.sh" "$wrapper"
    runtimes="{\"$runtime_name\": {\"path\": \"$wrapper\"}}"
    default_runtime="$runtime_name"
  fi
  jq -n --arg root "$kasho_docker_dir/data-root" --arg pid "$pid_file" --arg runtime "$default_runtime" \
    --argjson runtimes "$runtimes" \
    '{"data-root": $root, pidfile: $pid, runtimes: $runtimes, "default-runtime": $runtime,
      "exec-opts": ["native.cgroupdriver=cgroupfs"], "log-level": "warn"}' >"$config_file.tmp"
  mv -f "$config_file.tmp" "$config_file"
}

start() {
  if kasho_engine_up; then
    log "running: $(describe_engine)"
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    die "no Docker engine answers, and starting dockerd needs root (this is uid $(id -u)): start Docker yourself or run this as root"
  fi
  install_packages
  check_compose_version
  local pid started=$SECONDS
  if pid="$(our_pid)"; then
    log "dockerd $pid is starting; waiting for it"
    if wait_until_up "$pid"; then
      log "running: $(describe_engine)"
      return 0
    fi
    log "dockerd $pid exited; starting another"
  fi
  write_config
  log "starting dockerd (state in $kasho_docker_dir, log in $log_file)"
  # A session of its own: dockerd outlives this script and ignores the caller's terminal signals.
  setsid dockerd --config-file "$config_file" >>"$log_file" 2>&1 </dev/null &
  pid=$!
  if ! wait_until_up "$pid"; then
    echo "---- last lines of $log_file" >&2
    tail -n 20 "$log_file" >&2
    die "dockerd exited while starting (log above)"
  fi
  log "started in $(elapsed_since "$started"): $(describe_engine)"
}

# Waits until the engine answers (status 0) or dockerd PID exits (status 1); gives up after 60 s.
wait_until_up() {
  local waited=0
  until kasho_engine_up; do
    alive "$1" || return 1
    [ "$waited" -lt 600 ] || die "dockerd $1 did not answer within 60 s (log: $log_file)"
    sleep 0.1
    waited=$((waited + 1))
  done
}

stop() {
  local pid
  if ! pid="$(our_pid)"; then
    if kasho_engine_up; then
      log "the running engine was not started by engine.sh; leaving it alone"
    else
      log "not running"
    fi
    return 0
  fi
  log "stopping dockerd $pid"
  kill -TERM "$pid"
  local waited=0
  while alive "$pid"; do
    if [ "$waited" -ge 600 ]; then
      die "dockerd $pid did not stop within 60 s"
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  log "stopped"
}

status() {
  if kasho_engine_up; then
    local pid origin='not started by engine.sh'
    if pid="$(our_pid)"; then origin="dockerd $pid, started by engine.sh"; fi
    log "running ($origin): $(describe_engine)"
    return 0
  fi
  log "not running"
  return 3
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  -h | --help) usage ;;
  *)
    usage >&2
    exit 2
    ;;
esac
