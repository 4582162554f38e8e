#!/usr/bin/env bash
# The README's test command. Installs what is missing (npm dependencies, PostgreSQL, Redis, the Kubernetes test
# binaries), builds, and runs the suites with mocha against real local servers.
#   hack/test.sh            unit, integration and end-to-end suites
#   hack/test.sh unit       pure logic only, no servers
#   hack/test.sh integration
#   hack/test.sh e2e
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
suite="${1:-all}"

unit=(
  'services/*/test/unit/**/*.test.ts'
  'operator/test/unit/**/*.test.ts'
)
integration=(
  'hack/test/**/*.test.ts'
  'services/*/test/integration/**/*.test.ts'
  'operator/test/integration/**/*.test.ts'
)
e2e=('e2e/**/*.test.ts')

bash hack/ensure-node-deps.sh
case "$suite" in
  unit) specs=("${unit[@]}") ;;
  integration) specs=("${integration[@]}") ;;
  e2e) specs=("${e2e[@]}") ;;
  all) specs=("${unit[@]}" "${integration[@]}" "${e2e[@]}") ;;
  *) echo "Error: unknown suite '$suite' (use unit, integration, e2e or nothing for all)" >&2; exit 2 ;;
esac
if [ "$suite" != unit ]; then
  bash hack/ensure-system-deps.sh
  if [ -x hack/k8s/build.sh ]; then bash hack/k8s/build.sh; fi
fi
echo "Building..."
npm run --silent build
exec npx mocha "${specs[@]}"
