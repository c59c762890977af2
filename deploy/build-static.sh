#!/usr/bin/env bash
# Builds statically linked shardis-server and shardis-cli (glibc, crt-static) and stages them in
# deploy/build/, which is the Docker build context for deploy/Dockerfile (FROM scratch: the image has
# no libc, so the binaries must not need one).
#
# Usage: deploy/build-static.sh            (CARGO_TARGET_DIR defaults to <repo>/target/static)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
target=x86_64-unknown-linux-gnu
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target/static}
# crt-static links glibc statically. Its own RUSTFLAGS so it never mixes with a dynamic build's
# artifacts (a separate target dir keeps the two from invalidating each other).
export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static"

cd "$repo"
cargo build --release --locked --target "$target" -p shardis-server -p shardis-cli

out=$repo/deploy/build
mkdir -p "$out/bin" "$out/data"
for bin in shardis-server shardis-cli; do
    src=$CARGO_TARGET_DIR/$target/release/$bin
    # A dynamic binary would start on the host and fail in the scratch image with a bare
    # "no such file or directory" (missing loader), so refuse it here.
    # (ldd says "statically linked" or "not a dynamic executable" for static ones.)
    if ldd "$src" 2>&1 | grep -Eq '=>|ld-linux'; then
        echo "build-static: $src is dynamically linked:" >&2
        ldd "$src" >&2
        exit 1
    fi
    if ! file "$src" | grep -Eq 'static(-pie)? linked'; then
        echo "build-static: file(1) does not call $src static: $(file "$src")" >&2
        exit 1
    fi
    install -m 0755 "$src" "$out/bin/$bin"
    # The release profile keeps line tables (debug = 1) for profiling; the image does not need them
    # (symbols stay, so panics still name functions).
    if command -v strip >/dev/null; then
        strip --strip-debug "$out/bin/$bin"
    fi
done
# Smoke test: the static binaries must run on their own, not just link.
"$out/bin/shardis-cli" --version >/dev/null
"$out/bin/shardis-server" --version >/dev/null

# The image runs as uid 999; scratch has no useradd, so the passwd/group lines and the empty,
# user-owned /data come from the build context.
printf 'shardis:x:999:999:shardis:/data:/sbin/nologin\n' >"$out/passwd"
printf 'shardis:x:999:\n' >"$out/group"
cp "$repo/deploy/etc/shardis-docker.conf" "$out/shardis.conf"
echo "build-static: staged in $out:"
ls -l "$out/bin"
