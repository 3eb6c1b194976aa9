#!/bin/sh
# Installs the Debian packages coserve needs, only those missing.
# Called by `make deps` (and so by `make run` / `make test`); as root it
# installs, otherwise it says what to install and fails.
set -e
PKGS="build-essential clang libclang-rt-14-dev libev-dev node-llhttp \
libsqlite3-dev libjansson-dev libcriterion-dev pkg-config valgrind wrk \
nginx-light chromium sqlite3 curl gnuplot-nox libcurl4-openssl-dev openssl strace"
# the examples' reference programs (make test-examples)
PKGS="$PKGS python3-gevent"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $p"
done
# Node.js (for the browser test's Playwright) may come from another
# packaging: only the commands matter.
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
if [ "$(id -u)" != 0 ]; then
    echo "deps: not root; run: sudo apt-get install$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
