#!/usr/bin/env bash
# AOF write throughput: redis-benchmark SET against shardis without AOF, with
# appendfsync everysec and always, and redis-server without AOF, with everysec and always,
# alternating in one run. Prints requests/s and the ratios issue 18 names.
#
# Usage: bench/aof.sh [-n REQUESTS] [-P PIPELINE] [--threads N] [--rounds N]
#   --rounds N  repeat the six runs N times, in reversed order every other
#               round, and report each configuration's median (default 1)
# Environment: SHARDIS_BIN (default <repo>/target/release/shardis-server), REDIS_BIN.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
n=300000 pipe=16 threads="" rounds=1
while [ $# -gt 0 ]; do
    case "$1" in
        -n) n=$2; shift ;;
        -P) pipe=$2; shift ;;
        --threads) threads=$2; shift ;;
        --rounds) rounds=$2; shift ;;
        *) echo "aof.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
    shift
done
shardis=${SHARDIS_BIN:-$repo/target/release/shardis-server}
redis=${REDIS_BIN:-$(command -v redis-server)}
work=$(mktemp -d /tmp/aof-bench.XXXXXX)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# run NAME BIN ARGS...: a fresh server in its own dir, one redis-benchmark run.
run() {
    local name=$1 bin=$2; shift 2
    local port=$((20000 + RANDOM % 12000)) dir="$work/$name"
    mkdir -p "$dir"
    (cd "$dir" && exec "$bin" --port "$port" --save '' "$@" >"$dir/log" 2>&1) &
    pid=$!
    for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    local rps
    rps=$(redis-benchmark -p "$port" -c 50 -n "$n" -P "$pipe" -r 100000 -t set --csv | awk -F'"' 'NR == 2 { print $4 }')
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
    echo "$rps"
}

t=()
[ -n "$threads" ] && t=(--threads "$threads")
names=(shardis-off redis-off redis-everysec shardis-everysec redis-always shardis-always)
declare -A args=(
    [shardis-off]="--appendonly no"
    [redis-off]="--appendonly no"
    [shardis-everysec]="--appendonly yes --appendfsync everysec"
    [shardis-always]="--appendonly yes --appendfsync always"
    [redis-everysec]="--appendonly yes --appendfsync everysec"
    [redis-always]="--appendonly yes --appendfsync always"
)
declare -A all
for round in $(seq "$rounds"); do
    order=("${names[@]}")
    if [ $((round % 2)) -eq 0 ]; then
        order=(); for ((i = ${#names[@]} - 1; i >= 0; i--)); do order+=("${names[$i]}"); done
    fi
    for name in "${order[@]}"; do
        # shellcheck disable=SC2086
        case $name in
            shardis-*) v=$(run "$name" "$shardis" "${t[@]}" ${args[$name]}) ;;
            redis-*) v=$(run "$name" "$redis" ${args[$name]}) ;;
        esac
        all[$name]="${all[$name]:-} $v"
    done
done
declare -A r
for name in "${names[@]}"; do
    r[$name]=$(printf '%s\n' ${all[$name]} | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
done

echo "## AOF: redis-benchmark -t set -c 50 -n $n -P $pipe -r 100000, median of $rounds round(s) ($(date -u '+%Y-%m-%d %H:%M UTC'), shardis ${t[*]:-default threads})"
echo
echo "| server | requests/s |"
echo "|---|---:|"
for name in shardis-off shardis-everysec shardis-always redis-off redis-everysec redis-always; do
    echo "| $name | ${r[$name]} |"
done
echo
awk -v off="${r[shardis-off]}" -v roff="${r[redis-off]}" -v se="${r[shardis-everysec]}" -v sa="${r[shardis-always]}" \
    -v re="${r[redis-everysec]}" -v ra="${r[redis-always]}" 'BEGIN {
    printf "- everysec vs the same server without AOF: %.2fx (want >= 0.9)\n", se / off
    printf "- for reference, redis everysec vs redis without AOF: %.2fx\n", re / roff
    printf "- everysec vs redis everysec: %.2fx (want >= 1.0)\n", se / re
    printf "- always vs redis always: %.2fx (want >= 1.0)\n", sa / ra
}'
