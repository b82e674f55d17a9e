#!/usr/bin/env bash
# Open-loop load figure for `acme serve` (bench/RESULTS.md): as run.sh (a fresh data directory,
# MEMBERS members, contributions under new Idempotency-Keys, durability on), but requests go out
# at a fixed RATE whatever the answers, and latency counts from each request's due time
# (bench/src/bin/serve_load.rs). Usage: bench/serve/open_loop.sh [RATE] [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/../.."
RATE="${1:-10000}"
SECONDS_RUN="${2:-60}"
CONNECTIONS="${3:-64}"
MEMBERS="${MEMBERS:-100}"
DATA="$(mktemp -d /tmp/acme-bench-serve.XXXX)"
cargo build --release -q -p acme-tools -p acme-bench --features acme-tools/tigerbeetle
./target/release/acme serve --listen 127.0.0.1:18090 --data "$DATA" > "$DATA/serve.out" 2>&1 &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true; rm -rf "$DATA"' EXIT
until grep -q listening "$DATA/serve.out"; do sleep 0.1; done
TOKEN="$(awk '$1 == "channel" {print $2}' "$DATA/tokens")"
for m in $(seq 1 "$MEMBERS"); do
  curl -sf -o /dev/null -X POST 127.0.0.1:18090/v1/members -H "Authorization: Bearer $TOKEN" \
    -d "{\"member_id\": \"M-$m\", \"risk_profile\": \"balanced\"}"
done
./target/release/serve_load 127.0.0.1:18090 "$TOKEN" "$RATE" "$SECONDS_RUN" "$CONNECTIONS" "$MEMBERS"
curl -s 127.0.0.1:18090/metrics | grep -v '^#' | grep -E 'journal|host_(snapshots|outbox|dedupe|group)'
grep -c . "$DATA/api/journal" | sed 's/^/api journal records: /'
