#!/usr/bin/env bash
# Replication between shardis and stock redis-server 7.0, every direction:
#  (a) redis replica of a shardis master (diskless and disk full sync),
#  (b) shardis replica of a redis master (diskless and disk),
#  (c) the chain redis -> shardis -> redis,
#  (d) partial resync (PSYNC continue) after the link drops, both directions.
# Data of every type, TTLs, several dbs, multi-key commands; DEBUG DIGEST must match once the
# replicas' offsets equal the master's. All failures are reported; exits non-zero if any.
set -uo pipefail
cd "$(dirname "$0")/../.."
source .ci/checks/lib.sh
CLI=${CLI:-target/release/shardis-cli}
TOOL=.ci/checks/30-interop.py
DEADLINE=${DEADLINE:-30} # seconds for any one wait

tmp=$(mktemp -d)
[ -n "${KEEP:-}" ] && echo "work dir: $tmp (kept)"
declare -A PID PORT KIND ARGS
FAILS=()
cleanup() {
  for n in "${!PID[@]}"; do stop "$n"; done
  [ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT

for tool in "$BIN" "$CLI" redis-server redis-cli python3; do
  command -v "$tool" >/dev/null || { echo "FAIL: missing tool $tool"; exit 1; }
done

logf() { echo "$tmp/$1/log"; }

# start_s / start_r NODE ARGS...: the nodes of lib.sh in $tmp/NODE, with no sync delay; a redis
# node's arguments are kept for its restart.
start_s() { local n=$1; shift; start_shardis_node "$n" "$tmp/$n" --repl-diskless-sync-delay 0 "$@"; }
start_r() {
  local n=$1; shift
  ARGS[$n]="$*"
  start_redis_node "$n" "$tmp/$n" --appendonly no --repl-diskless-sync-delay 0 "$@"
}

field() { # field NODE NAME: a field of INFO replication
  c "$1" info replication 2>/dev/null | tr -d '\r' | grep "^$2:" | cut -d: -f2
}

# load NODE PHASE: writes the dataset on a master, then waits until the short-TTL keys are gone
# from it (active or lazy expiry; either way a DEL is propagated).
load() {
  local n=$1 phase=$2
  python3 "$TOOL" load "${PORT[$n]}" "$phase" --large $ZSET || fail "$phase: error replies from $n"
  expired "$n" "$phase"
}

# synced LABEL MASTER REPLICA...: waits for link up and equal master_repl_offset everywhere.
synced() {
  local label=$1 m=$2; shift 2
  local end=$((SECONDS + DEADLINE)) r mo ok
  while [ $SECONDS -lt $end ]; do
    mo=$(field "$m" master_repl_offset); ok=1
    for r in "$@"; do
      [ "$(field "$r" master_link_status)" = up ] && [ "$(field "$r" master_repl_offset)" = "$mo" ] || ok=0
    done
    [ $ok = 1 ] && [ -n "$mo" ] && return 0
    sleep 0.1
  done
  fail "$label: replicas of $m not in sync after ${DEADLINE}s"
  for r in "$m" "$@"; do
    echo "  $r (${KIND[$r]}): link=$(field "$r" master_link_status) offset=$(field "$r" master_repl_offset)"
    tail -8 "$(logf "$r")" | sed 's/^/    /'
  done
  return 1
}

# same_digest LABEL MASTER REPLICA...: DEBUG DIGEST equal (per-key diff on mismatch).
same_digest() {
  local label=$1 m=$2; shift 2
  local dm r dr
  dm=$(c "$m" debug digest)
  [ "$dm" != 0000000000000000000000000000000000000000 ] || fail "$label: master $m is empty"
  for r in "$@"; do
    dr=$(c "$r" debug digest)
    if [ "$dm" = "$dr" ]; then
      echo "ok: $label: $r digest = $m digest ($dm)"
    else
      fail "$label: digest of $r ($dr) differs from $m ($dm)"
      python3 "$TOOL" diff "${PORT[$m]}" "${PORT[$r]}"
    fi
  done
}

# count NODE REGEX: matching lines in the node's log.
count() { grep -cE "$2" "$(logf "$1")"; }

# wait_log LABEL NODE REGEX MIN: waits until the log has at least MIN matching lines.
wait_log() {
  local label=$1 n=$2 re=$3 min=$4 end=$((SECONDS + DEADLINE))
  while [ $SECONDS -lt $end ]; do
    [ "$(count "$n" "$re")" -ge "$min" ] && return 0
    sleep 0.1
  done
  fail "$label: no '$re' (x$min) in $n's log after ${DEADLINE}s"
  tail -15 "$(logf "$n")" | sed 's/^/    /'
  return 1
}

FULL='Starting BGSAVE for SYNC'
PARTIAL_OK='Partial resynchronization request from .* accepted'
CONT_OK='Successful partial resynchronization with master'

# partial LABEL MASTER REPLICA HOW PHASE [TOP]: drops the link (HOW = kill-master: CLIENT KILL TYPE
# master on the replica; kill-replica: CLIENT KILL TYPE replica on the master; restart: SHUTDOWN
# SAVE and restart a redis replica), writes (on TOP, the
# chain's head, default MASTER) while it is down, then expects a partial resync (no new full sync)
# and equal digests.
partial() {
  local label=$1 m=$2 r=$3 how=$4 phase=$5 top=${6:-$2}
  local full0 part0 cont0 out
  full0=$(count "$m" "$FULL"); part0=$(count "$m" "$PARTIAL_OK"); cont0=$(count "$r" "$CONT_OK")
  if [ "$how" = restart ]; then
    # A redis replica saves its replication id and offset in its dump and continues from them.
    out=$(c "$r" shutdown save 2>&1)
    local end=$((SECONDS + DEADLINE))
    while kill -0 "${PID[$r]}" 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.05; done
    wait "${PID[$r]}" 2>/dev/null; unset "PID[$r]"
    load "$top" "$phase"
    # shellcheck disable=SC2086
    start_r "$r" ${ARGS[$r]} || return 1
  else
    if [ "$how" = kill-master ]; then out=$(c "$r" client kill type master); else out=$(c "$m" client kill type replica); fi
    [ "$out" -ge 1 ] 2>/dev/null || { fail "$label: CLIENT KILL ($how) replied '$out'"; return 1; }
    load "$top" "$phase"
  fi
  wait_log "$label" "$m" "$PARTIAL_OK" $((part0 + 1))
  wait_log "$label" "$r" "$CONT_OK" $((cont0 + 1))
  [ "$(count "$m" "$FULL")" = "$full0" ] || { fail "$label: $m ran a full sync instead of a partial one"; tail -15 "$(logf "$m")" | sed 's/^/    /'; }
  if [ "$top" = "$m" ]; then
    synced "$label" "$m" "$r" && same_digest "$label" "$m" "$r"
  else
    synced "$label" "$top" "$m" "$r" && same_digest "$label" "$top" "$m" "$r"
  fi
}

# Zsets only when shardis has them.
start_s probe || exit 1
if [ "$(c probe zadd probe:z 1 a 2>&1)" = 1 ]; then ZSET=--zset; else ZSET=; echo "note: ZADD not available on shardis, zsets not replicated"; fi
stop probe

# (a) stock redis replica of a shardis master.
for dl in yes no; do
  t0=$SECONDS
  L="a/shardis->redis/diskless=$dl"
  M=M$dl R=R$dl
  start_s $M --repl-diskless-sync "$dl" || continue
  load $M "a1$dl"
  start_r $R --replicaof 127.0.0.1 "${PORT[$M]}"
  synced "$L full sync" $M $R && same_digest "$L full sync" $M $R
  load $M "a2$dl"
  synced "$L streaming" $M $R && same_digest "$L streaming" $M $R
  [ "$(count $M "$FULL")" = 1 ] || { fail "$L: expected 1 full sync on the master, log has $(count $M "$FULL")"; tail -20 "$(logf $M)" | sed 's/^/    /'; }
  # (d) partial resync, redis replica -> shardis master.
  if [ "$dl" = yes ]; then
    partial "d/redis replica of shardis, CLIENT KILL TYPE master" $M $R kill-master "d1"
    partial "d/redis replica of shardis, CLIENT KILL TYPE replica" $M $R kill-replica "d2"
  else
    partial "d/redis replica of shardis, replica restarted" $M $R restart "d3"
  fi
  stop $R $M
  echo "-- $L: $((SECONDS - t0))s"
done

# (b) shardis replica of a stock redis master.
for dl in yes no; do
  t0=$SECONDS
  L="b/redis->shardis/diskless=$dl"
  RM=RM$dl S=S$dl
  start_r $RM --repl-diskless-sync "$dl" || continue
  load $RM "b1$dl"
  start_s $S --replicaof 127.0.0.1 "${PORT[$RM]}" || { stop $S $RM; continue; }
  synced "$L full sync" $RM $S && same_digest "$L full sync" $RM $S
  load $RM "b2$dl"
  synced "$L streaming" $RM $S && same_digest "$L streaming" $RM $S
  [ "$(count $RM "$FULL")" = 1 ] || { fail "$L: expected 1 full sync on the master, log has $(count $RM "$FULL")"; tail -20 "$(logf $RM)" | sed 's/^/    /'; tail -20 "$(logf $S)" | sed 's/^/    /'; }
  # (d) partial resync, shardis replica -> redis master.
  if [ "$dl" = yes ]; then
    partial "d/shardis replica of redis, CLIENT KILL TYPE replica" $RM $S kill-replica "d4"
    partial "d/shardis replica of redis, CLIENT KILL TYPE master" $RM $S kill-master "d5"
  fi
  stop $S $RM
  echo "-- $L: $((SECONDS - t0))s"
done

# (c) chain redis -> shardis -> redis.
t0=$SECONDS
L="c/redis->shardis->redis"
if start_r A && load A c1 && start_s B --replicaof 127.0.0.1 "${PORT[A]}" && start_r C --replicaof 127.0.0.1 "${PORT[B]}"; then
  synced "$L full sync" A B C && same_digest "$L full sync" A B C
  load A c2
  synced "$L streaming" A B C && same_digest "$L streaming" A B C
  # The end of the chain resyncs partially from the middle (the stream it forwards verbatim).
  partial "d/chain tail, CLIENT KILL TYPE master" B C kill-master "d6" A
fi
stop C B A
echo "-- $L: $((SECONDS - t0))s"

finish "replication interop"
