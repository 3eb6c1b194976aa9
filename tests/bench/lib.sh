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
