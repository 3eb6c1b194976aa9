#!/bin/sh
# Browser and node tests (tests/browser/*.test.mjs): installs what they need
# (only what is missing), then runs them all. Prints "browser: N passed, N
# failed" last (the sum); exits non-zero on failure.
#
#   sh tests/browser/run.sh        (needs build/coserve and build/apps)
#
# - Debian's chromium and nginx-light (apt, as root) if missing;
# - playwright-core and ws from npm into tests/browser/node_modules (npm
#   ci, from package-lock.json) if one is missing or the lock file is newer.
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

missing=""
[ -x /usr/bin/chromium ] || missing="chromium"
[ -x /usr/sbin/nginx ] || missing="$missing nginx-light"
if [ -n "$missing" ]; then
    [ "$(id -u)" = 0 ] || fail "missing; run: sudo apt-get install$missing"
    echo "browser: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086 # a list of package names
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null; } \
        || fail "apt-get install$missing failed"
fi

if [ ! -f "$HERE/node_modules/playwright-core/package.json" ] ||
   [ ! -f "$HERE/node_modules/ws/package.json" ] ||
   [ "$HERE/package-lock.json" -nt "$HERE/node_modules/.package-lock.json" ]; then
    echo "browser: installing npm packages (npm ci)"
    mkdir -p "$ROOT/build"
    npm ci --no-audit --no-fund --loglevel=error >"$ROOT/build/npm.log" 2>&1 \
        || { cat "$ROOT/build/npm.log" >&2; fail "npm ci failed"; }
fi

for f in "$ROOT/build/coserve" "$ROOT/build/apps/notes.so" "$ROOT/build/apps/hello.so" \
         "$ROOT/build/apps/webchat.so" "$ROOT/build/apps/wsecho.so"; do
    [ -e "$f" ] || fail "$f missing (make build/coserve apps)"
done

# Every *.test.mjs, one after the other (they share 2 cores with the
# server and chromium); each ends with its own "browser: N passed, N
# failed", summed here. A file that ends without that line (a crash) counts
# as one failure.
passed=0
failed=0
for t in "$HERE"/*.test.mjs; do
    name=$(basename "$t")
    echo "browser: $name"
    out=$(node "$t" 2>&1)
    rc=$?
    printf '%s\n' "$out" | sed '/^browser: [0-9]* passed, [0-9]* failed$/d'
    line=$(printf '%s\n' "$out" | sed -n 's/^browser: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' | tail -1)
    if [ -z "$line" ]; then
        echo "browser: $name ended without its count (exit $rc)" >&2
        failed=$((failed + 1))
        continue
    fi
    # shellcheck disable=SC2086 # two numbers, split on purpose
    set -- $line
    passed=$((passed + $1))
    failed=$((failed + $2))
    if [ "$rc" -ne 0 ] && [ "$2" -eq 0 ]; then
        echo "browser: $name exited $rc with no failure counted" >&2
        failed=$((failed + 1))
    fi
done
echo "browser: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
