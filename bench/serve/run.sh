#!/usr/bin/env bash
# Load figure for `acme serve` (bench/RESULTS.md): a fresh data directory, MEMBERS members, then
# wrk posting contributions, each under a new Idempotency-Key, durability on (every 202 after the
# API's journal sync and intake's). Usage: bench/serve/run.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v wrk >/dev/null || apt-get install -y wrk
SECONDS_RUN="${1:-60}"
CONNECTIONS="${2:-64}"
export MEMBERS="${MEMBERS:-100}"
DATA="$(mktemp -d /tmp/acme-bench-serve.XXXX)"
cargo build --release -q -p acme-tools --features acme-tools/tigerbeetle
./target/release/acme serve --listen 127.0.0.1:18090 --data "$DATA" > "$DATA/serve.out" 2>&1 &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true; rm -rf "$DATA"' EXIT
until grep -q listening "$DATA/serve.out"; do sleep 0.1; done
export TOKEN="$(awk '$1 == "channel" {print $2}' "$DATA/tokens")"
for m in $(seq 1 "$MEMBERS"); do
  curl -sf -o /dev/null -X POST 127.0.0.1:18090/v1/members -H "Authorization: Bearer $TOKEN" \
    -d "{\"member_id\": \"M-$m\", \"risk_profile\": \"balanced\"}"
done
wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_RUN}s" --latency -s bench/serve/contribute.lua \
  http://127.0.0.1:18090
curl -s 127.0.0.1:18090/metrics | grep -v '^#'
grep -c . "$DATA/api/journal" | sed 's/^/api journal records: /'
