#!/usr/bin/env bash
# Builds the pinned Kubernetes test tools (hack/versions.env) from Go modules through the module proxy:
# kube-apiserver and kubectl, etcd, helm, grpcurl. Each lands in ${KASHO_CACHE_DIR:-~/.cache/kasho}/bin/<tool>-<version>/
# and is built only when that directory has no binary yet, so a second run is a quick no-op. Go's module and build
# caches live under $KASHO_CACHE_DIR/go; nothing is written inside the repository.
# A cold build takes about 9 minutes on 2 cores and leaves about 5.5 GB in the cache (see hack/README.md).
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

log() { echo "[k8s build] $*"; }

missing_tools() {
  local tool
  for tool in "${kasho_tools[@]}"; do
    [ -x "$(kasho_tool_bin "$tool")" ] || echo "$tool"
  done
}

summary() {
  local tool out=
  for tool in "${kasho_tools[@]}"; do out+="${out:+, }$tool $(kasho_tool_version "$tool")"; done
  echo "$out"
}

mapfile -t todo < <(missing_tools)
if [ ${#todo[@]} -eq 0 ]; then
  log "up to date in $KASHO_CACHE_DIR/bin ($(summary))"
  exit 0
fi

mkdir -p "$KASHO_CACHE_DIR"
exec 9>"$KASHO_CACHE_DIR/.build.lock"
if ! flock -n 9; then
  log "another build.sh is running on $KASHO_CACHE_DIR; waiting for it"
  flock 9
  mapfile -t todo < <(missing_tools)
  if [ ${#todo[@]} -eq 0 ]; then
    log "up to date in $KASHO_CACHE_DIR/bin ($(summary))"
    exit 0
  fi
fi

if ! command -v go >/dev/null 2>&1; then
  if [ -x /usr/local/go/bin/go ]; then
    PATH="/usr/local/go/bin:$PATH"
  else
    echo "Error: Go is needed to build the Kubernetes test tools but 'go' is not on PATH nor in /usr/local/go/bin." >&2
    echo "  Install Go 1.26 or newer (kube-apiserver $KUBERNETES_VERSION needs it) and run this again." >&2
    exit 1
  fi
fi

export GOPATH="$KASHO_CACHE_DIR/go/path"
export GOMODCACHE="$KASHO_CACHE_DIR/go/mod"
export GOCACHE="$KASHO_CACHE_DIR/go/build"
# -modcacherw keeps the module cache deletable with a plain rm -rf.
GOFLAGS="$(go env GOFLAGS) -modcacherw"
export GOFLAGS
export CGO_ENABLED=0 GO111MODULE=on GOWORK=off
unset GOBIN

work="$KASHO_CACHE_DIR/tmp/build.$$"
running_pid=
cleanup() {
  if [ -n "$running_pid" ]; then kill -TERM -- "-$running_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
rm -rf "$work"
mkdir -p "$work/out"

# Runs one step in the background and reports every 30 s, so that a long cold build shows it is alive. The step
# gets a process group of its own (set -m) so that an interrupted build stops the Go compilers too.
step() {
  local label="$1"
  shift
  local begin=$SECONDS next=30 status=0
  log "$label ..."
  set -m
  "$@" </dev/null &
  running_pid=$!
  set +m
  while kill -0 "$running_pid" 2>/dev/null; do
    sleep 1
    if ((SECONDS - begin >= next)); then
      log "  $label: still running, $((SECONDS - begin))s"
      next=$((next + 30))
    fi
  done
  wait "$running_pid" || status=$?
  running_pid=
  if [ "$status" -ne 0 ]; then
    echo "Error: $label failed (exit $status) after $((SECONDS - begin))s; the Go output above says why." >&2
    exit "$status"
  fi
  log "$label: done in $((SECONDS - begin))s"
}

# Moves a finished binary into its versioned directory in one rename, so an interrupted build never looks cached.
install_tool() {
  local tool="$1" built="$2" dest
  dest="$(kasho_tool_dir "$tool")"
  rm -rf "$dest.partial"
  mkdir -p "$dest.partial"
  mv "$built" "$dest.partial/$tool"
  rm -rf "$dest"
  mv "$dest.partial" "$dest"
  log "installed $dest/$tool ($(du -h "$dest/$tool" | cut -f1)): $(version_of "$tool")"
}

version_of() {
  local bin
  bin="$(kasho_tool_bin "$1")"
  case "$1" in
    kube-apiserver) "$bin" --version ;;
    kubectl) "$bin" version --client 2>/dev/null | head -n 1 ;;
    etcd) "$bin" --version | head -n 1 ;;
    helm) "$bin" version --short ;;
    grpcurl) "$bin" --version 2>&1 ;;
  esac
}

gomod_of() {
  go mod download -json "$1" | sed -nE 's/^[[:space:]]*"GoMod": "(.*)",?$/\1/p'
}

needs() {
  local tool
  for tool in "${todo[@]}"; do
    if [ "$tool" = "$1" ]; then return 0; fi
  done
  return 1
}

# k8s.io/kubernetes replaces its staging modules (k8s.io/api, k8s.io/client-go, ...) with directories of its own
# repository, which a module download does not have; a wrapper module replaces them with their published versions
# (v0.<minor>.<patch> for v1.<minor>.<patch>).
kubernetes_wrapper() {
  local dir="$1" gomod staging_version other
  staging_version="v0.${KUBERNETES_VERSION#v1.}"
  mkdir -p "$dir"
  cd "$dir"
  gomod="$(gomod_of "k8s.io/kubernetes@$KUBERNETES_VERSION")"
  other="$(grep -E '=>' "$gomod" | grep -vE '=>[[:space:]]+\./staging/' || true)"
  if [ -n "$other" ]; then
    echo "Error: k8s.io/kubernetes $KUBERNETES_VERSION has replace directives build.sh does not handle:" >&2
    echo "$other" >&2
    return 1
  fi
  local replaces=()
  while read -r module; do
    replaces+=("-replace=$module=$module@$staging_version")
  done < <(sed -nE 's#^[[:space:]]*(replace[[:space:]]+)?(k8s\.io/[^[:space:]]+)[[:space:]]+=>[[:space:]]+\./staging/.*#\2#p' "$gomod")
  go mod init kasho.local/k8s-test-tools 2>/dev/null
  go mod edit -require="k8s.io/kubernetes@$KUBERNETES_VERSION" "${replaces[@]}"
  cat >tools.go <<'GO'
//go:build tools

// Package tools names the commands build.sh compiles, so that go mod tidy keeps their dependencies.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  log "  kubernetes $KUBERNETES_VERSION: ${#replaces[@]} staging modules pinned to $staging_version"
  go mod tidy
}

kubernetes_build() {
  local dir="$1" minor pkg ldflags="-s -w" pkgs=()
  minor="${KUBERNETES_VERSION#v1.}"
  minor="${minor%%.*}"
  # Without these the binaries report a placeholder version (and kubectl's version skew warnings are wrong).
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean"
  done
  if needs kube-apiserver; then pkgs+=(k8s.io/kubernetes/cmd/kube-apiserver); fi
  if needs kubectl; then pkgs+=(k8s.io/kubernetes/cmd/kubectl); fi
  cd "$dir"
  go build -trimpath -ldflags "$ldflags" -o "$work/out/" "${pkgs[@]}"
}

etcd_wrapper() {
  local dir="$1"
  mkdir -p "$dir"
  cd "$dir"
  go mod init kasho.local/etcd 2>/dev/null
  go mod edit -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  cat >tools.go <<'GO'
//go:build tools

// Package tools names the command build.sh compiles, so that go mod tidy keeps its dependencies.
package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  go mod tidy
}

etcd_build() {
  cd "$1"
  go build -trimpath -ldflags "-s -w" -o "$work/out/etcd" go.etcd.io/etcd/server/v3
}

helm_build() {
  local module="helm.sh/helm/${HELM_VERSION%%.*}" gomod minor ldflags
  cd "$work"
  gomod="$(gomod_of "$module@$HELM_VERSION")"
  # helm's Makefile derives the Kubernetes version that `helm template` and `helm lint` assume from its client-go.
  minor="$(sed -nE 's#^[[:space:]]*k8s\.io/client-go v0\.([0-9]+)\..*#\1#p' "$gomod" | head -n 1)"
  ldflags="-s -w -X $module/internal/version.version=$HELM_VERSION -X $module/internal/version.gitTreeState=clean"
  ldflags+=" -X $module/pkg/lint/rules.k8sVersionMajor=1 -X $module/pkg/lint/rules.k8sVersionMinor=$minor"
  ldflags+=" -X $module/pkg/chartutil.k8sVersionMajor=1 -X $module/pkg/chartutil.k8sVersionMinor=$minor"
  GOBIN="$work/out" go install -trimpath -ldflags "$ldflags" "$module/cmd/helm@$HELM_VERSION"
}

grpcurl_build() {
  cd "$work"
  GOBIN="$work/out" go install -trimpath -ldflags "-s -w -X main.version=$GRPCURL_VERSION" \
    "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION"
}

started=$SECONDS
log "building ${todo[*]} into $KASHO_CACHE_DIR/bin with $(go version | cut -d' ' -f3) (a cold build takes ~9 min on 2 cores)"

if needs kube-apiserver || needs kubectl; then
  src="$KASHO_CACHE_DIR/src/kubernetes-$KUBERNETES_VERSION"
  rm -rf "$src"
  step "kubernetes $KUBERNETES_VERSION: resolve modules" kubernetes_wrapper "$src"
  step "kubernetes $KUBERNETES_VERSION: compile $(needs kube-apiserver && echo 'kube-apiserver ')$(needs kubectl && echo kubectl)" \
    kubernetes_build "$src"
  if needs kube-apiserver; then install_tool kube-apiserver "$work/out/kube-apiserver"; fi
  if needs kubectl; then install_tool kubectl "$work/out/kubectl"; fi
fi

if needs etcd; then
  src="$KASHO_CACHE_DIR/src/etcd-$ETCD_VERSION"
  rm -rf "$src"
  step "etcd $ETCD_VERSION: resolve modules" etcd_wrapper "$src"
  step "etcd $ETCD_VERSION: compile" etcd_build "$src"
  install_tool etcd "$work/out/etcd"
fi

if needs helm; then
  step "helm $HELM_VERSION: download and compile" helm_build
  install_tool helm "$work/out/helm"
fi

if needs grpcurl; then
  step "grpcurl $GRPCURL_VERSION: download and compile" grpcurl_build
  install_tool grpcurl "$work/out/grpcurl"
fi

elapsed=$((SECONDS - started))
log "built ${todo[*]} in $((elapsed / 60))m$((elapsed % 60))s; cache $KASHO_CACHE_DIR uses $(du -sh "$KASHO_CACHE_DIR" | cut -f1)"
