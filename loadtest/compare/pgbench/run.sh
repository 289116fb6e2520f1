#!/usr/bin/env bash
# One pgbench run of Paranimo's booking transaction (booking.sql beside this file), reported
# like the load generator's scenarios: a readable table, then a one-line JSON summary.
#   run.sh DATABASE_URL spread    CLIENTS SECONDS          THERAPISTS CLIENT_POOL _
#   run.sh DATABASE_URL contended CLIENTS TRIES_PER_CLIENT THERAPISTS CLIENT_POOL SLOTS
# spread: every transaction books its own slot for a client of its own, for SECONDS (the
# SQL's insert rate). contended: like the load generator's booking race, each of CLIENTS
# makes TRIES_PER_CLIENT attempts at random among THERAPISTS × SLOTS slots; most are refused
# by the constraints, and a client holds at most 8 (Paranimo's MAX_UPCOMING_PER_CLIENT).
# The database must have Paranimo's migrations and seed.sql applied (run.sh does that).
set -euo pipefail

url="$1" mode="$2" clients="$3" amount="$4" therapists="$5" pool="$6" slots="$7"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT

# audit_events is append-only by trigger; this scratch database (superuser) sets the
# triggers aside for the reset, as a restore would.
psql "$url" -X -q -v ON_ERROR_STOP=1 -c "SET session_replication_role = replica" \
  -c "TRUNCATE bookings CASCADE" -c "DELETE FROM audit_events" >/dev/null

case "$mode" in
  spread) length=(-T "$amount") spread=1 slots=1 ;;
  contended) length=(-t "$amount") spread=0 ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
# Prepared statements, as sqlx uses; deadlocks (40P01) retried up to 10 times, as the
# server's store does.
rc=0
output="$(pgbench -n -M prepared -c "$clients" -j 1 "${length[@]}" --max-tries=10 \
  -D therapists="$therapists" -D clients="$pool" -D slots="$slots" -D spread="$spread" \
  -D cap=8 -D n=0 -D nclients="$clients" -f "$here/booking.sql" -l --log-prefix="$logs/tx" "$url" 2>&1)" || rc=$?
echo "$output" >&2

field() { sed -n "s/^$1 *[=:] *\([0-9.]*\).*/\1/p" <<<"$output" | head -n 1; }
processed="$(field 'number of transactions actually processed')"
failed="$(field 'number of failed transactions')"
retried="$(field 'number of transactions retried')"
tps="$(field 'tps')"

# What the constraints allowed, and a check that they held (the load generator's query).
read -r confirmed therapist_overlaps client_overlaps < <(psql "$url" -X -A -t -F ' ' -c "
  SELECT (SELECT count(*) FROM bookings WHERE status = 'confirmed'),
         (SELECT count(*) FROM bookings a JOIN bookings b ON a.id < b.id
            AND a.therapist_id = b.therapist_id AND a.during && b.during
            WHERE a.status = 'confirmed' AND b.status = 'confirmed'),
         (SELECT count(*) FROM bookings a JOIN bookings b ON a.id < b.id
            AND a.client_id = b.client_id AND a.during && b.during
            WHERE a.status = 'confirmed' AND b.status = 'confirmed')")

# Per-transaction latencies (third column of pgbench's log, in microseconds).
read -r p50 p99 max < <(cat "$logs"/tx.* | awk '$3 ~ /^[0-9]+$/ { print $3 }' | sort -n | awk '
  { v[NR] = $1 }
  END {
    if (NR == 0) { print "0 0 0"; exit }
    printf "%.3f %.3f %.3f\n", v[int((NR - 1) * 0.5 + 1.5)] / 1000, v[int((NR - 1) * 0.99 + 1.5)] / 1000, v[NR] / 1000
  }')

seconds="$(awk -v n="$processed" -v t="$tps" 'BEGIN { printf "%.3f", (t > 0 ? n / t : 0) }')"
per_second="$(awk -v c="$confirmed" -v s="$seconds" 'BEGIN { printf "%.3f", (s > 0 ? c / s : 0) }')"
ok=false
[[ $rc == 0 && $failed == 0 && $therapist_overlaps == 0 && $client_overlaps == 0 ]] && ok=true

printf '%-24s %s\n' scenario "booking-$mode (pgbench)" clients "$clients" \
  transactions "$processed" failed "$failed" retried "$retried" tps "$tps" \
  confirmed "$confirmed" confirmed_per_second "$per_second" \
  overlaps "$therapist_overlaps therapist / $client_overlaps client" \
  "p50 / p99 / max" "$p50 / $p99 / $max ms"
printf '{"scenario":"booking-%s","target":"pgbench","clients":%s,"transactions":%s,"failed":%s,"retried":%s,"tps":%s,"seconds":%s,"confirmed":%s,"confirmed_per_second":%s,"db_therapist_overlaps":%s,"db_client_overlaps":%s,"latency_p50_ms":%s,"latency_p99_ms":%s,"latency_max_ms":%s,"ok":%s}\n' \
  "$mode" "$clients" "$processed" "$failed" "$retried" "$tps" "$seconds" "$confirmed" \
  "$per_second" "$therapist_overlaps" "$client_overlaps" "$p50" "$p99" "$max" "$ok"
