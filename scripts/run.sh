#!/usr/bin/env bash
# Run Paranimo on this machine:   ./scripts/run.sh --demo
#
# Finds or starts PostgreSQL and Redis (see scripts/lib/services.sh), builds the web app,
# then runs the server in release mode. Arguments go to `paranimo serve` (for example
# --demo loads demo data into an empty database). The server migrates the database itself.
#
# Environment: BIND (default 127.0.0.1:8080), PUBLIC_ORIGIN (passed on when set),
# DATABASE_URL / REDIS_URL (used when they answer), PARANIMO_DATA (private services).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
# shellcheck source=scripts/lib/services.sh
source "$repo/scripts/lib/services.sh"

ensure_build_tools
ensure_postgres paranimo
ensure_redis
ensure_node
build_web

export WEB_DIR="$repo/web/dist"
export BIND="${BIND:-127.0.0.1:8080}"
# Only pass PUBLIC_ORIGIN on when the caller chose one: the server derives a default.
if [[ -n ${PUBLIC_ORIGIN:-} ]]; then export PUBLIC_ORIGIN; fi
use_sqlx_offline_if_prepared

# Where to point a browser: a wildcard bind is reachable on localhost.
url_host="${BIND%:*}"
case "$url_host" in 0.0.0.0 | "[::]" | "") url_host=localhost ;; esac
log "building and starting the server; then open ${PUBLIC_ORIGIN:-http://$url_host:${BIND##*:}/}"

cd "$repo"
exec cargo run --release --bin paranimo -- serve "$@"
