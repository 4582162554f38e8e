#!/usr/bin/env bash
# `npm run bench`: native logical replication against Kasho on this machine (see hack/bench/run.ts). Installs what is
# missing and builds first, like hack/demo.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
bash hack/ensure-node-deps.sh
bash hack/ensure-system-deps.sh
echo "Building..."
npm run --silent build
exec node --conditions=development --import tsx hack/bench/run.ts "$@"
