#!/usr/bin/env bash
# What replicas receive: the same scripts against Debian's redis-server and shardis
# (two cores), read from each server's replication stream by a fake replica; the
# streams must hold the same commands in the same order (see propagation.py).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
trap 'kill $SHARDIS_PID $REDIS_PID 2>/dev/null || true; rm -rf "$tmp"' EXIT
start_redis "$tmp" --repl-diskless-sync-delay 0 --enable-debug-command yes
start_shardis "$tmp/shardis.log" --threads 2 --repl-diskless-sync-delay 0 --enable-debug-command yes
python3 crates/server/tests/differential/propagation.py "$REDIS_PORT" "$SHARDIS_PORT" crates/server/tests/differential/propagation/*.txt
