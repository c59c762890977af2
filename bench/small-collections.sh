#!/usr/bin/env bash
# CPU per request on small collections: shardis-server against redis-server.
#
# For each command, starts each server fresh (persistence off), fills it with
# redis-benchmark (-n requests over -r 100000 random keys, so each collection
# holds about ten members), then measures the command for -n requests and
# prints requests/s and the server's CPU (utime + stime from /proc) in
# microseconds per request. Servers run in the order given, per command.
#
# Commands: HSET, HGET, SADD, ZADD, LPUSH and LRANGE 0 9 (after an LPUSH fill).
#
# Usage: bench/small-collections.sh [-n N] [-P P] [NAME=BINARY ...]
#   -n N   measured requests per command (default 1000000)
#   -P P   pipeline depth (default 16)
#   NAME=BINARY  a shardis-server build to include (default: shardis=
#          $CARGO_TARGET_DIR/release/shardis-server, else <repo>/target/...);
#          redis-server is always included. shardis runs with --threads 1.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
n=1000000
pipe=16
servers=()
while [ $# -gt 0 ]; do
    case "$1" in
        -n) n=${2:?-n needs a number}; shift ;;
        -P) pipe=${2:?-P needs a number}; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *=*) servers+=("$1") ;;
        *) echo "small-collections: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done
target=${CARGO_TARGET_DIR:-$repo/target}
[ ${#servers[@]} -gt 0 ] || servers=("shardis=$target/release/shardis-server")
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null \
    || { echo "small-collections: needs redis-server and redis-benchmark (apt-get install redis-server redis-tools)" >&2; exit 1; }
hz=$(getconf CLK_TCK)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null || true' EXIT

free_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
    done
    echo "small-collections: no free port" >&2; exit 1
}
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# measure NAME FILL-ARGS -- ARGS: one server run, one line.
measure() {
    local name=$1 bin=$2 port; shift 2
    local fill=() args=()
    while [ "$1" != -- ]; do fill+=("$1"); shift; done
    shift
    args=("$@")
    port=$(free_port)
    if [ "$bin" = redis ]; then
        redis-server --port "$port" --save '' --appendonly no >/dev/null 2>&1 &
    else
        "$bin" --port "$port" --save '' --threads 1 >/dev/null 2>&1 &
    fi
    pid=$!
    local deadline=$((SECONDS + 10))
    until [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ]; do
        [ $SECONDS -lt $deadline ] || { echo "small-collections: $name did not start" >&2; exit 1; }
        sleep 0.05
    done
    redis-benchmark -p "$port" -q -n "$n" -P "$pipe" -r 100000 -c 50 "${fill[@]}" >/dev/null 2>&1
    local t0 t1 rps
    t0=$(cpu "$pid")
    rps=$(redis-benchmark -p "$port" -q -n "$n" -P "$pipe" -r 100000 -c 50 "${args[@]}" 2>&1 \
        | tr '\r' '\n' | grep -oE '[0-9.]+ requests per second' | tail -1 | awk '{ print $1 }')
    t1=$(cpu "$pid")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    pid=""
    awk -v c="${args[0]}" -v s="$name" -v r="$rps" -v d=$((t1 - t0)) -v hz="$hz" -v n="$n" \
        'BEGIN { printf "%-8s %-10s %12.0f %10.3f\n", c, s, r, d / hz * 1e6 / n }'
}

printf '%-8s %-10s %12s %10s\n' command server rps cpu_us/req
run() { # FILL... -- ARGS...
    measure redis redis "$@"
    for s in "${servers[@]}"; do measure "${s%%=*}" "${s#*=}" "$@"; done
}
run HSET h:__rand_int__ f:__rand_int__ v -- HSET h:__rand_int__ f:__rand_int__ v
run HSET h:__rand_int__ f:__rand_int__ v -- HGET h:__rand_int__ f:__rand_int__
run SADD s:__rand_int__ m:__rand_int__ -- SADD s:__rand_int__ m:__rand_int__
run ZADD z:__rand_int__ __rand_int__ m:__rand_int__ -- ZADD z:__rand_int__ __rand_int__ m:__rand_int__
run LPUSH l:__rand_int__ v -- LPUSH l:__rand_int__ v
run LPUSH l:__rand_int__ v -- LRANGE l:__rand_int__ 0 9
