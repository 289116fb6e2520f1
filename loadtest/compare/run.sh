#!/usr/bin/env bash
# Paranimo side by side with the reference peers and this machine's limits, in one run:
#   loadtest/compare/run.sh           default sizes (under ten minutes on 2 cores, builds aside)
#   loadtest/compare/run.sh --small   smoke sizes (a few minutes): proves the pipeline works
#   loadtest/compare/run.sh --no-build   use the binaries and node_modules already there
#
# Servers under test, each started fresh, in an order that rotates every round: paranimo,
# paranimo-2 (two nodes sharing the database and Redis), node-ws, socketio, socketio-2 (two
# nodes on the Redis adapter), bun, tokio-minimal; and the machine's limits: redis
# (redis-benchmark PUBLISH) and postgres (pgbench running the booking transaction). The load
# generator and the server run on different cores; two nodes share the server's cores.
# Results: artifacts/loadtest/<timestamp>/ with results.json, summary.md, latency.png and
# the log of every run. See loadtest/compare/README.md for what is measured and how.
#
# Sizes and choices come from the environment (defaults below): ROUNDS, SERVERS,
# IDLE_CONNECTIONS, FANOUT_SUBSCRIBERS, CHAT_PAIRS, RELAY_PAIRS, PGBENCH_SECONDS, LOAD_CPUS,
# SERVER_CPUS, the PORT_… of each server…
# This script is not part of ./scripts/test.sh and never runs in CI.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
here="$repo/loadtest/compare"
peers="$repo/loadtest/peers"
# shellcheck source=scripts/lib/services.sh
source "$repo/scripts/lib/services.sh"

usage() { sed -n '2,5s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2; }

small=0
build=1
for arg in "$@"; do
  case "$arg" in
    --small) small=1 ;;
    --no-build) build=0 ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      usage
      die "unknown argument: $arg"
      ;;
  esac
done

# --- sizes -------------------------------------------------------------------------------

# size NAME DEFAULT SMALL: the environment wins, then --small, then the default.
size() {
  local name="$1" default="$2" smoke="$3"
  if [[ -z ${!name:-} ]]; then
    if ((small)); then printf -v "$name" '%s' "$smoke"; else printf -v "$name" '%s' "$default"; fi
  fi
}
size ROUNDS 3 2
size SERVERS "paranimo paranimo-2 node-ws socketio socketio-2 bun tokio-minimal redis postgres" \
  "paranimo paranimo-2 node-ws socketio socketio-2 bun tokio-minimal redis postgres"
size IDLE_CONNECTIONS 5000 300
size IDLE_HOLD_SECONDS 5 3
size FANOUT_SUBSCRIBERS 2000 200
size FANOUT_EVENTS 50 10
size FANOUT_INTERVAL_MS 20 20
size CHAT_PAIRS 50 10
size CHAT_MESSAGES 20 5
size CHAT_RATE 5 10
# The relay round trip: pairs pinging each other through the server, each ping echoed.
# Paranimo's pairs are the chat scenario's (booked rooms), so as many pairs make no more
# accounts. At most 10 pings a second: with the echoes that is Paranimo's frame limit.
size RELAY_PAIRS 50 10
size RELAY_MESSAGES 20 5
size RELAY_RATE 5 5
# Paranimo's accounts: connections sign in as at least this many people (registration
# costs Argon2); more when the socket cap per session asks for it (users_for below).
size LOAD_USERS 100 20
# At most 8 slots per therapist: the same 8 hours for all, and a client holds one session an
# hour, so nobody reaches the limit of 8 upcoming sessions by chance (refusals at the limit
# are counted apart from errors all the same).
size BOOKING_CLIENTS 50 10
size BOOKING_SLOTS 96 16
size BOOKING_THERAPISTS 12 2
# Bookings without a race (--spread): each of these clients books its own slots, eight
# hours of each therapist, to set against pgbench's spread run of the same SQL.
size BOOKING_SPREAD_CLIENTS 100 20
size BOOKING_SPREAD_THERAPISTS 50 10
size PGBENCH_CLIENTS 8 4
size PGBENCH_SECONDS 8 3
size REDIS_REQUESTS 200000 20000
# One scenario run may take this long before it is stopped and recorded as failed.
size RUN_TIMEOUT 300 180
# Handshakes in flight at once, the same for the Rust generator and the Socket.IO client.
size CONNECT_CONCURRENCY 100 100

# Cores: the server on one, the load generator (and the Node load client, redis-benchmark,
# pgbench) on another. PostgreSQL and Redis are machine services and stay unpinned. Two-node
# turns (paranimo-2, socketio-2) run both nodes on SERVER_CPUS, each with as many workers as
# the single node: the same cores as one node, so the two-node figures price clustering (the
# Redis hop, every event handled by two processes) rather than the gift of a second core.
cores="$(nproc)"
if ((cores >= 2)); then
  LOAD_CPUS="${LOAD_CPUS:-0}"
  SERVER_CPUS="${SERVER_CPUS:-1}"
else
  LOAD_CPUS="${LOAD_CPUS:-0}"
  SERVER_CPUS="${SERVER_CPUS:-0}"
  log "only one core: the load generator and the server share it (figures are smoke only)"
fi
server_workers="$(taskset -c "$SERVER_CPUS" nproc)"

# Ports, overridable so that two comparisons (or other servers) can share the machine.
PORT_PARANIMO="${PORT_PARANIMO:-18080}"
read -r -a PORT_PARANIMO_2 <<<"${PORT_PARANIMO_2:-18090 18091}"
PORT_NODE_WS="${PORT_NODE_WS:-19101}"
PORT_SOCKETIO="${PORT_SOCKETIO:-19102}"
read -r -a PORT_SOCKETIO_2 <<<"${PORT_SOCKETIO_2:-19112 19113}"
PORT_BUN="${PORT_BUN:-19103}"
PORT_TOKIO="${PORT_TOKIO:-19104}"

# --- tools -------------------------------------------------------------------------------

ensure_build_tools
ensure_node
ensure_postgres postgres # the admin database: this run creates and drops its own
ADMIN_URL="$DATABASE_URL"
ensure_redis

# need_tool COMMAND PACKAGE: install PACKAGE from the distribution when COMMAND is missing.
need_tool() {
  command -v "$1" >/dev/null 2>&1 && return 0
  log "$1 not found; installing $2"
  apt_install "$2" || log "could not install $2: the parts needing $1 will be skipped"
}
need_tool taskset util-linux
need_tool redis-benchmark redis-tools
need_tool pgbench postgresql-client
need_tool psql postgresql-client
need_tool gnuplot gnuplot-nox

# As many file descriptors as we may have: every connection is one on each side, and the
# servers inherit this limit. Root may raise the hard limit itself (up to fs.nr_open).
if ((EUID == 0)); then
  ulimit -Hn "$(cat /proc/sys/fs/nr_open 2>/dev/null || echo 1048576)" 2>/dev/null || true
fi
ulimit -n "$(ulimit -Hn)" || true
log "open-files limit: $(ulimit -n)"

# --- build -------------------------------------------------------------------------------

target_dir="${CARGO_TARGET_DIR:-$repo/target}"
tokio_target="${CARGO_TARGET_DIR:-$peers/tokio-minimal/target}"
paranimo_bin="$target_dir/release/paranimo"
loadtest_bin="$target_dir/release/paranimo-loadtest"
tokio_bin="$tokio_target/release/paranimo-peer-tokio-minimal"
bun_bin="$peers/bun/node_modules/.bin/bun"

# npm_install DIR: install from the lock file unless node_modules is already current.
npm_install() {
  local dir="$1"
  if [[ -f $dir/node_modules/.package-lock.json &&
    $dir/node_modules/.package-lock.json -nt $dir/package-lock.json ]]; then
    return 0
  fi
  log "npm ci in ${dir#"$repo"/}"
  (cd "$dir" && npm ci --no-audit --no-fund >&2)
}

if ((build)); then
  use_sqlx_offline_if_prepared
  log "building Paranimo and the load generator (release)"
  (cd "$repo" && cargo build --release -p paranimo -p paranimo-loadtest >&2)
  log "building the tokio-minimal peer (release)"
  cargo build --release --manifest-path "$peers/tokio-minimal/Cargo.toml" >&2
  for dir in "$peers/node-ws" "$peers/socketio" "$peers/bun" "$here"; do npm_install "$dir"; done
fi
for bin in "$paranimo_bin" "$loadtest_bin"; do
  [[ -x $bin ]] || die "$bin is missing: run without --no-build"
done

# --- the run's folder, and clean-up ------------------------------------------------------

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
out="$repo/artifacts/loadtest/$stamp"
logs="$out/logs"
mkdir -p "$logs"
scratch="$(mktemp -d)"
runs="$out/runs.jsonl"
: >"$runs"
db_name="paranimo_load_${stamp,,}"
pgbench_db="paranimo_pgbench_${stamp,,}"
redis_prefix="paranimo-load-$stamp:"
sio_prefix="paranimo-load-$stamp-sio:"
pg_url_parts "$ADMIN_URL" || die "cannot read the database URL $(redact_url "$ADMIN_URL")"
# db_url NAME: the URL of database NAME on the same server.
db_url() { printf '%s/%s%s' "$PG_URL_BASE" "$1" "$PG_URL_QUERY"; }
log "results will be in ${out#"$repo"/}"

running=() # process ids this script started and has not stopped yet

stop_pids() {
  local pid i
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

# Deletes this run's Redis keys (and only them: nothing is flushed).
redis_forget() {
  local prefix="$1"
  redis-cli -u "$REDIS_URL" --scan --pattern "${prefix}*" 2>/dev/null |
    xargs -r -n 500 redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || true
}

cleanup() {
  local rc=$?
  ((${#running[@]} == 0)) || stop_pids "${running[@]}"
  pg_sql "$ADMIN_URL" "drop database if exists \"$db_name\" with (force)" >/dev/null 2>&1 || true
  pg_sql "$ADMIN_URL" "drop database if exists \"$pgbench_db\" with (force)" >/dev/null 2>&1 || true
  redis_forget "$redis_prefix"
  redis_forget "$sio_prefix"
  rm -rf "$scratch"
  exit "$rc"
}
trap cleanup EXIT

# --- measuring one run -------------------------------------------------------------------

# The machine's counters, for load and steal: "<loadavg1> <cpu line> | <cpuN lines>".
cpu_snapshot() { grep '^cpu' /proc/stat | tr '\n' '|'; }

# cpu_figures BEFORE AFTER: JSON fields for CPU steal over the run and the busy share of the
# load generator's and the server's cores (a load core near 100% means the client was the
# limit, not the server).
cpu_figures() {
  awk -v before="$1" -v after="$2" -v load_cpus="$LOAD_CPUS" -v server_cpus="$SERVER_CPUS" '
    function parse(snapshot, into,    lines, n, i, f, name, total, k) {
      n = split(snapshot, lines, "|")
      for (i = 1; i <= n; i++) {
        if (split(lines[i], f, " ") < 9) continue
        name = f[1]; total = 0
        for (k = 2; k <= 9; k++) total += f[k]
        into[name, "total"] = total
        into[name, "idle"] = f[5] + f[6]
        into[name, "steal"] = f[9]
      }
    }
    function busy(cpus,    list, n, i, name, dt, di, t, d) {
      n = split(cpus, list, ","); t = 0; d = 0
      for (i = 1; i <= n; i++) {
        name = "cpu" list[i]
        dt = a[name, "total"] - b[name, "total"]; di = a[name, "idle"] - b[name, "idle"]
        t += dt; d += dt - di
      }
      return t > 0 ? 100 * d / t : 0
    }
    BEGIN {
      parse(before, b); parse(after, a)
      dt = a["cpu", "total"] - b["cpu", "total"]
      steal = dt > 0 ? 100 * (a["cpu", "steal"] - b["cpu", "steal"]) / dt : 0
      printf "\"steal_pct\":%.2f,\"load_cpu_busy_pct\":%.1f,\"server_cpu_busy_pct\":%.1f", \
        steal, busy(load_cpus), busy(server_cpus)
    }'
}

clock_ticks="$(getconf CLK_TCK)"

# proc_ticks PID…: CPU time used so far by these processes, in clock ticks.
proc_ticks() {
  local pid total=0 fields
  for pid in "$@"; do
    read -r -a fields <"/proc/$pid/stat" 2>/dev/null || continue
    total=$((total + fields[13] + fields[14]))
  done
  echo "$total"
}

# CPU time used so far by PostgreSQL and Redis, which Paranimo's runs also make work.
# (cat, not awk, opens the files: a process may exit between the listing and the read.)
services_ticks() {
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } |
    awk '$2 == "(postgres)" || $2 == "(redis-server)" { t += $14 + $15 } END { print t + 0 }'
}

# measure SERVER ROUND SCENARIO COMMAND…: runs one scenario on the load cores, keeps its
# output in logs/, and appends its JSON summary with the run's conditions to runs.jsonl:
# load average, CPU steal, how busy each core was, and the CPU used by the server process,
# by PostgreSQL and Redis, and by the load client (as a share of one core over the run).
measure() {
  local server="$1" round="$2" scenario="$3"
  shift 3
  local log_file="$logs/$server-$scenario-r$round.log" before after load1 started wall rc
  local server_before server_after services_before services_after client summary
  log "round $round · $server · $scenario"
  load1="$(cut -d' ' -f1 /proc/loadavg)"
  before="$(cpu_snapshot)"
  server_before="$(proc_ticks "${server_pids[@]}")"
  services_before="$(services_ticks)"
  started="$(date +%s.%N)"
  rc=0
  local TIMEFORMAT='%3U %3S'
  { time timeout --kill-after=10 "$RUN_TIMEOUT" taskset -c "$LOAD_CPUS" "$@" \
    >"$log_file" 2>&1; } 2>"$scratch/client-time" || rc=$?
  wall="$(awk -v a="$(date +%s.%N)" -v b="$started" 'BEGIN { printf "%.3f", a - b }')"
  after="$(cpu_snapshot)"
  server_after="$(proc_ticks "${server_pids[@]}")"
  services_after="$(services_ticks)"
  client="$(tail -n 1 "$scratch/client-time")"
  summary="$(grep '^{' "$log_file" | tail -n 1 || true)"
  [[ -n $summary ]] || summary=null
  if ((rc != 0)); then
    log "  exit $rc; last lines of ${log_file#"$repo"/}:"
    tail -n 5 "$log_file" | sed 's/^/    /' >&2
  fi
  local processes
  processes="$(awk -v wall="$wall" -v hz="$clock_ticks" -v sb="$server_before" \
    -v sa="$server_after" -v vb="$services_before" -v va="$services_after" -v client="$client" \
    -v has_server="${#server_pids[@]}" 'BEGIN {
      split(client, c, " ")
      # A backend that exits during the run takes its CPU time with it: never below zero.
      services = va - vb > 0 ? va - vb : 0
      printf "\"client_cpu_pct\":%.1f,\"services_cpu_pct\":%.1f", 100 * (c[1] + c[2]) / wall, \
        100 * services / hz / wall
      if (has_server > 0) printf ",\"server_cpu_pct\":%.1f", 100 * (sa - sb) / hz / wall
    }')"
  printf '{"server":"%s","round":%d,"scenario":"%s","exit":%d,"wall_seconds":%s,"loadavg_1m":%s,%s,%s,"summary":%s}\n' \
    "$server" "$round" "$scenario" "$rc" "$wall" "$load1" "$(cpu_figures "$before" "$after")" \
    "$processes" "$summary" >>"$runs"
}

# skip SERVER ROUND SCENARIO REASON: records that a run could not take place, and why.
skip() {
  log "round $2 · $1 · $3: skipped ($4)"
  printf '{"server":"%s","round":%d,"scenario":"%s","skipped":"%s"}\n' "$1" "$2" "$3" "$4" >>"$runs"
}

# --- the load generator ------------------------------------------------------------------

generator_help="$("$loadtest_bin" --help 2>&1 || true)"
# has_scenario NAME: whether this build of paranimo-loadtest has the scenario.
has_scenario() { grep -qE "^[[:space:]]+$1([[:space:]]|$)" <<<"$generator_help"; }

scenario_args() {
  case "$1" in
    idle) echo idle --connections "$IDLE_CONNECTIONS" --hold-seconds "$IDLE_HOLD_SECONDS" ;;
    fanout)
      echo fanout --subscribers "$FANOUT_SUBSCRIBERS" --events "$FANOUT_EVENTS" \
        --interval-ms "$FANOUT_INTERVAL_MS"
      ;;
    # The same, published back to back: deliveries per second at saturation.
    fanout-burst)
      echo fanout --subscribers "$FANOUT_SUBSCRIBERS" --events "$FANOUT_EVENTS" --interval-ms 0
      ;;
    chat) echo chat --pairs "$CHAT_PAIRS" --messages "$CHAT_MESSAGES" --rate "$CHAT_RATE" ;;
    relay) echo relay --pairs "$RELAY_PAIRS" --messages "$RELAY_MESSAGES" --rate "$RELAY_RATE" ;;
  esac
}

# Paranimo refuses more than 16 sockets on one session (MAX_SOCKETS_PER_SESSION in
# src/ws/mod.rs): spread the connections over enough accounts to stay below that, with room
# for sockets of the previous scenario still closing.
SOCKETS_PER_USER=12
users_for() {
  local needed=$((($1 + SOCKETS_PER_USER - 1) / SOCKETS_PER_USER))
  echo $((needed > LOAD_USERS ? needed : LOAD_USERS))
}

# Paranimo needs accounts; the generic peers take no --users.
paranimo_extra() {
  case "$1" in
    idle) echo --users "$(users_for "$IDLE_CONNECTIONS")" ;;
    fanout*) echo --users "$(users_for "$FANOUT_SUBSCRIBERS")" ;;
  esac
}

mail_dir="$scratch/mail"
accounts_cache="$scratch/accounts.json"
mkdir -p "$mail_dir" "$scratch/web"

# --- servers -----------------------------------------------------------------------------

server_pids=()

# wait_port PORT [SECONDS]: until something accepts connections on 127.0.0.1:PORT.
wait_port() {
  local i
  for ((i = 0; i < ${2:-15} * 10; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# on_server_core LOG COMMAND…: starts a server in the background on the server's cores.
on_server_core() {
  local log_file="$1"
  shift
  taskset -c "$SERVER_CPUS" "$@" >>"$log_file" 2>&1 &
  server_pids+=("$!")
  running+=("$!")
}

# start_paranimo LOG PORT ORIGIN: one release node on PORT, waited for until ready. Every
# node of a run shares the database, the Redis prefix and the public origin: that is how
# Paranimo nodes make one cluster (every websocket event goes through Redis pub/sub).
start_paranimo() {
  local log_file="$1" port="$2" origin="$3"
  on_server_core "$log_file" env \
    DATABASE_URL="$(db_url "$db_name")" REDIS_URL="$REDIS_URL" REDIS_PREFIX="$redis_prefix" \
    BIND="127.0.0.1:$port" PUBLIC_ORIGIN="$origin" \
    MAIL_TRANSPORT="folder:$mail_dir" TRUSTED_PROXIES=127.0.0.1 RUST_LOG=warn \
    ROOM_OPENS_MINUTES_BEFORE=100000 HTTP_WORKERS="$server_workers" WEB_DIR="$scratch/web" \
    "$paranimo_bin" serve
  local pid="${server_pids[-1]}" i
  for ((i = 0; i < 600; i++)); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# start_server NAME: starts it, waits until it answers, checks its protocol. Returns non-zero
# (after logging why) when it cannot be measured.
start_server() {
  local name="$1" port
  server_pids=()
  case "$name" in
    paranimo)
      port_free "$PORT_PARANIMO" || { log "port $PORT_PARANIMO is taken"; return 1; }
      start_paranimo "$logs/paranimo-server.log" "$PORT_PARANIMO" \
        "http://127.0.0.1:$PORT_PARANIMO" ||
        { log "Paranimo did not become ready (see logs/paranimo-server.log)"; return 1; }
      return 0
      ;;
    paranimo-2)
      # One after the other, so the second finds the migrations done.
      for port in "${PORT_PARANIMO_2[@]}"; do
        port_free "$port" || { log "port $port is taken"; return 1; }
        start_paranimo "$logs/paranimo-2-server.log" "$port" \
          "http://127.0.0.1:${PORT_PARANIMO_2[0]}" || {
          log "Paranimo node $port did not become ready (see logs/paranimo-2-server.log)"
          return 1
        }
      done
      return 0
      ;;
    node-ws) port="$PORT_NODE_WS"; port_free "$port" || return 1
      on_server_core "$logs/node-ws-server.log" env PORT="$port" node "$peers/node-ws/server.mjs" ;;
    bun) port="$PORT_BUN"; port_free "$port" || return 1
      on_server_core "$logs/bun-server.log" env PORT="$port" "$bun_bin" "$peers/bun/server.ts" ;;
    tokio-minimal) port="$PORT_TOKIO"; port_free "$port" || return 1
      on_server_core "$logs/tokio-minimal-server.log" env PORT="$port" "$tokio_bin" ;;
    socketio) port="$PORT_SOCKETIO"; port_free "$port" || return 1
      on_server_core "$logs/socketio-server.log" env PORT="$port" \
        node "$peers/socketio/server.mjs"
      wait_port "$port"
      return
      ;;
    socketio-2)
      for port in "${PORT_SOCKETIO_2[@]}"; do
        port_free "$port" || return 1
        on_server_core "$logs/socketio-2-server.log" env PORT="$port" REDIS_URL="$REDIS_URL" \
          REDIS_PREFIX="$sio_prefix" node "$peers/socketio/server.mjs"
      done
      for port in "${PORT_SOCKETIO_2[@]}"; do wait_port "$port" || return 1; done
      return 0
      ;;
  esac
  wait_port "$port" || { log "$name did not open port $port"; return 1; }
  # A peer that answers the protocol wrongly would be measured doing something else.
  node "$here/check-peer.mjs" "ws://127.0.0.1:$port/ws" >>"$logs/$name-server.log" 2>&1 ||
    { log "$name failed the protocol check (see logs/$name-server.log)"; return 1; }
}

stop_server() {
  ((${#server_pids[@]} == 0)) || stop_pids "${server_pids[@]}"
  local pid kept=()
  for pid in "${running[@]}"; do
    [[ " ${server_pids[*]} " == *" $pid "* ]] || kept+=("$pid")
  done
  running=("${kept[@]}")
  server_pids=()
}

# --- the machine's limits ----------------------------------------------------------------

# Redis PUBLISH with two subscribers (as two Paranimo nodes would be), one at a time and
# pipelined (as a multiplexed connection sends them).
measure_redis() {
  local round="$1" channel="${redis_prefix}bench" payload subs=() pipeline pid
  payload="$(printf '{"type":"event","topic":"availability:%s","seq":%s,"event":{"kind":"slot.taken"}}' \
    "$(printf '%036d' 0)" 1)"
  for _ in 1 2; do
    taskset -c "$LOAD_CPUS" redis-cli -u "$REDIS_URL" subscribe "$channel" >/dev/null 2>&1 &
    subs+=("$!")
    running+=("$!")
  done
  sleep 0.5
  for pipeline in 1 16; do
    measure redis "$round" "publish-p$pipeline" \
      bash "$here/redis-publish.sh" "$REDIS_URL" "$channel" "$payload" "$REDIS_REQUESTS" "$pipeline"
  done
  stop_pids "${subs[@]}"
  local kept=()
  for pid in "${running[@]}"; do [[ " ${subs[*]} " == *" $pid "* ]] || kept+=("$pid"); done
  running=("${kept[@]}")
}

pgbench_ready=0
prepare_pgbench() {
  log "preparing the pgbench database $pgbench_db (Paranimo's migrations, seeded accounts)"
  pg_sql "$ADMIN_URL" "create database \"$pgbench_db\"" >/dev/null
  local file
  for file in "$repo"/migrations/*.sql; do
    psql "$(db_url "$pgbench_db")" -X -q -1 -v ON_ERROR_STOP=1 -f "$file" >/dev/null
  done
  psql "$(db_url "$pgbench_db")" -X -q -v ON_ERROR_STOP=1 -v therapists=64 -v clients=20000 \
    -f "$here/pgbench/seed.sql" >/dev/null
  pgbench_ready=1
}

measure_postgres() {
  local round="$1"
  ((pgbench_ready)) || prepare_pgbench
  # spread: every transaction books a slot of its own, the insert rate of this SQL.
  measure postgres "$round" booking-spread bash "$here/pgbench/run.sh" "$(db_url "$pgbench_db")" \
    spread "$PGBENCH_CLIENTS" "$PGBENCH_SECONDS" 64 20000 0
  # contended: the load generator's booking race, C clients each trying S times for S slots.
  measure postgres "$round" booking-contended bash "$here/pgbench/run.sh" \
    "$(db_url "$pgbench_db")" contended "$BOOKING_CLIENTS" "$BOOKING_SLOTS" \
    "$BOOKING_THERAPISTS" 20000 "$((BOOKING_SLOTS / BOOKING_THERAPISTS))"
}

# --- one server's turn -------------------------------------------------------------------

turn() {
  local name="$1" round="$2" scenario
  case "$name" in
    redis)
      command -v redis-benchmark >/dev/null || { skip redis "$round" publish "no redis-benchmark"; return; }
      measure_redis "$round"
      return
      ;;
    postgres)
      command -v pgbench >/dev/null || { skip postgres "$round" booking "no pgbench"; return; }
      measure_postgres "$round"
      return
      ;;
    bun)
      "$bun_bin" --version >/dev/null 2>&1 || {
        skip bun "$round" all "the bun binary from the npm package does not run here"
        return
      }
      ;;
  esac
  if ! start_server "$name"; then
    stop_server
    skip "$name" "$round" all "the server did not start or failed the protocol check"
    return
  fi
  local scenarios=(idle fanout fanout-burst chat relay)
  [[ $name == paranimo ]] && scenarios+=(booking booking-spread)
  # Two Paranimo nodes: the fanout rate across them, set beside one node's.
  [[ $name == paranimo-2 ]] && scenarios=(fanout fanout-burst)
  local server_pid_list
  server_pid_list="$(IFS=,; echo "${server_pids[*]}")"
  for scenario in "${scenarios[@]}"; do
    if [[ $name == socketio* ]]; then
      # Socket.IO's framing needs its own client (see loadtest/peers/socketio/client.mjs).
      local urls=() pids=() port pid
      if [[ $name == socketio ]]; then
        urls=(--url "http://127.0.0.1:$PORT_SOCKETIO")
      else
        for port in "${PORT_SOCKETIO_2[@]}"; do urls+=(--url "http://127.0.0.1:$port"); done
      fi
      for pid in "${server_pids[@]}"; do pids+=(--server-pid "$pid"); done
      # shellcheck disable=SC2046 # the scenario's arguments are words on purpose
      measure "$name" "$round" "$scenario" node "$peers/socketio/client.mjs" \
        $(scenario_args "$scenario") "${urls[@]}" "${pids[@]}" \
        --connect-concurrency "$CONNECT_CONCURRENCY"
      continue
    fi
    # fanout-burst and booking-spread are fanout and booking with other arguments.
    local base_scenario="${scenario%-burst}"
    base_scenario="${base_scenario%-spread}"
    if ! has_scenario "$base_scenario"; then
      skip "$name" "$round" "$scenario" "paranimo-loadtest has no '$base_scenario' scenario yet"
      continue
    fi
    local common=(--server-pid "$server_pid_list" --connect-concurrency "$CONNECT_CONCURRENCY")
    if [[ $name == paranimo* ]]; then
      local bases="http://127.0.0.1:$PORT_PARANIMO" port
      if [[ $name == paranimo-2 ]]; then
        bases=""
        for port in "${PORT_PARANIMO_2[@]}"; do bases+="${bases:+,}http://127.0.0.1:$port"; done
      fi
      # The accounts are shared by both turns: the nodes use the same database.
      common+=(--base "$bases" --mail-dir "$mail_dir" --accounts-cache "$accounts_cache")
      if [[ $scenario == booking ]]; then
        measure "$name" "$round" booking "$loadtest_bin" "${common[@]}" booking \
          --clients "$BOOKING_CLIENTS" --slots "$BOOKING_SLOTS" \
          --therapists "$BOOKING_THERAPISTS" --database-url "$(db_url "$db_name")"
        continue
      fi
      if [[ $scenario == booking-spread ]]; then
        measure "$name" "$round" booking-spread "$loadtest_bin" "${common[@]}" booking \
          --spread --clients "$BOOKING_SPREAD_CLIENTS" \
          --slots "$((BOOKING_SPREAD_THERAPISTS * 8))" \
          --therapists "$BOOKING_SPREAD_THERAPISTS" --database-url "$(db_url "$db_name")"
        continue
      fi
      # shellcheck disable=SC2046
      measure "$name" "$round" "$scenario" "$loadtest_bin" "${common[@]}" \
        $(scenario_args "$scenario") $(paranimo_extra "$scenario")
    else
      local port
      case "$name" in
        node-ws) port="$PORT_NODE_WS" ;;
        bun) port="$PORT_BUN" ;;
        tokio-minimal) port="$PORT_TOKIO" ;;
      esac
      # shellcheck disable=SC2046
      measure "$name" "$round" "$scenario" "$loadtest_bin" "${common[@]}" --target generic \
        --base "ws://127.0.0.1:$port/ws" $(scenario_args "$scenario")
    fi
  done
  stop_server
}

# --- the run -----------------------------------------------------------------------------

log "creating the fresh database $db_name for Paranimo"
pg_sql "$ADMIN_URL" "create database \"$db_name\"" >/dev/null

read -r -a order <<<"$SERVERS"
started_at=$SECONDS
for ((round = 1; round <= ROUNDS; round++)); do
  # Each round starts one server later, so no server always runs first (or last).
  shift_by=$(((round - 1) % ${#order[@]}))
  this_round=("${order[@]:shift_by}" "${order[@]:0:shift_by}")
  log "=== round $round of $ROUNDS: ${this_round[*]}"
  for name in "${this_round[@]}"; do turn "$name" "$round"; done
done
measured_seconds=$((SECONDS - started_at))

# --- the report --------------------------------------------------------------------------

cat >"$out/conditions.json" <<EOF
{"started":"$stamp","measured_seconds":$measured_seconds,"rounds":$ROUNDS,
 "commit":"$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)",
 "dirty":$(if [[ -n "$(git -C "$repo" status --porcelain 2>/dev/null)" ]]; then echo true; else echo false; fi),
 "cores":$cores,"load_cpus":"$LOAD_CPUS","server_cpus":"$SERVER_CPUS",
 "cpu_model":"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)",
 "memory_kib":$(sed -n 's/^MemTotal: *\([0-9]*\).*/\1/p' /proc/meminfo),
 "kernel":"$(uname -r)","node":"$(node --version)",
 "bun":"$("$bun_bin" --version 2>/dev/null || echo none)",
 "postgres":{"fsync":"$(pg_sql "$ADMIN_URL" 'show fsync')","synchronous_commit":"$(pg_sql "$ADMIN_URL" 'show synchronous_commit')","server_version":"$(pg_sql "$ADMIN_URL" 'show server_version')"},
 "redis":"$(redis-cli -u "$REDIS_URL" info server 2>/dev/null | sed -n 's/^redis_version:\(.*\)\r$/\1/p')",
 "open_files_limit":"$(ulimit -n)",
 "sizes":{"idle_connections":$IDLE_CONNECTIONS,"idle_hold_seconds":$IDLE_HOLD_SECONDS,
   "fanout_subscribers":$FANOUT_SUBSCRIBERS,"fanout_events":$FANOUT_EVENTS,
   "fanout_interval_ms":$FANOUT_INTERVAL_MS,"chat_pairs":$CHAT_PAIRS,
   "chat_messages":$CHAT_MESSAGES,"chat_rate":$CHAT_RATE,"relay_pairs":$RELAY_PAIRS,
   "relay_messages":$RELAY_MESSAGES,"relay_rate":$RELAY_RATE,"load_users":$LOAD_USERS,
   "booking_clients":$BOOKING_CLIENTS,"booking_slots":$BOOKING_SLOTS,
   "booking_therapists":$BOOKING_THERAPISTS,
   "booking_spread_clients":$BOOKING_SPREAD_CLIENTS,
   "booking_spread_therapists":$BOOKING_SPREAD_THERAPISTS,"pgbench_clients":$PGBENCH_CLIENTS,
   "connect_concurrency":$CONNECT_CONCURRENCY,
   "pgbench_seconds":$PGBENCH_SECONDS,"redis_requests":$REDIS_REQUESTS}}
EOF
node "$here/report.mjs" "$out"
log "measured in $((measured_seconds / 60))m$((measured_seconds % 60))s; see ${out#"$repo"/}/summary.md"
