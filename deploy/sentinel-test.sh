#!/usr/bin/env bash
# Automatic failover under docker compose: deploy/docker-compose.sentinel.yml (a shardis master,
# two shardis replicas, three stock Redis Sentinels). Writes batches of keys acknowledged by
# `WAIT 2 1000`, kills the master container (SIGKILL) while writing, then checks that the sentinels
# promote a replica, that the other replica follows it, that both hold the same dataset, and that
# no write WAIT 2 acknowledged is lost.
#
#   bash deploy/sentinel-test.sh               # builds binaries, stages redis-server, builds images
#   SKIP_BUILD=1 bash deploy/sentinel-test.sh  # reuse deploy/build and the images
#
# Needs docker with `docker compose` or `docker-compose`, Debian's redis-server (copied into the
# sentinel image) and python3 (the writer runs on the host and reaches the containers by their
# bridge-network addresses). Pulls nothing. Always tears the deployment down (down -v) on exit;
# on failure it prints every service's log first.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
NAME=sentinel-test
DEADLINE=${DEADLINE:-60}                     # seconds for any one wait
FAILOVER_DEADLINE=${FAILOVER_DEADLINE:-60}   # down-after 2 s + election + promotion, with slack
source "$here/test-lib.sh"
# Its own project name: deploy/docker-compose.yml would otherwise share the "deploy" project.
compose_init "$here/docker-compose.sentinel.yml" shardis-sentinel
command -v python3 >/dev/null || { echo "sentinel-test: python3 is missing" >&2; exit 2; }

work=$(mktemp -d)
WRITER=

teardown() {
    local rc=$?
    [ -n "$WRITER" ] && kill "$WRITER" 2>/dev/null
    compose_down "$rc"
    rm -rf "$work"
    exit "$rc"
}

# cli CONTAINER ARGS...: shardis-cli inside a container, CR stripped (sentinels: -p 26379 first).
cli() { local c=$1; shift; docker exec "$c" shardis-cli "$@" | tr -d '\r'; }
scli() { local c=$1; shift; cli "$c" -p 26379 "$@"; }
ip_of() { docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$1"; }

NODES=(shardis-sentinel-master shardis-sentinel-slave-1 shardis-sentinel-slave-2)
SENTINELS=(shardis-sentinel-1 shardis-sentinel-2 shardis-sentinel-3)

cd "$here/.."
if [ "${SKIP_BUILD:-}" != 1 ]; then
    step "build static binaries, stage Debian's redis-server with its libraries"
    bash "$here/build-static.sh"
    bash "$here/stage-sentinel.sh"
    step "build images shardis-node:local and shardis-sentinel:local (FROM scratch, nothing pulled)"
    "${dc[@]}" build
fi

memlock_fallback shardis-node:local "$work/memlock.yml"

"${dc[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
trap teardown EXIT

step "up -d"
"${dc[@]}" up -d
wait_for "all six containers healthy" healthy "${NODES[@]}" "${SENTINELS[@]}"
echo "ok: all healthy"

step "the sentinels find both replicas and each other"
discovered() {
    local c info
    for c in "${SENTINELS[@]}"; do
        info=$(scli "$c" sentinel master mymaster | paste - - | tr '\t' ':')
        grep -qx 'num-slaves:2' <<<"$info" && grep -qx 'num-other-sentinels:2' <<<"$info" || return 1
    done
}
wait_for "num-slaves 2 and num-other-sentinels 2 on every sentinel" discovered
master_ip=$(ip_of shardis-sentinel-master)
s1_ip=$(ip_of shardis-sentinel-slave-1)
s2_ip=$(ip_of shardis-sentinel-slave-2)
addr=$(scli shardis-sentinel-1 sentinel get-master-addr-by-name mymaster | paste -sd:)
[ "$addr" = "$master_ip:6379" ] || fail "get-master-addr-by-name is '$addr', expected $master_ip:6379"
echo "ok: sentinels agree the master is $addr (slaves $s1_ip, $s2_ip)"

step "write batches acknowledged by WAIT 2 1000, kill -9 the master meanwhile"
: >"$work/acked"
python3 -c "import socket; socket.create_connection(('$master_ip', 6379), timeout=5)" ||
    fail "the host cannot reach the master container at $master_ip:6379 (bridge network not routable?)"
python3 "$here/acked-writes.py" write "$master_ip" 6379 "$work/acked" &
WRITER=$!
enough() { [ "$(wc -l <"$work/acked")" -ge 20 ]; }
wait_for "20 batches acknowledged by WAIT 2" enough
docker kill shardis-sentinel-master >/dev/null
killed=$(date +%s)
wait "$WRITER" 2>/dev/null || true
WRITER=
echo "ok: master container killed after $(wc -l <"$work/acked") acknowledged batches of 50 keys"

step "the sentinels promote a replica"
promoted() {
    local c a first=
    for c in "${SENTINELS[@]}"; do
        a=$(scli "$c" sentinel get-master-addr-by-name mymaster | sed -n 1p)
        [ "$a" = "$s1_ip" ] || [ "$a" = "$s2_ip" ] || return 1
        [ -z "$first" ] || [ "$a" = "$first" ] || return 1
        first=$a
    done
}
DEADLINE=$FAILOVER_DEADLINE wait_for "the sentinels to agree on a promoted replica" promoted
new_ip=$(scli shardis-sentinel-1 sentinel get-master-addr-by-name mymaster | sed -n 1p)
if [ "$new_ip" = "$s1_ip" ]; then new=shardis-sentinel-slave-1; other=shardis-sentinel-slave-2;
else new=shardis-sentinel-slave-2; other=shardis-sentinel-slave-1; fi
echo "ok: $new ($new_ip) promoted $(($(date +%s) - killed))s after the kill"
docker logs shardis-sentinel-1 2>&1 | grep -E '\+(sdown|odown|elected-leader|selected-slave|promoted-slave|switch-master)|voted for' | sed -n '1,20p'
[ "$(cli "$new" info replication | pick role)" = master ] || fail "$new does not report role:master"
# The node's config file is in its volume: Sentinel's CONFIG REWRITE must succeed.
# (The log is read whole first: with pipefail, grep -q closing the pipe early would fail it.)
new_log=$(docker logs "$new" 2>&1)
grep -q 'CONFIG REWRITE executed with success' <<<"$new_log" ||
    fail "$new did not log 'CONFIG REWRITE executed with success'"

step "the other replica follows the new master"
follows() {
    local info
    info=$(cli "$other" info replication)
    [ "$(pick master_host <<<"$info")" = "$new_ip" ] && [ "$(pick master_link_status <<<"$info")" = up ]
}
wait_for "$other master_host:$new_ip master_link_status:up" follows
other_log=$(docker logs "$other" 2>&1)
grep -q "REPLICAOF $new_ip:6379 enabled (user request from '.*name=sentinel-" <<<"$other_log" ||
    fail "$other did not log Sentinel's REPLICAOF $new_ip:6379"
cli "$other" info replication | grep -E '^(role|master_host|master_port|master_link_status|master_replid2|second_repl_offset):'
in_sync() {
    local mo
    mo=$(cli "$new" info replication | pick master_repl_offset)
    [ -n "$mo" ] && [ "$(cli "$other" info replication | pick master_repl_offset)" = "$mo" ]
}
wait_for "$other at $new's offset" in_sync
d1=$(cli "$new" debug digest); d2=$(cli "$other" debug digest)
[ "$d1" = "$d2" ] || fail "digests differ: $new $d1, $other $d2"
echo "ok: DEBUG DIGEST equal on both survivors ($d1)"

step "no write acknowledged by WAIT 2 is lost"
read -r missing total < <(python3 "$here/acked-writes.py" check "$new_ip" 6379 "$work/acked")
[ "$missing" = 0 ] || fail "$missing of $total acknowledged keys are missing on the new master"
echo "ok: all $total acknowledged keys are on the new master"

step "PASS in $(($(date +%s) - started))s (down -v follows)"
