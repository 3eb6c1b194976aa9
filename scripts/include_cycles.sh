#!/bin/sh
# Fails if the modules of server/ include each other in a circle.
#
# A module is a .c with its .h (core/offload.c + core/offload.h is
# "core/offload"); a header without a .c is a module of its own. Files that
# are truly one module say so in their header's comment, "Module: NAME"
# (the scheduler: core/hub, coro, deadline, wait, outcome are core/sched).
# Every #include "..." is an edge to the module of the header it names
# (found beside the including file, else under ROOT, as the compiler's -I
# finds it); a module may include itself. Headers outside ROOT
# (include/coserve.h, llhttp) are leaves. tsort reports any loop.
#
# usage: scripts/include_cycles.sh [ROOT]   (ROOT defaults to server)
root=${1:-server}

# The module of a file, given its path under root without the extension.
module_of() {
    for f in "$root/$1.h" "$root/$1.c"; do
        [ -f "$f" ] || continue
        tag=$(sed -n 's/^.*Module: \([A-Za-z0-9_/]*\).*$/\1/p' "$f" | head -1)
        [ -n "$tag" ] && { echo "$tag"; return; }
    done
    echo "$1"
}

edges=$(find "$root" -name '*.[ch]' | sort | while read -r f; do
    dir=$(dirname "$f")
    rel=${f#"$root"/}
    from=$(module_of "${rel%.[ch]}")
    sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" |
        while read -r inc; do
            if [ -f "$dir/$inc" ]; then
                to=$(realpath -m --relative-to="$root" "$dir/$inc")
            elif [ -f "$root/$inc" ]; then
                to=$inc
            else
                continue
            fi
            to=$(module_of "${to%.[ch]}")
            [ "$to" = "$from" ] || echo "$from $to"
        done
done | sort -u)
if ! err=$(printf '%s\n' "$edges" | tsort 2>&1 >/dev/null) || [ -n "$err" ]; then
    echo "include cycles between the modules of $root/ (a .c and its .h are one module):"
    printf '%s\n' "$err" | sed 's/^tsort: -: /  /; s/^tsort: /  /'
    exit 1
fi
n=$(printf '%s\n' "$edges" | tr ' ' '\n' | sort -u | wc -l)
echo "  include no cycle among the $n modules of $root/"
