#!/usr/bin/env bash
# Installs shardis on a systemd host: binaries, the shardis user, its directories, the sample config
# (kept if one exists) and the unit. Run as root from a checkout after deploy/build-static.sh, or
# point BIN_DIR at prebuilt binaries.
#
#   sudo deploy/install.sh            # install, then: systemctl enable --now shardis
#   PREFIX=/opt/shardis sudo -E deploy/install.sh
#   DESTDIR=/tmp/pkgroot deploy/install.sh   # stage into a tree (packaging): no user, chown or systemctl
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
BIN_DIR=${BIN_DIR:-$here/build/bin}
PREFIX=${PREFIX:-/usr/local}
CONF_DIR=/etc/shardis
DATA_DIR=/var/lib/shardis
LOG_DIR=/var/log/shardis
UNIT_DIR=/etc/systemd/system
DESTDIR=${DESTDIR:-}
D=$DESTDIR

if [ -z "$DESTDIR" ]; then
    [ "$(id -u)" = 0 ] || { echo "install.sh: run as root" >&2; exit 1; }
    owner=(-o shardis -g shardis)
    conf_owner=(-o root -g shardis)
else
    # The staged tree belongs to whoever builds the package; the package sets owners.
    owner=()
    conf_owner=()
fi
for b in shardis-server shardis-cli; do
    [ -x "$BIN_DIR/$b" ] || { echo "install.sh: $BIN_DIR/$b missing (run deploy/build-static.sh)" >&2; exit 1; }
done

# io_uring is the only I/O backend; say so now rather than at the first start.
if [ -r /proc/sys/kernel/io_uring_disabled ] && [ "$(cat /proc/sys/kernel/io_uring_disabled)" != 0 ]; then
    echo "install.sh: warning: kernel.io_uring_disabled=$(cat /proc/sys/kernel/io_uring_disabled);" \
        "shardis will not start until it is 0 (sysctl -w kernel.io_uring_disabled=0)" >&2
fi

install -D -m 0755 "$BIN_DIR/shardis-server" "$D$PREFIX/bin/shardis-server"
install -D -m 0755 "$BIN_DIR/shardis-cli" "$D$PREFIX/bin/shardis-cli"

if [ -z "$DESTDIR" ]; then
    if ! getent group shardis >/dev/null; then
        groupadd --system shardis
    fi
    if ! getent passwd shardis >/dev/null; then
        useradd --system --gid shardis --home-dir "$DATA_DIR" --no-create-home \
            --shell /usr/sbin/nologin --comment "shardis server" shardis
    fi
fi

install -d -m 0750 "${owner[@]}" "$D$DATA_DIR" "$D$LOG_DIR"
install -d -m 0755 "$D$CONF_DIR" "$D$UNIT_DIR"
if [ -e "$D$CONF_DIR/shardis.conf" ]; then
    echo "install.sh: keeping existing $CONF_DIR/shardis.conf (new sample: $CONF_DIR/shardis.conf.sample)"
    install -m 0640 "${conf_owner[@]}" "$here/etc/shardis.conf" "$D$CONF_DIR/shardis.conf.sample"
else
    # Group-readable only: it may hold requirepass.
    install -m 0640 "${conf_owner[@]}" "$here/etc/shardis.conf" "$D$CONF_DIR/shardis.conf"
fi

unit=$here/systemd/shardis.service
if [ "$PREFIX" != /usr/local ]; then
    sed "s#/usr/local/#$PREFIX/#g" "$unit" >"$D$UNIT_DIR/shardis.service"
    chmod 0644 "$D$UNIT_DIR/shardis.service"
else
    install -m 0644 "$unit" "$D$UNIT_DIR/shardis.service"
fi
if [ -f "$here/../docs/operations.md" ]; then
    install -D -m 0644 "$here/../docs/operations.md" "$D$PREFIX/share/doc/shardis/operations.md"
fi
if [ -n "$DESTDIR" ]; then
    echo "install.sh: staged into $DESTDIR"
elif [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    echo "install.sh: done. Start with: systemctl enable --now shardis"
else
    echo "install.sh: done (systemd is not running here; start $PREFIX/bin/shardis-server $CONF_DIR/shardis.conf yourself)"
fi
