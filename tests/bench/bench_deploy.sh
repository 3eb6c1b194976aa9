#!/bin/sh
# Deployment benchmark: GET /hello ("Hello, World!\n") with wrk, measuring
# req/s and p99 latency for
#
#   1. coserve with 1 worker vs 2 workers (100 connections),
#   2. coserve direct vs behind nginx (deploy/nginx/coserve.conf, unix
#      socket upstream with keepalive; 100 connections),
#   3. per concurrency (10, 50, 100, 200, 500, 1000 connections): coserve
#      direct (1 worker) and nginx `return 200` (1 worker), drawn with
#      gnuplot into build/bench/chart.png (req/s above, p99 below).
#
#   sh tests/bench/bench_deploy.sh      (after make build/coserve apps)
#
# Pinning: wrk runs on core 1 (taskset -c 1, one thread). Servers run on
# core 0, all of them: in "behind nginx", nginx and coserve share core 0.
# The exception is the 2-worker case, which gets cores 0 and 1 and so also
# shares core 1 with wrk: it shows what a second worker buys on this box,
# not a clean 2x. Access logs are off everywhere.
#
# Environment: BENCH_DURATION (5s per run), BENCH_CONCURRENCY ("10 50 100
# 200 500 1000"). About 90 s with the defaults. Results: build/bench/
# deploy.txt (table), build/bench/deploy.dat (chart data), chart.png.
# Needs: wrk, nginx, gnuplot (apt-get install gnuplot-nox), curl, taskset,
# python3; 2+ cores.
set -u

cd "$(dirname "$0")/../.." || exit 1
ROOT=$(pwd)
COSERVE=$ROOT/build/coserve
APPS=$ROOT/build/apps
OUTDIR=$ROOT/build/bench
DUR=${BENCH_DURATION:-5s}
CONCS=${BENCH_CONCURRENCY:-10 50 100 200 500 1000}
NGINX=${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}

for tool in wrk gnuplot curl taskset python3 awk sed; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "bench_deploy: $tool not found (gnuplot: apt-get install gnuplot-nox)" >&2
        exit 1
    }
done
[ -x "$NGINX" ] || { echo "bench_deploy: no nginx at $NGINX" >&2; exit 1; }
[ -x "$COSERVE" ] || { echo "bench_deploy: $COSERVE missing (make build/coserve apps)" >&2; exit 1; }
[ -f "$APPS/hello.so" ] || { echo "bench_deploy: $APPS/hello.so missing (make apps)" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "bench_deploy: needs 2 cores" >&2; exit 1; }

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null

. "$(dirname "$0")/lib.sh"
T=$(mktemp -d /tmp/bench_deploy.XXXXXX)
SPID='' NGPID=''

cleanup() {
    stop_tree "$SPID" TERM
    stop_tree "$NGPID" QUIT
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

mkdir -p "$T/apps" "$OUTDIR"
ln -s "$APPS/hello.so" "$T/apps/hello.so"

start_coserve() { # $1 = listen spec, $2 = workers, $3 = cpus, $4 = url to probe
    # shellcheck disable=SC2086
    taskset -c "$3" "$COSERVE" --listen "$1" --workers "$2" --apps "$T/apps" \
        --www off --access-log off --log-level warn 2>>"$T/coserve.stderr" &
    SPID=$!
    if [ -n "$4" ]; then
        wait_up "$4" "$SPID" || { echo "bench_deploy: coserve did not start" >&2; cat "$T/coserve.stderr" >&2; exit 1; }
    fi
}

nginx_main_conf() { # $1 = include file
    mkdir -p "$T/nginx/tmp"
    cat >"$T/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process on;
$( [ "$(id -u)" = 0 ] && echo "user root;" )
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections 8192; }
http {
    access_log off;
    keepalive_requests 1000000;
    default_type text/plain;
    client_body_temp_path $T/nginx/tmp/body;
    proxy_temp_path $T/nginx/tmp/proxy;
    fastcgi_temp_path $T/nginx/tmp/fastcgi;
    uwsgi_temp_path $T/nginx/tmp/uwsgi;
    scgi_temp_path $T/nginx/tmp/scgi;
    include $1;
}
EOF
}

start_nginx() { # $1 = url to probe
    taskset -c 0 "$NGINX" -e "$T/nginx/error.log" -p "$T/nginx" \
        -c "$T/nginx/nginx.conf" 2>>"$T/nginx.stderr" &
    NGPID=$!
    wait_up "$1" "$NGPID" || { echo "bench_deploy: nginx did not start" >&2; cat "$T/nginx.stderr" "$T/nginx/error.log" >&2; exit 1; }
}

# nginx answering by itself: the ceiling for one core.
start_nginx_return() { # $1 = port
    rm -rf "$T/nginx"
    mkdir -p "$T/nginx"
    cat >"$T/nginx/site.conf" <<EOF
server {
    listen 127.0.0.1:$1;
    location = /hello { return 200 "Hello, World!\n"; }
}
EOF
    nginx_main_conf "$T/nginx/site.conf"
    start_nginx "http://127.0.0.1:$1/hello"
}

# nginx in front of coserve: the deploy config itself.
start_nginx_proxy() { # $1 = port, $2 = coserve socket
    rm -rf "$T/nginx"
    mkdir -p "$T/nginx"
    # its defaults replaced, as tests/deploy/deploy_util.h does
    sed -e "s|listen 80;|listen 127.0.0.1:$1;|" \
        -e "s|unix:/run/coserve/coserve.sock|unix:$2|g" \
        -e "s|127.0.0.1:8000|127.0.0.1:9|g" -e "s|/srv/coserve/www|$ROOT/www|g" \
        "$ROOT/deploy/nginx/coserve.conf" >"$T/nginx/site.conf"
    nginx_main_conf "$T/nginx/site.conf"
    start_nginx "http://127.0.0.1:$1/hello"
}

# "busy total" jiffies of cores 0 and 1, from /proc/stat.
cpu_snap() {
    awk '$1 == "cpu0" || $1 == "cpu1" {
        t = 0; for (i = 2; i <= NF; i++) t += $i
        printf "%d %d ", t - $5 - $6, t }' /proc/stat
}

# One measured run: appends "label conns rps p99_ms errors core0% core1%"
# to $T/results (how busy each core was: which side is the limit).
run_wrk() { # $1 = label, $2 = url, $3 = connections
    s0=$(cpu_snap)
    taskset -c 1 wrk -t1 -c"$3" -d"$DUR" --latency "$2" >"$T/wrk.out" 2>&1
    s1=$(cpu_snap)
    busy=$(echo "$s0 $s1" | awk '{ printf "%.0f %.0f", ($5 - $1) * 100 / ($6 - $2), ($7 - $3) * 100 / ($8 - $4) }')
    awk -v l="$1" -v c="$3" -v busy="$busy" '
        function ms(v) {
            if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
            if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
            if (v ~ /s$/)  return substr(v, 1, length(v) - 1) * 1000
            return -1
        }
        /^Requests\/sec:/ { rps = $2 }
        /^ +99%/ { p99 = ms($2) }
        /Socket errors:/ { sub(/^ *Socket errors: */, ""); gsub(/ /, ""); err = err $0 ";" }
        /Non-2xx or 3xx/ { err = err "non2xx=" $NF ";" }
        END { printf "%s %d %.0f %.2f %s %s\n", l, c, rps, p99, (err == "" ? "-" : err), busy }
    ' "$T/wrk.out" | tee -a "$T/results" >&2
}

warm() { taskset -c 1 wrk -t1 -c50 -d1s "$1" >/dev/null 2>&1; }

: >"$T/results"
echo "bench_deploy: $DUR per run; label conns req/s p99_ms errors core0% core1%" >&2

# ---- coserve direct, 1 worker on core 0: the concurrency sweep (its c=100
# run is also the "1 worker" and "direct" row of the tables)
PORT=$(free_port)
URL=http://127.0.0.1:$PORT/hello
start_coserve "127.0.0.1:$PORT" 1 0 "$URL"
warm "$URL"
for c in $CONCS; do run_wrk coserve "$URL" "$c"; done
grep -q '^coserve 100 ' "$T/results" || run_wrk coserve "$URL" 100
stop_tree "$SPID" TERM; SPID=''

# ---- nginx return 200, 1 worker on core 0
PORT=$(free_port)
URL=http://127.0.0.1:$PORT/hello
start_nginx_return "$PORT"
warm "$URL"
for c in $CONCS; do run_wrk nginx-return "$URL" "$c"; done
stop_tree "$NGPID" QUIT; NGPID=''

# ---- coserve, 2 workers on cores 0 and 1 (core 1 shared with wrk)
PORT=$(free_port)
URL=http://127.0.0.1:$PORT/hello
start_coserve "127.0.0.1:$PORT" 2 0,1 "$URL"
warm "$URL"
run_wrk coserve-2w "$URL" 100
stop_tree "$SPID" TERM; SPID=''

# ---- nginx (1 worker) -> coserve (1 worker), unix socket, both on core 0
SOCK=$T/coserve.sock
start_coserve "unix:$SOCK" 1 0 ""
i=0
while [ ! -S "$SOCK" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
sleep 0.3
PORT=$(free_port)
URL=http://127.0.0.1:$PORT/hello
start_nginx_proxy "$PORT" "$SOCK"
warm "$URL"
run_wrk nginx-proxy "$URL" 100
stop_tree "$NGPID" QUIT; NGPID=''
stop_tree "$SPID" TERM; SPID=''

# ---- tables
R=$T/results
get() { awk -v l="$1" -v c="$2" -v f="$3" '$1 == l && $2 == c { print $f; exit }' "$R"; }
{
    echo "coserve deployment benchmark - $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "machine: nproc=$(nproc) $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo); load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "wrk -t1 -d$DUR --latency pinned to core 1; servers on core 0 (2 workers: cores 0,1); GET /hello; access logs off"
    echo
    row() { printf '%-44s %6s %10s %9s %7s %7s\n' "$1" 100 "$(get "$2" 100 3)" "$(get "$2" 100 4)" "$(get "$2" 100 6)" "$(get "$2" 100 7)"; }
    printf '%-44s %6s %10s %9s %7s %7s\n' "setup (100 connections)" conns "req/s" "p99 ms" "core0%" "core1%"
    row "coserve, 1 worker (core 0)" coserve
    row "coserve, 2 workers (cores 0,1; 1 shared)" coserve-2w
    row "nginx -> coserve (unix, keepalive; core 0)" nginx-proxy
    row "nginx return 200 (core 0)" nginx-return
    echo
    echo "per concurrency (core0%/core1%: busy share of the server's and wrk's core)"
    printf '%6s | %12s %9s %9s | %12s %9s %9s | %s\n' conns "coserve rq/s" "p99 ms" "cores %" "nginx rq/s" "p99 ms" "cores %" "coserve/nginx"
    for c in $CONCS; do
        cr=$(get coserve "$c" 3) cp=$(get coserve "$c" 4)
        nr=$(get nginx-return "$c" 3) np=$(get nginx-return "$c" 4)
        printf '%6s | %12s %9s %9s | %12s %9s %9s | %s\n' "$c" "$cr" "$cp" \
            "$(get coserve "$c" 6)/$(get coserve "$c" 7)" "$nr" "$np" \
            "$(get nginx-return "$c" 6)/$(get nginx-return "$c" 7)" \
            "$(awk -v a="$cr" -v b="$nr" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
    done
    echo
    errs=$(awk '$5 != "-" { printf " %s(c=%s):%s", $1, $2, $5 }' "$R")
    echo "wrk errors:${errs:- none}"
    if [ -s "$T/coserve.stderr" ]; then
        echo "coserve stderr (first 5 lines):"
        head -n 5 "$T/coserve.stderr" | sed 's/^/  /'
    fi
} >"$OUTDIR/deploy.txt"

{
    echo "# conns coserve_rps coserve_p99_ms nginx_rps nginx_p99_ms"
    for c in $CONCS; do
        echo "$c $(get coserve "$c" 3) $(get coserve "$c" 4) $(get nginx-return "$c" 3) $(get nginx-return "$c" 4)"
    done
} >"$OUTDIR/deploy.dat"

gnuplot <<EOF
set terminal pngcairo size 1000,900 font "DejaVu Sans,11"
set output "$OUTDIR/chart.png"
set multiplot layout 2,1 title "GET /hello, one server core (wrk -t1 on core 1, $DUR per point)" font ",13"
set logscale x
set xrange [7:1400]
set xtics ($(echo "$CONCS" | sed 's/\([0-9][0-9]*\)/"\1" \1/g; s/ "/, "/g'))
set xlabel "concurrent connections"
set grid
set key bottom right box opaque
set format y "%.0f"
set ylabel "requests / s"
set yrange [0:*]
set label 1 "wrk's core busy (coserve/nginx) at 100 conns: $(get coserve 100 7)%/$(get nginx-return 100 7)%; server core: $(get coserve 100 6)%/$(get nginx-return 100 6)%" at graph 0.02, graph 0.45 front
plot "$OUTDIR/deploy.dat" using 1:2 with linespoints lw 2 pt 7 title "coserve (1 worker)", \
     "" using 1:4 with linespoints lw 2 pt 5 title "nginx return 200 (1 worker)"
set ylabel "p99 latency (ms)"
set logscale y
set yrange [*:*]
set format y "%g"
unset label 1
set key top left box opaque
plot "$OUTDIR/deploy.dat" using 1:3 with linespoints lw 2 pt 7 title "coserve (1 worker)", \
     "" using 1:5 with linespoints lw 2 pt 5 title "nginx return 200 (1 worker)"
unset multiplot
EOF

cat "$OUTDIR/deploy.txt"
echo "(build/bench/deploy.txt, build/bench/deploy.dat, build/bench/chart.png)"
