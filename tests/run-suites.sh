#!/bin/sh
# Runs every test binary in DIR, prints each suite's Criterion synthesis and
# a final "N passed, N failed" line; exits non-zero if anything failed.
# usage: run-suites.sh LABEL DIR "ENV=VALUE ..."
label=$1 dir=$2 envs=$3
passed=0 failed=0 status=0
for t in "$dir"/test_*; do
    [ -x "$t" ] || continue
    out=$(env $envs "$t" --jobs=2 2>&1); rc=$?
    syn=$(printf '%s\n' "$out" | grep 'Synthesis:' | tail -1)
    p=$(printf '%s' "$syn" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p')
    f=$(printf '%s' "$syn" | sed -n 's/.*Failing: \([0-9]*\).*Crashing: \([0-9]*\).*/\1 \2/p')
    ff=0; for n in $f; do ff=$((ff + n)); done
    # Criterion ignores a passed test's exit status, so sanitizer reports
    # printed at a worker's exit would go unnoticed: look for them.
    if printf '%s\n' "$out" | grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:'; then
        rc=99
    fi
    if [ "$rc" != 0 ] || [ -z "$p" ]; then
        printf '%s\n' "$out"
        [ "$ff" = 0 ] && ff=1
        status=1
    fi
    printf '  %-5s %-24s %s\n' "$label" "$(basename "$t")" "${syn:-no synthesis (rc=$rc)}"
    passed=$((passed + ${p:-0})); failed=$((failed + ff))
done
echo "$label: $passed passed, $failed failed"
echo "$passed $failed" >> "$(dirname "$dir")/../test-counts"
exit $status
