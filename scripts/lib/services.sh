# shellcheck shell=bash
# Helpers shared by scripts/run.sh and scripts/test.sh: find (or install and start) the
# services Paranimo needs, so that the README commands work on a fresh Debian 12 or
# Ubuntu 24.04 machine that only has Rust, and reuse whatever a developer already runs.
#
# Source this file; do not execute it. Functions:
#   ensure_postgres [db]   export DATABASE_URL (db defaults to "paranimo")
#   ensure_redis           export REDIS_URL
#   ensure_node            Node.js >= 18 and npm on PATH
#   ensure_chromium        export CHROMIUM_PATH (browser tests only)
#   ensure_smtp_sink_tools python3 with aiosmtpd (the SMTP server of the mail tests)
#   ensure_build_tools     cargo and a C compiler/linker
#   build_web              npm ci/install + npm run build in web/ (output: web/dist)
#   stop_private_services  stop the private PostgreSQL/Redis started from this folder
#   apt_install pkg...     install distribution packages (apt-get, sudo when not root)
#
# Private services (used only when nothing suitable already runs) live under
# ${PARANIMO_DATA:-<repo>/.data} and keep running after the script ends, so the next run
# starts instantly. Stop them with:
#   bash -c 'source scripts/lib/services.sh; stop_private_services'
#
# Overridable settings (environment):
#   DATABASE_URL, REDIS_URL          use these servers when they answer
#   PARANIMO_DATA                    folder for private services (default <repo>/.data)
#   PARANIMO_PG_PROBE_HOST/_PORT     machine PostgreSQL to try (127.0.0.1:5432)
#   PARANIMO_REDIS_PROBE_HOST/_PORT  machine Redis to try (127.0.0.1:6379)
#   PARANIMO_PG_PORT                 private PostgreSQL port (54329)
#   PARANIMO_REDIS_PORT              private Redis port (63799)
#   CHROMIUM_PATH                    browser to use for the browser tests

set -euo pipefail
# Let failures inside $(...) stop the script too, as they do elsewhere under set -e.
shopt -s inherit_errexit

PARANIMO_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"

# All messages go to stderr so that stdout stays free for the programs we run.
log() { printf '[paranimo] %s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

# Hide a password in a URL before printing it.
redact_url() { sed -E 's#(://[^:/@]*):[^@/]*@#\1:***@#' <<<"$1"; }

# The folder for private services, created and made absolute on first use.
paranimo_data_dir() {
  local dir="${PARANIMO_DATA:-$PARANIMO_REPO/.data}"
  mkdir -p "$dir"
  (cd "$dir" && pwd -P)
}

# ---------------------------------------------------------------------------------------
# Installing distribution packages
# ---------------------------------------------------------------------------------------

_PARANIMO_APT_UPDATED=0

# Run a command as root: directly when we are root, else through sudo.
as_root() {
  if ((EUID == 0)); then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    return 127
  fi
}

# apt_install pkg...: install packages from the distribution. Returns non-zero (after
# saying why) when that is impossible, so callers can explain what is missing.
apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    log "cannot install '$*': this machine has no apt-get (not Debian/Ubuntu)."
    log "Install the equivalent packages with your package manager, then re-run."
    return 1
  fi
  if ((EUID != 0)) && ! command -v sudo >/dev/null 2>&1; then
    log "cannot install '$*': not running as root and sudo is not available."
    log "As root, run: apt-get install -y $*"
    return 1
  fi
  log "installing from the distribution: $*"
  # The package lists of a fresh machine (or container) may be empty or stale: refresh
  # them once per script run, not once per package.
  if ((_PARANIMO_APT_UPDATED == 0)); then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 ||
      { log "apt-get update failed"; return 1; }
    _PARANIMO_APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2 ||
    { log "apt-get install $* failed"; return 1; }
  hash -r # forget cached command locations: new binaries may shadow old ones
}

# ID from /etc/os-release ("debian", "ubuntu", ...), empty when unknown.
os_id() {
  # shellcheck source=/dev/null
  (. /etc/os-release 2>/dev/null && printf '%s' "${ID:-}") || true
}

# ---------------------------------------------------------------------------------------
# Rust toolchain
# ---------------------------------------------------------------------------------------

ensure_build_tools() {
  command -v cargo >/dev/null 2>&1 ||
    die "Rust is not installed (no cargo on PATH): install it from https://rustup.rs"
  # Rust links through the system C compiler, and some crates compile C code.
  if ! command -v cc >/dev/null 2>&1; then
    log "no C compiler/linker (cc) found; Rust needs one to link"
    apt_install build-essential || die "install a C toolchain (package build-essential)"
  fi
}

# ---------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------

PG_BINDIR=""

# Find the server binaries (initdb, pg_ctl). Debian/Ubuntu keep them in
# /usr/lib/postgresql/<major>/bin, off PATH; a symlink on PATH may point there.
pg_find_bindir() {
  local initdb dir
  if initdb="$(command -v initdb 2>/dev/null)"; then
    dir="$(dirname "$(readlink -f "$initdb")")"
    if [[ -x $dir/pg_ctl && -x $dir/postgres ]]; then
      PG_BINDIR="$dir"
      return 0
    fi
  fi
  # The newest installed major version wins.
  for dir in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -rV); do
    if [[ -x $dir/initdb && -x $dir/pg_ctl && -x $dir/postgres ]]; then
      PG_BINDIR="$dir"
      return 0
    fi
  done
  return 1
}

# Path of a client tool (psql, pg_isready): next to the server binaries when known,
# else from PATH. Prints nothing and fails when absent.
pg_tool() {
  if [[ -n $PG_BINDIR && -x $PG_BINDIR/$1 ]]; then
    printf '%s' "$PG_BINDIR/$1"
  else
    command -v "$1" 2>/dev/null
  fi
}

# pg_sql URL SQL: run one statement and print the result (tuples only). Never prompts for
# a password (-w) and gives up quickly on a dead address.
pg_sql() {
  local psql
  psql="$(pg_tool psql)" || return 127
  PGCONNECT_TIMEOUT=3 "$psql" "$1" -X -w -q -A -t -v ON_ERROR_STOP=1 -c "$2" </dev/null
}

# pg_can_connect URL: true when we can log in and run a query.
pg_can_connect() { pg_sql "$1" 'select 1' >/dev/null 2>&1; }

# pg_server_up URL: true when a server answers at the address (even if the login or the
# database named in the URL would fail).
pg_server_up() {
  local isready
  if isready="$(pg_tool pg_isready)"; then
    "$isready" -q -t 3 -d "$1" >/dev/null 2>&1
  else
    pg_can_connect "$1"
  fi
}

# pg_url_parts URL: split postgres://auth@host:port/db?params into BASE ("postgres://
# auth@host:port"), DB and QUERY (with its "?"), stored in PG_URL_*.
pg_url_parts() {
  local re='^(postgres(ql)?://[^/?]*)(/([^?]*))?(\?.*)?$'
  [[ $1 =~ $re ]] || return 1
  PG_URL_BASE="${BASH_REMATCH[1]}"
  PG_URL_DB="${BASH_REMATCH[4]}"
  PG_URL_QUERY="${BASH_REMATCH[5]}"
}

# pg_try_create_db ADMIN_URL DB: create DB through the admin connection unless it
# exists. Returns non-zero (without stopping the script) when that fails.
pg_try_create_db() {
  local admin="$1" db="$2" found
  # Only plain names: the name is pasted into SQL below.
  if [[ ! $db =~ ^[A-Za-z_][A-Za-z0-9_-]*$ ]]; then
    log "unsupported database name: '$db'"
    return 1
  fi
  found="$(pg_sql "$admin" "select 1 from pg_database where datname = '$db'")" || return 1
  if [[ -z $found ]]; then
    log "creating database $db"
    pg_sql "$admin" "create database \"$db\"" >/dev/null || return 1
  fi
}

pg_create_db() {
  pg_try_create_db "$1" "$2" ||
    die "could not find or create database $2 on $(redact_url "$1")"
}

# Make sure the server binaries exist, installing the distribution's PostgreSQL if not.
pg_need_server_binaries() {
  pg_find_bindir && return 0
  log "PostgreSQL server binaries (initdb, pg_ctl) not found; installing them"
  apt_install postgresql ||
    die "PostgreSQL is needed: install package 'postgresql' (server binaries initdb and" \
      "pg_ctl), or set DATABASE_URL to a reachable server, then re-run."
  pg_find_bindir || die "installed postgresql but still cannot find initdb/pg_ctl"
}

# PostgreSQL refuses to run as root. When we are root, the private cluster belongs to the
# "postgres" system user and its commands run as that user.
pg_as_owner() {
  if ((EUID == 0)); then
    # cd / so that the server does not complain about an unreadable working directory.
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

pg_ensure_owner_user() {
  ((EUID == 0)) || return 0
  if ! id -u postgres >/dev/null 2>&1; then
    log "creating system user 'postgres' (PostgreSQL refuses to run as root)"
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin postgres || die "could not create user postgres"
  fi
}

# Fallback folder of the private cluster for root when the "postgres" user cannot reach
# the data folder (one per clone, named after the clone's path).
pg_alt_dir() {
  printf '/var/lib/paranimo/pg-%s' "$(printf '%s' "$PARANIMO_REPO" | cksum | cut -d' ' -f1)"
}

# Folder of the private cluster. As root, the "postgres" user must be able to reach it;
# when a parent folder is private (say the clone is under /root), use /var/lib instead.
pg_private_dir() {
  local data alt
  data="$(paranimo_data_dir)"
  if ((EUID == 0)) && ! runuser -u postgres -- test -x "$data" 2>/dev/null; then
    alt="$(pg_alt_dir)"
    log "user postgres cannot reach $data; keeping the private cluster in $alt"
    mkdir -p "$(dirname "$alt")"
    chmod 755 "$(dirname "$alt")"
    printf '%s' "$alt"
  else
    printf '%s' "$data/pg"
  fi
}

# Start (initialising on first use) the private cluster; sets PG_PRIVATE_PORT.
PG_PRIVATE_PORT=""
pg_start_private() {
  local port="${PARANIMO_PG_PORT:-54329}" pgdata
  pg_need_server_binaries
  pg_ensure_owner_user
  pgdata="$(pg_private_dir)"

  # Already running from an earlier run: reuse it, on whatever port it was started with.
  if [[ -f $pgdata/postmaster.pid ]] &&
    pg_as_owner "$PG_BINDIR/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
    PG_PRIVATE_PORT="$(sed -n 4p "$pgdata/postmaster.pid")"
    log "private PostgreSQL already running (port $PG_PRIVATE_PORT, data $pgdata)"
    return 0
  fi

  # Something else holds the port (perhaps the private cluster of another clone). Use it
  # if it lets us in like ours would, else say what to change.
  if pg_server_up "postgres://postgres@127.0.0.1:$port/postgres"; then
    if pg_can_connect "postgres://postgres@127.0.0.1:$port/postgres"; then
      log "port $port already serves PostgreSQL (not from $pgdata); using it"
      PG_PRIVATE_PORT="$port"
      return 0
    fi
    die "port $port is taken by another PostgreSQL; set PARANIMO_PG_PORT to a free port"
  fi

  if [[ ! -f $pgdata/PG_VERSION ]]; then
    pg_init_private "$pgdata"
  else
    pg_check_cluster_version "$pgdata"
  fi

  # Settings live in a file of our own, rewritten at every start, so that a changed port or
  # a moved folder is picked up.
  local sock="$pgdata" conf="$pgdata/paranimo.conf"
  # A Unix socket path must fit in about 107 bytes; TCP alone is enough for us.
  if ((${#sock} + 20 > 100)); then sock=""; fi
  {
    echo "# Written by scripts/lib/services.sh at every start: edit that script instead."
    echo "listen_addresses = '127.0.0.1'" # loopback only
    echo "port = $port"
    echo "unix_socket_directories = '${sock//\'/\'\'}'"
    echo "# A disposable development and test cluster: speed over crash safety."
    echo "fsync = off"
    echo "synchronous_commit = off"
    echo "full_page_writes = off"
    echo "max_connections = 200" # tests open pools on many databases at once
  } >"$conf"
  if ((EUID == 0)); then chown postgres:postgres "$conf"; fi

  log "starting private PostgreSQL on 127.0.0.1:$port (log: $pgdata/server.log)"
  if ! pg_as_owner "$PG_BINDIR/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w -t 60 \
    start >&2; then
    tail -n 20 "$pgdata/server.log" >&2 2>/dev/null || true
    die "private PostgreSQL did not start (see $pgdata/server.log)"
  fi
  local i
  for ((i = 0; i < 60; i++)); do
    pg_can_connect "postgres://postgres@127.0.0.1:$port/postgres" && break
    sleep 0.5
  done
  pg_can_connect "postgres://postgres@127.0.0.1:$port/postgres" ||
    die "private PostgreSQL started but does not accept connections on port $port"
  PG_PRIVATE_PORT="$port"
}

pg_init_private() {
  local pgdata="$1"
  if [[ -d $pgdata && -n "$(ls -A "$pgdata")" ]]; then
    die "$pgdata exists but holds no PostgreSQL cluster; move it away and re-run"
  fi
  log "creating a private PostgreSQL cluster in $pgdata"
  mkdir -p "$pgdata"
  chmod 700 "$pgdata"
  if ((EUID == 0)); then chown postgres:postgres "$pgdata"; fi
  # Trust authentication is safe here because the server only listens on loopback (set
  # in paranimo.conf) and on a socket inside our own folder. The C locale avoids
  # depending on locales that a minimal machine may not have generated.
  pg_as_owner "$PG_BINDIR/initdb" -D "$pgdata" -U postgres --auth=trust \
    --encoding=UTF8 --no-locale >"$pgdata.initdb.log" 2>&1 || {
    cat "$pgdata.initdb.log" >&2
    die "initdb failed"
  }
  rm -f "$pgdata.initdb.log"
  echo "include_if_exists = 'paranimo.conf'" >>"$pgdata/postgresql.conf"
}

# A cluster only opens with the major version that created it. After a distribution
# upgrade, pick the matching binaries if they are still there.
pg_check_cluster_version() {
  local pgdata="$1" want have
  want="$(cat "$pgdata/PG_VERSION")"
  have="$("$PG_BINDIR/postgres" --version | sed -E 's/.* ([0-9]+)[.].*/\1/')"
  [[ $want == "$have" ]] && return 0
  if [[ -x /usr/lib/postgresql/$want/bin/pg_ctl ]]; then
    PG_BINDIR="/usr/lib/postgresql/$want/bin"
    return 0
  fi
  die "$pgdata was made by PostgreSQL $want but only $have is installed;" \
    "delete that folder (its data is lost) and re-run"
}

# ensure_postgres [DB]: export DATABASE_URL for database DB (default "paranimo"; the
# tests pass "postgres", the admin database they create their own databases from).
ensure_postgres() {
  local db="${1:-paranimo}"
  pg_find_bindir || true # client tools are preferred from the same version

  # 1. An explicit DATABASE_URL wins when it answers.
  if [[ -n ${DATABASE_URL:-} ]]; then
    local shown
    shown="$(redact_url "$DATABASE_URL")"
    if ! pg_tool psql >/dev/null; then
      log "psql is not installed, so DATABASE_URL cannot be checked; using it as given:"
      log "  $shown"
      return 0
    fi
    if pg_server_up "$DATABASE_URL"; then
      if ! pg_can_connect "$DATABASE_URL"; then
        # The server answers: most likely the database does not exist yet.
        if pg_url_parts "$DATABASE_URL" && [[ -n $PG_URL_DB ]]; then
          pg_try_create_db "$PG_URL_BASE/postgres$PG_URL_QUERY" "$PG_URL_DB" || true
        fi
        pg_can_connect "$DATABASE_URL" ||
          die "a server answers at DATABASE_URL=$shown but does not let us in" \
            "(check user, password and database name)"
      fi
      log "PostgreSQL: using DATABASE_URL $shown"
      export DATABASE_URL
      return 0
    fi
    log "DATABASE_URL=$shown does not answer; looking for another PostgreSQL"
  fi

  # 2. A machine-wide server on the usual port that trusts user postgres on loopback.
  local host="${PARANIMO_PG_PROBE_HOST:-127.0.0.1}" port="${PARANIMO_PG_PROBE_PORT:-5432}"
  local admin="postgres://postgres@$host:$port/postgres"
  if pg_tool psql >/dev/null && pg_can_connect "$admin"; then
    pg_create_db "$admin" "$db"
    export DATABASE_URL="postgres://postgres@$host:$port/$db"
    log "PostgreSQL: using the server at $host:$port ($DATABASE_URL)"
    return 0
  fi

  # 3. A private cluster in the data folder.
  log "no usable PostgreSQL at $host:$port; using a private one"
  pg_start_private
  port="$PG_PRIVATE_PORT"
  pg_create_db "postgres://postgres@127.0.0.1:$port/postgres" "$db"
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/$db"
  log "PostgreSQL: using the private server ($DATABASE_URL)"
}

# ---------------------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------------------

# redis_tcp_reply HOST PORT: send PING over a plain TCP connection (bash's /dev/tcp) and
# print the first reply line; for machines without redis-cli.
redis_tcp_reply() {
  # shellcheck disable=SC2016 # $1 and $2 are expanded by the inner bash, on purpose
  timeout 3 bash -c '
    exec 3<>"/dev/tcp/$1/$2" || exit 1
    printf "PING\r\n" >&3
    IFS= read -r line <&3 || exit 1
    printf "%s" "$line"
  ' _ "$1" "$2" 2>/dev/null
}

# redis_ping URL: true when a Redis answers PING at URL (credentials included).
redis_ping() {
  local url="$1"
  if command -v redis-cli >/dev/null 2>&1; then
    # redis-cli 7.0 sends an empty user name for redis://:password@host and fails where
    # the Rust client succeeds; name the default user explicitly.
    local cli_url="${url/:\/\/:/:\/\/default:}"
    [[ "$(timeout 5 redis-cli -u "$cli_url" ping 2>/dev/null)" == PONG ]]
    return
  fi
  # No redis-cli: parse redis[s]://[user:pass@]host[:port][/db] and speak RESP ourselves.
  local re='^rediss?://([^@/]*@)?(\[[^]]*\]|[^:/?]*)(:([0-9]+))?' host port reply auth
  [[ $url =~ $re ]] || return 1
  auth="${BASH_REMATCH[1]}"
  host="${BASH_REMATCH[2]:-127.0.0.1}"
  host="${host#[}"
  host="${host%]}"
  port="${BASH_REMATCH[4]:-6379}"
  reply="$(redis_tcp_reply "$host" "$port")" || return 1
  reply="${reply%$'\r'}" # RESP lines end in CR LF
  [[ $reply == +PONG ]] && return 0
  # A password-protected Redis answers NOAUTH: it is there, and the URL carries the
  # credentials the server will use; without redis-cli we cannot check them.
  [[ $reply == -NOAUTH* && -n $auth ]]
}

ensure_redis() {
  # 1. An explicit REDIS_URL wins when it answers.
  if [[ -n ${REDIS_URL:-} ]]; then
    if redis_ping "$REDIS_URL"; then
      log "Redis: using REDIS_URL $(redact_url "$REDIS_URL")"
      export REDIS_URL
      return 0
    fi
    log "REDIS_URL=$(redact_url "$REDIS_URL") does not answer; looking for another Redis"
  fi

  # 2. A machine-wide Redis on the usual port, without a password.
  local host="${PARANIMO_REDIS_PROBE_HOST:-127.0.0.1}"
  local port="${PARANIMO_REDIS_PROBE_PORT:-6379}"
  if redis_ping "redis://$host:$port"; then
    export REDIS_URL="redis://$host:$port"
    log "Redis: using the server at $host:$port"
    return 0
  fi

  # 3. A private Redis in the data folder: memory only, loopback only.
  log "no usable Redis at $host:$port; using a private one"
  port="${PARANIMO_REDIS_PORT:-63799}"
  local dir
  dir="$(paranimo_data_dir)/redis"
  mkdir -p "$dir"
  if redis_ping "redis://127.0.0.1:$port"; then
    log "private Redis already running on port $port"
  else
    if ! command -v redis-server >/dev/null 2>&1; then
      log "redis-server not found; installing it"
      apt_install redis-server ||
        die "Redis is needed: install package 'redis-server', or set REDIS_URL to a" \
          "reachable server, then re-run."
    fi
    log "starting private Redis on 127.0.0.1:$port (log: $dir/redis.log)"
    redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --dir "$dir" \
      --save '' --appendonly no --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
      >&2 || die "redis-server failed to start (see $dir/redis.log)"
    local i
    for ((i = 0; i < 40; i++)); do
      redis_ping "redis://127.0.0.1:$port" && break
      sleep 0.25
    done
    redis_ping "redis://127.0.0.1:$port" || {
      tail -n 20 "$dir/redis.log" >&2 2>/dev/null || true
      die "private Redis does not answer on port $port (see $dir/redis.log)"
    }
  fi
  export REDIS_URL="redis://127.0.0.1:$port"
  log "Redis: using the private server ($REDIS_URL)"
}

# ---------------------------------------------------------------------------------------
# Private services: stopping
# ---------------------------------------------------------------------------------------

stop_private_services() {
  local data pgdata pidfile
  data="$(paranimo_data_dir)"
  pg_find_bindir || true
  for pgdata in "$data/pg" "$(pg_alt_dir)"; do
    if [[ -f $pgdata/postmaster.pid && -n $PG_BINDIR ]]; then
      log "stopping private PostgreSQL ($pgdata)"
      pg_as_owner "$PG_BINDIR/pg_ctl" -D "$pgdata" -m fast -w stop >&2 || true
    fi
  done
  pidfile="$data/redis/redis.pid"
  if [[ -f $pidfile ]]; then
    local pid i
    pid="$(cat "$pidfile")"
    # Only signal the process if it still is our redis-server (pids get reused).
    if [[ $pid =~ ^[0-9]+$ ]] && grep -qa redis-server "/proc/$pid/cmdline" 2>/dev/null; then
      log "stopping private Redis (pid $pid)"
      kill "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
    fi
    rm -f "$pidfile"
  fi
}

# ---------------------------------------------------------------------------------------
# Node.js and the web app
# ---------------------------------------------------------------------------------------

# Major version of the node on PATH, empty when there is none.
node_major() { node --version 2>/dev/null | sed -nE 's/^v([0-9]+)\..*/\1/p'; }

node_ok() {
  local major
  major="$(node_major)"
  [[ -n $major ]] && ((major >= 18)) && command -v npm >/dev/null 2>&1
}

# The web app is built with Vite 6, which supports Node 18 and 20: what Debian 12 and
# Ubuntu 24.04 ship (18.x) is enough.
ensure_node() {
  if ! node_ok; then
    local found
    found="$(node --version 2>/dev/null || echo none)"
    log "need Node.js >= 18 with npm (found node: $found, npm:" \
      "$(npm --version 2>/dev/null || echo none)); installing from the distribution"
    apt_install nodejs npm ||
      die "Node.js >= 18 and npm are needed: install packages 'nodejs npm' and re-run."
    # An older node earlier on PATH (say from nvm) would still win over the new one.
    if ! node_ok && [[ -x /usr/bin/node ]]; then export PATH="/usr/bin:$PATH"; fi
    node_ok || die "still no Node.js >= 18 with npm after installing" \
      "(node: $(node --version 2>/dev/null || echo none)); install a newer Node.js."
  fi
  log "using Node.js $(node --version), npm $(npm --version)"
}

# web_changed_since_install FILE (in web/): FILE was modified after the last install.
# npm writes node_modules/.package-lock.json at the end of every install (even one a
# developer ran by hand), and we touch node_modules after ours.
web_changed_since_install() {
  [[ -e $1 && $1 -nt node_modules && $1 -nt node_modules/.package-lock.json ]]
}

build_web() {
  local web="$PARANIMO_REPO/web"
  [[ -f $web/package.json ]] || die "web/package.json is missing: no web app to build"
  (
    cd "$web"
    # Reinstall only when the dependency list changed since the last install.
    if [[ -d node_modules ]] && ! web_changed_since_install package.json &&
      ! web_changed_since_install package-lock.json; then
      log "web: dependencies up to date (node_modules newer than package-lock.json)"
    elif [[ -f package-lock.json ]]; then
      log "web: npm ci"
      npm ci --no-audit --no-fund >&2
      touch node_modules
    else
      log "web: npm install (no package-lock.json yet)"
      npm install --no-audit --no-fund >&2
      touch node_modules
    fi
    log "web: npm run build"
    npm run build >&2
  )
  [[ -f $web/dist/index.html ]] || die "npm run build did not produce web/dist/index.html"
}

# ---------------------------------------------------------------------------------------
# Chromium (browser tests)
# ---------------------------------------------------------------------------------------

# chromium_works PATH: the file runs and reports a version (Ubuntu's snap stubs exist as
# files but fail without snapd).
chromium_works() {
  [[ -x $1 ]] && timeout 30 "$1" --version >/dev/null 2>&1
}

chromium_find() {
  local candidate
  for candidate in "${CHROMIUM_PATH:-}" /usr/bin/chromium /usr/bin/chromium-browser \
    /snap/bin/chromium /usr/bin/google-chrome-stable /usr/bin/google-chrome; do
    if [[ -n $candidate ]] && chromium_works "$candidate"; then
      printf '%s' "$candidate"
      return 0
    fi
  done
  return 1
}

ensure_chromium() {
  local path
  if [[ -n ${CHROMIUM_PATH:-} ]] && ! chromium_works "$CHROMIUM_PATH"; then
    log "CHROMIUM_PATH=$CHROMIUM_PATH does not run; looking for another browser"
  fi
  if ! path="$(chromium_find)"; then
    case "$(os_id)" in
      ubuntu)
        # Ubuntu has no Chromium .deb: "chromium-browser" only installs the snap, which
        # needs a running snapd (not available in most containers).
        log "Chromium not found. On Ubuntu it is only packaged as a snap; trying that."
        apt_install chromium-browser || true
        if ! path="$(chromium_find)"; then
          die "no usable Chromium. Ubuntu ships it only as a snap, which needs snapd" \
            "(sudo snap install chromium). Alternatively install Google Chrome's .deb." \
            "Then re-run, or point CHROMIUM_PATH at the browser binary."
        fi
        ;;
      *)
        log "Chromium not found; installing it (Debian package 'chromium')"
        apt_install chromium ||
          die "the browser tests need Chromium: install package 'chromium' or set" \
            "CHROMIUM_PATH to a Chromium/Chrome binary, then re-run."
        path="$(chromium_find)" || die "installed chromium but it does not run"
        ;;
    esac
  fi
  export CHROMIUM_PATH="$path"
  log "using $("$path" --version 2>/dev/null | head -n1) ($CHROMIUM_PATH)"
}

# ---------------------------------------------------------------------------------------
# SMTP sink (mail tests)
# ---------------------------------------------------------------------------------------

# The mail tests start tests/support/smtp_sink.py, a real SMTP server built on Python's
# aiosmtpd, and read what it receives.
smtp_sink_ok() { python3 -c 'import aiosmtpd' >/dev/null 2>&1; }

ensure_smtp_sink_tools() {
  if ! command -v python3 >/dev/null 2>&1; then
    log "python3 not found; the mail tests run an SMTP server written in Python"
    apt_install python3 || die "the mail tests need python3: install package 'python3'"
  fi
  if ! smtp_sink_ok; then
    log "Python's aiosmtpd (SMTP server for the mail tests) is missing; installing it"
    # The distribution's python3 refuses pip outside a virtualenv but has the package;
    # another python3 (pyenv, a venv) cannot see distribution packages, so it gets pip's.
    if [[ "$(command -v python3)" == /usr/bin/python3 ]]; then
      apt_install python3-aiosmtpd || true
    fi
    smtp_sink_ok ||
      python3 -m pip install --user --quiet --no-warn-script-location aiosmtpd >&2 || true
    smtp_sink_ok || apt_install python3-aiosmtpd || true
    smtp_sink_ok || die "the mail tests need Python's aiosmtpd for $(command -v python3):" \
      "install package 'python3-aiosmtpd' or run 'python3 -m pip install aiosmtpd'."
  fi
  log "SMTP sink: $(command -v python3) with aiosmtpd"
}

# ---------------------------------------------------------------------------------------
# Misc
# ---------------------------------------------------------------------------------------

# sqlx's query! macros check SQL against DATABASE_URL at compile time unless told to use
# the committed .sqlx/ folder. Our DATABASE_URL may name an empty database, so prefer the
# committed queries when there are any.
use_sqlx_offline_if_prepared() {
  if [[ -d $PARANIMO_REPO/.sqlx && -z ${SQLX_OFFLINE:-} ]]; then
    export SQLX_OFFLINE=true
  fi
}
