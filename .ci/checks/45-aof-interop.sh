#!/usr/bin/env bash
# AOF interop with stock redis-server 7.0 and redis-check-aof, both ways:
#  - a multi-part AOF written by shardis (base from a rewrite under writes, incr files,
#    #TS annotations) passes redis-check-aof and loads in redis-server with the same DEBUG DIGEST;
#    once with an RDB base, once with aof-use-rdb-preamble no (a base of commands), where the
#    streams' groups, PELs and consumers must match too;
#  - AOF directories written by redis-server (RDB-preamble base and command base) load in
#    shardis with the same digest and streams;
#  - a full disk (a 2 MB tmpfs; needs root) makes writes fail with Redis's -MISCONF error, and
#    writes work again by themselves once space returns.
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
MOUNTED=
cleanup() {
  for n in "${!PID[@]}"; do stop "$n"; done
  [ -n "$MOUNTED" ] && umount "$MOUNTED" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
for tool in "$BIN" "$CLI" redis-server redis-cli redis-check-aof python3; do
  command -v "$tool" >/dev/null || { echo "FAIL: missing tool $tool"; exit 1; }
done
logf() { echo "$tmp/$1.log"; }

# start_s / start_r NODE DIR ARGS...: the nodes of lib.sh, with the AOF on.
start_s() { local n=$1 dir=$2; shift 2; start_shardis_node "$n" "$dir" --appendonly yes "$@"; }
start_r() { local n=$1 dir=$2; shift 2; start_redis_node "$n" "$dir" --appendonly yes "$@"; }

# rewrite NODE: BGREWRITEAOF and wait for it to end.
rewrite() {
  local n=$1 end=$((SECONDS + DEADLINE))
  c "$n" bgrewriteaof >/dev/null
  while [ $SECONDS -lt $end ]; do
    c "$n" info persistence | grep -q '^aof_rewrite_in_progress:0' &&
      c "$n" info persistence | grep -q '^aof_rewrites:[1-9]' && return 0
    sleep 0.05
  done
  fail "$n: BGREWRITEAOF did not finish"
}

# same LABEL WANT NODE
same() {
  local label=$1 want=$2 n=$3 got
  got=$(c "$n" debug digest)
  if [ "$got" = "$want" ] && [ "$want" != 0000000000000000000000000000000000000000 ]; then
    echo "ok: $label ($want)"
  else
    fail "$label: digest $got, want $want"
  fi
}

# same_streams LABEL FILE NODE: NODE's streams (XINFO STREAM FULL, seen-times left out) are
# those saved in FILE.
same_streams() {
  local label=$1 want=$2 n=$3
  if ! python3 "$TOOL" streams "${PORT[$n]}" >"$tmp/streams.got"; then
    fail "$label: reading the streams failed"
  elif [ ! -s "$want" ]; then
    fail "$label: no streams to compare"
  elif cmp -s "$want" "$tmp/streams.got"; then
    echo "ok: $label ($(wc -l <"$want") streams)"
  else
    fail "$label: streams differ"; diff "$want" "$tmp/streams.got" | head -10 | cut -c1-300 | sed 's/^/    /'
  fi
}

check_aof() {
  local label=$1 dir=$2
  if redis-check-aof "$dir/appendonlydir/appendonly.aof.manifest" >"$tmp/check.log" 2>&1 &&
    grep -q "All AOF files and manifest are valid" "$tmp/check.log"; then
    echo "ok: redis-check-aof accepts $label"
  else
    fail "redis-check-aof rejects $label"; tail -20 "$tmp/check.log" | sed 's/^/    /'
  fi
}

# 1. shardis writes (a rewrite in the middle of the writes), redis-check-aof, redis-server loads.
t0=$SECONDS
if start_s S1 "$tmp/s" --aof-timestamp-enabled yes; then
  python3 "$TOOL" load "${PORT[S1]}" a1 || fail "a1: error replies from S1"
  python3 "$TOOL" load "${PORT[S1]}" a2 --large &
  loader=$!
  rewrite S1
  wait $loader || fail "a2: error replies from S1"
  python3 "$TOOL" load "${PORT[S1]}" a3 || fail "a3: error replies from S1"
  expired S1 a1 a2 a3
  ds=$(c S1 debug digest)
  stop S1
  ls "$tmp/s/appendonlydir" | grep -q 'appendonly.aof.2.base.rdb' || fail "no second base after BGREWRITEAOF: $(ls "$tmp/s/appendonlydir")"
  check_aof "shardis's AOF" "$tmp/s"
  if start_r R1 "$tmp/s"; then
    grep -q "DB loaded from append only file" "$(logf R1)" || { fail "redis did not load shardis's AOF"; tail -20 "$(logf R1)"; }
    same "shardis AOF loaded by redis" "$ds" R1
    stop R1
  fi
fi
echo "-- shardis -> redis: $((SECONDS - t0))s"

# 1b. The same with aof-use-rdb-preamble no: the rewrite's base is commands.
t0=$SECONDS
if start_s S4 "$tmp/sc" --aof-use-rdb-preamble no --aof-timestamp-enabled yes; then
  python3 "$TOOL" load "${PORT[S4]}" c1 --zset || fail "c1: error replies from S4"
  python3 "$TOOL" load "${PORT[S4]}" c2 --large --zset &
  loader=$!
  rewrite S4
  wait $loader || fail "c2: error replies from S4"
  python3 "$TOOL" load "${PORT[S4]}" c3 --zset || fail "c3: error replies from S4"
  expired S4 c1 c2 c3
  ds=$(c S4 debug digest)
  python3 "$TOOL" streams "${PORT[S4]}" >"$tmp/streams.S4" || fail "reading S4's streams failed"
  stop S4
  base="$tmp/sc/appendonlydir/appendonly.aof.2.base.aof"
  if [ -f "$base" ] && [ "$(head -c 4 "$base")" = "#TS:" ] && sed -n 2p "$base" | grep -q '^\*[0-9]'; then
    echo "ok: the rewrite wrote a command-form base ($(wc -c <"$base") bytes)"
  else
    fail "no command-form base after BGREWRITEAOF: $(ls "$tmp/sc/appendonlydir"; head -c 40 "$base" 2>/dev/null | od -c | head -3)"
  fi
  check_aof "shardis's AOF with a command-form base" "$tmp/sc"
  if start_r R4 "$tmp/sc"; then
    grep -q "DB loaded from base file appendonly.aof.2.base.aof" "$(logf R4)" || { fail "redis did not load shardis's command-form base"; tail -20 "$(logf R4)"; }
    same "shardis command-form AOF loaded by redis" "$ds" R4
    same_streams "shardis command-form AOF's streams in redis" "$tmp/streams.S4" R4
    stop R4
  fi
fi
echo "-- shardis (aof-use-rdb-preamble no) -> redis: $((SECONDS - t0))s"

# 2. redis writes (RDB-preamble base, then a command base), shardis loads.
t0=$SECONDS
for preamble in yes no; do
  if start_r "R2$preamble" "$tmp/r$preamble" --aof-use-rdb-preamble "$preamble"; then
    python3 "$TOOL" load "${PORT[R2$preamble]}" b1 --zset || fail "b1: error replies from redis"
    rewrite "R2$preamble"
    python3 "$TOOL" load "${PORT[R2$preamble]}" b2 --large --zset || fail "b2: error replies from redis"
    expired "R2$preamble" b1 b2
    dr=$(c "R2$preamble" debug digest)
    python3 "$TOOL" streams "${PORT[R2$preamble]}" >"$tmp/streams.R2$preamble" || fail "reading redis's streams failed"
    stop "R2$preamble"
    want=rdb; [ "$preamble" = no ] && want=aof
    [ -f "$tmp/r$preamble/appendonlydir/appendonly.aof.2.base.$want" ] ||
      fail "redis (preamble $preamble) wrote no appendonly.aof.2.base.$want: $(ls "$tmp/r$preamble/appendonlydir")"
    if start_s "S2$preamble" "$tmp/r$preamble"; then
      grep -q "DB loaded from append only file" "$(logf "S2$preamble")" || fail "shardis did not load redis's AOF (preamble $preamble)"
      same "redis AOF (aof-use-rdb-preamble $preamble) loaded by shardis" "$dr" "S2$preamble"
      same_streams "redis AOF (aof-use-rdb-preamble $preamble)'s streams in shardis" "$tmp/streams.R2$preamble" "S2$preamble"
      stop "S2$preamble"
      check_aof "the directory after shardis reopened it (preamble $preamble)" "$tmp/r$preamble"
    fi
  fi
done
echo "-- redis -> shardis: $((SECONDS - t0))s"

# 3. A full disk: -MISCONF while writes fail, then recovery by itself.
t0=$SECONDS
mkdir -p "$tmp/full"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=2m tmpfs "$tmp/full" 2>/dev/null; then
  MOUNTED="$tmp/full"
  # A filler to free later: the base and some writes fit, then the disk is full.
  head -c 1200000 /dev/zero >"$tmp/full/filler"
  if start_s S3 "$tmp/full"; then
    val=$(head -c 20000 /dev/zero | tr '\0' x)
    got=
    for i in $(seq 1 200); do
      out=$(c S3 set "big:$i" "$val" 2>&1)
      case "$out" in
        *MISCONF*) got=$out; break ;;
      esac
    done
    want="MISCONF Errors writing to the AOF file: No space left on device"
    if [ "${got#(error) }" = "$want" ] || [ "$got" = "$want" ]; then
      echo "ok: a full disk gives -MISCONF"
    else
      fail "full disk: want '$want', last reply '$got'"
    fi
    c S3 info persistence | grep -q '^aof_last_write_status:err' || fail "full disk: aof_last_write_status is not err"
    rm -f "$tmp/full/filler"
    end=$((SECONDS + DEADLINE)); ok=
    while [ $SECONDS -lt $end ]; do
      [ "$(c S3 set after full 2>&1)" = OK ] && { ok=1; break; }
      sleep 0.1
    done
    if [ -n "$ok" ]; then echo "ok: writes work again once space returns"; else fail "full disk: no recovery after space returned"; fi
    grep -q "AOF write error looks solved, Redis can write again." "$(logf S3)" || fail "full disk: no recovery log line"
    d3=$(c S3 debug digest)
    kill -9 "${PID[S3]}"; wait "${PID[S3]}" 2>/dev/null; unset "PID[S3]"
    if start_s S3b "$tmp/full"; then
      same "the AOF after a full disk and kill -9" "$d3" S3b
      stop S3b
    fi
  fi
  umount "$tmp/full" && MOUNTED=
else
  # CI runs as root: a check that cannot run is a failure, never a skip.
  fail "full disk: cannot mount a 2 MB tmpfs (needs root)"
fi
echo "-- full disk: $((SECONDS - t0))s"

finish "aof interop"
