#!/usr/bin/env bash
# Stages what deploy/Dockerfile.sentinel needs into deploy/build/ (next to the static shardis
# binaries that deploy/build-static.sh put there):
#   redis/  Debian's redis-server 7.0 (the stock Sentinel) with every shared library `ldd` names and
#           the dynamic loader, at the paths the binary looks them up. There is no image registry
#           here, so the sentinel image is assembled FROM scratch out of the host's own package,
#           as the shardis image is assembled out of the static build.
#   sentinel/  the node and sentinel config files (deploy/etc/sentinel/).
#
# Usage: deploy/build-static.sh && deploy/stage-sentinel.sh
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
out=$repo/deploy/build
[ -x "$out/bin/shardis-server" ] || { echo "stage-sentinel: run deploy/build-static.sh first" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "stage-sentinel: redis-server is not installed (apt-get install redis-server)" >&2; exit 1; }

# /usr/bin/redis-server is a symlink (to redis-check-rdb: one binary, named by argv[0]); the image
# keeps the name redis-server so the binary starts as the server.
src=$(readlink -f "$(command -v redis-server)")
version=$(redis-server --version)
case "$version" in
    "Redis server v=7.0."*) ;;
    *) echo "stage-sentinel: expected redis-server 7.0, found: $version" >&2; exit 1 ;;
esac

rm -rf "$out/redis" "$out/sentinel"
mkdir -p "$out/redis/usr/local/bin"
install -m 0755 "$src" "$out/redis/usr/local/bin/redis-server"
# Every library at the path ldd resolved it to, symlinks followed (the file itself is copied);
# the loader at the path compiled into the binary's PT_INTERP.
ldd "$src" | awk '/=> \// {print $3} /^[ \t]*\/lib/ {print $1}' | sort -u | while read -r lib; do
    mkdir -p "$out/redis$(dirname "$lib")"
    cp -L "$lib" "$out/redis$lib"
done
# Smoke test: the staged tree is enough to run the binary (no library from the host leaks in).
loader=$(ldd "$src" | awk '/^[ \t]*\/lib/ {print $1}')
"$out/redis$loader" --library-path "$out/redis/lib/x86_64-linux-gnu:$out/redis/usr/lib/x86_64-linux-gnu" \
    "$out/redis/usr/local/bin/redis-server" --version >/dev/null

mkdir -p "$out/sentinel"
cp "$repo"/deploy/etc/sentinel/*.conf "$out/sentinel/"
echo "stage-sentinel: $version staged in $out/redis ($(du -sh "$out/redis" | cut -f1))"
