#!/usr/bin/env bash
# Where the pinned test tools live (built by hack/k8s/build.sh).
#   hack/k8s/bin-path.sh TOOL   the directory holding TOOL (kube-apiserver, kubectl, etcd, helm, grpcurl)
#   hack/k8s/bin-path.sh        one "TOOL DIRECTORY" line per tool
#   hack/k8s/bin-path.sh --path the directories joined with ':' (for PATH="$(hack/k8s/bin-path.sh --path):$PATH")
# Prints the paths whether or not the tools are built yet.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case "${1:-}" in
  '')
    for tool in "${kasho_tools[@]}"; do echo "$tool $(kasho_tool_dir "$tool")"; done
    ;;
  --path)
    dirs=()
    for tool in "${kasho_tools[@]}"; do dirs+=("$(kasho_tool_dir "$tool")"); done
    (IFS=:; echo "${dirs[*]}")
    ;;
  *) kasho_tool_dir "$1" ;;
esac
