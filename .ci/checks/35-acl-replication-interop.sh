#!/usr/bin/env bash
# masteruser/masterauth across implementations: a stock redis-server replica logs in to a shardis
# master as an ACL user that may only replicate, and a shardis replica does the same to a stock
# redis-server master. The replica must receive a write made after the link came up.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .ci/checks/lib.sh
for tool in "$BIN" redis-server redis-cli python3; do
  command -v "$tool" >/dev/null || { echo "FAIL: missing tool $tool"; exit 1; }
done
tmp=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"' EXIT
ACL_USER=(--user repl on '>rp' +psync +replconf +ping)

# wait_get PORT KEY VALUE: polls GET on a replica (default user, no password) until it matches.
wait_get() {
  for _ in $(seq 1 300); do
    [ "$(redis-cli -p "$1" get "$2" 2>/dev/null)" = "$3" ] && return 0
    sleep 0.1
  done
  echo "FAIL: replica on port $1 never had $2=$3"; return 1
}

# (a) shardis master, redis-server replica.
start_shardis "$tmp/master.log" --threads 2 --requirepass adminpw --repl-diskless-sync-delay 0 "${ACL_USER[@]}"
pids+=("$SHARDIS_PID")
rport=$(free_port)
mkdir -p "$tmp/r1"
redis-server --port "$rport" --save "" --dir "$tmp/r1" --replicaof 127.0.0.1 "$SHARDIS_PORT" \
  --masteruser repl --masterauth rp >"$tmp/r1/log" 2>&1 &
pids+=("$!")
redis-cli -p "$SHARDIS_PORT" --no-auth-warning -a adminpw set k v1 >/dev/null
wait_get "$rport" k v1
redis-cli -p "$SHARDIS_PORT" --no-auth-warning -a adminpw set k v2 >/dev/null
wait_get "$rport" k v2
echo "ok: redis-server replica of a shardis master via masteruser"

# (b) redis-server master, shardis replica.
mport=$(free_port)
mkdir -p "$tmp/m2"
redis-server --port "$mport" --save "" --dir "$tmp/m2" --requirepass adminpw "${ACL_USER[@]}" >"$tmp/m2/log" 2>&1 &
pids+=("$!")
for _ in $(seq 1 100); do redis-cli -p "$mport" ping >/dev/null 2>&1 && break; sleep 0.05; done
redis-cli -p "$mport" --no-auth-warning -a adminpw set k w1 >/dev/null
start_shardis "$tmp/replica.log" --threads 2 --replicaof 127.0.0.1 "$mport" --masteruser repl --masterauth rp
pids+=("$SHARDIS_PID")
wait_get "$SHARDIS_PORT" k w1
redis-cli -p "$mport" --no-auth-warning -a adminpw set k w2 >/dev/null
wait_get "$SHARDIS_PORT" k w2
echo "ok: shardis replica of a redis-server master via masteruser"
