#!/usr/bin/env bash
# Runs the seed walkthrough (master + slave1 + slave2 under docker compose, then a manual failover)
# against deploy/docker-compose.yml and fails on the first divergence.
#
#   bash deploy/compose-test.sh               # builds static binaries + image, then tests
#   SKIP_BUILD=1 bash deploy/compose-test.sh  # reuse deploy/build and the shardis:local image
#
# Needs docker with `docker compose` or `docker-compose`. Pulls nothing (the image is FROM scratch).
# Always tears the deployment down (down -v) on exit; on failure it prints every service's log first.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
NAME=compose-test
# Each wait below gives up after this many seconds.
DEADLINE=${DEADLINE:-60}
source "$here/test-lib.sh"
compose_init "$here/docker-compose.yml"
work=$(mktemp -d)

teardown() {
    local rc=$?
    compose_down "$rc"
    rm -rf "$work"
    exit "$rc"
}

# cli SERVICE ARGS...: shardis-cli inside the service's container, CR stripped.
# --no-raw prints replies as an interactive redis-cli does ("(error) READONLY ..."), like the seed.
cli() {
    local svc=$1
    shift
    "${dc[@]}" exec -T "$svc" shardis-cli --no-raw "$@" | tr -d '\r'
}

# field SERVICE NAME: one field of INFO replication. Each exec costs about a second with
# docker-compose v1, so checks of several fields read one INFO into a variable and use pick.
field() {
    cli "$1" info replication | pick "$2"
}

# expect WHAT GOT WANT: exact comparison.
expect() {
    if [ "$2" != "$3" ]; then
        fail "$1: expected '$3', got '$2'"
    fi
    echo "ok: $1 = '$3'"
}

# log_lines CONTAINER: the container's log (shardis logs to stdout).
log_lines() { docker logs "$1" 2>&1 | tr -d '\r'; }

cd "$here/.."

if [ "${SKIP_BUILD:-}" != 1 ]; then
    step "build static binaries"
    bash "$here/build-static.sh"
    step "build image shardis:local (FROM scratch, nothing pulled)"
    "${dc[@]}" build
fi

memlock_fallback shardis:local "$work/memlock.yml"

# A leftover deployment from an interrupted run would keep old data in the volumes.
"${dc[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
trap teardown EXIT

step "up -d"
"${dc[@]}" up -d

step "wait until all three services are healthy (shardis-cli ping)"
wait_for "healthy master, slave1 and slave2" healthy shardis-master shardis-slave-1 shardis-slave-2
echo "ok: all healthy"

step "info replication on the master: connected_slaves:2, both online"
both_online() {
    local info
    info=$(cli master info replication)
    grep -qx 'connected_slaves:2' <<<"$info" &&
        [ "$(grep -c '^slave[01]:ip=.*,port=6379,state=online,' <<<"$info")" = 2 ]
}
wait_for "connected_slaves:2 with both replicas online" both_online
info=$(cli master info replication)
echo "$info"
expect "master role" "$(pick role <<<"$info")" master
for svc in slave1 slave2; do
    info=$(cli "$svc" info replication)
    expect "$svc master_host" "$(pick master_host <<<"$info")" master
    expect "$svc master_link_status" "$(pick master_link_status <<<"$info")" up
done
for svc in slave1 slave2; do
    log_lines "shardis-${svc/slave/slave-}" | grep -q 'MASTER <-> REPLICA sync: Finished with success' ||
        fail "$svc log has no 'MASTER <-> REPLICA sync: Finished with success'"
done
echo "ok: both replicas logged a finished sync"

step "set name on the master, get name on slave1"
expect "master: set name huangjinjie" "$(cli master set name huangjinjie)" OK
slave1_has_name() { [ "$(cli slave1 get name)" = '"huangjinjie"' ]; }
wait_for "slave1 to return \"huangjinjie\" for get name" slave1_has_name
echo "ok: slave1 get name = \"huangjinjie\""

step "a write on a replica is refused"
readonly_err="(error) READONLY You can't write against a read only replica."
expect "slave1: set name2 ddddd" "$(cli slave1 set name2 ddddd)" "$readonly_err"
expect "slave2: set name2 ddddd" "$(cli slave2 set name2 ddddd)" "$readonly_err"

old_replid=$(field master master_replid)
[ ${#old_replid} = 40 ] || fail "master_replid of the master looks wrong: '$old_replid'"

step "stop master: the replicas keep retrying 'Connecting to MASTER master:6379'"
before1=$(log_lines shardis-slave-1 | grep -c 'Connecting to MASTER master:6379' || true)
before2=$(log_lines shardis-slave-2 | grep -c 'Connecting to MASTER master:6379' || true)
"${dc[@]}" stop master
# Two more attempts each after the stop = the replica is retrying, not just reconnecting once.
retrying() {
    local n1 n2
    n1=$(log_lines shardis-slave-1 | grep -c 'Connecting to MASTER master:6379' || true)
    n2=$(log_lines shardis-slave-2 | grep -c 'Connecting to MASTER master:6379' || true)
    [ "$n1" -ge $((before1 + 2)) ] && [ "$n2" -ge $((before2 + 2)) ]
}
wait_for "two or more 'Connecting to MASTER master:6379' lines per replica after the stop" retrying
log_lines shardis-slave-1 | tail -n 4
expect "slave1 master_link_status after the stop" "$(field slave1 master_link_status)" down
expect "slave1 still serves stale data: get name" "$(cli slave1 get name)" '"huangjinjie"'

step "manual failover: slave1 SLAVEOF NO ONE, slave2 SLAVEOF slave1 6379"
slave2_log_from=$(($(log_lines shardis-slave-2 | wc -l) + 1))
expect "slave1: slaveof no one" "$(cli slave1 slaveof no one)" OK
info=$(cli slave1 info replication)
expect "slave1 role" "$(pick role <<<"$info")" master
expect "slave1 master_replid2 (the old master's id, kept for PSYNC2)" \
    "$(pick master_replid2 <<<"$info")" "$old_replid"
expect "slave2: slaveof slave1 6379" "$(cli slave2 slaveof slave1 6379)" OK

slave2_linked() {
    info=$(cli slave2 info replication)
    grep -qx 'master_host:slave1' <<<"$info" && grep -qx 'master_link_status:up' <<<"$info"
}
wait_for "slave2 master_host:slave1 and master_link_status:up" slave2_linked
echo "$info"
expect "slave2 master_host" "$(pick master_host <<<"$info")" slave1
expect "slave2 master_link_status" "$(pick master_link_status <<<"$info")" up
expect "slave2 master_replid2 (the old master's id)" "$(pick master_replid2 <<<"$info")" "$old_replid"
second_off=$(pick second_repl_offset <<<"$info")
[ "$second_off" -gt 0 ] 2>/dev/null || fail "slave2 second_repl_offset should be > 0, got '$second_off'"
echo "ok: slave2 second_repl_offset = $second_off"

step "slave2 continued with a partial resync (PSYNC2), no full resync"
failover_log=$(log_lines shardis-slave-2 | tail -n +"$slave2_log_from")
echo "$failover_log"
grep -q 'Successful partial resynchronization with master.' <<<"$failover_log" ||
    fail "slave2 did not log 'Successful partial resynchronization with master.' after SLAVEOF slave1"
if grep -qE 'Full resync from master|Flushing old data|Loading DB in memory' <<<"$failover_log"; then
    fail "slave2 did a full resync after SLAVEOF slave1 (PSYNC2 should continue partially)"
fi
log_lines shardis-slave-1 | grep -q 'Partial resynchronization request from .* accepted' ||
    fail "slave1 did not log 'Partial resynchronization request from ... accepted'"
echo "ok: partial resync on both ends, no full resync"
expect "slave2 still has the data: get name" "$(cli slave2 get name)" '"huangjinjie"'

step "write on slave1 (the new master), read it on slave2"
expect "slave1: set name failover-ok" "$(cli slave1 set name failover-ok)" OK
slave2_has_new() { [ "$(cli slave2 get name)" = '"failover-ok"' ]; }
wait_for "slave2 to return \"failover-ok\" for get name" slave2_has_new
echo "ok: slave2 get name = \"failover-ok\""
expect "slave2 is still read-only" "$(cli slave2 set name2 ddddd)" "$readonly_err"
expect "slave1 connected_slaves" "$(field slave1 connected_slaves)" 1

step "PASS in $(($(date +%s) - started))s (down -v follows)"
