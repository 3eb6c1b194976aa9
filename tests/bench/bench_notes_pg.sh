#!/bin/sh
# Notes on SQLite vs PostgreSQL, one instance and two behind nginx: req/s of
# POST /notes and GET /notes/ID, and CPU per request (coserve + the
# database + nginx), all in one run.
#
#   sh tests/bench/bench_notes_pg.sh       (about 70 s)
#
# Servers (coserve instances, each --workers 1, and PostgreSQL) on core 0;
# wrk (one thread, BENCH_CONNS keep-alive connections) and nginx on core 1.
# Two instances share the database: SQLite's file (two processes on one
# host, WAL) or PostgreSQL. Both stores are durable per 201: SQLite WAL with
# synchronous=FULL, PostgreSQL fsync on with synchronous_commit on. The
# PostgreSQL cluster is private (initdb in a temp dir, unix socket only),
# run as nobody when root. Results also go to build/bench/notes_pg.txt.
#
# Environment knobs: BENCH_DURATION (5s), BENCH_CONNS (32).
set -u

cd "$(dirname "$0")/../.." || exit 1
ROOT=$(pwd)
COSERVE=$ROOT/build/coserve
APPS=$ROOT/build/apps
OUT=$ROOT/build/bench/notes_pg.txt
DUR=${BENCH_DURATION:-5s}
CONNS=${BENCH_CONNS:-32}
PGBIN=/usr/lib/postgresql/15/bin
. "$(dirname "$0")/lib.sh"
bench_preflight bench_notes_pg wrk taskset curl python3 nginx
[ -x "$PGBIN/initdb" ] || { echo "bench_notes_pg: no $PGBIN (apt-get install postgresql)" >&2; exit 1; }

T=$(mktemp -d /tmp/bench_notes_pg.XXXXXX)
AS="" NGX="" PGUSER_RUN=""
[ "$(id -u)" = 0 ] && { chown nobody "$T"; PGUSER_RUN="runuser -u nobody --"; }
cleanup() {
    for p in $AS; do stop_tree "$p" TERM; done
    [ -n "$NGX" ] && stop_tree "$NGX" QUIT
    $PGUSER_RUN "$PGBIN/pg_ctl" -D "$T/data" -m immediate -w stop >/dev/null 2>&1
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
mkdir -p "$T/apps" "$ROOT/build/bench"
ln -s "$APPS/notes.so" "$APPS/hello.so" "$T/apps/"

# PostgreSQL on core 0, durable like SQLite's synchronous=FULL.
$PGUSER_RUN "$PGBIN/initdb" -D "$T/data" -A trust -U postgres -E UTF8 --locale=C >/dev/null || exit 1
taskset -c 0 $PGUSER_RUN "$PGBIN/pg_ctl" -D "$T/data" -l "$T/pg.log" -w \
    -o "-c listen_addresses='' -c unix_socket_directories='$T'" start >/dev/null || exit 1
PGPID=$(head -1 "$T/data/postmaster.pid")

# $1 = store (sqlite|pg), $2 = name: starts an instance, sets PORT_<name>.
start_instance() {
    if [ "$1" = pg ]; then
        db="postgresql:///notes_$RUN?host=$T&user=postgres"
    else
        db="$T/notes_$RUN.db"
    fi
    port=$(free_port)
    COSERVE_NOTES_DB=$db COSERVE_STREAM_LISTEN=echo_upper=off,chat=off \
        taskset -c 0 "$COSERVE" --listen "127.0.0.1:$port" --apps "$T/apps" \
        --www off --workers 1 --access-log off --log-level warn 2>>"$T/server.log" &
    pid=$!
    wait_up "http://127.0.0.1:$port/hello" "$pid" || { cat "$T/server.log" >&2; exit 1; }
    AS="$AS $pid"
    eval "PORT_$2=$port"
}

# Two instances behind nginx (deploy/nginx/coserve-scale.conf, both over TCP).
start_nginx() {
    mkdir -p "$T/nginx/tmp"
    port=$(free_port)
    sed -e "s|listen 80;|listen 127.0.0.1:$port;|" \
        -e "s|unix:/run/coserve/coserve.sock|127.0.0.1:$PORT_a|" \
        -e "s|127.0.0.1:8000|127.0.0.1:$PORT_b|" \
        -e "s|/srv/coserve/www|$T/nginx|" \
        deploy/nginx/coserve-scale.conf >"$T/nginx/site.conf"
    cat >"$T/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
$( [ "$(id -u)" = 0 ] && echo "user root;")
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $T/nginx/tmp/b; proxy_temp_path $T/nginx/tmp/p;
       include $T/nginx/site.conf; }
EOF
    taskset -c 1 nginx -p "$T/nginx" -c "$T/nginx/nginx.conf" -e "$T/nginx/error.log" &
    NGX=$!
    wait_up "http://127.0.0.1:$port/hello" "$NGX" || { cat "$T/nginx/error.log" >&2; exit 1; }
    URL="http://127.0.0.1:$port"
}

cat >"$T/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"text":"a benchmark note, about sixty bytes of text in all."}'
wrk.headers["Content-Type"] = "application/json"
EOF
cat >"$T/get.lua" <<'EOF'
local max = tonumber(os.getenv("NOTES_MAX_ID")) or 1
math.randomseed(42)
request = function() return wrk.format("GET", "/notes/" .. math.random(1, max)) end
EOF

# CPU ticks of every server process: instances, PostgreSQL, nginx.
all_ticks() {
    s=0
    for p in $AS $NGX; do s=$((s + $(cpu_ticks "$p"))); done
    [ "$STORE" = pg ] && s=$((s + $(cpu_ticks "$PGPID")))
    echo "$s"
}

# $1 = label, rest = wrk args: "rps us_cpu_per_req non2xx"
measure() {
    label=$1
    shift
    t0=$(all_ticks)
    taskset -c 1 wrk -t1 -c"$CONNS" -d"$DUR" "$@" >"$T/wrk.$label" 2>&1
    t1=$(all_ticks)
    awk -v ticks=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" '
        /^Requests\/sec:/ { rps = $2 }
        /requests in/ { n = $1 }
        /Non-2xx/ { bad = $NF }
        END { printf "%.0f %.0f %d\n", rps, n ? ticks / hz * 1e6 / n : 0, bad }' "$T/wrk.$label"
}

: >"$T/table"
RUN=0
for STORE in sqlite pg; do
    for N in 1 2; do
        RUN=$((RUN + 1))
        [ "$STORE" = pg ] && psql -X -q -h "$T" -U postgres -d postgres -c "CREATE DATABASE notes_$RUN" >/dev/null
        AS="" NGX=""
        start_instance "$STORE" a
        URL="http://127.0.0.1:$PORT_a"
        if [ "$N" = 2 ]; then
            start_instance "$STORE" b
            start_nginx
        fi
        echo "$STORE x$N ..." >&2
        taskset -c 1 wrk -t1 -c"$CONNS" -d1s -s "$T/post.lua" "$URL/notes" >/dev/null 2>&1
        post=$(measure "post.$STORE.$N" -s "$T/post.lua" "$URL/notes")
        max=$(curl -s "$URL/notes?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["notes"][0]["id"])')
        get=$(NOTES_MAX_ID=$max measure "get.$STORE.$N" -s "$T/get.lua" "$URL")
        echo "$STORE $N $post $get" >>"$T/table"
        for p in $AS; do stop_tree "$p" TERM; done
        [ -n "$NGX" ] && stop_tree "$NGX" QUIT
        AS="" NGX=""
    done
done

{
    echo "coserve notes: SQLite vs PostgreSQL — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "machine: nproc=$(nproc) $(uname -m) $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "servers on core 0 (coserve --workers 1 each, PostgreSQL 15); wrk -t1 -c$CONNS -d$DUR and nginx on core 1"
    echo "CPU/req: CPU time of coserve + database + nginx over the run / requests answered"
    fmt="%-10s %-9s | %9s %9s %6s | %9s %9s %6s\n"
    printf "$fmt" store instances "POST rq/s" "CPU us/rq" "non2xx" "GET rq/s" "CPU us/rq" "non2xx"
    while read -r s n pr pc pb gr gc gb; do
        inst=$n
        [ "$n" = 2 ] && inst="2+nginx"
        printf "$fmt" "$s" "$inst" "$pr" "$pc" "$pb" "$gr" "$gc" "$gb"
    done <"$T/table"
} | tee "$OUT"
echo "(written to ${OUT#"$ROOT"/})"
