#!/usr/bin/env bash
# The command table is Redis's own: regenerate crates/commands/src/generated.rs (and its JSON
# snapshot) from this machine's redis-server 7.0.15 and fail on any diff; then compare shardis's
# COMMAND INFO / COMMAND DOCS of every implemented command and subcommand with redis-server's,
# field for field in RESP2 and RESP3, and COMMAND COUNT / LIST against the implemented list.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .ci/checks/lib.sh
for tool in "$BIN" redis-server redis-cli python3 git; do
  command -v "$tool" >/dev/null || { echo "FAIL: missing tool $tool"; exit 1; }
done
tmp=$(mktemp -d)
SHARDIS_PID=; REDIS_PID=
trap 'kill $SHARDIS_PID $REDIS_PID 2>/dev/null || true; rm -rf "$tmp"' EXIT
FAILS=()

start_redis "$tmp"
python3 crates/commands/gen/gen_table.py --port "$REDIS_PORT"
if ! git diff --exit-code -- crates/commands/src/generated.rs crates/commands/gen/redis-7.0.15-commands.json; then
  fail "crates/commands/src/generated.rs is not what gen_table.py makes from redis-server $(redis-server --version | grep -o 'v=[0-9.]*')"
fi

start_shardis "$tmp/shardis.log" --threads 2
python3 crates/commands/gen/compare.py "$REDIS_PORT" "$SHARDIS_PORT" || fail "COMMAND replies differ from redis-server's"

if [ ${#FAILS[@]} -gt 0 ]; then
  printf 'FAIL: %s\n' "${FAILS[@]}"
  exit 1
fi
echo "command table OK"
