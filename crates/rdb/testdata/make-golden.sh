#!/usr/bin/env bash
# Regenerates the golden RDB files and DUMP payloads with the real redis-server
# (Debian's 7.0.15: apt-get install -y redis-server redis-tools). The tests in
# crates/rdb/tests/golden.rs assert the exact contents written here, so keep the
# two in step. Only loopback is used; the server is stopped on exit.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
port=$((20000 + RANDOM % 20000))
start() { # start PORT DIR [extra redis-server args...]
  local p="$1" d="$2"; shift 2
  mkdir -p "$d"
  redis-server --port "$p" --bind 127.0.0.1 --dir "$d" --save "" --appendonly no \
    --enable-debug-command yes --daemonize yes --logfile "$d/redis.log" "$@"
  for _ in $(seq 50); do redis-cli -p "$p" ping >/dev/null 2>&1 && return; sleep 0.1; done
  echo "redis-server on port $p did not start" >&2; exit 1
}
stop() { redis-cli -p "$1" shutdown nosave >/dev/null 2>&1 || true; }
cleanup() { stop "$port"; stop $((port + 1)); rm -rf "$tmp"; }
trap cleanup EXIT
start "$port" "$tmp"
# Runs a command in db $DB (default 0) and fails on an error reply.
cli() {
  local out
  out="$(redis-cli -p "$port" -n "${DB:-0}" "$@")"
  case "$out" in ERR*|WRONGTYPE*) echo "redis error for $*: $out" >&2; exit 1 ;; esac
}
save_as() { redis-cli -p "$port" save >/dev/null; cp "$tmp/dump.rdb" "$here/$1"; }
far=4102444800000 # 2100-01-01, so expiries never fire

# 1. Small objects: compact encodings (listpack, intset), several string encodings.
cli flushall
cli set str:plain "hello world"
cli set str:int8 "-12"
cli set str:int16 "1234"
cli set str:int32 "1234567"
cli set str:bigint "12345678901234"
cli set str:lzf "$(printf 'abcdefgh%.0s' $(seq 20))"
cli set str:empty ""
cli rpush list:small a b 3 -4 "$(printf 'x%.0s' $(seq 100))"
cli sadd set:int 1 2 3 -100 70000 5000000000
cli sadd set:str apple banana
cli hset hash:small f1 v1 f2 2 f3 -3000
cli zadd zset:small 1 one 2.5 two -inf minf 1e300 big
cli set exp:ms v PXAT $far
cli hset exp:hash a b
cli pexpireat exp:hash $far
DB=3 cli set db3:key in-db-3
DB=3 cli rpush db3:list z
DB=15 cli set db15:key in-db-15
save_as small.rdb

# 2. Large encodings via low thresholds: quicklist with several nodes, hashtable
#    sets and hashes, skiplist zsets, a plain (non-listpack) quicklist node.
cli flushall
cli config set list-max-listpack-size 4
cli config set hash-max-listpack-entries 4
cli config set set-max-intset-entries 4
cli config set zset-max-listpack-entries 4
cli rpush list:big $(seq 1 20)
cli sadd set:big $(seq 1 10)
cli sadd set:strbig $(for i in $(seq 1 10); do echo "m$i"; done)
cli hset hash:big $(for i in $(seq 1 10); do echo "f$i v$i"; done)
cli zadd zset:big $(for i in $(seq 1 10); do echo "$i.5 m$i"; done)
cli debug quicklist-packed-threshold 100
cli rpush list:plain small "$(printf 'P%.0s' $(seq 200))" tail
cli debug quicklist-packed-threshold 1073741824
save_as large.rdb

# 3. A stream with a consumer group, pending entries and a deleted entry.
cli flushall
cli config set stream-node-max-entries 3
cli xadd st 1-1 name alice age 30
cli xadd st 1-2 name bob age 31
cli xadd st 2-0 name carol age 32 extra yes
cli xadd st 3-5 other field
cli xadd st 4-0 name dave age 33
cli xdel st 1-2
cli xgroup create st grp 0
cli xreadgroup group grp c1 count 2 streams st '>'
cli xclaim st grp c2 0 3-5 time 1700000000000 retrycount 4 force
cli xgroup create st empty '$'
cli xadd st:empty '*' a b
cli xtrim st:empty maxlen 0
save_as stream.rdb

# 4. rdbcompression and rdbchecksum off (rdbchecksum is immutable: a second server).
start $((port + 1)) "$tmp/nocrc" --rdbcompression no --rdbchecksum no
redis-cli -p $((port + 1)) set long "$(printf 'abcdefgh%.0s' $(seq 20))" >/dev/null
redis-cli -p $((port + 1)) save >/dev/null
cp "$tmp/nocrc/dump.rdb" "$here/nocompress-nochecksum.rdb"
stop $((port + 1))

# 5. DUMP payloads (raw bytes) for RESTORE compatibility tests.
cli flushall
cli config set list-max-listpack-size -2
cli config set hash-max-listpack-entries 128
cli config set set-max-intset-entries 512
cli config set zset-max-listpack-entries 128
cli set s "$(printf 'abcdefgh%.0s' $(seq 20))"
cli set n 42
cli rpush l a b c
cli hset h f v
cli sadd i 1 2 3
cli zadd z 1 a 2 b
for k in s n l h i z; do
  redis-cli -p "$port" --no-raw dump "$k" | python3 -c '
import ast, sys
sys.stdout.buffer.write(ast.literal_eval("b" + sys.stdin.read().strip()))' > "$here/dump-$k.bin"
done
echo "golden files written to $here"
