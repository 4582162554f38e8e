# shellcheck shell=bash source-path=SCRIPTDIR
# Sourced by the hack/k8s scripts: the pinned versions and where each built tool lives. Keep the layout here only;
# the TypeScript helpers ask bin-path.sh rather than recomputing it.
kasho_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=../versions.env
. "$kasho_root/hack/versions.env"

# Relative paths would point elsewhere for every caller that runs from another directory.
KASHO_CACHE_DIR="$(realpath -m "${KASHO_CACHE_DIR:-${HOME:?HOME is not set; set KASHO_CACHE_DIR}/.cache/kasho}")"

kasho_tools=(kube-apiserver kubectl etcd helm grpcurl)

kasho_tool_version() {
  case "$1" in
    kube-apiserver | kubectl) echo "$KUBERNETES_VERSION" ;;
    etcd) echo "$ETCD_VERSION" ;;
    helm) echo "$HELM_VERSION" ;;
    grpcurl) echo "$GRPCURL_VERSION" ;;
    *)
      echo "Error: unknown tool '$1' (known: ${kasho_tools[*]})" >&2
      return 1
      ;;
  esac
}

kasho_tool_dir() {
  local version
  version="$(kasho_tool_version "$1")" || return 1
  echo "$KASHO_CACHE_DIR/bin/$1-$version"
}

# The binary itself; a tool counts as built only when this exists (build.sh moves it in place when complete).
kasho_tool_bin() {
  local dir
  dir="$(kasho_tool_dir "$1")" || return 1
  echo "$dir/$1"
}
