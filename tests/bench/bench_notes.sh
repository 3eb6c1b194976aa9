#!/bin/sh
# Notes benchmark: req/s of GET /notes/ID and POST /notes for offload pools of
# 1, 2, 4 and 8 threads, then /hello latency idle vs while 50 slow SQLite
# queries hold the pool (the hub must not care).
#
#   sh tests/bench/bench_notes.sh       (about 80 s)
#
# One worker process pinned to core 0 (its hub and all its offload threads);
# wrk pinned to core 1, one thread, 32 keep-alive connections. Each pool size
# gets a fresh database: the POST run fills it, then GET reads random ids of
# what it wrote. The database is WAL with synchronous=FULL (every 201 is on
# disk), so POST measures fsyncs as much as anything. Results also go to
# build/bench/notes.txt.
#
# Environment knobs: BENCH_DURATION (5s), BENCH_CONNS (32).
# Needs: wrk, taskset, curl, python3; build/coserve, build/apps/{notes,hello}.so
# and build/test-apps/slowsql.so.
set -u

cd "$(dirname "$0")/../.." || exit 1
ROOT=$(pwd)
COSERVE=$ROOT/build/coserve
OUT=$ROOT/build/bench/notes.txt
DUR=${BENCH_DURATION:-5s}
CONNS=${BENCH_CONNS:-32}
POOLS="1 2 4 8"
SERVER_CPU=0
CLIENT_CPU=1

for tool in wrk taskset curl python3 awk; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bench_notes: $tool not found" >&2; exit 1; }
done
for f in "$COSERVE" "$ROOT/build/apps/notes.so" "$ROOT/build/apps/hello.so" \
         "$ROOT/build/test-apps/slowsql.so"; do
    [ -e "$f" ] || { echo "bench_notes: $f missing (make build/coserve apps)" >&2; exit 1; }
done
[ "$(nproc)" -ge 2 ] || { echo "bench_notes: needs 2 cores" >&2; exit 1; }

. "$(dirname "$0")/lib.sh"
T=$(mktemp -d /tmp/bench_notes.XXXXXX)
SPID= LPID=
cleanup() {
    for p in $LPID $SPID; do kill "$p" 2>/dev/null; done
    for p in $LPID $SPID; do
        i=0
        while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -9 "$p" 2>/dev/null
    done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

mkdir -p "$T/apps" "$ROOT/build/bench"
ln -s "$ROOT/build/apps/notes.so" "$ROOT/build/apps/hello.so" \
      "$ROOT/build/test-apps/slowsql.so" "$T/apps/"

# $1 = offload threads, $2 = database file. Sets SPID and PORT.
start_server() {
    PORT=$(free_port)
    COSERVE_NOTES_DB=$2 taskset -c $SERVER_CPU "$COSERVE" --listen "127.0.0.1:$PORT" \
        --apps "$T/apps" --www off --workers 1 --offload-threads "$1" \
        --access-log off --log-level warn 2>>"$T/server.log" &
    SPID=$!
    i=0
    while [ $i -lt 100 ]; do
        kill -0 "$SPID" 2>/dev/null || break
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/hello")" = 200 ] && return 0
        sleep 0.1
        i=$((i + 1))
    done
    echo "bench_notes: the server did not start:" >&2
    cat "$T/server.log" >&2
    exit 1
}

stop_server() {
    kill "$SPID" 2>/dev/null
    i=0
    while kill -0 "$SPID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    kill -9 "$SPID" 2>/dev/null
    wait "$SPID" 2>/dev/null
    SPID=
}

cat >"$T/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"text":"a benchmark note, about sixty bytes of text in all."}'
wrk.headers["Content-Type"] = "application/json"
EOF

# GET /notes/ID for random ids in 1..MAX (MAX from the environment).
cat >"$T/get.lua" <<'EOF'
local max = tonumber(os.getenv("NOTES_MAX_ID")) or 1
math.randomseed(42)
request = function()
    return wrk.format("GET", "/notes/" .. math.random(1, max))
end
EOF

# $1 = wrk output -> "rps p50 p99 non2xx errors"
wrk_summary() {
    awk '
        /^Requests\/sec:/ { rps = $2 }
        /^ +50%/ { p50 = $2 }
        /^ +99%/ { p99 = $2 }
        /Non-2xx or 3xx/ { bad = $NF }
        /Socket errors:/ { sub(/^ *Socket errors: */, ""); gsub(/ /, ""); err = $0 }
        END { printf "%.0f %s %s %s %s\n", rps, p50 ? p50 : "-", p99 ? p99 : "-",
              bad ? bad : 0, err ? err : "-" }' "$1"
}

# wrk on core 1: $1 = label, rest = wrk arguments.
run_wrk() {
    label=$1
    shift
    taskset -c $CLIENT_CPU wrk -t1 "$@" >"$T/wrk.$label" 2>&1
    wrk_summary "$T/wrk.$label" >"$T/res.$label"
    printf '  %-14s %s\n' "$label" "$(cat "$T/res.$label")" >&2
}

: >"$T/report"
say() { printf '%s\n' "$*" | tee -a "$T/report"; }

say "coserve notes benchmark — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
say "machine: nproc=$(nproc) $(uname -m) $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
say "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)  (other load on the box skews results)"
say "server: taskset -c $SERVER_CPU coserve --workers 1 --offload-threads N (WAL, synchronous=FULL)"
say "client: taskset -c $CLIENT_CPU wrk -t1 -c$CONNS -d$DUR (POST: post.lua; GET: random ids of the notes POST made)"
say ""

echo "offload pools ($DUR per run):" >&2
for n in $POOLS; do
    rm -f "$T"/notes-$n.db*
    start_server "$n" "$T/notes-$n.db"
    # Warm-up: connections, statement caches (not measured).
    taskset -c $CLIENT_CPU wrk -t1 -c"$CONNS" -d1s -s "$T/post.lua" \
        "http://127.0.0.1:$PORT/notes" >/dev/null 2>&1
    run_wrk "post.$n" -c"$CONNS" -d"$DUR" --latency -s "$T/post.lua" \
        "http://127.0.0.1:$PORT/notes"
    max=$(curl -s "http://127.0.0.1:$PORT/notes?limit=1" |
          python3 -c 'import json, sys; print(json.load(sys.stdin)["notes"][0]["id"])')
    NOTES_MAX_ID=$max run_wrk "get.$n" -c"$CONNS" -d"$DUR" --latency -s "$T/get.lua" \
        "http://127.0.0.1:$PORT"
    echo "$max" >"$T/rows.$n"
    stop_server
done

echo "/hello latency, idle and under 50 slow queries:" >&2
start_server 8 "$T/notes-hello.db"
URL="http://127.0.0.1:$PORT"
taskset -c $CLIENT_CPU wrk -t1 -c10 -d1s "$URL/hello" >/dev/null 2>&1
run_wrk hello.idle -c10 -d"$DUR" --latency "$URL/hello"
# 50 connections each asking for a 200 ms query, again and again: 50 slow
# queries always in flight (8 running, 42 queued).
taskset -c $CLIENT_CPU wrk -t1 -c50 -d30s --timeout 10s "$URL/slowsql?ms=200" \
    >"$T/wrk.slow" 2>&1 &
LPID=$!
i=0
while [ "$(curl -s "$URL/slowsql/inflight")" != 50 ] && [ $i -lt 100 ]; do
    sleep 0.05
    i=$((i + 1))
done
INFLIGHT_BEFORE=$(curl -s "$URL/slowsql/inflight")
run_wrk hello.loaded -c10 -d"$DUR" --latency "$URL/hello"
INFLIGHT_AFTER=$(curl -s "$URL/slowsql/inflight")
kill "$LPID" 2>/dev/null
wait "$LPID" 2>/dev/null
LPID=
stop_server

{
    fmt="%-8s | %11s %9s %9s | %11s %9s %9s | %s\n"
    printf "$fmt" "offload" "GET rq/s" "p50" "p99" "POST rq/s" "p50" "p99" "notes"
    printf "$fmt" "threads" "/notes/ID" "" "" "/notes" "" "" "written"
    printf "$fmt" "" "" "" "" "" "" "" "" | sed 's/[^|]/-/g'
    for n in $POOLS; do
        set -- $(cat "$T/res.get.$n")
        g_rps=$1 g_p50=$2 g_p99=$3 g_bad=$4 g_err=$5
        set -- $(cat "$T/res.post.$n")
        p_rps=$1 p_p50=$2 p_p99=$3 p_bad=$4 p_err=$5
        printf "$fmt" "$n" "$g_rps" "$g_p50" "$g_p99" "$p_rps" "$p_p50" "$p_p99" "$(cat "$T/rows.$n")"
        [ "$g_bad$g_err$p_bad$p_err" = "0-0-" ] ||
            echo "  (pool $n: GET non-2xx=$g_bad errors=$g_err; POST non-2xx=$p_bad errors=$p_err)"
    done
    echo
    set -- $(cat "$T/res.hello.idle")
    i_rps=$1 i_p50=$2 i_p99=$3
    set -- $(cat "$T/res.hello.loaded")
    l_rps=$1 l_p50=$2 l_p99=$3 l_bad=$4
    echo "/hello, wrk -c10, offload pool of 8:"
    fmt2="  %-34s %10s %9s %9s\n"
    printf "$fmt2" "" "rq/s" "p50" "p99"
    printf "$fmt2" "idle" "$i_rps" "$i_p50" "$i_p99"
    printf "$fmt2" "during 50 slow queries (200 ms)" "$l_rps" "$l_p50" "$l_p99"
    echo "  slow queries in flight when the loaded run started / ended: $INFLIGHT_BEFORE / $INFLIGHT_AFTER"
    [ "$l_bad" = 0 ] || echo "  /hello non-2xx under load: $l_bad"
    if [ -s "$T/server.log" ]; then
        echo "server log (first 10 lines):"
        head -n 10 "$T/server.log" | sed 's/^/  /'
    fi
} >"$T/table"

say "results:"
tee -a "$T/report" <"$T/table"
cp "$T/report" "$OUT"
echo "(written to ${OUT#"$ROOT"/})"
