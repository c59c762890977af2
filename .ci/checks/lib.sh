# Shared helpers for .ci/checks/*.sh (sourced).
BIN=${BIN:-target/release/shardis-server}

# free_port: a loopback port nobody listens on right now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# fail MESSAGE: records a failure in FAILS (the script reports them all at the end).
fail() { echo "FAIL: $*"; FAILS+=("$*"); }

# c NODE ARGS...: a command to node NODE (PORT/KIND arrays), with its own kind of client.
c() {
  local n=$1; shift
  if [ "${KIND[$n]}" = shardis ]; then "$CLI" -p "${PORT[$n]}" "$@"; else redis-cli -p "${PORT[$n]}" "$@"; fi
}

# start_shardis <logfile> [args...]: starts shardis on a free port, sets SHARDIS_PORT/SHARDIS_PID.
start_shardis() {
  local log=$1; shift
  "$BIN" --port 0 --save "" "$@" >"$log" 2>&1 &
  SHARDIS_PID=$!
  for _ in $(seq 1 200); do
    if grep -q "Ready to accept connections" "$log"; then
      SHARDIS_PORT=$(grep -o 'port=[0-9]*' "$log" | head -1 | cut -d= -f2)
      return 0
    fi
    sleep 0.05
  done
  echo "shardis did not start:"; cat "$log"; return 1
}

# start_redis <dir>: starts Debian's redis-server on a free port, sets REDIS_PORT/REDIS_PID.
start_redis() {
  local dir=$1
  REDIS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  redis-server --port "$REDIS_PORT" --save "" --appendonly no --dir "$dir" --daemonize no >"$dir/redis.log" 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 1 200); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "redis-server did not start"; cat "$dir/redis.log"; return 1
}
