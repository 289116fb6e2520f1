#!/usr/bin/env bash
# One redis-benchmark run of PUBLISH on a channel with subscribers attached, reported like
# the load generator's scenarios: a readable table, then a one-line JSON summary.
#   redis-publish.sh REDIS_URL CHANNEL PAYLOAD REQUESTS PIPELINE
# Called by run.sh, which starts the subscribers. Publishes only to CHANNEL; flushes nothing.
set -euo pipefail

url="$1" channel="$2" payload="$3" requests="$4" pipeline="$5"
# Concurrent connections publishing, as a busy server's pool would.
clients=50

subscribers="$(redis-cli -u "$url" pubsub numsub "$channel" | sed -n 2p)"
csv="$(redis-benchmark -u "$url" -c "$clients" -n "$requests" -P "$pipeline" --csv \
  PUBLISH "$channel" "$payload" | tail -n 1)"
subscribers_after="$(redis-cli -u "$url" pubsub numsub "$channel" | sed -n 2p)"

# "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",
# "p99_latency_ms","max_latency_ms"; the first field holds the command (and commas).
IFS=, read -r -a fields <<<"$(tr -d '"' <<<"$csv" | awk -F, '{ print $(NF-6)","$(NF-3)","$(NF-1)","$NF }')"
rps="${fields[0]}" p50="${fields[1]}" p99="${fields[2]}" max="${fields[3]}"
deliveries="$(awk -v r="$rps" -v s="$subscribers_after" 'BEGIN { printf "%.0f", r * s }')"

printf '%-24s %s\n' scenario "publish (redis-benchmark, pipeline $pipeline)" \
  clients "$clients" requests "$requests" subscribers "$subscribers → $subscribers_after" \
  publish_per_second "$rps" deliveries_per_second "$deliveries" \
  "p50 / p99 / max" "$p50 / $p99 / $max ms"
ok=false
[[ $subscribers_after == "$subscribers" && $subscribers -gt 0 ]] && ok=true
printf '{"scenario":"publish","target":"redis","clients":%s,"requests":%s,"pipeline":%s,"subscribers":%s,"subscribers_after":%s,"payload_bytes":%s,"publish_per_second":%s,"deliveries_per_second":%s,"latency_p50_ms":%s,"latency_p99_ms":%s,"latency_max_ms":%s,"ok":%s}\n' \
  "$clients" "$requests" "$pipeline" "$subscribers" "$subscribers_after" "${#payload}" "$rps" \
  "$deliveries" "$p50" "$p99" "$max" "$ok"
