# shellcheck shell=bash source-path=SCRIPTDIR
# shellcheck disable=SC2034 # the names below are used by the scripts that source this file
# Sourced by the hack/docker scripts: pins, where the engine keeps its state, image names, and small helpers.
kasho_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=../versions.env
. "$kasho_root/hack/versions.env"

# Relative paths would point elsewhere for every caller that runs from another directory.
KASHO_CACHE_DIR="$(realpath -m "${KASHO_CACHE_DIR:-${HOME:?HOME is not set; set KASHO_CACHE_DIR}/.cache/kasho}")"
# The engine's state: its data root (images, containers, volumes), config, log, pid file and the runtime wrapper.
# Outside the repository so that images survive a fresh work tree and later sessions on this machine.
kasho_docker_dir="$KASHO_CACHE_DIR/docker"

# The images these scripts make. The first two stand in for the registry's debian and node images; the kasho image
# is the product.
kasho_base_image="local/debian:$DOCKER_DEBIAN_SUITE"
kasho_node_image="local/node:20-$DOCKER_DEBIAN_SUITE-slim"
kasho_image=kasho
# Label holding the hash of everything an image was made from; a matching label means nothing needs building.
kasho_inputs_label=io.kasho.inputs

# The engine these scripts run is 20.10, whose BuildKit is not set up here; the legacy builder works.
export DOCKER_BUILDKIT=0

kasho_log_prefix="${kasho_log_prefix:-docker}"
log() { echo "[$kasho_log_prefix] $*"; }
die() {
  echo "[$kasho_log_prefix] Error: $*" >&2
  exit 1
}

# Wall time of a step for the progress lines.
elapsed_since() { echo "$((SECONDS - $1)) s"; }

# Quietly true when a Docker engine answers on the default socket (or DOCKER_HOST).
kasho_engine_up() { docker info >/dev/null 2>&1; }

kasho_require_engine() {
  kasho_engine_up || die "no Docker engine answers: start one with hack/docker/engine.sh start"
}

# docker build without the CLI's notice that the legacy builder is deprecated (it is the one that works here).
kasho_docker_build() {
  docker build --force-rm "$@" 2> >(sed -u '/^DEPRECATED: The legacy builder/,/^$/d' >&2)
}

# The value of an image's label, empty when the image or the label is missing.
kasho_image_label() {
  docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

# Prints the regular files and symlinks under the given repository paths (files or directories; missing ones are
# skipped), relative to the repository, NUL-separated and sorted.
kasho_list_files() {
  (
    cd "$kasho_root" || exit 1
    local path
    for path in "$@"; do
      [ -e "$path" ] || [ -L "$path" ] || continue
      find "$path" \( -type f -o -type l \) -print0
    done
  ) | LC_ALL=C sort -z
}

# sha256 of a NUL-separated list of repository files on standard input (names and contents), plus the strings given
# as arguments (versions, base image ids).
kasho_hash_files() {
  {
    printf '%s\n' "$@"
    (cd "$kasho_root" && xargs -0 -r sha256sum --)
  } | sha256sum | cut -c1-64
}

# The Debian mirror apt uses on this machine (deb822 sources or the one-line format), for debootstrap and for the
# images' own apt. KASHO_DEBIAN_MIRROR overrides it.
kasho_debian_mirror() {
  if [ -n "${KASHO_DEBIAN_MIRROR:-}" ]; then
    echo "$KASHO_DEBIAN_MIRROR"
    return
  fi
  local file mirror=''
  for file in /etc/apt/sources.list.d/*.sources; do
    [ -f "$file" ] || continue
    mirror="$(awk -v suite="$DOCKER_DEBIAN_SUITE" '
      /^[[:space:]]*$/ { if (uris != "" && suites ~ ("(^| )" suite "( |$)")) { print uris; exit } uris = ""; suites = ""; next }
      /^URIs:/ { uris = $2 }
      /^Suites:/ { $1 = ""; suites = $0; sub(/^ /, "", suites) }
      END { if (uris != "" && suites ~ ("(^| )" suite "( |$)")) print uris }' "$file" | head -n 1)"
    [ -n "$mirror" ] && break
  done
  if [ -z "$mirror" ]; then
    for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [ -f "$file" ] || continue
      mirror="$(awk -v suite="$DOCKER_DEBIAN_SUITE" '$1 == "deb" {
          i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
          if ($(i + 1) == suite) { print $i; exit } }' "$file")"
      [ -n "$mirror" ] && break
    done
  fi
  echo "${mirror:-http://deb.debian.org/debian}"
}
