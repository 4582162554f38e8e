#!/usr/bin/env bash
# Builds the kasho image from the repository's Dockerfile, tagged kasho:latest and kasho:<first 12 of its inputs'
# hash>, on local/node:20-bookworm-slim (made by base-image.sh, which this runs first). The inputs are the files the
# image is built from (Dockerfile, package*.json, tsconfig*, proto/, services/*/src, operator/src, bin/, scripts/)
# and the base image; when kasho:latest already carries their hash (label io.kasho.inputs) nothing is built.
#   hack/docker/build-image.sh            build when the inputs changed
#   KASHO_BASE_IMAGE=node:20-bookworm-slim hack/docker/build-image.sh
#                                         build on another base (one with Node.js 20+, npm and apt)
# npm inside the build trusts the CA certificates this machine's npm and Node.js trust (KASHO_BUILD_CA_FILE, else
# NODE_EXTRA_CA_CERTS, else npm's cafile), for networks that inspect TLS; they stay out of the final image.
# Needs a running engine (engine.sh start).
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kasho_log_prefix=build-image
# shellcheck source=lib.sh
. "$here/lib.sh"

cd "$kasho_root"
kasho_require_engine
base_image="${KASHO_BASE_IMAGE:-$kasho_node_image}"
if [ "$base_image" = "$kasho_node_image" ]; then
  bash "$here/base-image.sh"
fi
base_id="$(docker image inspect --format '{{.Id}}' "$base_image" 2>/dev/null)" ||
  die "base image $base_image not found"

# What the Dockerfile reads, as the build context. services/common/src/gen is generated inside the build.
context_files() {
  {
    kasho_list_files Dockerfile package.json package-lock.json tsconfig.json tsconfig.base.json \
      hack/generate-proto.sh hack/docker/build-certs proto bin scripts \
      services/*/package.json services/*/tsconfig.json services/*/src \
      operator/package.json operator/tsconfig.json operator/src
  } | grep -zv '^services/common/src/gen/' | LC_ALL=C sort -z
}

mkdir -p "$kasho_docker_dir"
exec 8>"$kasho_docker_dir/.build-image.lock"
flock 8

inputs="$(context_files | kasho_hash_files "$base_id")"
tag="$kasho_image:${inputs:0:12}"
if [ "$(kasho_image_label "$kasho_image:latest" "$kasho_inputs_label")" = "$inputs" ]; then
  log "$kasho_image:latest is up to date ($tag)"
  exit 0
fi
if [ "$(kasho_image_label "$tag" "$kasho_inputs_label")" = "$inputs" ]; then
  docker tag "$tag" "$kasho_image:latest"
  log "$kasho_image:latest now points at the existing $tag"
  exit 0
fi

ca_file="${KASHO_BUILD_CA_FILE:-${NODE_EXTRA_CA_CERTS:-}}"
if [ -z "$ca_file" ] && command -v npm >/dev/null 2>&1; then
  ca_file="$(npm config get cafile 2>/dev/null || true)"
  case "$ca_file" in null | undefined) ca_file='' ;; esac
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/kasho-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
extra=()
if [ -n "$ca_file" ] && [ -r "$ca_file" ]; then
  mkdir -p "$work/hack/docker/build-certs"
  cp "$ca_file" "$work/hack/docker/build-certs/host-ca.pem"
  extra=(-C "$work" hack/docker/build-certs/host-ca.pem)
  log "npm in the build trusts the CA certificates of $ca_file"
fi

previous="$(docker image inspect --format '{{.Id}}' "$kasho_image:latest" 2>/dev/null || true)"
log "building $tag on $base_image"
started=$SECONDS
context_files >"$work/files"
build_status=0
# The context goes to the engine as a tar stream of exactly these files; lines of the build's own progress
# ("Step N/M") are printed with the time they started.
tar -C "$kasho_root" --null -c -T "$work/files" "${extra[@]}" |
  kasho_docker_build --build-arg "BASE_IMAGE=$base_image" --label "$kasho_inputs_label=$inputs" \
    --tag "$tag" --tag "$kasho_image:latest" -f Dockerfile - 2>&1 |
  tee "$work/build.log" |
  while IFS= read -r line; do
    case "$line" in
      Step\ *) printf '[%s] %4ds %s\n' "$kasho_log_prefix" $((SECONDS - started)) "${line:0:150}" ;;
    esac
  done || build_status=$?
if [ "$build_status" -ne 0 ] || ! grep -q '^Successfully tagged' "$work/build.log"; then
  echo "---- last lines of the build log" >&2
  tail -n 40 "$work/build.log" >&2
  die "docker build failed (log above)"
fi
if [ -n "$previous" ] && [ "$previous" != "$(docker image inspect --format '{{.Id}}' "$tag")" ]; then
  # The replaced image and its hash tag go, unless a container still uses it.
  for old_tag in $(docker image inspect --format '{{join .RepoTags " "}}' "$previous" 2>/dev/null); do
    docker image rm "$old_tag" >/dev/null 2>&1 || true
  done
fi
# The classic builder keeps each build's first stage as an untagged image (the cache of npm ci and the compile).
# Only the newest is useful; the rest would pile up with every build.
build_stage="$(awk '/^Step [0-9]+\/[0-9]+ : FROM /{ if (++stages == 2) { print last; exit } } /^ ---> [0-9a-f]+$/{ last = $2 }' \
  "$work/build.log")"
for id in $(docker images -q --filter dangling=true --filter label=io.kasho.stage=build); do
  if [ "$id" != "$build_stage" ]; then docker image rm "$id" >/dev/null 2>&1 || true; fi
done
size="$(docker image inspect --format '{{.Size}}' "$tag" | numfmt --to=iec)"
log "built $tag and $kasho_image:latest in $(elapsed_since "$started") ($size)"
