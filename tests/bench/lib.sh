# Shared by the bench_*.sh scripts (sourced): starting, probing and stopping
# the servers under test.

# A loopback port that was free a moment ago.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# $1 = url, $2 = pid: waits (up to 10 s) until the url answers 200; fails
# at once if the process died.
wait_up() {
    i=0
    while [ $i -lt 100 ]; do
        kill -0 "$2" 2>/dev/null || return 1
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" 2>/dev/null)" = 200 ] && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# $1 = main pid (master + workers), $2 = signal: sends it, waits up to 10 s,
# then KILLs whatever is left of the tree.
stop_tree() {
    [ -n "$1" ] || return 0
    kids=$(pgrep -P "$1")
    kill -"$2" "$1" 2>/dev/null
    i=0
    while kill -0 "$1" 2>/dev/null && [ $i -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    # shellcheck disable=SC2086
    kill -9 "$1" $kids 2>/dev/null
    wait "$1" 2>/dev/null
    return 0
}

# $1 = script name, then the commands it needs: fails unless each is on
# PATH, the server and hello app are built and there are 2+ cores (servers
# on core 0, load on core 1).
bench_preflight() {
    name=$1
    shift
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || {
            echo "$name: $tool not found" >&2
            exit 1
        }
    done
    [ -x "$COSERVE" ] || { echo "$name: $COSERVE missing (make build/coserve apps)" >&2; exit 1; }
    [ -f "$APPS/hello.so" ] || { echo "$name: $APPS/hello.so missing (make apps)" >&2; exit 1; }
    if [ "$(nproc)" -lt 2 ]; then
        echo "$name: needs 2 cores (servers on core 0, clients on core 1)" >&2
        exit 1
    fi
}

# utime+stime (fields 14, 15) of the main process and its live children,
# plus the main process's cutime+cstime (16, 17): a worker that exited and
# was reaped during a run still counts. In clock ticks.
cpu_ticks() { # $1 = main pid
    { echo "$1"; pgrep -P "$1"; } | while read -r p; do
        # Strip "pid (comm) " so field numbering does not depend on comm.
        printf '%s ' "$p"
        sed 's/^.*) //' /proc/"$p"/stat 2>/dev/null || echo
    done | awk -v main="$1" '{ s += $13 + $14; if ($1 == main) s += $15 + $16 }
                             END { print s + 0 }'
}
