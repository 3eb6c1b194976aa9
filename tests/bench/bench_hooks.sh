#!/bin/sh
# The price of the hooks: GET /hello ("Hello, World!\n") against one coserve
# worker with the hooks on (the default) vs one started with --no-hooks.
#
#   sh tests/bench/bench_hooks.sh        (what `make bench` runs)
#
# Both servers run at once, pinned to core 0; wrk (-t1, 100 keep-alive
# connections) is pinned to core 1 and aims at one of them at a time, so
# the other sits idle in epoll_wait. The runs alternate: BENCH_ROUNDS rounds
# (5), each one run per server, the order flipped every round so drifting
# background load hits both alike. For each run: req/s and the server's CPU
# time (utime+stime of master and worker) per completed request. Figures:
# each side's median over the rounds, and the median of the rounds' on/off
# ratios (target: hooks on within 2 % of off; a round's runs are back to
# back, so its ratio cancels most of the background load's effect).
# Results also go to build/bench/hooks.txt.
#
# Environment knobs: BENCH_DURATION (10s), BENCH_ROUNDS (5).
# Needs: wrk, python3, taskset, curl; 2+ cores.
set -u

cd "$(dirname "$0")/../.." || exit 1
ROOT=$(pwd)
COSERVE=$ROOT/build/coserve
APPS=$ROOT/build/apps
WWW=$ROOT/www
OUT=$ROOT/build/bench/hooks.txt
DUR=${BENCH_DURATION:-10s}
ROUNDS=${BENCH_ROUNDS:-5}
CONNS=100
SERVER_CPU=0
CLIENT_CPU=1

. "$(dirname "$0")/lib.sh"
bench_preflight bench_hooks wrk python3 taskset curl awk sort
"$COSERVE" --help 2>&1 | grep -q -- '--no-hooks' ||
    { echo "bench_hooks: $COSERVE has no --no-hooks" >&2; exit 1; }

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null

T=$(mktemp -d /tmp/bench_hooks.XXXXXX)
ONPID='' OFFPID=''
cleanup() {
    stop_tree "$ONPID" TERM
    stop_tree "$OFFPID" TERM
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

mkdir -p "$ROOT/build/bench"
: >"$T/report"
say() { printf '%s\n' "$*" | tee -a "$T/report"; }

CLK_TCK=$(getconf CLK_TCK)


# Busy ticks of the servers' core (everything but idle and iowait).
core_busy() {
    awk -v c="cpu$SERVER_CPU" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
}

# ---------------------------------------------------------------- servers

CS_WORKERS=''
"$COSERVE" --help 2>&1 | grep -q -- '--workers' && CS_WORKERS='--workers 1'
# Only the hello app, as in bench_http.sh.
mkdir -p "$T/apps"
ln -s "$APPS/hello.so" "$T/apps/hello.so"
CS_ARGS="--apps $T/apps --www $WWW --access-log off --log-level warn $CS_WORKERS"
CS_ERR=$T/coserve.stderr
: >"$CS_ERR"

start_server() { # $1 = port, $2.. = extra args; sets SRVPID
    port=$1
    shift
    # shellcheck disable=SC2086
    taskset -c $SERVER_CPU "$COSERVE" --listen "127.0.0.1:$port" $CS_ARGS "$@" 2>>"$CS_ERR" &
    SRVPID=$!
    wait_up "http://127.0.0.1:$port/hello" "$SRVPID" ||
        { echo "bench_hooks: coserve $* did not start:" >&2; cat "$CS_ERR" >&2; exit 1; }
}

# ---------------------------------------------------------------- a run

# $1 = label (on/off), $2 = main pid, $3 = url, $4 = round. Appends
# "label round rps cpu_us_per_req requests errors others%" to $T/runs.
run_one() {
    label=$1 pid=$2 url=$3 round=$4
    kids0=$(pgrep -P "$pid" | sort | tr '\n' ' ')
    before=$(cpu_ticks "$pid")
    busy0=$(core_busy)
    t0=$(date +%s.%N)
    taskset -c $CLIENT_CPU wrk -t1 -c$CONNS -d"$DUR" "$url" >"$T/wrk.$label.$round" 2>&1
    after=$(cpu_ticks "$pid")
    busy1=$(core_busy)
    t1=$(date +%s.%N)
    kids1=$(pgrep -P "$pid" | sort | tr '\n' ' ')
    alive=yes
    kill -0 "$pid" 2>/dev/null || alive=DEAD
    [ "$kids0" = "$kids1" ] || alive=worker-replaced
    awk -v b="$before" -v a="$after" -v hz="$CLK_TCK" -v alive="$alive" \
        -v l="$label" -v r="$round" -v b0="$busy0" -v b1="$busy1" -v t0="$t0" -v t1="$t1" '
        / requests in / { n = $1 }
        /^Requests\/sec:/ { rps = $2 }
        /Socket errors:/ { sub(/^ *Socket errors: */, ""); gsub(/ /, ""); err = err $0 ";" }
        /Non-2xx or 3xx/ { err = err "non2xx=" $NF ";" }
        END {
            if (alive != "yes") err = err "server:" alive ";"
            if (err == "") err = "-"
            cpu = (n > 0) ? (a - b) * 1e6 / hz / n : 0
            # share of core 0 that other processes took meanwhile
            o = (b1 - b0 - (a - b)) / hz / (t1 - t0) * 100
            printf "%s %d %.0f %.3f %d %s %.0f\n", l, r, rps, cpu, n, err, o < 0 ? 0 : o
        }' "$T/wrk.$label.$round" | tee -a "$T/runs" | sed 's/^/  /' >&2
    [ "$alive" = yes ]
}

# ---------------------------------------------------------------- run

WRK_CMD="taskset -c $CLIENT_CPU wrk -t1 -c$CONNS -d$DUR http://127.0.0.1:\$PORT/hello"
say "coserve hooks benchmark — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
say "machine: nproc=$(nproc) arch=$(uname -m) kernel=$(uname -r) cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
say "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
say "CPU time from /proc/PID/stat utime+stime (master + worker), CLK_TCK=$CLK_TCK"
say ""
say "commands:"
say "  hooks on:  taskset -c $SERVER_CPU $COSERVE --listen 127.0.0.1:\$PORT $CS_ARGS"
say "  hooks off: taskset -c $SERVER_CPU $COSERVE --listen 127.0.0.1:\$PORT $CS_ARGS --no-hooks"
say "  load:      $WRK_CMD"
say "  ($T/apps holds only a link to build/apps/hello.so; both servers up at once,"
say "   $ROUNDS rounds of one run each, order flipped every round)"
say ""

ON_PORT=$(free_port)
start_server "$ON_PORT"
ONPID=$SRVPID
OFF_PORT=$(free_port)
start_server "$OFF_PORT" --no-hooks
OFFPID=$SRVPID
ON_URL=http://127.0.0.1:$ON_PORT/hello
OFF_URL=http://127.0.0.1:$OFF_PORT/hello
# Warm-up (not measured).
taskset -c $CLIENT_CPU wrk -t1 -c$CONNS -d1s "$ON_URL" >/dev/null 2>&1
taskset -c $CLIENT_CPU wrk -t1 -c$CONNS -d1s "$OFF_URL" >/dev/null 2>&1

: >"$T/runs"
echo "runs ($DUR each): label round req/s cpu-us/req requests errors core0-others%" >&2
FAILED=0
r=1
while [ $r -le "$ROUNDS" ]; do
    if [ $((r % 2)) -eq 1 ]; then
        run_one on "$ONPID" "$ON_URL" $r || FAILED=1
        run_one off "$OFFPID" "$OFF_URL" $r || FAILED=1
    else
        run_one off "$OFFPID" "$OFF_URL" $r || FAILED=1
        run_one on "$ONPID" "$ON_URL" $r || FAILED=1
    fi
    [ $FAILED -eq 0 ] || break
    r=$((r + 1))
done
stop_tree "$ONPID" TERM
ONPID=''
stop_tree "$OFFPID" TERM
OFFPID=''

# ---------------------------------------------------------------- table

# median of the numbers on stdin
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print 0; exit }
        print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

col() { # $1 = label, $2 = field -> that field of every run of the label
    awk -v l="$1" -v f="$2" '$1 == l { print $f }' "$T/runs"
}

ON_CPU=$(col on 4 | median)
OFF_CPU=$(col off 4 | median)
ON_RPS=$(col on 3 | median)
OFF_RPS=$(col off 3 | median)

{
    fmt="%-10s | %12s %12s | %10s %10s %7s\n"
    # (µs is two bytes: pad those headers by hand)
    printf "%-10s | %12s %12s | %11s %11s %7s\n" round "on rq/s" "off rq/s" "on µs/req" "off µs/req" "on/off"
    printf "$fmt" "" "" "" "" "" "" | sed 's/[^|]/-/g'
    i=1
    while [ $i -le "$ROUNDS" ]; do
        on=$(awk -v r=$i '$1 == "on" && $2 == r { print $3, $4 }' "$T/runs")
        off=$(awk -v r=$i '$1 == "off" && $2 == r { print $3, $4 }' "$T/runs")
        if [ -z "$on" ] || [ -z "$off" ]; then
            break
        fi
        # shellcheck disable=SC2086
        set -- $on $off
        awk -v fmt="$fmt" -v r="$i" -v onr="$1" -v onc="$2" -v offr="$3" -v offc="$4" 'BEGIN {
            printf fmt, r, onr, offr, sprintf("%.3f", onc), sprintf("%.3f", offc),
                sprintf("%.3f", offc > 0 ? onc / offc : 0) }'
        i=$((i + 1))
    done
    awk -v fmt="$fmt" -v onr="$ON_RPS" -v onc="$ON_CPU" -v offr="$OFF_RPS" -v offc="$OFF_CPU" 'BEGIN {
        printf fmt, "median", sprintf("%.0f", onr), sprintf("%.0f", offr), sprintf("%.3f", onc),
            sprintf("%.3f", offc), sprintf("%.3f", offc > 0 ? onc / offc : 0) }'
    echo
    # The verdict: the median of the rounds' own on/off ratios. A round's two
    # runs are back to back, so they share most of the background load,
    # which moves CPU per request far more than the hooks do (other
    # processes on core 0 evict its caches); the ratio of the two medians,
    # taken from different rounds, is shown too.
    awk '$1 == "on" { on[$2] = $4 } $1 == "off" { off[$2] = $4 }
         END { for (r in on) if ((r in off) && off[r] > 0) print on[r] / off[r] }' "$T/runs" |
        sort -g | awk -v on="$ON_CPU" -v off="$OFF_CPU" -v onr="$ON_RPS" -v offr="$OFF_RPS" \
            -v failed=$FAILED '{ v[NR] = $1 } END {
            m = NR ? ((NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) : 0
            ok = !failed && m > 0 && m <= 1.02
            printf "CPU per request, hooks on / off: %.3f (median of %d rounds, range %.3f-%.3f)   target <= 1.02  %s\n",
                m, NR, v[1], v[NR], ok ? "PASS" : "MISS"
            printf "  ratio of the medians: CPU per request %.3f, req/s %.3f\n",
                (off > 0) ? on / off : 0, (offr > 0) ? onr / offr : 0
        }'
    errs=$(awk '$6 != "-" { printf " %s/%s:%s", $1, $2, $6 }' "$T/runs")
    echo "wrk errors:${errs:- none}"
    echo "core $SERVER_CPU time taken by other processes during each run (noise):" \
        "$(awk '{ printf "%s%s/%s %s%%", (NR > 1 ? ", " : ""), $1, $2, $7 }' "$T/runs")"
    echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    [ $FAILED -eq 0 ] || echo "coserve: a server DIED or replaced its worker during the runs"
    if [ -s "$CS_ERR" ]; then
        echo "coserve stderr ($(wc -l <"$CS_ERR") lines, first 10):"
        head -n 10 "$CS_ERR" | sed 's/^/  /'
    else
        echo "coserve stderr: empty"
    fi
} >"$T/table"

say "results:"
tee -a "$T/report" <"$T/table"
cp "$T/report" "$OUT"
echo "(written to ${OUT#"$ROOT"/})"
