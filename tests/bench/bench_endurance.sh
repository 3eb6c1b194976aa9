#!/bin/sh
# Endurance benchmark (issue 11, item 7): many idle connections, a slowloris
# crowd, and a long mixed soak.
#
#   sh tests/bench/bench_endurance.sh                   (what `make bench` runs)
#   BENCH_ENDURANCE_PARTS=soak BENCH_SOAK_MINUTES=5 sh tests/bench/bench_endurance.sh
#
# Parts (BENCH_ENDURANCE_PARTS, default "idle slow soak"):
#   idle  100,000 idle kept-alive connections (one GET /hello each, then
#         silent), held by tests/bench/clients/holdconns.c from several
#         loopback source addresses (127.0.0.2...: ~28,000 ports each):
#         server RSS per connection (before/after), and /hello latency with
#         wrk -t1 -c10 without them and while they are open; coserve, then
#         nginx (return 200) with the same number of workers.
#   slow  10,000 slowloris clients on one worker at the default
#         --max-connections (10,000) and --header-timeout (10 s): each sends
#         part of a head, then a byte a second, and reconnects when closed.
#         /hello latency meanwhile (p50/p99/max), new clients (one curl
#         connection every 0.2 s) served or not, worker RSS at the peak and
#         10 s after they leave.
#   soak  BENCH_SOAK_MINUTES (30) of mixed load on 2 workers: /hello, /echo
#         POSTs, /sleep?ms=50, static files, notes GET/POST (SQLite in
#         var/ of the server's cwd), new connections (Connection: close), a
#         slowloris trickle, and a HUP reload every BENCH_SOAK_HUP_SECONDS
#         (120; 0 = none: one generation of workers throughout); every 10 s
#         the RSS and fd count of the master and of every worker. Reports
#         first/last/max per role and the slope over the last 10 minutes
#         (flat or not).
#
# Servers are pinned to core 0 (taskset -c 0), every client to core 1. The
# per-process fd limit is raised as far as the kernel allows; where it stays
# below 100,000 (no CAP_SYS_RESOURCE), the connections are spread over
# enough server workers and client processes that each stays under it.
# Results go to build/bench/endurance.txt (endurance-PARTS.txt for a
# subset; -nohup without reloads) and the soak's samples to
# build/bench/endurance-soak.csv (endurance-soak-nohup.csv).
#
# Environment knobs: BENCH_ENDURANCE_PARTS, BENCH_ENDURANCE_IDLE (100000),
# BENCH_ENDURANCE_SLOW (10000), BENCH_SOAK_MINUTES (30),
# BENCH_SOAK_HUP_SECONDS (120), BENCH_DURATION (10s, each latency run).
# Needs: wrk, nginx, curl, taskset, cc; 2+ cores; root for more fds.
set -u

cd "$(dirname "$0")/../.." || exit 1
ROOT=$(pwd)
COSERVE=$ROOT/build/coserve
APPS=$ROOT/build/apps
WWW=$ROOT/www
PARTS=${BENCH_ENDURANCE_PARTS:-idle slow soak}
IDLE_N=${BENCH_ENDURANCE_IDLE:-100000}
SLOW_N=${BENCH_ENDURANCE_SLOW:-10000}
SOAK_MIN=${BENCH_SOAK_MINUTES:-30}
HUP_EVERY=${BENCH_SOAK_HUP_SECONDS:-120}
SAMPLE_EVERY=10
DUR=${BENCH_DURATION:-10s}
SERVER_CPU=0
CLIENT_CPU=1

. "$(dirname "$0")/lib.sh"
bench_preflight bench_endurance wrk nginx curl taskset awk cc

suffix=''
[ "$PARTS" = "idle slow soak" ] || suffix=-$(echo "$PARTS" | tr ' ' '-')
nohup=''
[ "$HUP_EVERY" -gt 0 ] || nohup=-nohup
OUT=$ROOT/build/bench/endurance$suffix$nohup.txt
CSV=$ROOT/build/bench/endurance-soak$nohup.csv
mkdir -p "$ROOT/build/bench"

HOLD=$ROOT/build/bench/holdconns
HOLD_SRC=$ROOT/tests/bench/clients/holdconns.c
if [ ! -x "$HOLD" ] || [ "$HOLD_SRC" -nt "$HOLD" ]; then
    cc -O2 -Wall -Wextra -Werror "$HOLD_SRC" -o "$HOLD" ||
        { echo "bench_endurance: cannot build $HOLD" >&2; exit 1; }
fi

# File descriptors: enough for every connection in one process if the
# kernel lets us (root with CAP_SYS_RESOURCE), else the hard limit.
want=$((IDLE_N + 20000))
if [ "$(cat /proc/sys/fs/nr_open)" -lt "$want" ]; then
    echo "$want" >/proc/sys/fs/nr_open 2>/dev/null
fi
ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)
# Connections one process may hold (the rest of its fds: listeners, logs,
# epoll, pipes, the database...).
PER_PROC=$((NOFILE - 300))

T=$(mktemp -d /tmp/bench_endurance.XXXXXX)
SPID='' NGPID='' CLPIDS='' BGPIDS=''
cleanup() {
    for p in $CLPIDS $BGPIDS; do kill "$p" 2>/dev/null; done
    for p in $CLPIDS $BGPIDS; do wait "$p" 2>/dev/null; done
    stop_tree "$SPID" TERM
    stop_tree "$NGPID" QUIT
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

: >"$T/report"
say() { printf '%s\n' "$*" | tee -a "$T/report"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

# ---------------------------------------------------------------- helpers

# The processes of a server: its main pid and its children.
procs() { echo "$1"; pgrep -P "$1"; }

rss_kib() { # $1 = main pid -> VmRSS summed over its processes
    for p in $(procs "$1"); do cat /proc/"$p"/status 2>/dev/null; done |
        awk '/^VmRSS:/ { s += $2 } END { print s + 0 }'
}

one_rss() { # $1 = pid -> its VmRSS, KiB
    awk '/^VmRSS:/ { print $2; f = 1 } END { if (!f) print 0 }' /proc/"$1"/status 2>/dev/null
}

nfds() { # $1 = pid -> open fds
    ls /proc/"$1"/fd 2>/dev/null | wc -l
}

# A wrk time ("62.00us", "1.28ms", "2.01s", "1.00m") in ms.
AWK_MS='function ms(v) {
    if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
    if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
    if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
    if (v ~ /m$/) return substr(v, 1, length(v) - 1) * 60000
    return -1 }'

# $1 = wrk --latency output -> "rps p50ms p99ms maxms requests errors"
wrk_summary() {
    awk "$AWK_MS"'
        /^ +Latency / && $2 != "Distribution" { max = ms($4) }
        / requests in / { n = $1 }
        /^Requests\/sec:/ { rps = $2 }
        /^ +50%/ { p50 = ms($2) }
        /^ +99%/ { p99 = ms($2) }
        /Non-2xx or 3xx/ { err = err "non2xx=" $NF ";" }
        /Socket errors:/ { sub(/^ *Socket errors: */, ""); gsub(/ /, ""); err = err $0 ";" }
        END { printf "%.0f %.2f %.2f %.2f %d %s\n", rps, p50, p99, max, n, err == "" ? "-" : err }' "$1"
}

# /hello latency on core 1: $1 = label, $2 = url. Writes $T/lat.$1.
latency() {
    taskset -c $CLIENT_CPU wrk -t1 -c10 -d"$DUR" --latency "$2" >"$T/wrk.$1" 2>&1
    wrk_summary "$T/wrk.$1" >"$T/lat.$1"
    printf '  %-22s %s\n' "$1" "$(cat "$T/lat.$1")" >&2
}

# $1 = a server's stderr -> its lines by kind (numbers as N), most first.
log_kinds() {
    [ -s "$1" ] || { echo "coserve stderr: empty"; return; }
    echo "coserve stderr ($(wc -l <"$1") lines; by kind, first 8):"
    grep -v '^ ' "$1" | sed 's/^[^ ]* coserve\[[0-9]*\] //; s/[0-9][0-9]*/N/g' | sort | uniq -c |
        sort -rn | head -n 8 | sed 's/^/  /'
}

start_coserve() { # $1 = port, $2 = stderr file, rest = flags
    port=$1 err=$2
    shift 2
    taskset -c $SERVER_CPU "$COSERVE" --listen "127.0.0.1:$port" "$@" 2>>"$err" &
    SPID=$!
    wait_up "http://127.0.0.1:$port/hello" "$SPID" ||
        { echo "bench_endurance: coserve did not start:" >&2; cat "$err" >&2; exit 1; }
    # every worker up (wait_up saw one)
    sleep 1
}

stop_coserve() { stop_tree "$SPID" TERM; SPID=''; }

start_nginx() { # $1 = port, $2 = workers, $3 = connections per worker
    rm -rf "$T/nginx"
    mkdir -p "$T/nginx"
    cat >"$T/nginx/nginx.conf" <<EOF
worker_processes $2;
daemon off;
master_process on;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
worker_rlimit_nofile $NOFILE;
events {
    worker_connections $3;
}
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 3600s;
    default_type text/plain;
    client_body_temp_path $T/nginx/body;
    proxy_temp_path $T/nginx/proxy;
    fastcgi_temp_path $T/nginx/fastcgi;
    uwsgi_temp_path $T/nginx/uwsgi;
    scgi_temp_path $T/nginx/scgi;
    server {
        listen 127.0.0.1:$1 backlog=4096;
        location = /hello {
            return 200 "Hello, World!\n";
        }
    }
}
EOF
    taskset -c $SERVER_CPU nginx -e "$T/nginx/error.log" -p "$T/nginx" \
        -c "$T/nginx/nginx.conf" 2>>"$T/nginx.stderr" &
    NGPID=$!
    wait_up "http://127.0.0.1:$1/hello" "$NGPID" || {
        echo "bench_endurance: nginx did not start:" >&2
        cat "$T/nginx.stderr" "$T/nginx/error.log" >&2 2>/dev/null
        exit 1
    }
    i=0
    while [ "$(pgrep -P "$NGPID" | wc -l)" -lt "$2" ] && [ $i -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    sleep 0.5
}

stop_nginx() { stop_tree "$NGPID" QUIT; NGPID=''; }

stop_clients() {
    for p in $CLPIDS; do kill "$p" 2>/dev/null; done
    for p in $CLPIDS; do wait "$p" 2>/dev/null; done
    CLPIDS=''
}

# Sums the holdconns status files $T/st.$1.* -> "open ready connects closed
# errors r408 r200" (ready = how many clients are ready).
client_status() {
    cat "$T"/st."$1".* 2>/dev/null |
        awk '{ o += $2; r += $4; c += $6; cl += $8; e += $10; t += $12; ok += $14 }
             END { printf "%d %d %d %d %d %d %d\n", o, r, c, cl, e, t, ok }'
}

# ---------------------------------------------------------------- idle

# 100,000 idle connections against one server: $1 = label, $2 = main pid,
# $3 = port, $4 = workers. Writes $T/idle.$1 = "before after per_conn
# open_s closed lat_before lat_after conns_per_worker".
idle_run() {
    label=$1 pid=$2 port=$3
    url=http://127.0.0.1:$port/hello
    taskset -c $CLIENT_CPU wrk -t1 -c10 -d1s "$url" >/dev/null 2>&1
    latency "$label.without" "$url"
    sleep 1
    before=$(rss_kib "$pid")
    fds_before=$(for p in $(pgrep -P "$pid"); do nfds "$p"; done | tr '\n' ' ')
    rm -f "$T"/st."$label".*
    t0=$(date +%s.%N)
    i=0 left=$IDLE_N
    while [ "$left" -gt 0 ]; do
        n=$(( left < CL_PER ? left : CL_PER ))
        a=$((2 + i * 4))
        taskset -c $CLIENT_CPU "$HOLD" idle 127.0.0.1 "$port" "$n" \
            -s "127.0.0.$a,127.0.0.$((a + 1)),127.0.0.$((a + 2)),127.0.0.$((a + 3))" \
            -o "$T/st.$label.$i" >/dev/null 2>>"$T/hold.err" &
        CLPIDS="$CLPIDS $!"
        left=$((left - n))
        i=$((i + 1))
    done
    nclients=$i
    i=0
    while [ $i -lt 1800 ]; do
        set -- $(client_status "$label")
        [ "$2" -ge "$nclients" ] && break
        sleep 0.1
        i=$((i + 1))
    done
    t1=$(date +%s.%N)
    set -- $(client_status "$label")
    echo "  $label: $1 open after $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s" \
        "(connects $3, closed by the server $4, connect errors $5)" >&2
    sleep 2
    after=$(rss_kib "$pid")
    per_worker=$(for p in $(pgrep -P "$pid"); do nfds "$p"; done | tr '\n' ' ')
    latency "$label.with" "$url"
    set -- $(client_status "$label")
    open=$1 closed=$4
    stop_clients
    awk -v b="$before" -v a="$after" -v n="$IDLE_N" -v t0="$t0" -v t1="$t1" -v o="$open" \
        -v cl="$closed" -v pw="$per_worker" -v fb="$fds_before" 'BEGIN {
        printf "%d %d %.3f %.1f %d %d %s|%s\n", b, a, (a - b) / n, t1 - t0, o, cl, fb, pw }' \
        >"$T/idle.$label"
}

part_idle() {
    # workers: each under its fd limit, with room for an uneven spread
    W=$(( (IDLE_N * 5 / 4 + PER_PROC - 1) / PER_PROC ))
    [ "$W" -lt 1 ] && W=1
    # clients: each under the fd limit, with 4 source addresses (the
    # kernel's search for a free port slows down as an address fills)
    CL_PER=$PER_PROC
    [ "$CL_PER" -gt 60000 ] && CL_PER=60000
    NCL=$(( (IDLE_N + CL_PER - 1) / CL_PER ))
    CL_PER=$(( (IDLE_N + NCL - 1) / NCL ))
    # A worker at its cap would evict the oldest idle connection for a new
    # one (the slowloris defence): the cap is the fd limit, so a full
    # worker stops accepting (EMFILE, 100 ms pauses) and the others take
    # the rest, as nginx's workers do at worker_connections.
    CAP=$((IDLE_N + 1000))
    IDLE_ARGS="--apps $T/apps.hello --www off --access-log off --log-level warn --workers $W
               --max-connections $CAP --keepalive-timeout 3600s"
    say "== $IDLE_N idle kept-alive connections =="
    say "fd limit per process: $NOFILE (hard limit $(ulimit -Hn); fs.nr_open $(cat /proc/sys/fs/nr_open))"
    say "coserve: taskset -c $SERVER_CPU coserve --listen 127.0.0.1:\$PORT" $IDLE_ARGS
    say "nginx:   taskset -c $SERVER_CPU nginx (worker_processes $W; worker_connections $PER_PROC; worker_rlimit_nofile $NOFILE; keepalive_timeout 3600s; access_log off; return 200)"
    say "clients: taskset -c $CLIENT_CPU holdconns idle 127.0.0.1 \$PORT N -s 127.0.0.A,...  (up to $CL_PER per process, 4 source addresses each, 127.0.0.2 on; one keep-alive GET /hello each, then silent)"
    say "latency: taskset -c $CLIENT_CPU wrk -t1 -c10 -d$DUR --latency http://127.0.0.1:\$PORT/hello (without, then with the idle connections open)"
    say "load average before: $(load)"
    PORT=$(free_port)
    # shellcheck disable=SC2086
    start_coserve "$PORT" "$T/coserve.idle.stderr" $IDLE_ARGS
    idle_run coserve "$SPID" "$PORT"
    stop_coserve
    PORT=$(free_port)
    start_nginx "$PORT" "$W" "$PER_PROC"
    idle_run nginx "$NGPID" "$PORT"
    stop_nginx
    {
        echo "load average after: $(load)"
        echo
        fmt="%-8s %9s %9s %9s %8s %8s | %-26s | %-26s\n"
        printf "$fmt" server "RSS KiB" "RSS KiB" "KiB per" "open" "open" "/hello without: p50/p99/max" "with $IDLE_N open: p50/p99/max"
        printf "$fmt" "" before after conn "in (s)" "at end" "ms (req/s)" "ms (req/s)"
        for s in coserve nginx; do
            set -- $(cat "$T/idle.$s" 2>/dev/null || echo "0 0 0 0 0 0 -")
            b=$1 a=$2 k=$3 secs=$4 open=$5 closed=$6
            set -- $(cat "$T/lat.$s.without" 2>/dev/null || echo "0 0 0 0 0 -")
            wo="$2/$3/$4 ($1)"
            e1=$6
            set -- $(cat "$T/lat.$s.with" 2>/dev/null || echo "0 0 0 0 0 -")
            wi="$2/$3/$4 ($1)"
            e2=$6
            printf "$fmt" "$s" "$b" "$a" "$k" "$secs" "$open" "$wo" "$wi"
            [ "$closed" = 0 ] || echo "  $s closed $closed idle connections"
            [ "$e1$e2" = "--" ] || echo "  $s wrk errors: without $e1, with $e2"
        done
        awk '{ print $3 }' "$T/idle.coserve" "$T/idle.nginx" 2>/dev/null | paste -sd' ' - |
            awk '$2 > 0 { printf "memory per idle connection, coserve / nginx: %.2f\n", $1 / $2 }'
        for s in coserve nginx; do
            echo "$s fds per worker, before | with the connections: $(cut -d' ' -f7- "$T/idle.$s" 2>/dev/null)"
        done
        log_kinds "$T/coserve.idle.stderr"
        if [ -s "$T/nginx/error.log" ]; then
            echo "nginx error log ($(wc -l <"$T/nginx/error.log") lines, first 3):"
            head -n 3 "$T/nginx/error.log" | sed 's/^/  /'
        fi
        [ -s "$T/hold.err" ] && { echo "holdconns stderr:"; head -n 5 "$T/hold.err" | sed 's/^/  /'; }
        echo
    } | tee -a "$T/report"
}

# ---------------------------------------------------------------- slowloris

# New clients, one connection each, every 0.2 s for $1 seconds: writes
# "code seconds" lines to $2.
probe_new() {
    n=$(( $1 * 5 ))
    i=0
    while [ $i -lt "$n" ]; do
        taskset -c $CLIENT_CPU curl -s -o /dev/null --max-time 5 \
            -w '%{http_code} %{time_total}\n' "$3" >>"$2" 2>/dev/null || echo "000 5" >>"$2"
        sleep 0.2
        i=$((i + 1))
    done
}

part_slow() {
    SLOW_ARGS="--apps $T/apps.hello --www off --access-log off --log-level warn --workers 1"
    say "== $SLOW_N slowloris clients =="
    say "coserve: taskset -c $SERVER_CPU coserve --listen 127.0.0.1:\$PORT $SLOW_ARGS  (--max-connections 10000, --header-timeout 10s: the defaults)"
    say "clients: taskset -c $CLIENT_CPU holdconns slow 127.0.0.1 \$PORT $SLOW_N -R -i 1000  (part of a head, then a byte a second; reconnect when closed)"
    say "latency: taskset -c $CLIENT_CPU wrk -t1 -c10 -d$DUR --latency /hello; new clients: a curl (new connection, --max-time 5) every 0.2 s during the wrk run"
    say "load average before: $(load)"
    PORT=$(free_port)
    url=http://127.0.0.1:$PORT/hello
    # shellcheck disable=SC2086
    start_coserve "$PORT" "$T/coserve.slow.stderr" $SLOW_ARGS
    worker=$(pgrep -P "$SPID" | head -n 1)
    taskset -c $CLIENT_CPU wrk -t1 -c10 -d1s "$url" >/dev/null 2>&1
    latency slow.without "$url"
    sleep 1
    base=$(one_rss "$worker")
    rm -f "$T"/st.slow.*
    taskset -c $CLIENT_CPU "$HOLD" slow 127.0.0.1 "$PORT" "$SLOW_N" -R -i 1000 \
        -o "$T/st.slow.0" >/dev/null 2>>"$T/hold.err" &
    CLPIDS=$!
    # sample the worker's RSS every second from here on
    (while :; do one_rss "$worker"; sleep 1; done >"$T/slow.rss") &
    BGPIDS=$!
    i=0
    while [ $i -lt 600 ]; do
        set -- $(client_status slow)
        [ "$2" -ge 1 ] && break
        sleep 0.1
        i=$((i + 1))
    done
    sleep 1
    set -- $(client_status slow)
    echo "  $1 slow clients open after $((i / 10 + 1)) s" >&2
    : >"$T/probe"
    secs=${DUR%s}
    probe_new "$secs" "$T/probe" "$url" &
    PRPID=$!
    latency slow.with "$url"
    wait "$PRPID"
    set -- $(client_status slow)
    s_open=$1 s_conn=$2 s_conns=$3 s_closed=$4 s_err=$5 s_408=$6
    # Keep them on until the header timeout has cycled once at least.
    sleep 5
    peak=$(sort -n "$T/slow.rss" | tail -n 1)
    set -- $(client_status slow)
    s_conns=$3 s_closed=$4 s_err=$5 s_408=$6
    stop_clients
    kill "$BGPIDS" 2>/dev/null
    wait "$BGPIDS" 2>/dev/null
    BGPIDS=''
    sleep 10
    after10=$(one_rss "$worker")
    fds10=$(nfds "$worker")
    latency slow.after "$url"
    alive=yes
    kill -0 "$worker" 2>/dev/null || alive=no
    stop_coserve
    evict_lines=$(grep -c 'at --max-connections' "$T/coserve.slow.stderr")
    {
        echo "load average after: $(load)"
        echo
        fmt="%-34s %9s %9s %9s %9s %s\n"
        printf "$fmt" "/hello, wrk -c10" "p50 ms" "p99 ms" "max ms" "req/s" "errors"
        for r in without with after; do
            set -- $(cat "$T/lat.slow.$r")
            case $r in
                without) l="no slow clients" ;;
                with) l="$SLOW_N slow clients connected" ;;
                after) l="10 s after they left" ;;
            esac
            printf "$fmt" "$l" "$2" "$3" "$4" "$1" "$6"
        done
        sort -k2,2n "$T/probe" | awk '{ n++; if ($1 == 200) { ok++; t[ok] = $2 } }
             END { printf "new clients while they were connected: %d of %d served (200)", ok, n
                   if (ok) printf ", time p50 %.1f ms, max %.1f ms", t[int((ok + 1) / 2)] * 1000, t[ok] * 1000
                   print "" }'
        echo "slow clients: $s_open open during the run; $s_conns connects in all, $s_408 answered 408 (evicted or header timeout), $s_closed closed by the server, $s_err connect errors"
        echo "worker RSS: $base KiB before, $peak KiB at the peak, $after10 KiB 10 s after they left ($fds10 fds); worker alive: $alive"
        echo "eviction reports in the server log (one a second at most): $evict_lines"
        log_kinds "$T/coserve.slow.stderr"
        echo
    } | tee -a "$T/report"
}

# ---------------------------------------------------------------- soak

part_soak() {
    S=$((SOAK_MIN * 60))
    mkdir -p "$T/soak/var" "$T/apps.soak"
    # copies, not links: a rebuild of build/apps during the soak must not
    # reach the workers a reload starts
    for a in hello echo sleep notes; do cp "$APPS/$a.so" "$T/apps.soak/$a.so"; done
    SOAK_ARGS="--apps $T/apps.soak --www $WWW --access-log /dev/null --log-level warn --workers 2"
    # Lua scripts: each caps its own rate with delay() so the soak is long,
    # not a saturation run.
    cat >"$T/echo.lua" <<'EOF'
wrk.method = "POST"
wrk.body = string.rep("0123456789abcdef", 128)
wrk.headers["Content-Type"] = "application/octet-stream"
function delay() return 5 end
EOF
    cat >"$T/static.lua" <<'EOF'
local paths = { "/", "/index.html", "/notes.html", "/notes.css", "/notes.js", "/missing.txt" }
local i = 0
request = function()
    i = i % #paths + 1
    if i == 3 then
        return wrk.format("GET", paths[i], { ["Range"] = "bytes=0-99" })
    end
    return wrk.format("GET", paths[i])
end
function delay() return 5 end
EOF
    cat >"$T/notes.lua" <<'EOF'
local i = 0
request = function()
    i = i + 1
    if i % 3 == 0 then
        return wrk.format("POST", "/notes", { ["Content-Type"] = "application/json" },
                          '{"text":"soak note ' .. i .. ', some words to search for"}')
    elseif i % 3 == 1 then
        return wrk.format("GET", "/notes?limit=20")
    end
    return wrk.format("GET", "/notes/" .. math.random(1, 50))
end
function delay() return 20 end
EOF
    cat >"$T/hello.lua" <<'EOF'
function delay() return 2 end
EOF
    cat >"$T/close.lua" <<'EOF'
wrk.headers["Connection"] = "close"
function delay() return 10 end
EOF
    say "== mixed soak, $SOAK_MIN minutes =="
    say "coserve: cd var/.. && taskset -c $SERVER_CPU coserve --listen 127.0.0.1:\$PORT $SOAK_ARGS  (apps: hello echo sleep notes)"
    say "load (each taskset -c $CLIENT_CPU wrk -t1 -d${S}s --timeout 10s; delay() in ms between requests on a connection):"
    say "  /hello -c20 delay 2 | POST /echo 2 KiB -c10 delay 5 | /sleep?ms=50 -c50 | static files (www/, one Range, one 404) -c10 delay 5"
    say "  notes -c4 delay 20 (POST /notes, GET /notes?limit=20, GET /notes/ID) | /hello with Connection: close -c4 delay 10"
    say "  slowloris trickle: holdconns slow 127.0.0.1 \$PORT 200 -R -i 2000"
    say "  kill -HUP master every ${HUP_EVERY}s (0: never); RSS (VmRSS) and fds (/proc/PID/fd) of master and workers every ${SAMPLE_EVERY}s"
    say "load average before: $(load)"
    PORT=$(free_port)
    base=http://127.0.0.1:$PORT
    # notes keeps its database in var/ of the cwd
    # shellcheck disable=SC2086
    (cd "$T/soak" && exec taskset -c $SERVER_CPU "$COSERVE" --listen "127.0.0.1:$PORT" $SOAK_ARGS \
        2>>"$T/coserve.soak.stderr") &
    SPID=$!
    wait_up "$base/hello" "$SPID" ||
        { echo "bench_endurance: coserve did not start:" >&2; cat "$T/coserve.soak.stderr" >&2; exit 1; }
    sleep 1
    # a few notes for GET /notes/ID
    i=0
    while [ $i -lt 50 ]; do
        curl -s -o /dev/null -H 'Content-Type: application/json' -d '{"text":"seed"}' "$base/notes"
        i=$((i + 1))
    done
    w() { # $1 = name, rest = wrk arguments
        n=$1
        shift
        taskset -c $CLIENT_CPU wrk -t1 -d"${S}s" --timeout 10s --latency "$@" >"$T/soak.$n" 2>&1 &
        BGPIDS="$BGPIDS $!"
    }
    w hello -c20 -s "$T/hello.lua" "$base/hello"
    w echo -c10 -s "$T/echo.lua" "$base/echo"
    w sleep -c50 "$base/sleep?ms=50"
    w static -c10 -s "$T/static.lua" "$base/"
    w notes -c4 -s "$T/notes.lua" "$base/"
    w close -c4 -s "$T/close.lua" "$base/hello"
    taskset -c $CLIENT_CPU "$HOLD" slow 127.0.0.1 "$PORT" 200 -R -i 2000 \
        -o "$T/st.soak.0" >/dev/null 2>>"$T/hold.err" &
    CLPIDS=$!
    echo "t role pid rss_kib fds load1" >"$CSV"
    t0=$(date +%s)
    next_hup=$HUP_EVERY hups=0
    while :; do
        now=$(( $(date +%s) - t0 ))
        [ "$now" -gt "$S" ] && break
        l1=$(cut -d' ' -f1 /proc/loadavg)
        echo "$now master $SPID $(one_rss "$SPID") $(nfds "$SPID") $l1" >>"$CSV"
        for p in $(pgrep -P "$SPID"); do
            echo "$now worker $p $(one_rss "$p") $(nfds "$p") $l1" >>"$CSV"
        done
        if [ "$HUP_EVERY" -gt 0 ] && [ "$now" -ge "$next_hup" ] && [ "$now" -lt "$S" ]; then
            kill -HUP "$SPID"
            hups=$((hups + 1))
            next_hup=$((next_hup + HUP_EVERY))
            echo "$now hup $SPID 0 0 $l1" >>"$CSV"
        fi
        [ $((now % 60)) -lt "$SAMPLE_EVERY" ] &&
            echo "  soak ${now}s: $(pgrep -P "$SPID" | wc -l) workers, master $(one_rss "$SPID") KiB $(nfds "$SPID") fds, load $l1" >&2
        sleep "$SAMPLE_EVERY"
    done
    for p in $BGPIDS; do wait "$p" 2>/dev/null; done
    BGPIDS=''
    set -- $(client_status soak)
    s_conns=$3 s_408=$6
    stop_clients
    # 30 s after the load: the pools trimmed
    sleep 30
    now=$(( $(date +%s) - t0 ))
    l1=$(cut -d' ' -f1 /proc/loadavg)
    echo "$now master $SPID $(one_rss "$SPID") $(nfds "$SPID") $l1" >>"$CSV"
    for p in $(pgrep -P "$SPID"); do
        echo "$now worker $p $(one_rss "$p") $(nfds "$p") $l1 idle" >>"$CSV"
    done
    alive=yes
    kill -0 "$SPID" 2>/dev/null || alive=no
    stop_coserve
    {
        echo "load average after: $(load) (1-min load during the soak: $(awk 'NR > 1 { print $6 }' "$CSV" |
            sort -n | awk '{ a[NR] = $1 } END { printf "%s-%s, median %s", a[1], a[NR], a[int((NR + 1) / 2)] }'))"
        echo
        fmt="%-14s %8s %8s %9s %8s %8s | %s\n"
        printf "$fmt" stream requests "req/s" "p50 ms" "p99 ms" "max ms" "errors (static: 1 in 6 is a 404 by design)"
        for n in hello echo sleep static notes close; do
            set -- $(wrk_summary "$T/soak.$n")
            printf "$fmt" "$n" "$5" "$1" "$2" "$3" "$4" "$6"
        done
        echo "slowloris trickle: $s_conns connects, $s_408 answered 408; $hups HUP reloads; server alive at the end: $alive"
        echo
        # per role: first/last/max of RSS and fds; workers: the largest
        # worker of each sample; the slope over the last 10 minutes of the
        # load (least squares), and the workers' values in the last sample
        # before each reload (each generation's end).
        awk -v S="$S" -v hup="$HUP_EVERY" '
            NR == 1 { next }
            $2 == "hup" { if (nt["worker"]) gen_end[++ng] = ts["worker", nt["worker"]]; next }
            $7 == "idle" { if ($4 > irss) irss = $4; if ($5 > ifd) ifd = $5; next }
            $2 == "master" && $1 > S { mrss_idle = $4; mfd_idle = $5; next }
            $2 == "master" { k = "master"; t = $1; rss[k, t] = $4; fd[k, t] = $5; ts[k, ++nt[k]] = t }
            $2 == "worker" { k = "worker"; t = $1
                if (!((k, t) in rss)) ts[k, ++nt[k]] = t
                if ($4 > rss[k, t]) rss[k, t] = $4
                if ($5 > fd[k, t]) fd[k, t] = $5
                cnt[t]++ }
            function slope(k, what,    i, t, v, n, sx, sy, sxx, sxy) {
                n = 0
                for (i = 1; i <= nt[k]; i++) {
                    t = ts[k, i]
                    if (t < S - 600) continue
                    v = what == "rss" ? rss[k, t] : fd[k, t]
                    n++; sx += t; sy += v; sxx += t * t; sxy += t * v
                }
                if (n < 3 || n * sxx - sx * sx == 0) return 0
                return (n * sxy - sx * sy) / (n * sxx - sx * sx) * 60
            }
            END {
                printf "%-7s | %-32s | %-24s | %s\n", "process", "RSS KiB first / last / max", "fds first / last / max", "last 10 min: RSS KiB/min, fds/min"
                for (r = 1; r <= 2; r++) {
                    k = r == 1 ? "master" : "worker"
                    first = ts[k, 1]; last = ts[k, nt[k]]
                    mr = 0; mf = 0
                    for (i = 1; i <= nt[k]; i++) { t = ts[k, i]; if (rss[k, t] > mr) mr = rss[k, t]; if (fd[k, t] > mf) mf = fd[k, t] }
                    sr = slope(k, "rss"); sf = slope(k, "fd")
                    flat = (sr * 10 <= 0.02 * mr || sr * 10 <= 512) && sf * 10 < 1
                    printf "%-7s | %9d / %9d / %9d | %6d / %6d / %6d | %+.1f, %+.2f  %s\n", k, rss[k, first], rss[k, last], mr,
                        fd[k, first], fd[k, last], mf, sr, sf, flat ? "flat" : "GROWING"
                }
                printf "(worker: the largest live worker of each sample; a reload starts fresh workers)\n"
                printf "30 s after the load stopped: master %d KiB %d fds; workers at most %d KiB %d fds\n", mrss_idle, mfd_idle, irss, ifd
                if (hup <= 0) exit
                printf "workers at the end of each generation (the sample before each reload, then the last; KiB/fds):"
                gen_end[++ng] = ts["worker", nt["worker"]]
                for (i = 1; i <= ng; i++)
                    printf " %d/%d", rss["worker", gen_end[i]], fd["worker", gen_end[i]]
                print ""
            }' "$CSV"
        log_kinds "$T/coserve.soak.stderr"
        echo "samples: ${CSV#"$ROOT"/}"
        echo
    } | tee -a "$T/report"
}

# ---------------------------------------------------------------- run

say "coserve endurance benchmark — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
say "machine: nproc=$(nproc) arch=$(uname -m) kernel=$(uname -r) cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
say "parts: $PARTS; servers on core $SERVER_CPU, clients on core $CLIENT_CPU"
say ""
mkdir -p "$T/apps.hello"
cp "$APPS/hello.so" "$T/apps.hello/hello.so"
cp "$COSERVE" "$T/coserve" && COSERVE=$T/coserve
for part in $PARTS; do
    case $part in
        idle) part_idle ;;
        slow) part_slow ;;
        soak) part_soak ;;
        *) echo "bench_endurance: unknown part $part" >&2; exit 2 ;;
    esac
done
for f in "$T"/coserve.*.stderr; do [ -f "$f" ] && cp "$f" "$ROOT/build/bench/endurance-${f##*/}"; done
cp "$T/report" "$OUT"
echo "(written to ${OUT#"$ROOT"/})"
