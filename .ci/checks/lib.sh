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

# start_redis <dir> [args...]: starts Debian's redis-server on a free port, sets REDIS_PORT/REDIS_PID.
start_redis() {
  local dir=$1; shift
  REDIS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  redis-server --port "$REDIS_PORT" --save "" --appendonly no --dir "$dir" --daemonize no "$@" >"$dir/redis.log" 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 1 200); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "redis-server did not start"; cat "$dir/redis.log"; return 1
}

# Named nodes, for the checks that run several servers side by side. Such a check declares
# `declare -A PID PORT KIND`, sets DEADLINE (seconds for any one wait) and defines `logf NODE`
# (the node's log file); the helpers below keep PID/PORT/KIND[NODE] and record failures with fail.

# start_shardis_node NODE DIR ARGS...: shardis on a free port (2 threads, debug commands on,
# no saves) in DIR; waits for its "Ready" line.
start_shardis_node() {
  local n=$1 dir=$2; shift 2
  mkdir -p "$dir"
  : >"$(logf "$n")" # no stale "Ready" line from an earlier node of the same name
  "$BIN" --port 0 --save "" --threads 2 --dir "$dir" --enable-debug-command yes "$@" >"$(logf "$n")" 2>&1 &
  PID[$n]=$!; KIND[$n]=shardis
  local end=$((SECONDS + DEADLINE))
  while [ $SECONDS -lt $end ]; do
    if grep -q "Ready to accept connections" "$(logf "$n")"; then
      PORT[$n]=$(grep -o 'port=[0-9]*' "$(logf "$n")" | head -1 | cut -d= -f2)
      return 0
    fi
    kill -0 "${PID[$n]}" 2>/dev/null || break
    sleep 0.05
  done
  fail "shardis $n did not start"; tail -20 "$(logf "$n")" | sed 's/^/    /'; return 1
}

# start_redis_node NODE DIR ARGS...: redis-server (debug commands on, no saves) in DIR, on
# PORT[NODE] when set (a restarted node keeps its port), else on a free port; waits for PONG.
start_redis_node() {
  local n=$1 dir=$2; shift 2
  mkdir -p "$dir"
  PORT[$n]=${PORT[$n]:-$(free_port)}
  redis-server --port "${PORT[$n]}" --bind 127.0.0.1 --save "" --dir "$dir" \
    --enable-debug-command yes --logfile "$(logf "$n")" "$@" &
  PID[$n]=$!; KIND[$n]=redis
  local end=$((SECONDS + DEADLINE))
  while [ $SECONDS -lt $end ]; do
    [ "$(redis-cli -p "${PORT[$n]}" ping 2>/dev/null)" = PONG ] && return 0
    kill -0 "${PID[$n]}" 2>/dev/null || break
    sleep 0.05
  done
  fail "redis $n did not start"; tail -20 "$(logf "$n")" | sed 's/^/    /'; return 1
}

# stop NODE...: SIGTERM, then SIGKILL (and a failure) if it has not exited within 10s.
stop() {
  local n end
  for n in "$@"; do
    [ -n "${PID[$n]:-}" ] || continue
    kill "${PID[$n]}" 2>/dev/null
    end=$((SECONDS + 10))
    while kill -0 "${PID[$n]}" 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.05; done
    if kill -0 "${PID[$n]}" 2>/dev/null; then
      fail "$n (${KIND[$n]}) did not exit within 10s of SIGTERM"
      kill -9 "${PID[$n]}" 2>/dev/null
    fi
    wait "${PID[$n]}" 2>/dev/null
    unset "PID[$n]"
  done
}

# expired NODE PHASE...: waits until the short-TTL keys (PX 50) that 30-interop.py's `load`
# wrote for these phases are gone, so what is compared afterwards no longer changes by itself.
expired() {
  local n=$1 p db left end=$((SECONDS + DEADLINE)); shift
  while [ $SECONDS -lt $end ]; do
    left=0
    for p in "$@"; do
      for db in 0 1 3; do
        left=$((left + $(c "$n" -n $db exists "$p:short:$db:0" "$p:short:$db:1" "$p:short:$db:2" "$p:short:$db:3" "$p:short:$db:4")))
      done
    done
    [ "$left" = 0 ] && return 0
    sleep 0.1
  done
  fail "$*: short-TTL keys still on $n after ${DEADLINE}s"
}

# finish NAME: lists the failures fail recorded and exits 1 if there are any, else says NAME: OK.
finish() {
  if [ ${#FAILS[@]} -gt 0 ]; then
    echo "== ${#FAILS[@]} failure(s):"
    printf '  %s\n' "${FAILS[@]}"
    exit 1
  fi
  echo "$1: OK"
}
