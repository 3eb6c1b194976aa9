#!/bin/sh
# Browser tests: installs what they need (only what is missing), then runs
# them. Prints "browser: N passed, N failed" last; exits non-zero on failure.
#
#   sh tests/browser/run.sh        (needs build/coserve and build/apps)
#
# - Debian's chromium (apt, as root) if /usr/bin/chromium is missing;
# - playwright-core from npm into tests/browser/node_modules (npm ci, from
#   package-lock.json) if it is missing or older than the lock file.
set -u
cd "$(dirname "$0")" || exit 1
HERE=$(pwd)
ROOT=$(cd ../.. && pwd)

fail() {
    echo "browser: $*" >&2
    echo "browser: 0 passed, 1 failed"
    exit 1
}

command -v node >/dev/null 2>&1 || fail "node not found (apt-get install nodejs npm)"
command -v npm >/dev/null 2>&1 || fail "npm not found (apt-get install npm)"

if [ ! -x /usr/bin/chromium ]; then
    [ "$(id -u)" = 0 ] || fail "chromium missing; run: sudo apt-get install chromium"
    echo "browser: installing chromium"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
        || fail "apt-get install chromium failed"
fi

if [ ! -f "$HERE/node_modules/playwright-core/package.json" ] ||
   [ "$HERE/package-lock.json" -nt "$HERE/node_modules/.package-lock.json" ]; then
    echo "browser: installing npm packages (npm ci)"
    mkdir -p "$ROOT/build"
    npm ci --no-audit --no-fund --loglevel=error >"$ROOT/build/npm.log" 2>&1 \
        || { cat "$ROOT/build/npm.log" >&2; fail "npm ci failed"; }
fi

for f in "$ROOT/build/coserve" "$ROOT/build/apps/notes.so" "$ROOT/build/apps/hello.so"; do
    [ -e "$f" ] || fail "$f missing (make build/coserve apps)"
done

exec node "$HERE/notes.test.mjs"
