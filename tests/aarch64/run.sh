#!/bin/sh
# Runs the aarch64 core suites (make test-aarch64) under qemu-user.
# usage: tests/aarch64/run.sh DIR   (DIR = build/aarch64: tests/, fork-probe)
#
# Criterion runs every test in a child that re-executes the test binary, so
# `qemu-aarch64 test_x` alone is not enough: the kernel must hand aarch64
# ELF files to qemu itself (binfmt_misc). On an aarch64 machine, or one
# whose binfmt_misc already knows qemu-aarch64, the suites run as they are.
# Otherwise this script runs itself again in a private user and mount
# namespace with its own binfmt_misc instance (Linux 6.7 or later) and
# registers qemu-aarch64 there: nothing outside the namespace changes, and
# no root is needed.
set -u
dir=$1
QEMU=/usr/bin/qemu-aarch64
# aarch64 ELF executables and shared objects: the entry Debian's
# qemu-user-binfmt installs
MAGIC='\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
MASK='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'

runs_aarch64() {
    [ "$(uname -m)" = aarch64 ] && return 0
    for f in /proc/sys/fs/binfmt_misc/qemu-aarch64*; do
        [ -f "$f" ] && grep -q '^enabled' "$f" && return 0
    done
    return 1
}

if [ "${COSERVE_AARCH64_NS:-}" = 1 ]; then
    # F: qemu is opened now, so it runs from inside any later mount setup;
    # P: the program keeps its own argv[0] (Criterion's workers need it).
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc &&
        printf '%s' ":qemu-aarch64:M::$MAGIC:$MASK:$QEMU:FP" \
            > /proc/sys/fs/binfmt_misc/register || {
        echo "aarch64: cannot register qemu-aarch64 in a private binfmt_misc" \
            "(Linux >= 6.7 needed); install qemu-user-binfmt instead" >&2
        echo "0 1" >> "$dir/../test-counts"
        exit 1
    }
elif ! runs_aarch64; then
    if [ ! -x "$QEMU" ] ||
        ! unshare --user --map-root-user --mount true 2>/dev/null; then
        echo "aarch64: need $QEMU (make deps) and user namespaces, or" \
            "qemu-user-binfmt" >&2
        echo "0 1" >> "$dir/../test-counts"
        exit 1
    fi
    COSERVE_AARCH64_NS=1 exec unshare --user --map-root-user --mount \
        sh "$0" "$@"
fi

ulimit -c 0 # qemu writes a guest core file for each abort the tests expect

# Tests that fork a child (the Criterion worker has threads by then) and
# start a thread in it: qemu-user 7.2 aborts such a child itself. Left out
# only when the probe shows this qemu has that bug.
FORK_THREAD_TESTS='coro/cooperative_call_on_a_plain_thread_aborts_naming_the_call
coro/cooperative_call_on_an_offload_thread_aborts_naming_the_call
offload/fini_hook_runs_on_every_thread_when_the_process_exits'
pattern=
if ! "$dir/fork-probe" >/dev/null 2>&1; then
    for t in $FORK_THREAD_TESTS; do
        echo "  aarch64 skip  $t: a forked child of a threaded process" \
            "cannot start a thread under this qemu-user (it aborts in" \
            "qemu_plugin_vcpu_init_hook); see tests/aarch64/fork_probe.c"
    done
    pattern="CRITERION_TEST_PATTERN=!($(echo $FORK_THREAD_TESTS | tr ' ' '|'))"
fi
exec sh tests/run-suites.sh aarch64 "$dir/tests" "$pattern"
