#!/usr/bin/env bash
# Installs shardis on a systemd host: binaries, the shardis user, its directories, the sample config
# (kept if one exists) and the unit. Run as root from a checkout after deploy/build-static.sh, or
# point BIN_DIR at prebuilt binaries.
#
#   sudo deploy/install.sh            # install, then: systemctl enable --now shardis
#   PREFIX=/opt/shardis sudo -E deploy/install.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
BIN_DIR=${BIN_DIR:-$here/build/bin}
PREFIX=${PREFIX:-/usr/local}
CONF_DIR=/etc/shardis
DATA_DIR=/var/lib/shardis
LOG_DIR=/var/log/shardis
UNIT_DIR=/etc/systemd/system

[ "$(id -u)" = 0 ] || { echo "install.sh: run as root" >&2; exit 1; }
for b in shardis-server shardis-cli; do
    [ -x "$BIN_DIR/$b" ] || { echo "install.sh: $BIN_DIR/$b missing (run deploy/build-static.sh)" >&2; exit 1; }
done

# io_uring is the only I/O backend; say so now rather than at the first start.
if [ -r /proc/sys/kernel/io_uring_disabled ] && [ "$(cat /proc/sys/kernel/io_uring_disabled)" != 0 ]; then
    echo "install.sh: warning: kernel.io_uring_disabled=$(cat /proc/sys/kernel/io_uring_disabled);" \
        "shardis will not start until it is 0 (sysctl -w kernel.io_uring_disabled=0)" >&2
fi

install -D -m 0755 "$BIN_DIR/shardis-server" "$PREFIX/bin/shardis-server"
install -D -m 0755 "$BIN_DIR/shardis-cli" "$PREFIX/bin/shardis-cli"

if ! getent group shardis >/dev/null; then
    groupadd --system shardis
fi
if ! getent passwd shardis >/dev/null; then
    useradd --system --gid shardis --home-dir "$DATA_DIR" --no-create-home \
        --shell /usr/sbin/nologin --comment "shardis server" shardis
fi

install -d -m 0750 -o shardis -g shardis "$DATA_DIR" "$LOG_DIR"
install -d -m 0755 "$CONF_DIR"
if [ -e "$CONF_DIR/shardis.conf" ]; then
    echo "install.sh: keeping existing $CONF_DIR/shardis.conf (new sample: $CONF_DIR/shardis.conf.sample)"
    install -m 0640 -o root -g shardis "$here/etc/shardis.conf" "$CONF_DIR/shardis.conf.sample"
else
    # Group-readable only: it may hold requirepass.
    install -m 0640 -o root -g shardis "$here/etc/shardis.conf" "$CONF_DIR/shardis.conf"
fi

unit=$here/systemd/shardis.service
if [ "$PREFIX" != /usr/local ]; then
    sed "s#/usr/local/bin/#$PREFIX/bin/#g" "$unit" >"$UNIT_DIR/shardis.service"
    chmod 0644 "$UNIT_DIR/shardis.service"
else
    install -m 0644 "$unit" "$UNIT_DIR/shardis.service"
fi
if [ -f "$here/../docs/operations.md" ]; then
    install -D -m 0644 "$here/../docs/operations.md" "$PREFIX/share/doc/shardis/operations.md"
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    echo "install.sh: done. Start with: systemctl enable --now shardis"
else
    echo "install.sh: done (systemd is not running here; start $PREFIX/bin/shardis-server $CONF_DIR/shardis.conf yourself)"
fi
