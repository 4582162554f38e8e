#!/usr/bin/env bash
# Generates the TypeScript gRPC code from proto/ with buf and ts-proto (both from npm).
# Output goes to services/common/src/gen, which is not committed: `npm run build` always regenerates it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/proto"
rm -rf "$root/services/common/src/gen"
"$root/node_modules/.bin/buf" generate --template buf.gen.yaml
