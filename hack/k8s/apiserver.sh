#!/usr/bin/env bash
# A throwaway Kubernetes API server for tests, set up the way envtest does it: etcd and kube-apiserver (the pinned
# versions built by hack/k8s/build.sh) on free loopback ports, certificates generated with openssl, an admin client
# certificate (group system:masters) in DIR/kubeconfig. Nothing runs Pods: there is no scheduler, controller manager
# or kubelet, so Deployments and Jobs are stored but never started.
#   hack/k8s/apiserver.sh start DIR      start in the background; returns once /readyz answers
#   hack/k8s/apiserver.sh stop DIR       stop what `start DIR` left running and wait until it has exited
#   hack/k8s/apiserver.sh run DIR [--rm] start, print "ready DIR/kubeconfig" on stdout, then stop when stdin closes
#                                        or on SIGTERM/SIGINT (--rm also deletes DIR). The test helpers use this:
#                                        if the test process dies, the closed pipe still stops the servers.
# DIR holds everything (certificates, etcd data, logs etcd.log and kube-apiserver.log); several DIRs can run side
# by side.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

usage() {
  echo "Usage: hack/k8s/apiserver.sh start DIR | stop DIR | run DIR [--rm]" >&2
  exit 2
}

[ $# -ge 2 ] || usage
mode="$1"
remove_dir=0
case "$mode" in
  start | stop) [ $# -eq 2 ] || usage ;;
  run)
    [ $# -le 3 ] || usage
    if [ $# -eq 3 ]; then
      [ "$3" = --rm ] || usage
      remove_dir=1
    fi
    ;;
  *) usage ;;
esac
if [ "$mode" = stop ] && [ ! -d "$2" ]; then
  echo "[apiserver] nothing to stop: $2 does not exist" >&2
  exit 0
fi
mkdir -p "$2"
dir="$(cd "$2" && pwd)"
pki="$dir/pki"

log() { echo "[apiserver] $*" >&2; }

now_ms() {
  local t="${EPOCHREALTIME/[.,]/}"
  echo $((t / 1000))
}

seconds_since() {
  local ms=$(($(now_ms) - $1))
  printf '%d.%01ds' $((ms / 1000)) $((ms % 1000 / 100))
}

# Pids this script launched: until the fork has exec'd etcd or kube-apiserver its command line is still this script's.
launched=()

alive() {
  local state
  { read -r _ _ state _ <"/proc/$1/stat"; } 2>/dev/null || return 1
  [ "$state" != Z ]
}

# True when PID is a live etcd or kube-apiserver started for this DIR (guards against pid reuse after a crash).
ours() {
  local pid="$1" cmdline
  [ -n "$pid" ] && alive "$pid" || return 1
  [[ " ${launched[*]} " == *" $pid "* ]] && return 0
  { cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline")"; } 2>/dev/null || return 1
  [[ "$cmdline" == *"--data-dir=$dir/etcd-data "* || "$cmdline" == *"--cert-dir=$pki "* ]]
}

stop_process() {
  local name="$1" pidfile="$dir/$1.pid" pid i
  pid="$(cat "$pidfile" 2>/dev/null)" || return 0
  if ours "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do
      ours "$pid" || break
      sleep 0.1
    done
    if ours "$pid"; then
      log "$name (pid $pid) did not stop within 20s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      while ours "$pid"; do sleep 0.1; done
    fi
  fi
  rm -f "$pidfile"
}

stop_all() {
  stop_process kube-apiserver
  stop_process etcd
}

if [ "$mode" = stop ]; then
  stop_all
  log "stopped ($dir)"
  exit 0
fi

for name in kube-apiserver etcd; do
  if ours "$(cat "$dir/$name.pid" 2>/dev/null || true)"; then
    echo "Error: $name is already running for $dir; run 'hack/k8s/apiserver.sh stop $dir' first or use another DIR." >&2
    exit 1
  fi
done

etcd_bin="$(kasho_tool_bin etcd)"
apiserver_bin="$(kasho_tool_bin kube-apiserver)"
for bin in "$etcd_bin" "$apiserver_bin"; do
  if [ ! -x "$bin" ]; then
    echo "Error: $bin is missing: the pinned Kubernetes test tools are not built." >&2
    echo "  Run hack/k8s/build.sh (about 9 minutes the first time, then cached)." >&2
    exit 1
  fi
done

missing_packages=()
command -v openssl >/dev/null 2>&1 || missing_packages+=(openssl)
command -v curl >/dev/null 2>&1 || missing_packages+=(curl)
if [ ${#missing_packages[@]} -gt 0 ]; then
  log "installing missing system packages: ${missing_packages[*]}"
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
      echo "Error: need root or sudo to install ${missing_packages[*]}" >&2
      exit 1
    }
    sudo_cmd=(sudo)
  fi
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing_packages[@]}" >/dev/null
fi

# In run mode the servers are killed when this script dies, however it dies (SIGKILL: after a simultaneous SIGTERM
# each waits for the other to shut down gracefully). In start mode they outlive the script, in a session of their
# own so that the terminal's signals do not reach them.
launcher=()
if [ "$mode" = start ]; then
  launcher=(setsid)
elif setpriv --pdeathsig KILL -- true 2>/dev/null; then
  launcher=(setpriv --pdeathsig KILL --)
fi

started=0
on_exit() {
  local status=$?
  if [ "$mode" = run ] || [ "$started" -eq 0 ]; then
    stop_all
    if [ "$remove_dir" -eq 1 ]; then rm -rf "$dir"; fi
  fi
  exit "$status"
}
trap on_exit EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

begin_ms="$(now_ms)"

# Runs a command and shows its chatter (openssl's progress dots and notes) only when it fails.
quiet() {
  local output
  if ! output="$("$@" 2>&1)"; then
    echo "$output" >&2
    return 1
  fi
}

ec_key=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)

# sign NAME SUBJECT EXTENSIONS: a key and a certificate signed by the test CA.
sign() {
  local name="$1" subject="$2" extensions="$3"
  quiet openssl req -config "$pki/openssl.cnf" "${ec_key[@]}" -keyout "$pki/$name.key" -out "$pki/$name.csr" \
    -subj "$subject"
  quiet openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 3650 -extfile "$pki/openssl.cnf" -extensions "$extensions" \
    -out "$pki/$name.crt"
  rm -f "$pki/$name.csr"
}

generate_pki() {
  rm -rf "$pki"
  mkdir -p "$pki"
  chmod 700 "$pki"
  cat >"$pki/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[serving]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
EOF
  quiet openssl req -x509 -config "$pki/openssl.cnf" -extensions ca "${ec_key[@]}" -keyout "$pki/ca.key" \
    -out "$pki/ca.crt" -days 3650 -subj '/CN=kasho-test-ca'
  sign serving '/CN=kube-apiserver' serving
  sign admin '/O=system:masters/CN=kasho-admin' client
  # Service-account tokens are signed with an RSA key, as in a real cluster.
  quiet openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/sa.key"
  quiet openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
}

# A port nobody listens on, below the usual ephemeral range (32768+) so outgoing connections rarely hold it. Two
# runs can still pick the same one at the same moment; start_etcd and start_apiserver then retry with others.
taken_ports=()
free_port() {
  local port
  while :; do
    port=$((10000 + RANDOM % 22000))
    [[ " ${taken_ports[*]} " == *" $port "* ]] && continue
    if ! (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      taken_ports+=("$port")
      echo "$port"
      return
    fi
  done
}

# Waits until URL answers 2xx; fails early when the process exits.
wait_ready() {
  local pid="$1" url="$2" timeout_s="$3"
  shift 3
  local deadline=$((SECONDS + timeout_s))
  while :; do
    ours "$pid" || return 2
    if curl -fsS --max-time 2 "$@" "$url" >/dev/null 2>&1; then return 0; fi
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

etcd_port=
start_etcd() {
  local attempt peer_port pid status
  for ((attempt = 1; attempt <= 5; attempt++)); do
    etcd_port="$(free_port)"
    peer_port="$(free_port)"
    rm -rf "$dir/etcd-data"
    "${launcher[@]}" "$etcd_bin" --name=kasho-test --data-dir="$dir/etcd-data" \
      --listen-client-urls="http://127.0.0.1:$etcd_port" --advertise-client-urls="http://127.0.0.1:$etcd_port" \
      --listen-peer-urls="http://127.0.0.1:$peer_port" --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
      --initial-cluster="kasho-test=http://127.0.0.1:$peer_port" --unsafe-no-fsync=true --log-level=warn \
      </dev/null >"$dir/etcd.log" 2>&1 &
    pid=$!
    launched+=("$pid")
    echo "$pid" >"$dir/etcd.pid"
    status=0
    wait_ready "$pid" "http://127.0.0.1:$etcd_port/health" 30 || status=$?
    [ "$status" -eq 0 ] && return 0
    stop_process etcd
    if [ "$status" -eq 2 ] && grep -q 'address already in use' "$dir/etcd.log"; then
      log "etcd: port $etcd_port or $peer_port was taken meanwhile; trying others"
      continue
    fi
    break
  done
  echo "Error: etcd did not become healthy (see $dir/etcd.log); its last lines:" >&2
  tail -n 20 "$dir/etcd.log" >&2
  return 1
}

apiserver_port=
start_apiserver() {
  local attempt pid status
  for ((attempt = 1; attempt <= 5; attempt++)); do
    apiserver_port="$(free_port)"
    # --endpoint-reconciler-type=none: with a loopback advertise address the default reconciler refuses to start.
    # The ServiceAccount admission plugin is off because no controller manager creates the default accounts.
    "${launcher[@]}" "$apiserver_bin" --etcd-servers="http://127.0.0.1:$etcd_port" \
      --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$apiserver_port" \
      --endpoint-reconciler-type=none --cert-dir="$pki" \
      --tls-cert-file="$pki/serving.crt" --tls-private-key-file="$pki/serving.key" --client-ca-file="$pki/ca.crt" \
      --authorization-mode=RBAC \
      --service-account-issuer=https://kubernetes.default.svc.cluster.local \
      --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
      --service-cluster-ip-range=10.0.0.0/24 --allow-privileged=true --disable-admission-plugins=ServiceAccount \
      </dev/null >"$dir/kube-apiserver.log" 2>&1 &
    pid=$!
    launched+=("$pid")
    echo "$pid" >"$dir/kube-apiserver.pid"
    status=0
    wait_ready "$pid" "https://127.0.0.1:$apiserver_port/readyz" 120 --cacert "$pki/ca.crt" \
      --cert "$pki/admin.crt" --key "$pki/admin.key" || status=$?
    [ "$status" -eq 0 ] && return 0
    stop_process kube-apiserver
    if [ "$status" -eq 2 ] && grep -q 'address already in use' "$dir/kube-apiserver.log"; then
      log "kube-apiserver: port $apiserver_port was taken meanwhile; trying another"
      continue
    fi
    break
  done
  echo "Error: kube-apiserver did not become ready (see $dir/kube-apiserver.log); its last lines:" >&2
  tail -n 20 "$dir/kube-apiserver.log" >&2
  return 1
}

write_kubeconfig() {
  local tmp="$dir/kubeconfig.tmp"
  cat >"$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: kasho-test
    cluster:
      server: https://127.0.0.1:$apiserver_port
      certificate-authority-data: $(base64 -w0 "$pki/ca.crt")
users:
  - name: kasho-admin
    user:
      client-certificate-data: $(base64 -w0 "$pki/admin.crt")
      client-key-data: $(base64 -w0 "$pki/admin.key")
contexts:
  - name: kasho-test
    context:
      cluster: kasho-test
      user: kasho-admin
      namespace: default
current-context: kasho-test
EOF
  chmod 600 "$tmp"
  mv "$tmp" "$dir/kubeconfig"
}

rm -f "$dir/kubeconfig"
generate_pki
start_etcd
start_apiserver
write_kubeconfig
started=1
log "kube-apiserver $KUBERNETES_VERSION ready at https://127.0.0.1:$apiserver_port (etcd $ETCD_VERSION on port $etcd_port) in $(seconds_since "$begin_ms"); kubeconfig: $dir/kubeconfig"

if [ "$mode" = start ]; then
  log "stop it with: hack/k8s/apiserver.sh stop $dir"
  exit 0
fi

echo "ready $dir/kubeconfig"
# Blocks until stdin closes (the parent exited or closed the pipe) or a line arrives; the EXIT trap then stops
# both servers. A trapped signal interrupts the read too.
read -r _ || true
