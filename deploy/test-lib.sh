# Helpers shared by deploy/compose-test.sh and deploy/sentinel-test.sh (sourced, not run).
# The caller sets NAME (its name in messages) and DEADLINE (seconds for any one wait) before
# using them.

# The time steps are counted from.
started=$(date +%s)

# compose_init COMPOSE_FILE [PROJECT]: sets dc, the compose command line for that file (and
# project name): `docker compose`, else docker-compose v1; exits 2 when there is neither.
compose_init() {
    local file=$1 project=()
    [ -n "${2:-}" ] && project=(-p "$2")
    if docker compose version >/dev/null 2>&1; then
        dc=(docker compose "${project[@]}" -f "$file")
    elif command -v docker-compose >/dev/null 2>&1; then
        dc=(docker-compose "${project[@]}" -f "$file")
    else
        echo "$NAME: neither 'docker compose' nor 'docker-compose' is available" >&2
        exit 2
    fi
}

step() { printf '\n== [%3ss] %s\n' "$(($(date +%s) - started))" "$*"; }

fail() {
    echo "$NAME: FAIL: $*" >&2
    exit 1
}

# pick NAME: the value of NAME from INFO text on stdin.
pick() { sed -n "s/^$1://p"; }

# wait_for DESCRIPTION COMMAND...: retries COMMAND until it succeeds; fails once DEADLINE
# seconds have passed.
wait_for() {
    local what=$1
    shift
    local end=$(($(date +%s) + DEADLINE))
    until "$@"; do
        if [ "$(date +%s)" -ge "$end" ]; then
            fail "timed out after ${DEADLINE}s waiting for: $what"
        fi
        sleep 0.5
    done
}

# healthy CONTAINER...: whether docker reports every one of them healthy.
healthy() {
    local c
    for c in "$@"; do
        [ "$(docker inspect -f '{{.State.Health.Status}}' "$c" 2>/dev/null)" = healthy ] || return 1
    done
}

# compose_down RC: after a failure (RC not 0) every service's state and log, then down -v.
compose_down() {
    local rc=$1
    if [ "$rc" -ne 0 ]; then
        echo "$NAME: FAILED (exit $rc); service logs follow" >&2
        "${dc[@]}" ps >&2 || true
        "${dc[@]}" logs --no-color >&2 || true
    fi
    "${dc[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
}

# memlock_fallback IMAGE OVERRIDE_FILE: `ulimits: memlock: -1` needs a Docker daemon that may
# raise RLIMIT_MEMLOCK. Inside a sandbox without CAP_SYS_RESOURCE it cannot ("error setting
# rlimit type 8: operation not permitted"), and every container would fail to be created. There,
# and only there, the services master, slave1 and slave2 run with the highest limit the daemon
# can give (its own hard limit), which shardis raises its soft limit to: written to
# OVERRIDE_FILE and added to dc. Loudly, because the deployment tested is then not exactly the
# compose file.
memlock_fallback() {
    local image=$1 override=$2 probe hard_kb
    if probe=$(docker run --rm --ulimit memlock=-1 --entrypoint /usr/local/bin/shardis-server \
        "$image" --version 2>&1); then
        return 0
    fi
    grep -q 'rlimit' <<<"$probe" || fail "the image $image does not run: $probe"
    hard_kb=$(ulimit -Hl)
    [ "$hard_kb" != unlimited ] || fail "docker cannot set memlock=-1: $probe"
    cat >"$override" <<YAML
version: "3.8"
x-memlock: &memlock
  ulimits:
    memlock: {soft: $((hard_kb * 1024)), hard: $((hard_kb * 1024))}
services:
  master: *memlock
  slave1: *memlock
  slave2: *memlock
YAML
    dc+=(-f "$override")
    echo "$NAME: NOTE: this Docker daemon cannot set memlock=-1 (its own hard limit is" \
        "${hard_kb} KiB); running with memlock=${hard_kb} KiB via $override" >&2
}
