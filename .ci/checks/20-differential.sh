#!/usr/bin/env bash
# Same command scripts against Debian's redis-server and shardis; every reply must match.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
trap 'kill $SHARDIS_PID $REDIS_PID 2>/dev/null || true; rm -rf "$tmp"' EXIT
# DEBUG enabled on both: the scripts compare its subcommands too.
start_redis "$tmp" --enable-debug-command yes
start_shardis "$tmp/shardis.log" --threads 2 --enable-debug-command yes
python3 crates/server/tests/differential/diff.py "$REDIS_PORT" "$SHARDIS_PORT" crates/server/tests/differential/*.txt
