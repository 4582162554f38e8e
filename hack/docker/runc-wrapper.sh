#!/bin/bash
# An OCI runtime in front of runc for sandboxes whose capability bounding set lacks CAP_SYS_RESOURCE (a container
# that asks for it, as every --privileged one does, fails with "unable to apply caps: operation not permitted").
# It removes CAP_SYS_RESOURCE from the container's spec (create/run: --bundle's config.json) and from an exec's
# process file (exec: --process), then runs the real runc with the same arguments. engine.sh copies it next to the
# engine's state and makes it dockerd's default runtime when the bounding set lacks the capability.
set -euo pipefail
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# Rewrites FILE in place when it names the capability; FILTER is the jq path of the capability sets.
drop_capability() {
  local file="$1" path="$2" tmp
  [ -f "$file" ] && grep -q CAP_SYS_RESOURCE "$file" || return 0
  tmp="$(mktemp "$file.XXXXXX")"
  jq -c "$path |= (if . == null then . else map_values(if type == \"array\" then map(select(. != \"CAP_SYS_RESOURCE\")) else . end) end)" \
    "$file" >"$tmp"
  chmod --reference="$file" "$tmp"
  mv -f "$tmp" "$file"
}

command=''
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  arg="${args[i]}"
  next="${args[i + 1]:-}"
  case "$arg" in
    create | run | exec)
      [ -n "$command" ] || command="$arg"
      ;;
    --bundle | -b) [ "$command" = create ] || [ "$command" = run ] && drop_capability "$next/config.json" .process.capabilities ;;
    --bundle=*) drop_capability "${arg#*=}/config.json" .process.capabilities ;;
    --process | -p) [ "$command" = exec ] && drop_capability "$next" .capabilities ;;
    --process=*) drop_capability "${arg#*=}" .capabilities ;;
  esac
done
# runc's default bundle is the working directory.
if { [ "$command" = create ] || [ "$command" = run ]; } && [ -f config.json ]; then
  drop_capability "$PWD/config.json" .process.capabilities
fi
exec runc "$@"
