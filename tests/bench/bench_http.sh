#!/bin/sh
# HTTP benchmark: coserve vs nginx on GET /hello ("Hello, World!\n"), and
# how far coserve is from the floor: build/bench-floor (tests/bench/floor.c),
# a raw epoll responder on one thread that makes the system calls a server
# cannot avoid (one recv per readable socket, one send per batch of answers,
# epoll_wait) with no HTTP parser and no coroutines, and answers with
# coserve's exact bytes. What it costs per request is the kernel's and a bare
# loop's share on this machine in this run; the rest of coserve's is its own.
#
#   sh tests/bench/bench_http.sh        (what `make bench` runs)
#
# All three servers pinned to core 0, wrk pinned to core 1; the scenarios
# rotate between the servers, and only the one wrk aims at carries load.
# Scenarios: 100 and 1,000 keep-alive connections, and 100 connections
# pipelining 16 requests per write. For each: req/s, p50/p99 latency, and the
# server's CPU time (utime+stime of all its processes) per completed request,
# with issue 14's target for the ratio to nginx (PASS/FAIL), and the floor's
# CPU per request with coserve's as a multiple of it (cs/floor). Large bodies at
# 10 connections: POST /echo of 1 MiB (nginx: the echo module's
# echo_request_body) and GET of a 100 MiB static file (both sendfile): MB/s
# and CPU per MB (coserve and nginx only). The waiting path: 1,000
# connections on /sleep?ms=1000 (coserve and the floor alternating, not
# nginx), CPU per request and requests/s over steady 10 s windows, one per
# round (responses counted as the data segments its sockets sent, ss -i):
# the median window's CPU, the lowest window's rate, and coserve's distance
# from the floor in µs.
# Then idle keep-alive memory: RSS growth per connection with 10,000 idle
# keep-alive connections open. Results also go to build/bench/http.txt, and
# a markdown copy to build/bench/http.md (scripts/readme_perf.sh puts it in
# the README).
#
# Each scenario runs BENCH_ROUNDS times on each server, the order of the
# three rotated every round (coserve and nginx alone, where the floor does
# not run, still alternate); its line shows the round with the median
# coserve/nginx CPU ratio, and the verdict is that median: single 10 s runs
# on this VM moved a ratio by up to 0.2 between runs minutes apart. The
# floor's figures and cs/floor on that line are from the same round.
#
# Environment knobs: BENCH_DURATION (5s per run), BENCH_ROUNDS (3),
# BENCH_IDLE_CONNS (10000).
# Needs: wrk, nginx, python3, taskset, curl; 2+ cores.
set -u

cd "$(dirname "$0")/../.." || exit 1
ROOT=$(pwd)
COSERVE=$ROOT/build/coserve
FLOOR=$ROOT/build/bench-floor
APPS=$ROOT/build/apps
WWW=$ROOT/www
OUT=$ROOT/build/bench/http.txt
DUR=${BENCH_DURATION:-5s}
ROUNDS=${BENCH_ROUNDS:-3}
IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
SERVER_CPU=0
CLIENT_CPU=1

. "$(dirname "$0")/lib.sh"
bench_preflight bench_http wrk nginx python3 taskset curl awk
[ -x "$FLOOR" ] || { echo "bench_http: $FLOOR missing (make build/bench-floor)" >&2; exit 1; }

# File descriptors: 65536 if allowed, else whatever the hard limit is.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)

T=$(mktemp -d /tmp/bench_http.XXXXXX)
chmod 755 "$T" # nginx's workers (nobody) read the static file in it
SPID='' NGPID='' FLPID='' CLPID=''
cleanup() {
    [ -n "$CLPID" ] && kill "$CLPID" 2>/dev/null
    stop_tree "$SPID" TERM
    stop_tree "$NGPID" QUIT
    stop_tree "$FLPID" TERM
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

mkdir -p "$ROOT/build/bench"
: >"$T/report"
say() { printf '%s\n' "$*" | tee -a "$T/report"; }

# The server's processes: the main pid (master, or coserve's only process)
# and its children (the workers). Threads are counted in /proc/PID/stat.
server_pids() { # $1 = main pid
    echo "$1"
    pgrep -P "$1"
}


rss_kib() { # $1 = main pid -> VmRSS of all its processes, KiB
    for p in $(server_pids "$1"); do
        cat /proc/"$p"/status 2>/dev/null
    done | awk '/^VmRSS:/ { s += $2 } END { print s + 0 }'
}

CLK_TCK=$(getconf CLK_TCK)

# Busy ticks of the server's core (everything but idle and iowait), to tell
# how much of it went to other processes during a run.
core_busy() {
    awk -v c="cpu$SERVER_CPU" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
}

# ---------------------------------------------------------------- servers

# One worker, like nginx's worker_processes 1 (if this coserve has workers).
CS_WORKERS=''
"$COSERVE" --help 2>&1 | grep -q -- '--workers' && CS_WORKERS='--workers 1'
# Only the hello app: another app in build/apps failing its init (or slowing
# the router) must not skew this benchmark.
mkdir -p "$T/apps" "$T/www"
for a in hello sleep echo; do ln -s "$APPS/$a.so" "$T/apps/$a.so"; done
# the large static file both servers send (sparse: no disk needed)
BIG_MB=100
truncate -s ${BIG_MB}M "$T/www/big.bin"
WWW=$T/www
CS_ARGS="--apps $T/apps --www $WWW --access-log off --log-level warn $CS_WORKERS --max-connections $((IDLE_CONNS + 1000))"
COSERVE_CMD="taskset -c $SERVER_CPU $COSERVE --listen 127.0.0.1:\$PORT $CS_ARGS"

start_coserve() { # $1 = port, $2 = stderr file
    # shellcheck disable=SC2086
    taskset -c $SERVER_CPU "$COSERVE" --listen "127.0.0.1:$1" $CS_ARGS 2>>"$2" &
    SPID=$!
    wait_up "http://127.0.0.1:$1/hello" "$SPID" || { echo "bench_http: coserve did not start:" >&2; cat "$2" >&2; exit 1; }
}

stop_coserve() {
    stop_tree "$SPID" TERM
    SPID=''
}

NGINX_CMD="taskset -c $SERVER_CPU nginx -e $T/nginx/error.log -p $T/nginx -c $T/nginx/nginx.conf"

start_nginx() { # $1 = port
    rm -rf "$T/nginx"
    mkdir -p "$T/nginx"
    worker_conns=$((IDLE_CONNS + 1000))
    cat >"$T/nginx/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
worker_processes 1;
daemon off;
master_process on;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
worker_rlimit_nofile $NOFILE;
events {
    worker_connections $worker_conns;
}
http {
    access_log off;
    keepalive_requests 1000000;
    default_type text/plain;
    client_body_temp_path $T/nginx/body;
    proxy_temp_path $T/nginx/proxy;
    fastcgi_temp_path $T/nginx/fastcgi;
    uwsgi_temp_path $T/nginx/uwsgi;
    scgi_temp_path $T/nginx/scgi;
    sendfile on;
    server {
        listen 127.0.0.1:$1;
        root $WWW;
        location = /hello {
            return 200 "Hello, World!\n";
        }
        location = /echo {
            client_max_body_size 2m;
            client_body_buffer_size 2m;
            echo_read_request_body;
            echo_request_body;
        }
    }
}
EOF
    taskset -c $SERVER_CPU nginx -e "$T/nginx/error.log" -p "$T/nginx" \
        -c "$T/nginx/nginx.conf" 2>>"$T/nginx.stderr" &
    NGPID=$!
    wait_up "http://127.0.0.1:$1/hello" "$NGPID" || {
        echo "bench_http: nginx did not start:" >&2
        cat "$T/nginx.stderr" "$T/nginx/error.log" >&2 2>/dev/null
        exit 1
    }
    # The worker forks a moment after the master listens; wait for it.
    i=0
    while [ -z "$(pgrep -P "$NGPID")" ] && [ $i -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
}

stop_nginx() {
    stop_tree "$NGPID" QUIT
    NGPID=''
}

# The floor answers every head as coserve answers /hello (or /sleep?ms=N):
# only the /hello scenarios and the waiting path are aimed at it.
FLOOR_CMD="taskset -c $SERVER_CPU $FLOOR \$PORT"

start_floor() { # $1 = port
    taskset -c $SERVER_CPU "$FLOOR" "$1" 2>>"$T/floor.stderr" &
    FLPID=$!
    wait_up "http://127.0.0.1:$1/hello" "$FLPID" || {
        echo "bench_http: the floor did not start:" >&2
        cat "$T/floor.stderr" >&2
        exit 1
    }
}

stop_floor() {
    stop_tree "$FLPID" TERM
    FLPID=''
}

# ---------------------------------------------------------------- wrk

cat >"$T/pipeline.lua" <<'EOF'
-- 16 pipelined GETs per write; wrk counts each response.
init = function(args)
    local r = {}
    for i = 1, 16 do
        r[i] = wrk.format(nil, wrk.path)
    end
    req = table.concat(r)
end

request = function()
    return req
end
EOF

# POST /echo with a 1 MiB body.
python3 -c 'print("a" * (1 << 20), end="")' >"$T/body.bin"
cat >"$T/post1m.lua" <<EOF
local f = io.open("$T/body.bin", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/octet-stream"
EOF

# Scenarios: name:connections:script:path:target:body. script: pipe (16
# pipelined GETs), post (1 MiB POST) or none; target: the most CPU per
# request coserve may spend, as a ratio to nginx's (issue 14), or "-";
# body: the response body's bytes, for MB/s and CPU per MB ("-": none).
SCENARIOS="c100:100:none:/hello:0.9:- c1000:1000:none:/hello:0.8:-
c100-pipelined16:100:pipe:/hello:0.3:- echo-1MiB-c10:10:post:/echo:-:1048576
file-100MiB-c10:10:none:/big.bin:-:$((BIG_MB * 1048576))"

sc_extra() { # $1 = script -> extra wrk args
    case "${1:-}" in
    pipe) echo "-s $T/pipeline.lua" ;;
    post) echo "-s $T/post1m.lua" ;;
    esac
}

wrk_cmd() { # $1 = conns, $2 = extra, $3 = url
    echo "taskset -c $CLIENT_CPU wrk -t1 -c$1 -d$DUR --timeout 10s --latency $2${2:+ }$3"
}

# One measured wrk run. $1 = server label, $2 = main pid, $3 = url,
# $4 = scenario name, $5 = connections, $6 = extra wrk args. Writes
# $T/res.<label>.<scenario> as "rps p50 p99 cpu_us_per_req requests errors";
# returns 1 if the server died.
run_one() {
    label=$1 pid=$2 url=$3 name=$4 conns=$5 extra=$6
    kids0=$(pgrep -P "$pid" | sort | tr '\n' ' ')
    before=$(cpu_ticks "$pid")
    busy0=$(core_busy)
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    taskset -c $CLIENT_CPU wrk -t1 -c"$conns" -d"$DUR" --timeout 10s --latency $extra "$url" \
        >"$T/wrk.$label.$name" 2>&1
    after=$(cpu_ticks "$pid")
    busy1=$(core_busy)
    t1=$(date +%s.%N)
    # Share of core 0 used by other processes while this run went on.
    awk -v b0="$busy0" -v b1="$busy1" -v s="$((after - before))" -v t0="$t0" -v t1="$t1" \
        -v hz="$CLK_TCK" -v l="$label $name" 'BEGIN {
            o = (b1 - b0 - s) / hz / (t1 - t0) * 100
            printf "%s %.0f%%\n", l, o < 0 ? 0 : o }' >>"$T/others"
    kids1=$(pgrep -P "$pid" | sort | tr '\n' ' ')
    alive=yes
    kill -0 "$pid" 2>/dev/null || alive=DEAD
    [ "$kids0" = "$kids1" ] || alive=worker-replaced
    awk -v b="$before" -v a="$after" -v hz="$CLK_TCK" -v alive="$alive" '
        / requests in / { n = $1 }
        /^Requests\/sec:/ { rps = $2 }
        /^ +50%/ { p50 = $2 }
        /^ +99%/ { p99 = $2 }
        # wrk sometimes prints a 0 percentile with pipelining: not a latency.
        /^ +(50|99)%/ && $2 ~ /^0(\.0+)?[um]?s$/ { if ($1 == "50%") p50 = "n/a"; else p99 = "n/a" }
        /Socket errors:/ { sub(/^ *Socket errors: */, ""); gsub(/ /, ""); err = err $0 ";" }
        /Non-2xx or 3xx/ { err = err "non2xx=" $NF ";" }
        END {
            if (alive != "yes") err = err "server:" alive ";"
            if (err == "") err = "-"
            cpu = (n > 0) ? (a - b) * 1e6 / hz / n : 0
            printf "%s %s %s %.2f %d %s\n", rps + 0, p50 ? p50 : "-", p99 ? p99 : "-", cpu, n, err
        }' "$T/wrk.$label.$name" >"$T/res.$label.$name"
    printf '  %-8s %-17s %s\n' "$label" "$name" "$(cat "$T/res.$label.$name")" >&2
    [ "$alive" != DEAD ]
}

# ---------------------------------------------------------------- waiting

# 1,000 connections each asking /sleep?ms=1000 in a loop: the cost of a
# request that waits (park, timer, wake) rather than of the request alone.
# wrk's own count would include its first second (no answer can come yet)
# and the 1,000 requests cut at its end, so the window is measured
# instead: CPU time of the server's processes, in ns from each thread's
# /proc/PID/task/TID/schedstat (at ~1% of a core, clock ticks are too
# coarse), and responses as the data segments the server's sockets sent
# (ss -i data_segs_out, summed over its kept-alive connections: one
# segment per response here, whatever call wrote it). Writes
# "cpu_us_per_req req_per_s" to $T/sleep.<label>.r<round>. The windows run
# BENCH_ROUNDS times, coserve and the floor alternating (one window moved
# by up to 15% between runs minutes apart), and the window with the median
# CPU per request stands for each (sleep_median).
SLEEP_WINDOW=10
cpu_ns() { # $1 = main pid -> ns on CPU of all its processes' threads
    { echo "$1"; pgrep -P "$1"; } | while read -r p; do
        cat /proc/"$p"/task/*/schedstat 2>/dev/null
    done | awk '{ s += $1 } END { printf "%.0f\n", s }'
}
segments_out() { # $1 = port -> data segments its connections sent so far
    ss -tniH state established "( sport = :$1 )" |
        grep -o 'data_segs_out:[0-9]*' | awk -F: '{ s += $2 } END { print s + 0 }'
}
sleep_window() { # $1 = label, $2 = main pid, $3 = base url, $4 = round
    label=$1 pid=$2 port=${3##*:} round=$4
    echo "  sleep ($label): 1000 connections, /sleep?ms=1000, ${SLEEP_WINDOW}s window" >&2
    taskset -c $CLIENT_CPU wrk -t1 -c1000 -d$((SLEEP_WINDOW + 8))s --timeout 5s \
        "$3/sleep?ms=1000" >"$T/wrk.$label.sleep" 2>&1 &
    wp=$!
    sleep 4
    c0=$(cpu_ns "$pid")
    w0=$(segments_out "$port")
    t0=$(date +%s.%N)
    sleep $SLEEP_WINDOW
    c1=$(cpu_ns "$pid")
    w1=$(segments_out "$port")
    t1=$(date +%s.%N)
    wait $wp
    awk -v c="$((c1 - c0))" -v n="$((w1 - w0))" -v t0="$t0" -v t1="$t1" \
        'BEGIN { printf "%.2f %.1f\n", (n > 0 ? c / 1e3 / n : 0), n / (t1 - t0) }' >"$T/sleep.$label.r$round"
    echo "  $label sleep $(cat "$T/sleep.$label.r$round")" >&2
}

# $1 = label: the median window (by CPU per request) to $T/sleep.<label>,
# every window's CPU per request to $T/sleep_all.<label>, and the lowest
# rate of any window to $T/sleep_min_rate.<label> (the rate's bar holds in
# every window, not in a typical one).
sleep_median() {
    cat "$T"/sleep."$1".r* 2>/dev/null | sort -n >"$T/sleep_sorted.$1"
    [ -s "$T/sleep_sorted.$1" ] || return 0
    k=$(( ($(wc -l <"$T/sleep_sorted.$1") + 1) / 2 ))
    sed -n "${k}p" "$T/sleep_sorted.$1" >"$T/sleep.$1"
    for f in "$T"/sleep."$1".r*; do awk '{ print $1 }' "$f"; done | paste -sd' ' - >"$T/sleep_all.$1"
    awk 'NR == 1 || $2 < m { m = $2 } END { print m }' "$T/sleep_sorted.$1" >"$T/sleep_min_rate.$1"
}

# ---------------------------------------------------------------- idle memory

cat >"$T/idle.py" <<'EOF'
# Open N keep-alive connections, one GET /hello on each, read the response,
# keep them all open; write the count to READY, then sleep until killed.
import socket, sys, time
host, port, n, ready = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
req = b"GET /hello HTTP/1.1\r\nHost: bench\r\nConnection: keep-alive\r\n\r\n"
socks = []
for i in range(n):
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(req)
    buf = b""
    while True:
        d = s.recv(4096)
        if not d:
            sys.exit("idle.py: connection %d closed early" % i)
        buf += d
        h = buf.find(b"\r\n\r\n")
        if h < 0:
            continue
        cl = 0
        for line in buf[:h].split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                cl = int(v)
        if len(buf) >= h + 4 + cl:
            break
    if not buf.startswith(b"HTTP/1.1 200"):
        sys.exit("idle.py: connection %d got %r" % (i, buf[:40]))
    socks.append(s)
with open(ready + ".tmp", "w") as f:
    f.write(str(len(socks)))
import os
os.rename(ready + ".tmp", ready)
while True:
    time.sleep(3600)
EOF

# $1 = label, $2 = main pid, $3 = port; writes "before_kib after_kib
# kib_per_conn" to $T/mem.$1 (not a $(...) subshell: CLPID must reach the trap).
idle_mem() {
    label=$1 pid=$2 port=$3
    rm -f "$T/ready"
    sleep 0.3
    before=$(rss_kib "$pid")
    taskset -c $CLIENT_CPU python3 "$T/idle.py" 127.0.0.1 "$port" "$IDLE_CONNS" "$T/ready" \
        2>"$T/idle.$label.err" &
    CLPID=$!
    i=0
    while [ ! -f "$T/ready" ] && kill -0 "$CLPID" 2>/dev/null && [ $i -lt 600 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if [ ! -f "$T/ready" ]; then
        echo "bench_http: idle client against $label failed: $(cat "$T/idle.$label.err")" >&2
        kill "$CLPID" 2>/dev/null
        wait "$CLPID" 2>/dev/null
        CLPID=
        echo "- - -" >"$T/mem.$label"
        return 1
    fi
    sleep 0.5
    after=$(rss_kib "$pid")
    kill "$CLPID" 2>/dev/null
    wait "$CLPID" 2>/dev/null
    CLPID=
    awk -v b="$before" -v a="$after" -v n="$IDLE_CONNS" \
        'BEGIN { printf "%d %d %.2f\n", b, a, (a - b) / n }' >"$T/mem.$label"
}

# ---------------------------------------------------------------- run

say "coserve HTTP benchmark — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
say "machine: nproc=$(nproc) arch=$(uname -m) kernel=$(uname -r) cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
say "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)  (other load on the box skews results)"
say "open-file limit: $NOFILE; CPU time from /proc/PID/stat utime+stime, CLK_TCK=$CLK_TCK"
say ""
say "commands:"
say "  coserve: $COSERVE_CMD   ($T/apps holds links to build/apps/hello.so, sleep.so and echo.so only)"
say "  nginx:   $NGINX_CMD   (1 worker, access_log off, keepalive_requests 1000000, worker_connections $((IDLE_CONNS + 1000)), worker_rlimit_nofile $NOFILE)"
say "  floor:   $FLOOR_CMD   (tests/bench/floor.c: one thread, level-triggered epoll, no HTTP parser; coserve's /hello and /sleep answers byte for byte; the /hello scenarios and the waiting path only)"
for sc in $SCENARIOS; do
    old_ifs=$IFS
    IFS=:
    set -- $sc
    IFS=$old_ifs
    name=$1 conns=$2 extra=$(sc_extra "$3")
    say "  $(printf '%-17s' "$name") $(wrk_cmd "$conns" "$extra" "http://127.0.0.1:\$PORT$4")"
done
say "  pipeline.lua: init builds 16 x wrk.format(nil, wrk.path) concatenated; request() returns them"
say "  post1m.lua: wrk.method = POST, wrk.body = 1 MiB of 'a'; nginx answers /echo with the echo module (echo_read_request_body; echo_request_body)"
say "  sleep ($ROUNDS windows each, coserve and the floor alternating): taskset -c $CLIENT_CPU wrk -t1 -c1000 -d$((SLEEP_WINDOW + 8))s --timeout 5s http://127.0.0.1:\$PORT/sleep?ms=1000; CPU and responses sampled over a ${SLEEP_WINDOW}s window starting 4 s in"
say "  idle memory:  taskset -c $CLIENT_CPU python3 idle.py 127.0.0.1 \$PORT $IDLE_CONNS  (one keep-alive GET each, then all held open; RSS = VmRSS summed over the server's processes)"
say ""

CS_ERR=$T/coserve.stderr
: >"$CS_ERR"

# All three servers run; the scenarios rotate between them (coserve,
# nginx, floor in round 1; nginx, floor, coserve in round 2; floor,
# coserve, nginx in round 3; and so on) so that drifting background load
# hits all alike. Where the floor does not run (not /hello) coserve and
# nginx still swap places every round. Only the one wrk is aimed at
# carries load.
echo "throughput runs ($DUR each, $ROUNDS rounds):" >&2
CS_PORT=$(free_port)
start_coserve "$CS_PORT" "$CS_ERR"
NG_PORT=$(free_port)
start_nginx "$NG_PORT"
FL_PORT=$(free_port)
start_floor "$FL_PORT"
CS_BASE=http://127.0.0.1:$CS_PORT
NG_BASE=http://127.0.0.1:$NG_PORT
FL_BASE=http://127.0.0.1:$FL_PORT
CS_URL=$CS_BASE/hello
NG_URL=$NG_BASE/hello
CS_RSS0=$(rss_kib "$SPID")
# Warm-up (not measured).
taskset -c $CLIENT_CPU wrk -t1 -c100 -d1s "$CS_URL" >/dev/null 2>&1
taskset -c $CLIENT_CPU wrk -t1 -c100 -d1s "$NG_URL" >/dev/null 2>&1
taskset -c $CLIENT_CPU wrk -t1 -c100 -d1s "$FL_BASE/hello" >/dev/null 2>&1
CS_ALIVE=0 FL_ALIVE=0
r=1
while [ $r -le "$ROUNDS" ]; do
    echo " round $r of $ROUNDS" >&2
    case $(((r - 1) % 3)) in
    0) order="coserve nginx floor" ;;
    1) order="nginx floor coserve" ;;
    *) order="floor coserve nginx" ;;
    esac
    for sc in $SCENARIOS; do
        old_ifs=$IFS
        IFS=:
        set -- $sc
        IFS=$old_ifs
        # (run_one sets name and label: these loops use other names)
        sc_run=$1.r$r sc_conns=$2 sc_extra=$(sc_extra "$3") sc_path=$4
        for who in $order; do
            case $who in
            nginx)
                run_one nginx "$NGPID" "$NG_BASE$sc_path" "$sc_run" "$sc_conns" "$sc_extra"
                ;;
            coserve)
                if [ $CS_ALIVE -eq 0 ]; then
                    run_one coserve "$SPID" "$CS_BASE$sc_path" "$sc_run" "$sc_conns" "$sc_extra" || CS_ALIVE=1
                fi
                ;;
            floor)
                if [ "$sc_path" = /hello ] && [ $FL_ALIVE -eq 0 ]; then
                    run_one floor "$FLPID" "$FL_BASE$sc_path" "$sc_run" "$sc_conns" "$sc_extra" || FL_ALIVE=1
                fi
                ;;
            esac
        done
    done
    r=$((r + 1))
done
# Per scenario: the round with the median coserve/nginx CPU ratio stands
# for it (res.LABEL.NAME, the floor's from that round too), and every
# round's ratio goes to ratios.NAME (coserve/floor: floor_ratios.NAME).
round_ratios() { # $1 = scenario, $2 = anchor label -> "ratio round" per round
    r=1
    while [ $r -le "$ROUNDS" ]; do
        c=$(awk '{ print $4 }' "$T/res.coserve.$1.r$r" 2>/dev/null)
        a=$(awk '{ print $4 }' "$T/res.$2.$1.r$r" 2>/dev/null)
        awk -v c="${c:-0}" -v a="${a:-0}" -v r=$r 'BEGIN { printf "%.3f %d\n", (a > 0 ? c / a : 0), r }'
        r=$((r + 1))
    done
}
for sc in $SCENARIOS; do
    name=${sc%%:*}
    round_ratios "$name" nginx | sort -n >"$T/rounds.$name"
    mid=$(awk -v k=$(((ROUNDS + 1) / 2)) 'NR == k { print $2 }' "$T/rounds.$name")
    for who in coserve nginx floor; do
        [ -f "$T/res.$who.$name.r$mid" ] && cp "$T/res.$who.$name.r$mid" "$T/res.$who.$name"
    done
    sort -k2 -n "$T/rounds.$name" | awk '{ printf "%s%s", (NR > 1 ? " " : ""), $1 }' >"$T/ratios.$name"
    [ -f "$T/res.floor.$name.r1" ] || continue
    round_ratios "$name" floor | awk '{ printf "%s%s", (NR > 1 ? " " : ""), $1 }' >"$T/floor_ratios.$name"
done
CS_RSS1=$(rss_kib "$SPID")
r=1
while [ $r -le "$ROUNDS" ]; do
    for who in $( [ $((r % 2)) -eq 1 ] && echo "coserve floor" || echo "floor coserve"); do
        if [ $who = coserve ] && [ $CS_ALIVE -eq 0 ]; then
            sleep_window coserve "$SPID" "$CS_BASE" $r
            kill -0 "$SPID" 2>/dev/null || CS_ALIVE=1
        elif [ $who = floor ] && [ $FL_ALIVE -eq 0 ]; then
            sleep_window floor "$FLPID" "$FL_BASE" $r
        fi
    done
    r=$((r + 1))
done
sleep_median coserve
sleep_median floor
kill -0 "$FLPID" 2>/dev/null || FL_ALIVE=1
stop_coserve
stop_nginx
stop_floor

echo "idle keep-alive memory ($IDLE_CONNS connections):" >&2
PORT=$(free_port)
start_coserve "$PORT" "$CS_ERR"
idle_mem coserve "$SPID" "$PORT"
CS_MEM=$(cat "$T/mem.coserve")
echo "  coserve $CS_MEM" >&2
kill -0 "$SPID" 2>/dev/null || CS_ALIVE=1
stop_coserve

PORT=$(free_port)
start_nginx "$PORT"
idle_mem nginx "$NGPID" "$PORT"
NG_MEM=$(cat "$T/mem.nginx")
echo "  nginx   $NG_MEM" >&2
stop_nginx

# ---------------------------------------------------------------- table

fmt="%-17s | %12s %12s | %-17s | %-17s | %9s %9s %12s | %6s %-8s %-4s | %8s\n"
{
    # CPU ratio = coserve's CPU per request / nginx's, both from this run;
    # target: issue 14's most for that ratio. cs/floor = coserve's CPU per
    # request / the floor's, same round ("-": the floor does not serve it).
    # (µs is two bytes: the header's columns are padded by hand.)
    printf "$fmt" scenario "coserve rq/s" "nginx rq/s" "coserve p50/p99" "nginx p50/p99" \
        "cs µs/req" "ng µs/req" "floor µs/req" "cpu" "target" "" "cs/floor"
    printf "$fmt" "" "" "" "" "" "" "" "" "" "" "" "" | sed 's/[^|]/-/g'
    for sc in $SCENARIOS; do
        old_ifs=$IFS
        IFS=:
        set -- $sc
        IFS=$old_ifs
        cs=$(cat "$T/res.coserve.$1" 2>/dev/null || echo "0 - - 0 0 missing")
        ng=$(cat "$T/res.nginx.$1" 2>/dev/null || echo "0 - - 0 0 missing")
        fl=$(cat "$T/res.floor.$1" 2>/dev/null || echo "0 - - 0 0 -")
        echo "$1 $5 $6 $cs $ng $fl"
    done | awk -v fmt="$fmt" -v bodies="$T/bodies" '{
        name = $1; target = $2; body = $3
        crps = $4; cp50 = $5; cp99 = $6; ccpu = $7
        nrps = $10; np50 = $11; np99 = $12; ncpu = $13
        fcpu = $19
        cr = (ncpu > 0) ? ccpu / ncpu : 0
        verdict = ""
        if (target != "-")
            verdict = (cr > 0 && cr <= target) ? "PASS" : "FAIL"
        printf fmt, name, sprintf("%.0f", crps), sprintf("%.0f", nrps),
            cp50 "/" cp99, np50 "/" np99, sprintf("%.2f", ccpu), sprintf("%.2f", ncpu),
            (fcpu > 0 ? sprintf("%.2f", fcpu) : "-"),
            sprintf("%.3f", cr), (target == "-" ? "-" : "<= " target), verdict,
            (fcpu > 0 ? sprintf("%.3f", ccpu / fcpu) : "-")
        if (body != "-") {
            # per MB (10^6 bytes) of response body
            cmb = crps * body / 1e6; nmb = nrps * body / 1e6
            printf "  %s: coserve %.0f MB/s, %.1f µs CPU per MB; nginx %.0f MB/s, %.1f µs CPU per MB; CPU per MB ratio %.3f\n",
                name, cmb, ccpu * 1e6 / body, nmb, ncpu * 1e6 / body, cr >> bodies
        }
    }'
    echo
    echo "CPU ratio in each round (the line above is the median round's):"
    for sc in $SCENARIOS; do
        name=${sc%%:*}
        fr=$(cat "$T/floor_ratios.$name" 2>/dev/null)
        printf "  %-17s %s%s\n" "$name" "$(cat "$T/ratios.$name" 2>/dev/null)" "${fr:+   cs/floor $fr}"
    done
    echo
    if [ -s "$T/bodies" ]; then
        echo "large bodies (10 connections):"
        cat "$T/bodies"
        echo
    fi
    if [ -s "$T/sleep.coserve" ]; then
        set -- $(cat "$T/sleep.coserve")
        low=$(cat "$T/sleep_min_rate.coserve")
        v1=$(awk -v x="$1" 'BEGIN { print (x > 0 && x <= 12) ? "PASS" : "FAIL" }')
        v2=$(awk -v x="$low" 'BEGIN { print (x >= 995) ? "PASS" : "FAIL" }')
        echo "waiting path: 1000 connections on /sleep?ms=1000, steady ${SLEEP_WINDOW}s windows, $ROUNDS each, coserve and the floor alternating:"
        printf "  CPU per request %8s µs   target <= 12 µs    %s   (median window)\n" "$1" "$v1"
        printf "  requests/s      %8s      target >= 995      %s   (lowest window)\n" "$low" "$v2"
        echo "  coserve CPU per request in each window: $(cat "$T/sleep_all.coserve") µs"
        if [ -s "$T/sleep.floor" ]; then
            # shellcheck disable=SC2046
            set -- "$1" $(cat "$T/sleep.floor")
            echo "  floor CPU per request in each window:   $(cat "$T/sleep_all.floor") µs"
            awk -v c="$1" -v f="$2" -v r="$3" 'BEGIN {
                printf "  floor (median window): CPU per request %s µs, requests/s %s; coserve - floor = %.2f µs per request\n", f, r, c - f }'
        fi
        echo
    fi
    set -- $CS_MEM
    cs_b=$1 cs_a=$2 cs_k=$3
    set -- $NG_MEM
    ng_b=$1 ng_a=$2 ng_k=$3
    verdict=$(awk -v k="$cs_k" 'BEGIN { print (k != "-" && k + 0 <= 1.0) ? "PASS" : "FAIL" }')
    printf "idle keep-alive memory, %d connections (RSS before -> after, KiB per connection):\n" "$IDLE_CONNS"
    printf "  coserve %8s -> %8s KiB  %7s KiB/conn   target <= 1.0  %s\n" "$cs_b" "$cs_a" "$cs_k" "$verdict"
    printf "  nginx   %8s -> %8s KiB  %7s KiB/conn\n" "$ng_b" "$ng_a" "$ng_k"
    echo
    echo "coserve RSS around the throughput runs: $CS_RSS0 -> $CS_RSS1 KiB"
    errs=""
    for f in "$T"/res.*.r*; do
        e=$(awk '{ print $6 }' "$f")
        [ "$e" = - ] || errs="$errs ${f##*/res.}:$e"
    done
    echo "wrk errors:${errs:- none}"
    echo "core $SERVER_CPU time taken by other processes during each run (noise):" \
        "$(paste -sd, "$T/others" | sed 's/,/, /g')"
    echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    if [ "$CS_ALIVE" -ne 0 ]; then
        echo "coserve: DIED during the run"
    fi
    if [ "$FL_ALIVE" -ne 0 ]; then
        echo "floor: DIED during the run"
    fi
    if [ -s "$T/floor.stderr" ]; then
        echo "floor stderr (first 5 lines):"
        head -n 5 "$T/floor.stderr" | sed 's/^/  /'
    fi
    if [ -s "$CS_ERR" ]; then
        echo "coserve stderr ($(wc -l <"$CS_ERR") lines, first 10):"
        head -n 10 "$CS_ERR" | sed 's/^/  /'
    else
        echo "coserve stderr: empty"
    fi
    if [ -s "$T/nginx/error.log" ] || [ -s "$T/nginx.stderr" ]; then
        echo "nginx error log (last run, first 5):"
        cat "$T/nginx.stderr" "$T/nginx/error.log" 2>/dev/null | head -n 5 | sed 's/^/  /'
    fi
} >"$T/table"

say "results:"
tee -a "$T/report" <"$T/table"
cp "$T/report" "$OUT"
# The README's copy (scripts/readme_perf.sh puts it between its markers):
# the run's date, machine and load, then the table as printed.
{
    echo "Measured by \`sh tests/bench/bench_http.sh\` (\`make bench\`) on $(date -u '+%Y-%m-%d'):"
    echo "$(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), kernel $(uname -r);"
    echo "load average $(cut -d' ' -f1-3 /proc/loadavg) at the end. Servers on core $SERVER_CPU, wrk on core $CLIENT_CPU,"
    echo "$DUR per run, $ROUNDS rounds; CPU = utime+stime of the server's processes / requests."
    echo
    echo '```'
    cat "$T/table"
    echo '```'
} >"${OUT%.txt}.md"
echo "(written to ${OUT#"$ROOT"/} and ${OUT%.txt}.md)"
