#!/usr/bin/env bash
# shardis-cli against the real redis-cli 7.0.15: same invocations, identical stdout, stderr and
# exit codes (crates/cli/tests/compare-with-redis-cli.sh, against a throw-away redis-server).
set -euo pipefail
cd "$(dirname "$0")/../.."
CLI=${CLI:-target/release/shardis-cli}
for tool in "$CLI" redis-cli redis-server python3; do
  command -v "$tool" >/dev/null || { echo "FAIL: missing tool $tool"; exit 1; }
done
SHARDIS_CLI=$(realpath "$CLI") bash crates/cli/tests/compare-with-redis-cli.sh
