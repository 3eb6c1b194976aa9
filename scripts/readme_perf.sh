#!/bin/sh
# Puts the last benchmark run's tables into README.md, between the
# markers "<!-- bench:NAME -->" and "<!-- /bench:NAME -->" for each
# build/bench/NAME.md that exists (written by tests/bench/*.sh). The
# figures in those sections are never edited by hand: `make bench`
# measures them and this copies them in.
#
#   sh scripts/readme_perf.sh [README.md]
set -eu
cd "$(dirname "$0")/.."
readme=${1:-README.md}
for md in build/bench/*.md; do
    [ -f "$md" ] || continue
    name=$(basename "$md" .md)
    grep -q "^<!-- bench:$name -->\$" "$readme" || continue
    awk -v name="$name" -v md="$md" '
        $0 == "<!-- bench:" name " -->" {
            print
            while ((getline line < md) > 0)
                print line
            skip = 1
            next
        }
        $0 == "<!-- /bench:" name " -->" { skip = 0 }
        !skip { print }
    ' "$readme" >"$readme.tmp"
    mv "$readme.tmp" "$readme"
    echo "readme_perf: $readme: section $name from $md"
done
