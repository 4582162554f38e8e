#!/usr/bin/env bash
# `npm run demo`: a whole Kasho pipeline on this machine with sample data. Installs what is missing first.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash hack/ensure-node-deps.sh
bash hack/ensure-system-deps.sh
echo "Building..."
npm run --silent build
exec node --conditions=development --import tsx hack/demo.ts "$@"
