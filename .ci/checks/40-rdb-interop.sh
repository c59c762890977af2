#!/usr/bin/env bash
# RDB interop with stock redis-server 7.0, both ways:
#  - a dump SAVEd by shardis passes redis-check-rdb and loads in redis-server with the same DEBUG DIGEST;
#  - dumps SAVEd by redis-server (every type shardis has, streams with consumer groups included,
#    small and large encodings, expiries,
#    several dbs) and the golden files in crates/rdb/testdata load in shardis at start-up with
#    the same digest;
#  - DEBUG RELOAD on shardis keeps the digest;
#  - DUMP payloads from redis RESTORE into shardis and vice versa, same digest;
#  - crates/rdb/testdata/interop-check.sh (shardis-rdb's writer against redis).
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
for tool in "$BIN" "$CLI" redis-server redis-cli redis-check-rdb python3 cargo; do
  command -v "$tool" >/dev/null || { echo "FAIL: missing tool $tool"; exit 1; }
done
logf() { echo "$tmp/$1.log"; }

# start_s / start_r NODE DIR ARGS...: the nodes of lib.sh, without an AOF.
start_s() { start_shardis_node "$@"; }
start_r() { local n=$1 dir=$2; shift 2; start_redis_node "$n" "$dir" --appendonly no "$@"; }

# load NODE PHASE: the shared dataset, then wait for its short-TTL keys to expire.
load() {
  local n=$1 phase=$2
  python3 "$TOOL" load "${PORT[$n]}" "$phase" $ZSET || fail "$phase: error replies from $n"
  python3 "$TOOL" load "${PORT[$n]}" "${phase}L" --large $ZSET || fail "${phase}L: error replies from $n"
  expired "$n" "$phase" "${phase}L"
}

# same LABEL DIGEST_A A B: B's digest must be DIGEST_A (A still running: per-key diff on mismatch).
same() {
  local label=$1 want=$2 a=$3 b=$4 got
  got=$(c "$b" debug digest)
  if [ "$got" = "$want" ] && [ "$want" != 0000000000000000000000000000000000000000 ]; then
    echo "ok: $label ($want)"
  else
    fail "$label: digest $got, want $want"
    [ -n "${PID[$a]:-}" ] && python3 "$TOOL" diff "${PORT[$a]}" "${PORT[$b]}"
  fi
}

start_s probe "$tmp/probe" || exit 1
if [ "$(c probe zadd probe:z 1 a 2>&1)" = 1 ]; then ZSET=--zset; else ZSET=; echo "note: ZADD not available on shardis, zsets left out"; fi
stop probe

# 1. shardis SAVE -> redis-check-rdb -> redis-server loads it.
t0=$SECONDS
if start_s S1 "$tmp/s" --dbfilename s.rdb; then
  load S1 r1
  ds=$(c S1 debug digest)
  out=$(c S1 save)
  [ "$out" = OK ] || fail "shardis SAVE replied '$out'"
  if redis-check-rdb "$tmp/s/s.rdb" >"$tmp/check.log" 2>&1 && grep -q "RDB looks OK" "$tmp/check.log"; then
    echo "ok: redis-check-rdb accepts shardis's dump"
  else
    fail "redis-check-rdb rejects shardis's dump"; tail -20 "$tmp/check.log" | sed 's/^/    /'
  fi
  if start_r R1 "$tmp/s" --dbfilename s.rdb --sanitize-dump-payload yes; then
    grep -q "DB loaded from disk" "$(logf R1)" || { fail "redis did not load shardis's dump"; tail -20 "$(logf R1)"; }
    same "shardis dump loaded by redis" "$ds" S1 R1
  fi
  # 4a. DUMP from shardis, RESTORE into redis (fresh, sanitizing payloads).
  if start_r R2 "$tmp/r2" --sanitize-dump-payload yes; then
    python3 "$TOOL" copy "${PORT[S1]}" "${PORT[R2]}" || fail "DUMP shardis -> RESTORE redis: errors"
    same "DUMP shardis -> RESTORE redis" "$ds" S1 R2
  fi
  stop S1 R1 R2
fi
echo "-- shardis -> redis: $((SECONDS - t0))s"

# 2. redis SAVE -> shardis loads it at start-up; 3. DEBUG RELOAD; 4b. DUMP redis -> RESTORE shardis.
t0=$SECONDS
if start_r R3 "$tmp/r" --dbfilename r.rdb; then
  load R3 r2
  # Small and large encodings (compared with shardis's after loading, below).
  KEYS_ENC="r2:l:small:0 r2L:l:big:0 r2:h:small:0 r2L:h:big:0 r2:set:inter:0 r2:set:str:0 r2L:set:big:0 r2:s:0:3 r2L:s:0:39 r2:int:0 ${ZSET:+r2:z:small:0 r2L:z:big:0}"
  c R3 sadd r2:set:intset 1 2 3 >/dev/null
  KEYS_ENC="$KEYS_ENC r2:set:intset"
  dr=$(c R3 debug digest)
  [ "$(c R3 save)" = OK ] || fail "redis SAVE failed"
  if start_s S3 "$tmp/r" --dbfilename r.rdb; then
    grep -q "DB loaded from disk" "$(logf S3)" || { fail "shardis did not log 'DB loaded from disk'"; tail -5 "$(logf S3)" | sed 's/^/    /'; }
    same "redis dump loaded by shardis" "$dr" R3 S3
    for k in $KEYS_ENC; do
      er=$(c R3 object encoding "$k"); es=$(c S3 object encoding "$k")
      [ "$er" = "$es" ] || fail "OBJECT ENCODING $k after loading: shardis '$es', redis '$er'"
    done
    out=$(c S3 debug reload)
    [ "$out" = OK ] || fail "shardis DEBUG RELOAD replied '$out'"
    same "shardis DEBUG RELOAD keeps the digest" "$dr" R3 S3
  else
    fail "shardis did not start on redis's dump"
  fi
  if start_s S4 "$tmp/s2"; then
    python3 "$TOOL" copy "${PORT[R3]}" "${PORT[S4]}" || fail "DUMP redis -> RESTORE shardis: errors"
    same "DUMP redis -> RESTORE shardis" "$dr" R3 S4
  fi
  stop S3 S4 R3
fi
echo "-- redis -> shardis: $((SECONDS - t0))s"

# 5. The golden dumps written by redis-server 7.0.15 (stream.rdb: streams with consumer groups).
t0=$SECONDS
for f in small large nocompress-nochecksum stream; do
  mkdir -p "$tmp/g-$f"
  cp "crates/rdb/testdata/$f.rdb" "$tmp/g-$f/dump.rdb"
  if start_r "GR-$f" "$tmp/g-$f" && start_s "GS-$f" "$tmp/g-$f"; then
    same "golden $f.rdb: shardis = redis" "$(c "GR-$f" debug digest)" "GR-$f" "GS-$f"
  else
    fail "golden $f.rdb did not load"
  fi
  stop "GR-$f" "GS-$f"
done
echo "-- golden files: $((SECONDS - t0))s"

# 6. shardis-rdb's own writer and DUMP payloads against redis.
t0=$SECONDS
if bash crates/rdb/testdata/interop-check.sh; then echo "ok: interop-check.sh"; else fail "crates/rdb/testdata/interop-check.sh"; fi
echo "-- interop-check.sh: $((SECONDS - t0))s"

finish "rdb interop"
