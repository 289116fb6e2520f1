#!/usr/bin/env bash
# Run every test:   ./scripts/test.sh            (what CI runs, via .ci/run)
#                   ./scripts/test.sh --quick    (skip clippy and the browser test)
#
# Stages, stopping at the first failure: formatting, clippy, `cargo test --workspace`,
# then the browser test (web/e2e/run.mjs against a debug build of the server).
# PostgreSQL and Redis are found or started by scripts/lib/services.sh. Tests get
# DATABASE_URL pointing at the admin database `postgres`, and create and drop their own
# databases from it.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
# shellcheck source=scripts/lib/services.sh
source "$repo/scripts/lib/services.sh"

usage() {
  sed -n '2,3s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
}

quick=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
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

# --- timing: each stage reports its duration; a summary is printed at exit -------------

stage_name=""
stage_start=0
summary=()

fmt_secs() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

stage() {
  local name="$1"
  shift
  stage_name="$name"
  stage_start=$SECONDS
  log "=== $name"
  "$@" # runs under set -e: a failure ends the script, and on_exit names the stage
  local took=$((SECONDS - stage_start))
  summary+=("$(printf '%-14s %s' "$name" "$(fmt_secs "$took")")")
  log "=== $name: ok ($(fmt_secs "$took"))"
  stage_name=""
}

on_exit() {
  local rc=$?
  if ((${#summary[@]} > 0)); then
    log "--- stages:"
    local line
    for line in "${summary[@]}"; do log "    $line"; done
  fi
  if ((rc != 0)) && [[ -n $stage_name ]]; then
    log "FAILED at stage '$stage_name' after $(fmt_secs $((SECONDS - stage_start)))"
  elif ((rc == 0)); then
    log "all tests passed in $(fmt_secs "$SECONDS")"
  fi
}
trap on_exit EXIT

# --- build settings ----------------------------------------------------------------------

# A CI clone is fresh each time but the machine is not: keep compiled dependencies in a
# persistent folder outside the clone, or every run would rebuild everything from clean.
if [[ ${CI:-} == true && -z ${CARGO_TARGET_DIR:-} ]]; then
  export CARGO_TARGET_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/paranimo-target"
fi
if [[ -n ${CARGO_TARGET_DIR:-} ]]; then
  mkdir -p "$CARGO_TARGET_DIR"
  CARGO_TARGET_DIR="$(cd "$CARGO_TARGET_DIR" && pwd -P)" # relative paths break after cd
  log "cargo target dir: $CARGO_TARGET_DIR"
fi
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"

# rustup's "minimal" profile leaves out rustfmt and clippy; add them when rustup can.
ensure_rust_components() {
  local needed=(rustfmt)
  ((quick)) || needed+=(clippy)
  local c missing=()
  for c in "${needed[@]}"; do
    case "$c" in
      rustfmt) cargo fmt --version >/dev/null 2>&1 || missing+=("$c") ;;
      clippy) cargo clippy --version >/dev/null 2>&1 || missing+=("$c") ;;
    esac
  done
  ((${#missing[@]} == 0)) && return 0
  command -v rustup >/dev/null 2>&1 ||
    die "cargo ${missing[*]} not available and no rustup to add it"
  log "adding Rust components: ${missing[*]}"
  rustup component add "${missing[@]}" >&2
}

setup() {
  ensure_build_tools
  ensure_rust_components
  ensure_postgres postgres # the admin database: tests create their own from it
  ensure_redis
  ensure_smtp_sink_tools # the mail tests run a real SMTP server
  if ((quick)); then
    log "--quick: skipping Node.js, Chromium and the web build (browser test skipped)"
  else
    ensure_node
    ensure_chromium
    build_web
    export WEB_DIR="$repo/web/dist"
    # src/protocol.ts checked against the Rust wire types: a mismatch would otherwise only
    # show up as a broken page.
    (cd "$repo/web" && npm test >&2)
  fi
  use_sqlx_offline_if_prepared
}

browser_test() {
  [[ -f $repo/web/e2e/run.mjs ]] || die "web/e2e/run.mjs is missing: no browser test to run"
  # The test stage already built the server with the workspace's test features; asking for
  # the same build reuses it, where `cargo build --bin` would rebuild many crates.
  cargo test --workspace --no-run >&2
  local bin="$target_dir/debug/paranimo"
  [[ -x $bin ]] || die "built the server but found no binary at $bin"
  PARANIMO_BIN="$bin" CHROMIUM_PATH="$CHROMIUM_PATH" DATABASE_URL="$DATABASE_URL" \
    REDIS_URL="$REDIS_URL" WEB_DIR="$repo/web/dist" node "$repo/web/e2e/run.mjs"
}

cd "$repo"
stage setup setup
stage fmt cargo fmt --all -- --check
if ((quick)); then
  log "--quick: skipping clippy"
else
  stage clippy cargo clippy --workspace --all-targets -- -D warnings
fi
stage test cargo test --workspace
if ((quick)); then
  log "--quick: skipping the browser test"
else
  stage browser browser_test
fi
