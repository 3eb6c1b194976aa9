#!/bin/sh
# Big-file benchmark: GET /hello latency while the same worker sends a 10 GB
# file to a local client as fast as it reads (issue 9, item 4).
#
#   sh tests/bench/bench_bigfile.sh
#
# One coserve worker pinned to core 0; wrk (-t1 -c10) pinned to core 1, and
# the download (curl -o /dev/null, restarted whenever it ends, so it runs for
# the whole measurement) on core 1 too, at nice 19: it takes what wrk leaves,
# so wrk's figures measure the server, not wrk waiting for its core. The file is sparse (truncate), so
# the disk plays no part: the page cache hands out zero pages as fast as
# the socket takes them. Rows:
#   idle             /hello alone
#   download         /hello during the download (--sendfile-max-chunk 2M,
#                    the default)
#   download, 1G     the same with --sendfile-max-chunk 1G: near the old
#                    behaviour of one sendfile for the whole file
# For each: p50, p99 and max latency of /hello, and the download rate.
# Results also go to build/bench/bigfile.txt.
#
# Environment knobs: BENCH_DURATION (10s), BENCH_BIGFILE_SIZE (10G).
# Needs: wrk, curl, taskset, python3; 2+ cores.
set -u

cd "$(dirname "$0")/../.." || exit 1
ROOT=$(pwd)
COSERVE=$ROOT/build/coserve
APPS=$ROOT/build/apps
OUT=$ROOT/build/bench/bigfile.txt
DUR=${BENCH_DURATION:-10s}
SIZE=${BENCH_BIGFILE_SIZE:-10G}
SERVER_CPU=0
CLIENT_CPU=1

. "$(dirname "$0")/lib.sh"
bench_preflight bench_bigfile wrk curl taskset python3 awk truncate

T=$(mktemp -d /tmp/bench_bigfile.XXXXXX)
SPID='' DLPID=''
cleanup() {
    [ -n "$DLPID" ] && kill "$DLPID" 2>/dev/null && wait "$DLPID" 2>/dev/null
    stop_tree "$SPID" TERM
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

mkdir -p "$ROOT/build/bench" "$T/www" "$T/apps"
ln -s "$APPS/hello.so" "$T/apps/hello.so"
truncate -s "$SIZE" "$T/www/big.bin"
: >"$T/report"
say() { printf '%s\n' "$*" | tee -a "$T/report"; }

start_coserve() { # $1 = port, $2.. = extra flags
    port=$1
    shift
    taskset -c $SERVER_CPU "$COSERVE" --listen "127.0.0.1:$port" \
        --apps "$T/apps" --www "$T/www" --workers 1 --access-log off \
        --log-level warn "$@" 2>>"$T/coserve.stderr" &
    SPID=$!
    wait_up "http://127.0.0.1:$port/hello" "$SPID" || {
        echo "bench_bigfile: coserve did not start:" >&2
        cat "$T/coserve.stderr" >&2
        exit 1
    }
}

# Downloads the big file again and again until killed, each curl for at
# most 4 s (a 10 GB file can take longer than the run), appending
# "bytes seconds" to $T/rates.
start_download() { # $1 = port
    : >"$T/rates"
    (
        trap 'kill $cpid 2>/dev/null; exit 0' TERM
        while :; do
            taskset -c $CLIENT_CPU nice -n 19 curl -s -o /dev/null --max-time 4 \
                -w '%{size_download} %{time_total}\n' \
                "http://127.0.0.1:$1/big.bin" >>"$T/rates" &
            cpid=$!
            wait $cpid
        done
    ) &
    DLPID=$!
    sleep 1 # let it reach full speed
}

stop_download() {
    kill "$DLPID" 2>/dev/null
    wait "$DLPID" 2>/dev/null
    DLPID=''
}

# wrk's latency figures in ms: "p50 p99 max".
wrk_latency() { # $1 = wrk output file
    awk '
        function ms(v) {
            if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
            if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
            if (v ~ /s$/) { sub(/s$/, "", v); return v * 1000 }
            return v + 0
        }
        $1 == "Latency" && NF >= 4 && !seen { max = ms($4); seen = 1 }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        END { printf "%.2f %.2f %.2f\n", p50, p99, max }
    ' "$1"
}

# The download rate over the curls that ended while wrk ran.
download_rate() {
    awk '{ b += $1; t += $2 } END { if (t > 0) printf "%.0f MB/s", b / t / 1e6; else print "-" }' "$T/rates"
}

run_row() { # $1 = label, $2 = download (yes/no), $3.. = coserve flags
    label=$1 dl=$2
    shift 2
    port=$(free_port)
    start_coserve "$port" "$@"
    [ "$dl" = yes ] && start_download "$port"
    taskset -c $CLIENT_CPU wrk -t1 -c10 -d"$DUR" --latency \
        "http://127.0.0.1:$port/hello" >"$T/wrk.txt" 2>&1
    rate=-
    if [ "$dl" = yes ]; then
        stop_download
        rate=$(download_rate)
    fi
    stop_tree "$SPID" TERM
    SPID=''
    set -- $(wrk_latency "$T/wrk.txt")
    reqs=$(awk '/^Requests\/sec/ { printf "%.0f", $2 }' "$T/wrk.txt")
    say "$(printf '%-30s %8s %8s %8s %10s   %s' "$label" "$1" "$2" "$3" "$reqs" "$rate")"
}

say "GET /hello latency (ms), one worker on core $SERVER_CPU, wrk -t1 -c10 -d$DUR on core $CLIENT_CPU;"
say "download: curl -o /dev/null of a $SIZE sparse file on core $CLIENT_CPU (nice 19), restarted as it ends"
say ""
say "$(printf '%-30s %8s %8s %8s %10s   %s' scenario p50 p99 max req/s download)"
run_row "idle" no
run_row "download (chunk 2M, default)" yes
run_row "download (chunk 1G, ~before)" yes --sendfile-max-chunk 1G
cp "$T/report" "$OUT"
echo "bench_bigfile: results in $OUT"
