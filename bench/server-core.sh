#!/usr/bin/env bash
# server-core measurement: redis-benchmark SET/GET at -P 1 and -P 16 against
# redis-server and shardis-server (--threads 1 and 2), alternating in one run.
# Reports requests/s and server CPU-seconds per million requests (utime+stime
# of the server PID from /proc/PID/stat), and both as ratios to redis-server.
#
# Usage: bench/server-core.sh [--quick] [--rounds N] [--tests "set get"] [--threads "1 2"] [--out FILE]
#   --quick      -n 100000 instead of -n 1000000
#   --rounds N   repeat the whole alternation N times, report medians (default 1)
#   --tests L    space-separated tests (default "set get"); "evalsha" runs
#                EVALSHA of a short script (one GET) on a random key, loaded
#                with SCRIPT LOAD into each server first; "mset2" runs MSET
#                of two random keys (a cross-shard command half the time)
#   --threads L  space-separated shardis thread counts to run (default "1 2");
#                bench/scaling.sh passes 1..nproc
#   --out FILE   also write the markdown table to FILE
# Environment:
#   SHARDIS_BIN           shardis-server binary (default: <repo>/target/release/shardis-server)
#   SHARDIS_THREADS_FLAG  the flag that sets its thread count (default: --threads);
#                         to dry-run the script with redis-server in both shardis
#                         slots: SHARDIS_BIN=$(command -v redis-server) SHARDIS_THREADS_FLAG=--io-threads
#   REDIS_BIN             reference server (default: redis-server from PATH)
#   CLIENTS               redis-benchmark -c (default 50)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

requests=1000000
rounds=1
out=""
tests_arg="set get"
threads_arg="1 2"
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) requests=100000 ;;
        --rounds) rounds=${2:?--rounds needs a number}; shift ;;
        --out) out=${2:?--out needs a file}; shift ;;
        --tests) tests_arg=${2:?--tests needs a list}; shift ;;
        --threads) threads_arg=${2:?--threads needs a list}; shift ;;
        -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "server-core.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done
case "$rounds" in ''|*[!0-9]*|0) echo "server-core.sh: --rounds must be a positive integer" >&2; exit 2 ;; esac

clients=${CLIENTS:-50}
shardis_bin=${SHARDIS_BIN:-$repo/target/release/shardis-server}
threads_flag=${SHARDIS_THREADS_FLAG:---threads}

die() { echo "server-core.sh: $*" >&2; exit 1; }

if ! command -v redis-benchmark >/dev/null || ! command -v redis-server >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing redis-server and redis-tools ..." >&2
        apt-get install -y redis-server redis-tools >/dev/null || die "apt-get install redis-server redis-tools failed"
    else
        die "redis-benchmark and redis-server are needed: apt-get install -y redis-server redis-tools"
    fi
fi
redis_bin=${REDIS_BIN:-$(command -v redis-server)}
[ -x "$shardis_bin" ] || die "shardis-server not found at $shardis_bin (cargo build --release -p shardis-server, or set SHARDIS_BIN)"

clk_tck=$(getconf CLK_TCK)
workdir=$(mktemp -d /tmp/server-core.XXXXXX)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$workdir"
}
trap cleanup EXIT

# A loopback port nobody listens on.
free_port() {
    local p
    for _ in $(seq 100); do
        # Below the ephemeral range (32768+), where client sockets could hold the port.
        p=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"; return
        fi
    done
    die "no free loopback port found"
}

# start_server NAME PORT CMD... : runs CMD in the background in its own
# directory and waits (10 s deadline) until it answers PING on PORT.
start_server() {
    local name=$1 port=$2; shift 2
    mkdir -p "$workdir/$name"
    (cd "$workdir/$name" && exec "$@" >"$workdir/$name.log" 2>&1) &
    local pid=$!
    pids+=("$pid")
    local deadline=$((SECONDS + 10))
    until [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "---- $name log ----" >&2; tail -n 20 "$workdir/$name.log" >&2
            die "$name exited during start-up: $*"
        fi
        if [ $SECONDS -ge $deadline ]; then
            echo "---- $name log ----" >&2; tail -n 20 "$workdir/$name.log" >&2
            die "$name did not answer PING on port $port within 10 s: $*"
        fi
        sleep 0.1
    done
    server_pid[$name]=$pid
    server_port[$name]=$port
}

# Server CPU time in clock ticks (utime + stime, all threads). Fields are
# counted after the ')' that closes comm, which may contain spaces.
cpu_ticks() {
    local stat
    stat=$(cat "/proc/$1/stat") || die "server $1 is gone"
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat
    echo $(( ${12} + ${13} ))
}

declare -A server_pid server_port
servers=(redis)
p=$(free_port); start_server redis "$p" "$redis_bin" --port "$p" --bind 127.0.0.1 --save '' --appendonly no
for t in $threads_arg; do
    case "$t" in ''|*[!0-9]*|0) die "--threads takes positive integers, got '$t'" ;; esac
    servers+=("shardis-t$t")
    p=$(free_port); start_server "shardis-t$t" "$p" "$shardis_bin" --port "$p" "$threads_flag" "$t" --save ''
done

declare -A rps_of cpu_of  # key: "test P server", value: space-separated samples
read -r -a tests <<<"$tests_arg"
script_body="return redis.call('GET', KEYS[1])"
script_sha=""
for name in "${servers[@]}"; do
    script_sha=$(redis-cli -p "${server_port[$name]}" SCRIPT LOAD "$script_body")
done

# run_one SERVER TEST PIPELINE: one redis-benchmark run, recording requests/s
# and the server's CPU-seconds per million requests.
run_one() {
    local name=$1 test=$2 pipe=$3
    local pid=${server_pid[$name]} port=${server_port[$name]}
    local before after csv rps cpu
    local what=(-t "$test")
    if [ "$test" = evalsha ]; then
        what=(-r 100000 EVALSHA "$script_sha" 1 "key:__rand_int__")
    elif [ "$test" = mset2 ]; then
        # Two random keys: on two shards about half the time.
        what=(-r 100000 MSET "key:__rand_int__" v "other:__rand_int__" v)
    fi
    before=$(cpu_ticks "$pid")
    if ! csv=$(redis-benchmark -h 127.0.0.1 -p "$port" -c "$clients" -n "$requests" -P "$pipe" --csv "${what[@]}" 2>"$workdir/bench.err"); then
        cat "$workdir/bench.err" >&2
        die "redis-benchmark failed against $name (port $port)"
    fi
    after=$(cpu_ticks "$pid")
    kill -0 "$pid" 2>/dev/null || die "$name died during the $test -P $pipe run"
    # The CSV row after the header: "SET","123456.79",...
    rps=$(printf '%s\n' "$csv" | awk -F'"' 'NR == 2 { print $4 }')
    [ -n "$rps" ] || die "no result from redis-benchmark against $name: $csv"
    cpu=$(awk -v t=$((after - before)) -v hz="$clk_tck" -v n="$requests" 'BEGIN { printf "%.3f", t / hz / n * 1e6 }')
    rps_of["$test $pipe $name"]+="$rps "
    cpu_of["$test $pipe $name"]+="$cpu "
    printf '  %-10s %-4s -P %-3s %12s rps  %7s CPU-s/1M\n' "$name" "$test" "$pipe" "$rps" "$cpu" >&2
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for round in $(seq "$rounds"); do
    echo "round $round/$rounds (-c $clients -n $requests)" >&2
    # Rotate the server order each round so no server always runs first.
    order=()
    n=${#servers[@]}
    for i in $(seq 0 $((n - 1))); do order+=("${servers[$(( (i + round - 1) % n ))]}"); done
    for pipe in 1 16; do
        for test in "${tests[@]}"; do
            for name in "${order[@]}"; do
                run_one "$name" "$test" "$pipe"
            done
        done
    done
done

table=$(
    echo "## server-core: redis-benchmark -c $clients -n $requests, tests: ${tests[*]}"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $rounds round(s) alternating, medians shown."
    echo "redis: \`$("$redis_bin" --version | head -n 1)\`; shardis: \`$shardis_bin\` ($threads_flag $threads_arg)."
    echo "CPU = server utime+stime from /proc/PID/stat, in CPU-seconds per million requests (lower is better)."
    echo
    echo "| test | -P | server | requests/s | CPU-s / 1M req | rps vs redis | CPU vs redis |"
    echo "|---|---:|---|---:|---:|---:|---:|"
    for pipe in 1 16; do
        for test in "${tests[@]}"; do
            base_rps=$(median <<<"${rps_of["$test $pipe redis"]}")
            base_cpu=$(median <<<"${cpu_of["$test $pipe redis"]}")
            for name in "${servers[@]}"; do
                r=$(median <<<"${rps_of["$test $pipe $name"]}")
                c=$(median <<<"${cpu_of["$test $pipe $name"]}")
                awk -v t="${test^^}" -v p="$pipe" -v s="$name" -v r="$r" -v c="$c" -v br="$base_rps" -v bc="$base_cpu" \
                    'BEGIN { printf "| %s | %d | %s | %.0f | %.3f | %.2fx | %s |\n", t, p, s, r, c, (br > 0 ? r / br : 0), (bc > 0 ? sprintf("%.2fx", c / bc) : "n/a") }'
            done
        done
    done
)
printf '%s\n' "$table"
if [ -n "$out" ]; then
    printf '%s\n' "$table" >"$out"
    echo "wrote $out" >&2
fi
