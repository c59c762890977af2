#!/usr/bin/env bash
# Runs the same invocations through the real redis-cli and through shardis-cli against a
# throw-away redis-server on a free loopback port, and diffs stdout, stderr and exit codes.
# Every invocation starts from the same dataset, so state-changing commands compare too.
#
# Needs redis-server and redis-cli (Debian: apt-get install -y redis-server redis-tools) and a
# release build: cargo build --release -p shardis-cli. Exits non-zero on any difference.
#
#   SHARDIS_CLI=path/to/shardis-cli  binary to test (default: $CARGO_TARGET_DIR or target/release)
#   VERBOSE=1                        show each case's name
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
cli=${SHARDIS_CLI:-${CARGO_TARGET_DIR:-$root/target}/release/shardis-cli}
ref=${REDIS_CLI:-redis-cli}
for tool in "$cli" "$ref" redis-server; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }
done

work=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
dead_port=$(free_port) # bound and released: nothing listens there

redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
    --enable-debug-command yes --daemonize yes --pidfile "$work/redis.pid" --logfile "$work/redis.log"
stop() {
    "$ref" -p "$port" shutdown nosave >/dev/null 2>&1
    # The pid file goes away when the server has exited.
    for _ in $(seq 50); do [ -e "$work/redis.pid" ] || break; sleep 0.1; done
    rm -rf "$work"
}
trap stop EXIT
for _ in $(seq 100); do "$ref" -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done

# The dataset every case starts from.
reset_data() {
    "$ref" -p "$port" >/dev/null <<'EOF'
flushall
hello 2
acl setuser alice on >s3cret ~* &* +@all
set name shardis
set counter 41
set bin "a\x01\tb\n\\c\xff\"q\""
set empty ""
set utf8 "caf\xc3\xa9"
rpush list a b "c d" 1
hset h f1 v1 f2 "x\"y"
sadd s m1
zadd z 1.5 a 2 b 3 c
select 3
set in3 three
select 0
EOF
}

pass=0
fail=0
# run_case NAME STDIN_FILE ARGS...: compare both clients' stdout, stderr and exit code.
run_case() {
    local name=$1 input=$2
    shift 2
    local tool out
    for tool in ref cli; do
        reset_data
        local bin=$ref
        [ "$tool" = cli ] && bin=$cli
        out="$work/$tool"
        "$bin" "$@" <"$input" >"$out.stdout" 2>"$out.stderr"
        echo "exit=$?" >"$out.rc"
    done
    if cmp -s "$work/ref.stdout" "$work/cli.stdout" && cmp -s "$work/ref.stderr" "$work/cli.stderr" &&
        cmp -s "$work/ref.rc" "$work/cli.rc"; then
        pass=$((pass + 1))
        [ -n "${VERBOSE:-}" ] && echo "ok: $name"
    else
        fail=$((fail + 1))
        echo "DIFF: $name   (redis-cli $*)"
        for part in stdout stderr rc; do
            diff <(od -c "$work/ref.$part") <(od -c "$work/cli.$part") >/dev/null ||
                { echo "  --- $part: redis-cli vs shardis-cli"; diff "$work/ref.$part" "$work/cli.$part" | head -20 | sed 's/^/  /'; }
        done
    fi
}

commands=(
    "ping"
    "echo hello"
    "get name"
    "get nokey"
    "get bin"
    "get empty"
    "get utf8"
    "set name x"
    "set k v nx get"
    "incr counter"
    "incrbyfloat counter 0.5"
    "incr"
    "lpush name x"
    "nosuchcommand a b"
    "exists name nokey"
    "lrange list 0 -1"
    "lrange nokey 0 -1"
    "hgetall h"
    "hgetall nokey"
    "smembers s"
    "smembers nokey"
    "zrange z 0 -1 withscores"
    "zscore z a"
    "zrange z 0 -1 withscores limit"
    "mget name nokey list"
    "type list"
    "ttl name"
    "select 3"
    "select 99"
    "dbsize"
    "keys in*"
    "command docs get"
    "command docs set"
    "command info get"
    "config get maxmemory-policy"
    "client list id 0"
    "client info nosuchoption x"
    "info keyspace"
    "object encoding list"
    "debug protocol true"
    "debug protocol false"
    "debug protocol double"
    "debug protocol null"
    "debug protocol map"
    "debug protocol set"
    "debug protocol verbatim"
    "debug protocol push"
    "multi"
    "slaveof no one"
    "readonly"
)

stdin_empty="$work/empty.in"
: >"$stdin_empty"
for c in "${commands[@]}"; do
    read -ra words <<<"$c"
    run_case "raw: $c" "$stdin_empty" -p "$port" "${words[@]}"
    run_case "no-raw: $c" "$stdin_empty" -p "$port" --no-raw "${words[@]}"
    run_case "resp3 raw: $c" "$stdin_empty" -p "$port" -3 "${words[@]}"
    run_case "resp3 no-raw: $c" "$stdin_empty" -p "$port" -3 --no-raw "${words[@]}"
done

# Help from COMMAND DOCS (same bytes, colours included).
for h in "help get" "help set" "help config" "help client kill" "help @string" "help nosuch" "help xadd"; do
    read -ra words <<<"$h"
    run_case "$h" "$stdin_empty" -p "$port" "${words[@]}"
done

# Flags.
run_case "-n" "$stdin_empty" -p "$port" -n 3 get in3
run_case "-n out of range" "$stdin_empty" -p "$port" -n 99 ping
run_case "--raw wins" "$stdin_empty" -p "$port" --no-raw --raw lrange list 0 -1
run_case "-r" "$stdin_empty" -p "$port" -r 3 incr counter
run_case "-r -i" "$stdin_empty" -p "$port" -r 2 -i 0.1 --no-raw incr counter
run_case "-d" "$stdin_empty" -p "$port" -d , lrange list 0 -1
run_case "-a no password set" "$stdin_empty" -p "$port" -a wrong ping
run_case "--user --pass" "$stdin_empty" -p "$port" --user alice --pass s3cret acl whoami
run_case "--user wrong pass" "$stdin_empty" -p "$port" --user alice --pass nope acl whoami
run_case "--no-auth-warning" "$stdin_empty" -p "$port" --no-auth-warning --user alice -a s3cret ping
run_case "-u full" "$stdin_empty" -u "redis://alice:s3cret@127.0.0.1:$port/3" get in3
run_case "-u host only" "$stdin_empty" -u "redis://127.0.0.1:$port" --no-raw get name
run_case "-h -p" "$stdin_empty" -h 127.0.0.1 -p "$port" ping
run_case "connection refused" "$stdin_empty" -p "$dead_port" ping
run_case "unknown option" "$stdin_empty" -p "$port" --bogus ping
run_case "negative arg" "$stdin_empty" -p "$port" incrby counter -5

printf 'line one\nline "two"\n\x00\xff' >"$work/x.in"
run_case "-x" "$work/x.in" -p "$port" -x set name
run_case "-x then get" "$work/x.in" -p "$port" -x --no-raw echo

# Commands on stdin, no command on the command line.
cat >"$work/script.in" <<'EOF'
set a 1
get a

   incr a
incr
3 ping
0 ping
"set" "q k" "x\x41y"
get "q k"
get "unbalanced
select 2
set b 2
select 99
hgetall h
multi
exec
quit
ping
EOF
run_case "stdin script raw" "$work/script.in" -p "$port"
run_case "stdin script no-raw" "$work/script.in" -p "$port" --no-raw
run_case "stdin script resp3" "$work/script.in" -p "$port" -3 --no-raw

echo "compare-with-redis-cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
