#!/usr/bin/env bash
# Builds the images the demo's Docker Compose files name besides kasho:latest, from environments/demo/images/ on the
# local Debian base (base-image.sh, run first), where no image registry is reachable:
#   redis:7-alpine     the guide's docker-compose.yml names this image. This is a stand-in built from Debian's
#                      redis-server (Redis 7.0), not Alpine; an image of that name that this script did not build
#                      (one pulled from a registry) is left alone.
#   local/postgres:15  the demo's source-db and target-db (environments/demo/docker-compose.override.yml).
# Each image carries the hash of its inputs (io.kasho.inputs) and is built only when that changed.
# Needs a running engine (engine.sh start).
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kasho_log_prefix=demo-images
# shellcheck source=lib.sh
. "$here/lib.sh"

kasho_require_engine
bash "$here/base-image.sh"
base_id="$(docker image inspect --format '{{.Id}}' "$kasho_base_image")"

mkdir -p "$kasho_docker_dir"
exec 8>"$kasho_docker_dir/.demo-images.lock"
flock 8

# build TAG DIR: DIR under environments/demo/images is the build context.
build() {
  local tag="$1" dir="environments/demo/images/$2" inputs existing started=$SECONDS
  inputs="$(kasho_list_files "$dir" | kasho_hash_files "$base_id")"
  existing="$(kasho_image_label "$tag" "$kasho_inputs_label")"
  if [ "$existing" = "$inputs" ]; then
    log "$tag is up to date"
    return
  fi
  if [ -z "$existing" ] && docker image inspect "$tag" >/dev/null 2>&1; then
    log "$tag exists and was not built here (a registry's image?); leaving it as it is"
    return
  fi
  local previous
  previous="$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)"
  log "building $tag from $dir"
  kasho_docker_build --quiet --tag "$tag" --label "$kasho_inputs_label=$inputs" \
    --build-arg "BASE_IMAGE=$kasho_base_image" "$kasho_root/$dir" >/dev/null
  if [ -n "$previous" ]; then docker image rm "$previous" >/dev/null 2>&1 || true; fi
  log "$tag built in $(elapsed_since "$started") ($(docker image inspect --format '{{.Size}}' "$tag" | numfmt --to=iec))"
}

build redis:7-alpine redis
build local/postgres:15 postgres
