#!/bin/sh
# Installs the Debian packages coserve needs, only those missing.
# Called by `make deps` (and so by `make run` / `make test`); as root it
# installs, otherwise it says what to install and fails.
set -e
PKGS="build-essential clang libclang-rt-14-dev libev-dev node-llhttp \
libsqlite3-dev libjansson-dev libcriterion-dev pkg-config valgrind wrk \
nginx-light chromium sqlite3 curl gnuplot-nox libcurl4-openssl-dev openssl strace"
# nginx's echo module: the anchor of `make bench`'s POST /echo of 1 MiB
PKGS="$PKGS libnginx-mod-http-echo"
# the examples' reference programs (make test-examples)
PKGS="$PKGS python3-gevent"
# the deployment kit's tests (tests/deploy/test_kit.c): logrotate runs
# deploy/logrotate/coserve, systemd-analyze verifies deploy/systemd/
PKGS="$PKGS logrotate systemd"
# the metrics suite (tests/deploy/test_metrics.c): promtool checks the
# exposition (Debian ships it only inside prometheus)
PKGS="$PKGS prometheus"
# the notes app's PostgreSQL store (apps/notes/store_pg.c links libpq) and
# its tests (tests/deploy/test_notes_pg.c runs a private PostgreSQL 15)
PKGS="$PKGS postgresql libpq-dev"
# WebSocket: permessage-deflate links zlib; python3-websockets is the
# reference client of tests/http/test_ws_interop.c
PKGS="$PKGS zlib1g-dev python3-websockets"
# The aarch64 core suites (make test-aarch64): a cross compiler, qemu-user,
# and arm64 libraries from Debian's arm64 archive (multiarch). Criterion
# cannot be installed beside the amd64 one (its libnanomsg5 is not
# Multi-Arch: same), so its two libraries are unpacked into ARM64_DIR.
PKGS="$PKGS gcc-aarch64-linux-gnu qemu-user libev-dev:arm64 libffi8:arm64 \
libgit2-1.5:arm64"
ARM64_DIR=/opt/coserve-arm64
ARM64_DEBS="libcriterion3:arm64 libnanomsg5:arm64"
unpack=""
[ -f "$ARM64_DIR/usr/lib/aarch64-linux-gnu/libcriterion.so.3" ] \
    || unpack="$ARM64_DEBS"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $p"
done
# Node.js (for the browser test's Playwright) may come from another
# packaging: only the commands matter.
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing$unpack" ] && exit 0
echo "deps: installing$missing${unpack:+ (unpacking $unpack into $ARM64_DIR)}"
if [ "$(id -u)" != 0 ]; then
    echo "deps: not root; run: sudo apt-get install$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# once per machine; the update below then fetches the arm64 lists
if [ "$(dpkg --print-architecture)" != arm64 ] \
    && ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
fi
apt-get update -qq
[ -z "$missing" ] || apt-get install -y -qq --no-install-recommends $missing >/dev/null
if [ -n "$unpack" ]; then
    tmp=$(mktemp -d)
    chown _apt "$tmp" 2>/dev/null || true # apt downloads as _apt
    (cd "$tmp" && apt-get download -qq $unpack)
    mkdir -p "$ARM64_DIR"
    for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$ARM64_DIR"; done
    rm -rf "$tmp"
fi
