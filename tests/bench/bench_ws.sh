#!/bin/sh
# WebSocket benchmark: coserve's /ws/echo (apps/wsecho, one worker) vs a
# Node echo server (npm `ws` on Debian's node, tests/bench/ws_echo_node.mjs).
#
#   sh tests/bench/bench_ws.sh        (what `make bench` runs)
#
# (a) Idle memory: 10,000 WebSockets opened (handshake, no extension) and
#     held silent; RSS growth of the server's processes per connection,
#     against the target of 8 KiB.
# (b) Echo: 100 connections, each sending a 16-byte text message and
#     waiting for its echo before the next, for BENCH_DURATION; round trips
#     per second and the server's CPU time (utime+stime of its processes)
#     per round trip. Servers on core 0, the load client on core 1, both
#     servers in the same run. Results also go to build/bench/ws.txt.
#
# The client is tests/bench/clients/wsload.c (one thread, one epoll).
# Environment knobs: BENCH_DURATION (10s), BENCH_IDLE_CONNS (10000),
# BENCH_ROUNDS (3: echo runs per server, alternating).
# Needs: node, npm, taskset, curl, cc; 2+ cores.
set -u

cd "$(dirname "$0")/../.." || exit 1
ROOT=$(pwd)
HERE=$ROOT/tests/bench
COSERVE=$ROOT/build/coserve
APPS=$ROOT/build/apps
OUT=$ROOT/build/bench/ws.txt
DUR=${BENCH_DURATION:-10s}
SECS=${DUR%s}
IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
ROUNDS=${BENCH_ROUNDS:-3}
ECHO_CONNS=100
MSG_BYTES=16
TARGET_KIB=8
SERVER_CPU=0
CLIENT_CPU=1

. "$HERE/lib.sh"
bench_preflight bench_ws node npm taskset curl awk cc
[ -f "$APPS/wsecho.so" ] || { echo "bench_ws: $APPS/wsecho.so missing (make apps)" >&2; exit 1; }

# npm's ws, pinned by tests/bench/package-lock.json
if [ ! -f "$HERE/node_modules/ws/package.json" ] ||
   [ "$HERE/package-lock.json" -nt "$HERE/node_modules/.package-lock.json" ]; then
    echo "bench_ws: installing npm packages (npm ci)" >&2
    mkdir -p "$ROOT/build"
    (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error) >"$ROOT/build/npm-bench.log" 2>&1 ||
        { cat "$ROOT/build/npm-bench.log" >&2; echo "bench_ws: npm ci failed" >&2; exit 1; }
fi
WS_VERSION=$(awk -F'"' '/"version"/ { print $4; exit }' "$HERE/node_modules/ws/package.json")

mkdir -p "$ROOT/build/bench"
LOAD=$ROOT/build/bench/wsload
LOAD_SRC=$HERE/clients/wsload.c
if [ ! -x "$LOAD" ] || [ "$LOAD_SRC" -nt "$LOAD" ]; then
    cc -O2 -Wall -Wextra -Werror "$LOAD_SRC" -o "$LOAD" ||
        { echo "bench_ws: cannot build $LOAD" >&2; exit 1; }
fi

# File descriptors: the idle connections and their client in this shell's
# children, each process on its own.
want=$((IDLE_CONNS + 2000))
ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)
if [ "$NOFILE" -lt "$want" ]; then
    echo "bench_ws: $IDLE_CONNS connections need $want fds; the limit is $NOFILE" >&2
    exit 1
fi

T=$(mktemp -d /tmp/bench_ws.XXXXXX)
SPID='' NPID='' CLPID=''
cleanup() {
    [ -n "$CLPID" ] && kill "$CLPID" 2>/dev/null
    stop_tree "$SPID" TERM
    stop_tree "$NPID" TERM
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

: >"$T/report"
say() { printf '%s\n' "$*" | tee -a "$T/report"; }

rss_kib() { # $1 = main pid -> VmRSS of all its processes, KiB
    { echo "$1"; pgrep -P "$1"; } | while read -r p; do
        cat /proc/"$p"/status 2>/dev/null
    done | awk '/^VmRSS:/ { s += $2 } END { print s + 0 }'
}

CLK_TCK=$(getconf CLK_TCK)

# Busy ticks of a core (everything but idle and iowait), to tell how much
# of it went to other processes during a run.
core_busy() { # $1 = core
    awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
}

# ---------------------------------------------------------------- servers

# Only hello (to tell it is up) and wsecho: another app failing its init
# must not skew this benchmark.
mkdir -p "$T/apps"
ln -s "$APPS/hello.so" "$T/apps/hello.so"
ln -s "$APPS/wsecho.so" "$T/apps/wsecho.so"
CS_ARGS="--apps $T/apps --access-log off --log-level warn --workers 1 --max-connections $((IDLE_CONNS + 1000))"
CS_ERR=$T/coserve.stderr
NODE_ERR=$T/node.stderr
: >"$CS_ERR"
: >"$NODE_ERR"

start_coserve() { # $1 = port
    # shellcheck disable=SC2086
    taskset -c $SERVER_CPU "$COSERVE" --listen "127.0.0.1:$1" $CS_ARGS 2>>"$CS_ERR" &
    SPID=$!
    wait_up "http://127.0.0.1:$1/hello" "$SPID" ||
        { echo "bench_ws: coserve did not start:" >&2; cat "$CS_ERR" >&2; exit 1; }
}

start_node() { # $1 = port
    taskset -c $SERVER_CPU node "$HERE/ws_echo_node.mjs" "$1" 2>>"$NODE_ERR" &
    NPID=$!
    wait_up "http://127.0.0.1:$1/" "$NPID" ||
        { echo "bench_ws: node did not start:" >&2; cat "$NODE_ERR" >&2; exit 1; }
}

# ---------------------------------------------------------------- idle

# Source addresses for the client: ~28,000 ephemeral ports each on
# loopback, and the search for a free one slows as they fill.
SRCS=127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5

# $1 = label, $2 = main pid, $3 = port, $4 = path; writes "before_kib
# after_kib kib_per_conn" to $T/mem.$1.
idle_mem() {
    label=$1 pid=$2 port=$3 path=$4
    rm -f "$T/st"
    sleep 0.5
    before=$(rss_kib "$pid")
    taskset -c $CLIENT_CPU "$LOAD" idle 127.0.0.1 "$port" "$path" "$IDLE_CONNS" \
        -s "$SRCS" -o "$T/st" 2>"$T/idle.$label.err" >/dev/null &
    CLPID=$!
    i=0
    while ! grep -q 'ready 1' "$T/st" 2>/dev/null && kill -0 "$CLPID" 2>/dev/null &&
        [ $i -lt 600 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if ! grep -q 'ready 1' "$T/st" 2>/dev/null; then
        echo "bench_ws: idle client against $label failed: $(cat "$T/st" "$T/idle.$label.err" 2>/dev/null)" >&2
        kill "$CLPID" 2>/dev/null
        wait "$CLPID" 2>/dev/null
        CLPID=
        echo "- - -" >"$T/mem.$label"
        return 1
    fi
    sleep 1
    after=$(rss_kib "$pid")
    status=$(cat "$T/st")
    kill "$CLPID" 2>/dev/null
    wait "$CLPID" 2>/dev/null
    CLPID=
    echo "  $label: $status" >&2
    awk -v b="$before" -v a="$after" -v n="$IDLE_CONNS" \
        'BEGIN { printf "%d %d %.2f\n", b, a, (a - b) / n }' >"$T/mem.$label"
}

# ---------------------------------------------------------------- echo

# One measured echo run. $1 = label, $2 = main pid, $3 = port, $4 = path,
# $5 = round. Appends "rate cpu_us_per_msg messages p50_us p99_us errors
# others%" to $T/echo.$1 (others: the share of the server's core that
# other processes took meanwhile).
echo_one() {
    label=$1 pid=$2 port=$3 path=$4 round=$5
    before=$(cpu_ticks "$pid")
    busy0=$(core_busy $SERVER_CPU)
    t0=$(date +%s.%N)
    taskset -c $CLIENT_CPU "$LOAD" echo 127.0.0.1 "$port" "$path" $ECHO_CONNS "$SECS" \
        -m $MSG_BYTES >"$T/out" 2>"$T/echo.err"
    after=$(cpu_ticks "$pid")
    busy1=$(core_busy $SERVER_CPU)
    t1=$(date +%s.%N)
    kill -0 "$pid" 2>/dev/null || echo "  $label: DIED" >&2
    line=$(cat "$T/out")
    [ -n "$line" ] || line="conns 0 messages 0 seconds 0 rate 0 p50_us 0 p99_us 0 errors failed:$(head -c 200 "$T/echo.err" | tr '\n ' '; ')"
    echo "$line" | awk -v b="$before" -v a="$after" -v hz="$CLK_TCK" \
        -v b0="$busy0" -v b1="$busy1" -v t0="$t0" -v t1="$t1" '{
        cpu = ($4 > 0) ? (a - b) * 1e6 / hz / $4 : 0
        o = (b1 - b0 - (a - b)) / hz / (t1 - t0) * 100
        printf "%s %.2f %s %s %s %s %.0f%%\n", $8, cpu, $4, $10, $12, $14, o < 0 ? 0 : o }' >>"$T/echo.$label"
    printf '  %-8s round %d: %s\n' "$label" "$round" "$(tail -n 1 "$T/echo.$label")" >&2
}

# ---------------------------------------------------------------- run

say "coserve WebSocket benchmark — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
say "machine: nproc=$(nproc) arch=$(uname -m) kernel=$(uname -r) cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
say "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)  (other load on the box skews results)"
say "open-file limit: $NOFILE; CPU time from /proc/PID/stat utime+stime of the server's processes, CLK_TCK=$CLK_TCK"
say ""
say "commands:"
say "  coserve: taskset -c $SERVER_CPU $COSERVE --listen 127.0.0.1:\$PORT $CS_ARGS   ($T/apps holds links to hello.so and wsecho.so; the echo is /ws/echo)"
say "  node:    taskset -c $SERVER_CPU node tests/bench/ws_echo_node.mjs \$PORT   (node $(node --version), npm ws $WS_VERSION, perMessageDeflate off)"
say "  idle:    taskset -c $CLIENT_CPU build/bench/wsload idle 127.0.0.1 \$PORT PATH $IDLE_CONNS -s $SRCS   (handshake, then silent; RSS = VmRSS summed over the server's processes, 1 s after the last 101)"
say "  echo:    taskset -c $CLIENT_CPU build/bench/wsload echo 127.0.0.1 \$PORT PATH $ECHO_CONNS $SECS -m $MSG_BYTES   (each connection: send a $MSG_BYTES-byte text message, wait for its echo, send the next; $ROUNDS rounds per server, alternating)"
say ""

echo "idle WebSocket memory ($IDLE_CONNS connections):" >&2
PORT=$(free_port)
start_coserve "$PORT"
idle_mem coserve "$SPID" "$PORT" /ws/echo
CS_ALIVE=0
kill -0 "$SPID" 2>/dev/null || CS_ALIVE=1
stop_tree "$SPID" TERM
SPID=''
PORT=$(free_port)
start_node "$PORT"
idle_mem node "$NPID" "$PORT" /
stop_tree "$NPID" TERM
NPID=''

echo "echo round trips ($ECHO_CONNS connections, ${SECS}s per run):" >&2
CS_PORT=$(free_port)
start_coserve "$CS_PORT"
NODE_PORT=$(free_port)
start_node "$NODE_PORT"
# warm-up (not measured): the JIT, the pools
taskset -c $CLIENT_CPU "$LOAD" echo 127.0.0.1 "$CS_PORT" /ws/echo $ECHO_CONNS 1 >/dev/null 2>&1
taskset -c $CLIENT_CPU "$LOAD" echo 127.0.0.1 "$NODE_PORT" / $ECHO_CONNS 1 >/dev/null 2>&1
: >"$T/echo.coserve"
: >"$T/echo.node"
r=1
while [ $r -le "$ROUNDS" ]; do
    echo_one coserve "$SPID" "$CS_PORT" /ws/echo $r
    echo_one node "$NPID" "$NODE_PORT" / $r
    r=$((r + 1))
done
kill -0 "$SPID" 2>/dev/null || CS_ALIVE=1
stop_tree "$SPID" TERM
SPID=''
stop_tree "$NPID" TERM
NPID=''

# ---------------------------------------------------------------- table

# The best round of each server (the least disturbed by other load).
best() { sort -k1,1gr "$T/echo.$1" | head -n 1; }
{
    set -- $(cat "$T/mem.coserve")
    cs_b=$1 cs_a=$2 cs_k=$3
    set -- $(cat "$T/mem.node")
    nd_b=$1 nd_a=$2 nd_k=$3
    verdict=$(awk -v k="$cs_k" -v t="$TARGET_KIB" 'BEGIN { print (k != "-" && k + 0 <= t) ? "PASS" : "FAIL" }')
    printf "idle WebSocket memory, %d connections (RSS before -> after, KiB per connection):\n" "$IDLE_CONNS"
    printf "  coserve %8s -> %8s KiB  %7s KiB/conn   target <= %d KiB  %s\n" "$cs_b" "$cs_a" "$cs_k" "$TARGET_KIB" "$verdict"
    printf "  node    %8s -> %8s KiB  %7s KiB/conn\n" "$nd_b" "$nd_a" "$nd_k"
    echo
    printf "echo, %d connections, %d-byte text messages (best of %d rounds of %ss):\n" \
        $ECHO_CONNS $MSG_BYTES "$ROUNDS" "$SECS"
    set -- $(best coserve)
    cs_rate=$1 cs_cpu=$2 cs_p50=$4 cs_p99=$5 cs_err=$6
    set -- $(best node)
    nd_rate=$1 nd_cpu=$2 nd_p50=$4 nd_p99=$5 nd_err=$6
    printf "  %-8s %10s msg/s  %8s µs CPU/msg  p50 %7s µs  p99 %7s µs  errors %s\n" \
        coserve "$cs_rate" "$cs_cpu" "$cs_p50" "$cs_p99" "$cs_err"
    printf "  %-8s %10s msg/s  %8s µs CPU/msg  p50 %7s µs  p99 %7s µs  errors %s\n" \
        node "$nd_rate" "$nd_cpu" "$nd_p50" "$nd_p99" "$nd_err"
    awk -v cr="$cs_rate" -v nr="$nd_rate" -v cc="$cs_cpu" -v nc="$nd_cpu" 'BEGIN {
        printf "  coserve / node: %.2fx the messages per second, %.2fx the CPU per message\n",
            (nr > 0 ? cr / nr : 0), (nc > 0 ? cc / nc : 0) }'
    echo "  every round (msg/s, µs CPU/msg, messages, p50 µs, p99 µs, errors, core $SERVER_CPU taken by other processes):"
    sed 's/^/    coserve /' "$T/echo.coserve"
    sed 's/^/    node    /' "$T/echo.node"
    echo
    echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    [ "$CS_ALIVE" -ne 0 ] && echo "coserve: DIED during the run"
    for f in "$CS_ERR" "$NODE_ERR"; do
        n=$(grep -vc 'running as root' "$f")
        [ "$n" -gt 0 ] && { echo "${f##*/} ($n lines, first 5):"; grep -v 'running as root' "$f" | head -n 5 | sed 's/^/  /'; }
    done
} >"$T/table"

say "results:"
tee -a "$T/report" <"$T/table"
cp "$T/report" "$OUT"
echo "(written to ${OUT#"$ROOT"/})"
