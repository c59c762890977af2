#!/usr/bin/env bash
# Keyspace notifications: the same scripts against Debian's redis-server and shardis
# (two cores), every subscriber message must match, key by key (see notify.py).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
trap 'kill $SHARDIS_PID $REDIS_PID 2>/dev/null || true; rm -rf "$tmp"' EXIT
start_redis "$tmp"
start_shardis "$tmp/shardis.log" --threads 2
python3 crates/server/tests/differential/notify.py "$REDIS_PORT" "$SHARDIS_PORT" crates/server/tests/differential/notify/*.txt
