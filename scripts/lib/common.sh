# shellcheck shell=bash
# Shared by scripts/prepare-primary-db.sh and scripts/bootstrap-kasho.sh (sourced, not run).
#
# Passwords: they arrive in URLs and environment variables and leave only through the environment of the one child
# that needs them (PGPASSWORD) or psql's standard input, never through a command line (visible in ps) or the output.
# Everything printed from a child goes through kasho_mask, which blanks every known secret, as a second guard.

KASHO_SECRETS=()

kasho_error() {
  printf 'Error: %s\n' "$(kasho_mask "$*")" >&2
}

kasho_die() {
  kasho_error "$@"
  exit 1
}

# Remembers a secret so that kasho_mask blanks it. Very short values are left alone: masking every "a" in the
# output would hide more than it protects, and such a password protects nothing anyway.
kasho_add_secret() {
  if [ "${#1}" -ge 4 ]; then KASHO_SECRETS+=("$1"); fi
}

kasho_mask() {
  local text="$1" secret
  for secret in ${KASHO_SECRETS[@]+"${KASHO_SECRETS[@]}"}; do
    text="${text//"$secret"/***}"
  done
  printf '%s' "$text"
}

# Percent-encodes everything but RFC 3986's unreserved characters, byte by byte. Result in REPLY.
kasho_url_encode() {
  local LC_ALL=C s="$1" out='' c i
  for ((i = 0; i < ${#s}; i++)); do
    c="${s:i:1}"
    case "$c" in
      [A-Za-z0-9._~-]) out+="$c" ;;
      *)
        printf -v c '%%%02X' "'$c"
        out+="$c"
        ;;
    esac
  done
  REPLY="$out"
}

# Decodes %XX sequences (builtins only: the value may be a password). Returns 1 on a malformed sequence.
kasho_url_decode() {
  local s="$1" rest
  rest="${s//%[0-9A-Fa-f][0-9A-Fa-f]/}"
  case "$rest" in *%*) return 1 ;; esac
  s="${s//\\/\\\\}"
  printf -v REPLY '%b' "${s//%/\\x}"
}

# Splits a libpq URL, postgresql://[user[:password]@][host][:port][,...][/database][?param=value&...], the way libpq
# does (credentials end at the first '@' before any '/'). Sets PGURL_SCHEME, PGURL_USER, PGURL_PASSWORD (decoded),
# PGURL_HOSTS (as written), PGURL_DB (decoded) and PGURL_PARAMS (the query without user, password and dbname, as
# written). $1 names the variable for messages, which never repeat the URL itself.
kasho_parse_pg_url() {
  local name="$1" url="$2" rest userinfo="" path="" query="" pair key value kept=() invalid
  invalid="$name is not a valid PostgreSQL URL: expected postgresql://user:password@host:port/database"
  case "$url" in
    postgresql://* | postgres://*) ;;
    *)
      kasho_error "$invalid"
      return 1
      ;;
  esac
  PGURL_SCHEME="${url%%://*}"
  rest="${url#*://}"
  local head="${rest%%/*}"
  if [[ "$head" == *@* ]]; then
    userinfo="${head%%@*}"
    rest="${rest#*@}"
  fi
  if [[ "$rest" == *\?* ]]; then
    query="${rest#*\?}"
    rest="${rest%%\?*}"
  fi
  if [[ "$rest" == */* ]]; then
    path="${rest#*/}"
    rest="${rest%%/*}"
  fi
  PGURL_HOSTS="$rest"
  PGURL_USER="" PGURL_PASSWORD="" PGURL_DB="" PGURL_PARAMS=""
  if [ -n "$userinfo" ]; then
    kasho_url_decode "${userinfo%%:*}" || {
      kasho_error "$invalid"
      return 1
    }
    PGURL_USER="$REPLY"
    if [[ "$userinfo" == *:* ]]; then
      kasho_url_decode "${userinfo#*:}" || {
        kasho_error "$invalid"
        return 1
      }
      PGURL_PASSWORD="$REPLY"
    fi
  fi
  if [ -n "$path" ]; then
    kasho_url_decode "$path" || {
      kasho_error "$invalid"
      return 1
    }
    PGURL_DB="$REPLY"
  fi
  if [ -n "$query" ]; then
    local IFS='&'
    for pair in $query; do
      key="${pair%%=*}"
      value="${pair#*=}"
      kasho_url_decode "$value" || {
        kasho_error "$invalid"
        return 1
      }
      case "$key" in
        user) PGURL_USER="$REPLY" ;;
        password) PGURL_PASSWORD="$REPLY" ;;
        dbname) PGURL_DB="$REPLY" ;;
        *) kept+=("$pair") ;;
      esac
    done
    PGURL_PARAMS="${kept[*]-}"
  fi
  # libpq's default database is the user name: keep it when the URL is rebuilt for another user.
  if [ -z "$PGURL_DB" ]; then PGURL_DB="$PGURL_USER"; fi
  kasho_add_secret "$PGURL_PASSWORD"
}

# The parsed URL again, for user $1 and without any password (it travels in PGPASSWORD), plus the extra
# parameters in $2 (e.g. replication=database). Result in REPLY.
kasho_build_pg_url() {
  local user="$1" extra="${2:-}" url params
  url="$PGURL_SCHEME://"
  if [ -n "$user" ]; then
    kasho_url_encode "$user"
    url+="$REPLY@"
  fi
  url+="$PGURL_HOSTS"
  if [ -n "$PGURL_DB" ]; then
    kasho_url_encode "$PGURL_DB"
    url+="/$REPLY"
  fi
  params="$PGURL_PARAMS"
  if [ -n "$extra" ]; then params="${params:+$params&}$extra"; fi
  if [ -n "$params" ]; then url+="?$params"; fi
  REPLY="$url"
}

# Where the URL points, for messages: host(s) and database, never credentials.
kasho_pg_url_label() {
  REPLY="${PGURL_HOSTS:-localhost}/${PGURL_DB}"
}
