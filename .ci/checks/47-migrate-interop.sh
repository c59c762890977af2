#!/usr/bin/env bash
# MIGRATE interop with stock redis-server 7.0.15, both ways:
#  - MIGRATE's edge cases (30-interop.py migrate-cases: option errors, NOKEY, target errors and
#    the forgotten db after one, AUTH/AUTH2 to a protected target, COPY/REPLACE, TTLs, a dropped
#    cached connection retried, MIGRATE from a script, unreachable targets) reply the same from
#    shardis to redis, from redis to shardis and from shardis to shardis as from redis to redis;
#  - a dataset of every type in several dbs moves shardis -> redis -> shardis, then is copied
#    (COPY) shardis -> shardis, with DEBUG DIGEST unchanged and the moved-from server empty.
# All failures are reported; exits non-zero if any.
set -uo pipefail
cd "$(dirname "$0")/../.."
source .ci/checks/lib.sh
CLI=${CLI:-target/release/shardis-cli}
TOOL=.ci/checks/30-interop.py
DEADLINE=${DEADLINE:-30}

tmp=$(mktemp -d)
declare -A PID PORT KIND
FAILS=()
cleanup() {
  for n in "${!PID[@]}"; do stop "$n"; done
  rm -rf "$tmp"
}
trap cleanup EXIT
for tool in "$BIN" "$CLI" redis-server redis-cli python3; do
  command -v "$tool" >/dev/null || { echo "FAIL: missing tool $tool"; exit 1; }
done
logf() { echo "$tmp/$1.log"; }

# start_s NODE: shardis on two shards (keys of one MIGRATE span both); start_r NODE: redis-server.
start_s() { start_shardis_node "$1" "$tmp"; }
start_r() { start_redis_node "$1" "$tmp" --appendonly no; }

# load NODE: the shared dataset, then wait for its short-TTL keys to expire (a key expiring
# mid-move would make the digests race).
load() {
  local n=$1
  python3 "$TOOL" load "${PORT[$n]}" m --zset || fail "error replies from $n"
  python3 "$TOOL" load "${PORT[$n]}" mL --large --zset || fail "error replies from $n (large)"
  expired "$n" m mL
}

# same LABEL NODE: NODE's digest must be the reference's (per-key diff against it if not).
same() {
  local label=$1 n=$2 got
  got=$(c "$n" debug digest)
  if [ "$got" = "$REF_DIGEST" ] && [ "$got" != 0000000000000000000000000000000000000000 ]; then
    echo "ok: $label ($got)"
  else
    fail "$label: digest $got, want $REF_DIGEST"
    python3 "$TOOL" diff "${PORT[REF]}" "${PORT[$n]}"
  fi
}

# empty LABEL NODE: NODE holds no key in any db.
empty() {
  local label=$1 n=$2 ks
  ks=$(c "$n" info keyspace | grep -c '^db')
  if [ "$ks" = 0 ]; then echo "ok: $label"; else fail "$label: keys left"; c "$n" info keyspace; fi
}

start_r R1 && start_r R2 && start_s S1 && start_s S2 || exit 1

# 1. Edge cases: every pair replies as redis -> redis does.
t0=$SECONDS
python3 "$TOOL" migrate-cases "${PORT[R1]}" "${PORT[R2]}" >"$tmp/cases-rr" || fail "migrate-cases redis -> redis"
for pair in "S1 R2" "R1 S2" "S1 S2"; do
  set -- $pair
  label="$(echo "${KIND[$1]} -> ${KIND[$2]}")"
  if python3 "$TOOL" migrate-cases "${PORT[$1]}" "${PORT[$2]}" >"$tmp/cases-$1$2" &&
    diff -u "$tmp/cases-rr" "$tmp/cases-$1$2" >"$tmp/cases-$1$2.diff"; then
    echo "ok: MIGRATE edge cases $label reply as redis -> redis ($(wc -l <"$tmp/cases-rr") lines)"
  else
    fail "MIGRATE edge cases $label differ from redis -> redis"
    sed 's/^/    /' "$tmp/cases-$1$2.diff"
  fi
done
echo "-- edge cases: $((SECONDS - t0))s"

# 2. A dataset moves shardis -> redis -> shardis, then is copied shardis -> shardis.
t0=$SECONDS
for n in R1 R2 S1 S2; do c "$n" flushall >/dev/null; done
# The dataset has random parts: REF keeps a DUMP/RESTORE copy of what S1 holds, to diff against.
start_r REF || exit 1
load S1
REF_DIGEST=$(c S1 debug digest)
python3 "$TOOL" copy "${PORT[S1]}" "${PORT[REF]}" || fail "DUMP/RESTORE copy to the reference: errors"
same "reference copy of the dataset" REF
if python3 "$TOOL" migrate "${PORT[S1]}" "${PORT[R2]}"; then
  same "MIGRATE shardis -> redis" R2
  empty "MIGRATE shardis -> redis empties the source" S1
else
  fail "MIGRATE shardis -> redis: error replies"
fi
if python3 "$TOOL" migrate "${PORT[R2]}" "${PORT[S2]}"; then
  same "MIGRATE redis -> shardis" S2
  empty "MIGRATE redis -> shardis empties the source" R2
else
  fail "MIGRATE redis -> shardis: error replies"
fi
if python3 "$TOOL" migrate "${PORT[S2]}" "${PORT[S1]}" --copy; then
  same "MIGRATE COPY shardis -> shardis" S1
  same "MIGRATE COPY keeps the source" S2
else
  fail "MIGRATE COPY shardis -> shardis: error replies"
fi
echo "-- dataset: $((SECONDS - t0))s"

finish "migrate interop"
