#!/usr/bin/env bash
# Memory per key: shardis-server against redis-server 7.0 with the same data.
#
# Starts both servers (persistence off) on spare loopback ports, loads the same
# keys into each with `redis-cli --pipe`, and prints, per server, INFO memory
# `used_memory` and the process's VmRSS (/proc/PID/status) after the load minus
# the same numbers before it, divided by the number of keys, and the ratio
# shardis / redis.
#
# Datasets:
#   strings  N string keys `key:NNNNNNNNN` with values of 3..16 bytes
#            (letters, so never int-encoded) — redis-benchmark -t set -r style
#   small    N/10 keys each of a hash (10 fields), a set of 10 integers, a
#            set of 10 strings, a zset (10 members) and a list (10 items):
#            5*N/10 keys, the small-collection encodings
#   hash, intset, strset, zset, list
#            one of those kinds alone, N/10 keys
#   stream   one stream of N entries with two fields each (XADD *)
#
# Usage: bench/memory-per-key.sh [--keys N] [--dataset strings|small|all] [--threads T]
#   --keys N      string keys (default 1000000)
#   --dataset D   which dataset(s) to load (default all: strings, small, stream)
#   --threads T   shardis --threads (default 1; each shard has its own tables)
# Environment: SHARDIS_BIN (default $CARGO_TARGET_DIR/release/shardis-server,
# else <repo>/target/release/shardis-server), REDIS_BIN.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

keys=1000000
dataset=all
threads=1
while [ $# -gt 0 ]; do
    case "$1" in
        --keys) keys=${2:?--keys needs a number}; shift ;;
        --dataset) dataset=${2:?--dataset needs strings, small or all}; shift ;;
        --threads) threads=${2:?--threads needs a number}; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "memory-per-key: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done
case "$keys" in ''|*[!0-9]*|0) echo "memory-per-key: --keys must be a positive number" >&2; exit 2 ;; esac
case "$dataset" in strings|small|hash|intset|strset|zset|list|stream) sets=("$dataset") ;;
    all) sets=(strings small stream) ;;
    *) echo "memory-per-key: --dataset must be strings, small, hash, intset, strset, zset, list, stream or all" >&2; exit 2 ;; esac

die() { echo "memory-per-key: $*" >&2; exit 1; }

target=${CARGO_TARGET_DIR:-$repo/target}
shardis_bin=${SHARDIS_BIN:-$target/release/shardis-server}
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing redis-server and redis-tools ..." >&2
        apt-get install -y redis-server redis-tools >/dev/null || die "apt-get install redis-server redis-tools failed"
    else
        die "redis-server and redis-cli are needed: apt-get install -y redis-server redis-tools"
    fi
fi
redis_bin=${REDIS_BIN:-$(command -v redis-server)}
[ -x "$shardis_bin" ] || die "shardis-server not found at $shardis_bin (cargo build --release -p shardis-server, or set SHARDIS_BIN)"
command -v python3 >/dev/null || die "python3 is needed to generate the load"

workdir=$(mktemp -d /tmp/memory-per-key.XXXXXX)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$workdir"
}
trap cleanup EXIT

free_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"; return
        fi
    done
    die "no free loopback port found"
}

# gen DATASET FILE: the load as RESP, generated once and sent to both servers.
gen() {
    python3 - "$1" "$keys" >"$2" <<'EOF'
import random, sys
kind, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(42)
out = sys.stdout.buffer
def cmd(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)
letters = b"abcdefghijklmnopqrstuvwxyz"
def word(lo, hi):
    return bytes(rnd.choice(letters) for _ in range(rnd.randint(lo, hi)))
buf = []
if kind == "strings":
    for i in range(n):
        buf.append(cmd(b"SET", b"key:%09d" % i, word(3, 16)))
        if len(buf) >= 10000:
            out.write(b"".join(buf)); buf = []
elif kind == "stream":
    for i in range(n):
        buf.append(cmd(b"XADD", b"stream", b"*", b"name", word(3, 16), b"n", b"%d" % rnd.randint(0, 1000000)))
        if len(buf) >= 10000:
            out.write(b"".join(buf)); buf = []
else:
    kinds = ["hash", "intset", "strset", "zset", "list"] if kind == "small" else [kind]
    for i in range(n // 10):
        for k in kinds:
            if k == "hash":
                c = [b"HSET", b"hash:%09d" % i]
                for j in range(10):
                    c += [b"field:%d" % j, word(3, 16)]
            elif k == "intset":
                c = [b"SADD", b"iset:%09d" % i] + [b"%d" % rnd.randint(0, 1000000) for _ in range(10)]
            elif k == "strset":
                c = [b"SADD", b"set:%09d" % i] + [b"member:%d" % j for j in range(10)]
            elif k == "zset":
                c = [b"ZADD", b"zset:%09d" % i]
                for j in range(10):
                    c += [b"%d" % rnd.randint(0, 1000000), b"member:%d" % j]
            else:
                c = [b"RPUSH", b"list:%09d" % i] + [word(3, 16) for _ in range(10)]
            buf.append(cmd(*c))
        if len(buf) >= 10000:
            out.write(b"".join(buf)); buf = []
out.write(b"".join(buf))
EOF
}

info_field() { # PORT FIELD
    timeout 10 redis-cli -p "$1" info memory | tr -d '\r' | awk -F: -v f="$2" '$1 == f { print $2 }'
}
rss_bytes() { awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$1/status"; }
dbsize() { timeout 10 redis-cli -p "$1" dbsize | tr -d '\r'; }

# measure NAME DATASET CMD...: starts the server, loads DATASET, prints
# "used_bytes_per_key rss_bytes_per_key keys".
measure() {
    local name=$1 set=$2; shift 2
    local port pid deadline used0 rss0 used1 rss1 n
    port=$(free_port)
    mkdir -p "$workdir/$name"
    (cd "$workdir/$name" && exec "$@" --port "$port" >"$workdir/$name.log" 2>&1) &
    pid=$!
    pids+=("$pid")
    deadline=$((SECONDS + 10))
    until [ "$(timeout 2 redis-cli -p "$port" ping 2>/dev/null)" = PONG ]; do
        kill -0 "$pid" 2>/dev/null || { tail -n 20 "$workdir/$name.log" >&2; die "$name exited during start-up"; }
        [ $SECONDS -lt $deadline ] || die "$name did not answer PING on $port"
        sleep 0.05
    done
    used0=$(info_field "$port" used_memory); rss0=$(rss_bytes "$pid")
    timeout 300 redis-cli -p "$port" --pipe <"$workdir/$set.resp" >"$workdir/$name.pipe" 2>&1 \
        || { cat "$workdir/$name.pipe" >&2; die "loading $set into $name failed"; }
    grep -q 'errors: 0,' "$workdir/$name.pipe" || { cat "$workdir/$name.pipe" >&2; die "$name replied errors while loading"; }
    # A stream is one key: per entry is what compares.
    if [ "$set" = stream ]; then n=$(timeout 10 redis-cli -p "$port" xlen stream | tr -d '\r'); else n=$(dbsize "$port"); fi
    sleep 1 # let the allocator settle and the cron sample
    used1=$(info_field "$port" used_memory); rss1=$(rss_bytes "$pid")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    awk -v u=$((used1 - used0)) -v r=$((rss1 - rss0)) -v n="$n" 'BEGIN { printf "%.1f %.1f %d\n", u / n, r / n, n }'
}

printf '%-8s %-8s %10s %14s %14s\n' dataset server keys used/key rss/key # stream: per entry
for set in "${sets[@]}"; do
    gen "$set" "$workdir/$set.resp"
    read -r su sr sn <<<"$(measure shardis "$set" "$shardis_bin" --bind 127.0.0.1 --save '' --threads "$threads")"
    read -r ru rr rn <<<"$(measure redis "$set" "$redis_bin" --bind 127.0.0.1 --save '' --appendonly no)"
    [ "$sn" = "$rn" ] || die "key counts differ: shardis $sn, redis $rn"
    printf '%-8s %-8s %10d %14s %14s\n' "$set" shardis "$sn" "$su" "$sr"
    printf '%-8s %-8s %10d %14s %14s\n' "$set" redis "$rn" "$ru" "$rr"
    awk -v a="$su" -v b="$ru" -v c="$sr" -v d="$rr" -v s="$set" \
        'BEGIN { printf "%-8s %-8s %10s %13.2fx %13.2fx\n", s, "ratio", "", a / b, c / d }'
done
