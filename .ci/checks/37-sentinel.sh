#!/usr/bin/env bash
# Automatic failover of shardis by stock Redis Sentinel (Debian's redis-server 7.0.15 --sentinel):
# three sentinels on loopback watch a shardis master and two shardis replicas, each started from a
# config file (Sentinel's promotion runs CONFIG REWRITE). A writer stores batches of keys, each
# acknowledged by `WAIT 2 1000`, while the master is killed with SIGKILL. Then:
#  - every sentinel names a replica as the new master (SENTINEL get-master-addr-by-name),
#  - the other replica follows it (master_link_status:up) and holds the same dataset (DEBUG DIGEST),
#  - every acknowledged key is on the new master,
#  - the old master, restarted from its config file, is turned into a replica of the new one by
#    Sentinel (its config file rewritten), and converges.
# Every wait has a deadline. All failures are reported; exits non-zero if any.
set -uo pipefail
cd "$(dirname "$0")/../.."
source .ci/checks/lib.sh
CLI=${CLI:-target/release/shardis-cli}
DEADLINE=${DEADLINE:-30}       # seconds for any one wait
FAILOVER_DEADLINE=${FAILOVER_DEADLINE:-40} # down-after 1 s + election + promotion, with slack

tmp=$(mktemp -d)
[ -n "${KEEP:-}" ] && echo "work dir: $tmp (kept)"
declare -A PID PORT
FAILS=()
WRITER=
cleanup() {
  [ -n "$WRITER" ] && kill "$WRITER" 2>/dev/null
  for n in "${!PID[@]}"; do kill -9 "${PID[$n]}" 2>/dev/null; wait "${PID[$n]}" 2>/dev/null; done
  [ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT

for tool in "$BIN" "$CLI" redis-server redis-cli python3; do
  command -v "$tool" >/dev/null || { echo "FAIL: missing tool $tool"; exit 1; }
done

NODES=(m r1 r2)
SENTINELS=(s1 s2 s3)
for n in "${NODES[@]}" "${SENTINELS[@]}"; do PORT[$n]=$(free_port); mkdir -p "$tmp/$n"; done

# node_conf NODE [MASTER]: the node's config file (CONFIG REWRITE rewrites it).
node_conf() {
  local n=$1 m=${2:-}
  {
    echo "port ${PORT[$n]}"
    echo "bind 127.0.0.1"
    echo "dir $tmp/$n"
    echo 'save ""'
    echo "threads 2"
    echo "repl-diskless-sync-delay 0"
    echo "enable-debug-command yes"
    [ -n "$m" ] && echo "replicaof 127.0.0.1 ${PORT[$m]}"
  } >"$tmp/$n/shardis.conf"
}

# start_node NODE: shardis from its config file; waits until it answers PING.
start_node() {
  local n=$1 end=$((SECONDS + DEADLINE))
  "$BIN" "$tmp/$n/shardis.conf" >>"$tmp/$n/log" 2>&1 &
  PID[$n]=$!
  while [ $SECONDS -lt $end ]; do
    [ "$("$CLI" -p "${PORT[$n]}" ping 2>/dev/null)" = PONG ] && return 0
    kill -0 "${PID[$n]}" 2>/dev/null || break
    sleep 0.05
  done
  fail "shardis $n did not start"; tail -20 "$tmp/$n/log"; return 1
}

start_sentinel() {
  local n=$1 end=$((SECONDS + DEADLINE))
  cat >"$tmp/$n/sentinel.conf" <<EOF
port ${PORT[$n]}
bind 127.0.0.1
dir $tmp/$n
sentinel monitor mymaster 127.0.0.1 ${PORT[m]} 2
sentinel down-after-milliseconds mymaster 1000
sentinel failover-timeout mymaster 5000
EOF
  redis-server "$tmp/$n/sentinel.conf" --sentinel --logfile "$tmp/$n/log" &
  PID[$n]=$!
  while [ $SECONDS -lt $end ]; do
    [ "$(redis-cli -p "${PORT[$n]}" ping 2>/dev/null)" = PONG ] && return 0
    kill -0 "${PID[$n]}" 2>/dev/null || break
    sleep 0.05
  done
  fail "sentinel $n did not start"; tail -20 "$tmp/$n/log"; return 1
}

s() { local n=$1; shift; "$CLI" -p "${PORT[$n]}" "$@" 2>/dev/null | tr -d '\r'; }
field() { s "$1" info "$2" | grep "^$3:" | cut -d: -f2; }
# sentinel_field SENTINEL NAME: a field of SENTINEL MASTER mymaster.
sentinel_field() {
  redis-cli -p "${PORT[$1]}" sentinel master mymaster 2>/dev/null | tr -d '\r' | awk -v k="$2" 'prev==k {print; exit} {prev=$0}'
}
master_port_of() { redis-cli -p "${PORT[$1]}" sentinel get-master-addr-by-name mymaster 2>/dev/null | tr -d '\r' | sed -n 2p; }

# until_ok LABEL SECS CMD...: polls CMD until it succeeds; a failure after SECS.
until_ok() {
  local label=$1 secs=$2; shift 2
  local end=$((SECONDS + secs))
  while [ $SECONDS -lt $end ]; do
    "$@" && return 0
    sleep 0.2
  done
  fail "$label (after ${secs}s)"
  return 1
}

dump_logs() {
  local n
  for n in "$@"; do echo "  --- $n"; tail -25 "$tmp/$n/log" | sed 's/^/    /'; done
}

# The writer and the check of what it got acknowledged (WAIT 2 1000 after each batch of 50 keys)
# are deploy/acked-writes.py, shared with deploy/sentinel-test.sh.
ACKED_WRITES=deploy/acked-writes.py

t0=$SECONDS
node_conf m; node_conf r1 m; node_conf r2 m
for n in "${NODES[@]}"; do start_node "$n" || exit 1; done
for n in "${SENTINELS[@]}"; do start_sentinel "$n" || exit 1; done

# Every sentinel knows both replicas and the two other sentinels (hello messages on
# __sentinel__:hello through the monitored servers).
discovered() {
  local n
  for n in "${SENTINELS[@]}"; do
    [ "$(sentinel_field "$n" num-slaves)" = 2 ] && [ "$(sentinel_field "$n" num-other-sentinels)" = 2 ] || return 1
  done
}
until_ok "sentinels did not discover both replicas and each other" "$DEADLINE" discovered || { dump_logs s1 m; exit 1; }
links_up() { [ "$(field r1 replication master_link_status)" = up ] && [ "$(field r2 replication master_link_status)" = up ]; }
until_ok "replicas not linked to the master" "$DEADLINE" links_up || { dump_logs m r1 r2; exit 1; }
echo "ok: 3 sentinels monitor the shardis master and its 2 replicas ($((SECONDS - t0))s)"

# Write under WAIT 2, then kill -9 the master while the writer runs.
: >"$tmp/acked"
python3 "$ACKED_WRITES" write 127.0.0.1 "${PORT[m]}" "$tmp/acked" &
WRITER=$!
enough() { [ "$(wc -l <"$tmp/acked")" -ge 20 ]; }
until_ok "the writer got no WAIT 2 acknowledgements" "$DEADLINE" enough || { dump_logs m r1 r2; exit 1; }
kill -9 "${PID[m]}"; wait "${PID[m]}" 2>/dev/null; unset "PID[m]"
t_kill=$SECONDS
wait "$WRITER" 2>/dev/null; WRITER=
echo "ok: master killed after $(wc -l <"$tmp/acked") acknowledged batches of 50 keys"

# Promotion: every sentinel names the same replica.
promoted() {
  local n p first=
  for n in "${SENTINELS[@]}"; do
    p=$(master_port_of "$n")
    [ "$p" = "${PORT[r1]}" ] || [ "$p" = "${PORT[r2]}" ] || return 1
    [ -z "$first" ] || [ "$p" = "$first" ] || return 1
    first=$p
  done
}
if ! until_ok "no promotion: get-master-addr-by-name still $(master_port_of s1)" "$FAILOVER_DEADLINE" promoted; then
  dump_logs s1 s2 s3 r1 r2
  exit 1
fi
new=r1; other=r2
[ "$(master_port_of s1)" = "${PORT[r2]}" ] && { new=r2; other=r1; }
echo "ok: sentinels promoted $new $((SECONDS - t_kill))s after the kill"
grep -q "+switch-master mymaster 127.0.0.1 ${PORT[m]} 127.0.0.1 ${PORT[$new]}" "$tmp/s1/log" "$tmp/s2/log" "$tmp/s3/log" ||
  fail "no +switch-master line in the sentinels' logs"
[ "$(field "$new" replication role)" = master ] || fail "$new reports role $(field "$new" replication role)"
grep -q '^replicaof' "$tmp/$new/shardis.conf" && fail "$new's config file still has replicaof after promotion"

follows() {
  local a=$1 b=$2
  [ "$(field "$a" replication master_port)" = "${PORT[$b]}" ] && [ "$(field "$a" replication master_link_status)" = up ]
}
# in_sync MASTER REPLICA: the replica applied all the master emitted (no writes run now).
in_sync() {
  local mo
  mo=$(field "$1" replication master_repl_offset)
  [ -n "$mo" ] && [ "$(field "$2" replication master_repl_offset)" = "$mo" ]
}
same_digest() {
  local dm dr
  dm=$(s "$1" debug digest); dr=$(s "$2" debug digest)
  if [ -n "$dm" ] && [ "$dm" = "$dr" ] && [ "$dm" != 0000000000000000000000000000000000000000 ]; then
    echo "ok: $3: digest of $2 = digest of $1 ($dm)"
  else
    fail "$3: digest of $2 ($dr) differs from $1 ($dm)"
  fi
}
if until_ok "$other does not follow the new master $new" "$DEADLINE" follows "$other" "$new"; then
  echo "ok: $other follows $new"
  grep -q "^replicaof 127.0.0.1 ${PORT[$new]}" "$tmp/$other/shardis.conf" || fail "$other's config file was not rewritten to the new master"
  until_ok "$other did not reach $new's offset" "$DEADLINE" in_sync "$new" "$other" && same_digest "$new" "$other" "after failover"
else
  dump_logs s1 "$other" "$new"
fi

read -r missing total < <(python3 "$ACKED_WRITES" check 127.0.0.1 "${PORT[$new]}" "$tmp/acked")
if [ "$missing" = 0 ]; then
  echo "ok: all $total acknowledged keys are on $new"
else
  fail "$missing of $total acknowledged keys missing on $new"
fi

# The old master comes back from its config file; Sentinel reconfigures it as a replica.
# Sentinels may also fail over a second time (a new epoch) while the first one
# settles, on a loaded machine; the old master must then follow whichever node
# they name now, so the master is looked up again at every poll.
node_of_port() { local n; for n in r1 r2; do [ "${PORT[$n]}" = "$1" ] && echo "$n"; done; }
current_master() { node_of_port "$(master_port_of s1)"; }
follows_current() { local c; c=$(current_master); [ -n "$c" ] && follows m "$c"; }
start_node m || exit 1
t_back=$SECONDS
if until_ok "the restarted old master was not turned into a replica of the current master" "$((DEADLINE + 30))" follows_current; then
  cur=$(current_master)
  [ "$cur" = "$new" ] || echo "note: the sentinels failed over once more, to $cur"
  echo "ok: sentinels turned the old master into a replica of $cur $((SECONDS - t_back))s after its restart"
  grep -q "^replicaof 127.0.0.1 ${PORT[$cur]}" "$tmp/m/shardis.conf" || fail "the old master's config file was not rewritten"
  until_ok "the old master did not reach $cur's offset" "$DEADLINE" in_sync "$cur" m && same_digest "$cur" m "old master rejoined"
  read -r missing total < <(python3 "$ACKED_WRITES" check 127.0.0.1 "${PORT[m]}" "$tmp/acked")
  [ "$missing" = 0 ] || fail "$missing of $total acknowledged keys missing on the rejoined old master"
else
  dump_logs s1 m "$new"
fi
rejoined() { [ "$(redis-cli -p "${PORT[s1]}" sentinel replicas mymaster | tr -d '\r' | grep -c '^flags$')" -ge 2 ] && \
  ! redis-cli -p "${PORT[s1]}" sentinel replicas mymaster | tr -d '\r' | grep -qE 's_down|disconnected'; }
until_ok "sentinel still sees a replica down" "$DEADLINE" rejoined || redis-cli -p "${PORT[s1]}" sentinel replicas mymaster | tr -d '\r' | paste - - | grep -E '^(name|flags)'

echo "-- sentinel failover: $((SECONDS - t0))s"
if [ ${#FAILS[@]} -gt 0 ]; then
  echo "== ${#FAILS[@]} failure(s):"
  printf '  %s\n' "${FAILS[@]}"
  dump_logs s1 m r1 r2
  exit 1
fi
echo "sentinel failover: OK"
