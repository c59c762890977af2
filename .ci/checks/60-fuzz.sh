#!/usr/bin/env bash
# Runs every cargo-fuzz target in the repo for a bounded time (FUZZ_SECONDS each,
# 30 by default: 6 targets, under 4 minutes of fuzzing) on nightly, starting from the
# committed seed corpora (read-only: new inputs go to a temp dir). Prints the
# executions per target; exits non-zero on any crash, leak, timeout or OOM, or if
# nightly is missing. Crashing inputs stay in <crate>/fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${FUZZ_SECONDS:-30}

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "FAIL: the nightly toolchain is required for cargo-fuzz (rustup toolchain install nightly)"
  exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# crate-dir:target pairs.
TARGETS=(
  crates/protocol/fuzz:decode_request
  crates/protocol/fuzz:encode_decode
  crates/keyspace/fuzz:execute_commands
  crates/config/fuzz:parse_config
  crates/rdb/fuzz:read_rdb
  crates/rdb/fuzz:feed_rdb
  crates/rdb/fuzz:parse_dump
)

# Build everything first so the time limit is spent fuzzing.
for t in "${TARGETS[@]}"; do
  dir=${t%%:*} name=${t##*:}
  (cd "$dir" && cargo +nightly fuzz build -O "$name")
done

failed=()
summary=()
for t in "${TARGETS[@]}"; do
  dir=${t%%:*} name=${t##*:}
  work="$tmp/$name"
  mkdir -p "$work"
  seeds=()
  [ -d "$dir/corpus/$name" ] && seeds+=("$(pwd)/$dir/corpus/$name")
  # The RDB reader starts from the golden files real Redis wrote.
  [ "$name" = read_rdb ] && seeds+=("$(pwd)/crates/rdb/testdata")
  log="$tmp/$name.log"
  echo "-- fuzzing $dir $name for ${SECS}s"
  if (cd "$dir" && cargo +nightly fuzz run -O "$name" "$work" "${seeds[@]}" -- \
        -max_total_time="$SECS" -print_final_stats=1) >"$log" 2>&1; then
    status=ok
  else
    status=CRASH
    failed+=("$name")
    grep -v '^#' "$log" | tail -40
    ls "$dir/artifacts/$name"/ 2>/dev/null || true
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  if [ -z "$execs" ]; then
    execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#' || true)
  fi
  summary+=("$(printf '%-18s %-8s %s executions' "$name" "$status" "${execs:-?}")")
done

echo "== fuzz summary (${SECS}s each)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAIL: fuzz targets crashed: ${failed[*]}"
  exit 1
fi
