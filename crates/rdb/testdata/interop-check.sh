#!/usr/bin/env bash
# Interop check against the real Redis 7.0.15 (apt-get install -y redis-server
# redis-tools): a file written by shardis-rdb must pass redis-check-rdb, load in
# redis-server with the expected contents, and our DUMP payloads must RESTORE.
# Exits non-zero on any failure. Loopback only; the server is stopped on exit.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
tmp="$(mktemp -d)"
port=$((20000 + RANDOM % 20000))
cleanup() { redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "interop-check: FAIL: $*" >&2; exit 1; }

(cd "$root" && cargo run -q -p shardis-rdb --example write_sample -- "$tmp")
redis-check-rdb "$tmp/sample.rdb" > "$tmp/check.log" 2>&1 || { cat "$tmp/check.log"; fail "redis-check-rdb"; }
grep -q "RDB looks OK" "$tmp/check.log" || { cat "$tmp/check.log"; fail "redis-check-rdb did not say OK"; }

redis-server --port "$port" --bind 127.0.0.1 --dir "$tmp" --dbfilename sample.rdb --save "" \
  --appendonly no --daemonize yes --logfile "$tmp/redis.log" --sanitize-dump-payload yes
for _ in $(seq 100); do
  [ "$(redis-cli -p "$port" ping 2>/dev/null)" = "PONG" ] && break
  sleep 0.1
done
[ "$(redis-cli -p "$port" ping 2>/dev/null)" = "PONG" ] || { cat "$tmp/redis.log"; fail "server did not load the file"; }
grep -q "DB loaded from disk" "$tmp/redis.log" || { cat "$tmp/redis.log"; fail "no 'DB loaded' in log"; }

r() { redis-cli -p "$port" "$@"; }
expect() { # expect WANT CMD...
  local want="$1"; shift
  local got; got="$(r "$@")"
  [ "$got" = "$want" ] || fail "$*: want '$want', got '$got'"
}
expect 13 dbsize
expect 1 -n 5 dbsize
expect five -n 5 get in-db-5
expect "hello world" get str:plain
expect -123456 get str:int
expect 12345678901234567 get str:bigint
expect "$(printf 'abcdefgh%.0s' $(seq 100))" get str:lzf
expect 4102444800000 pexpiretime str:exp
expect 4102444800000 pexpiretime hash
expect -1 pexpiretime str:plain
expect 1000 llen list
expect e999 lindex list -1
expect 300 scard set
expect 1 sismember set 299
expect 200 hlen hash
expect v199 hget hash f199
expect "$(printf 'c\nd\na\nb')" zrange zset 0 -1
expect inf zscore zset b
expect -0.25 zscore zset d
expect 250 xlen stream
got="$(r xinfo stream stream | grep -A1 '^last-generated-id$' | tail -1)"
[ "$got" = "1083-1" ] || fail "last-generated-id: $got"
got="$(r xinfo stream stream | grep -A1 '^entries-added$' | tail -1)"
[ "$got" = "250" ] || fail "entries-added: $got"
got="$(r xrange stream 1000-1 1000-1)"
[ "$got" = "$(printf '1000-1\nn\n1\nname\nitem-1')" ] || fail "xrange: $got"
got="$(r xrange stream 1002-1 1002-1)"
[ "$got" = "$(printf '1002-1\nother\nv7')" ] || fail "xrange other fields: $got"
got="$(r xpending stream g1)"
[ "$got" = "$(printf '2\n1000-1\n1000-2\nalice\n1\nbob\n1')" ] || fail "xpending: $got"
expect 0 xlen stream:empty

# Our DUMP payloads restore into Redis, then dump back to what we parse.
for f in "$tmp"/dump-*.bin; do
  k="restored-$(basename "$f" .bin)"
  expect OK -x restore "$k" 0 < "$f"
done
expect "hello world" get restored-dump-str-plain
expect 1000 llen restored-dump-list
expect 250 xlen restored-dump-stream
expect 1 exists restored-dump-stream-empty
echo "interop-check: OK"
