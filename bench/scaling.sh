#!/usr/bin/env bash
# Scaling curve: requests/s and server CPU per request for shardis with
# --threads 1..N (N = the CPUs this process may use) next to redis-server, in one
# alternating run (bench/server-core.sh does the measuring).
#
# Usage: bench/scaling.sh [--quick] [--rounds N] [--tests "set get"] [--out FILE]
# Environment: as bench/server-core.sh (SHARDIS_BIN, REDIS_BIN, CLIENTS).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
n=$(nproc)
exec "$here/server-core.sh" --threads "$(seq -s ' ' 1 "$n")" "$@"
