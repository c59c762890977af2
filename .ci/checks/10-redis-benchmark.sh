#!/usr/bin/env bash
# redis-benchmark's everyday tests run against shardis without a single error.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
trap 'kill $SHARDIS_PID 2>/dev/null || true; rm -rf "$tmp"' EXIT
start_shardis "$tmp/shardis.log" --threads 2
# -q still prints progress lines ending in CR; keep only the final lines.
out=$(redis-benchmark -p "$SHARDIS_PORT" -q -n 100000 -t ping,set,get,incr,mset 2>&1 | tr '\r' '\n' | grep -v 'rps=' | grep -v '^ *$')
echo "$out"
if echo "$out" | grep -qi "error"; then echo "redis-benchmark reported errors"; exit 1; fi
for t in PING_INLINE PING_MBULK SET GET INCR MSET; do
  echo "$out" | grep -q "^ *$t.*: .*requests per second" || { echo "missing result for $t"; exit 1; }
done

# redis-benchmark's whole default suite (no -t): every test must report a result.
out=$(redis-benchmark -p "$SHARDIS_PORT" -q -n 20000 2>&1 | tr '\r' '\n' | grep -v 'rps=' | grep -v '^ *$')
echo "$out"
if echo "$out" | grep -qi "error"; then echo "redis-benchmark default suite reported errors"; exit 1; fi
results=$(echo "$out" | grep -c "requests per second")
[ "$results" -ge 20 ] || { echo "default suite: only $results results"; exit 1; }
