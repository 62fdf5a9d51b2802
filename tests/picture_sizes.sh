#!/bin/sh
# Every sample and every benchmark shape, drawn: no picture wider than 4,000 pt (the
# folding rule, docs/trace-format.md), and none that Graphviz cannot lay out.
# Usage: picture_sizes.sh FLOWY_TOOL TRACE_SCENARIOS WORD_COUNT SAMPLE...
set -eu
tool=$1 scenarios=$2 word_count=$3
shift 3
dir=$(mktemp -d /tmp/flowy-pictures.XXXXXX)
trap 'rm -rf "$dir"' EXIT
limit=4000
failed=0
check() {  # NAME: renders $dir/NAME.trace and checks its width
    "$tool" render "$dir/$1.trace" -o "$dir/$1.svg"
    w=$(sed -n 's/^<svg width="\([0-9]*\)pt" height="\([0-9]*\)pt".*/\1 \2/p' "$dir/$1.svg")
    [ -n "$w" ] || { echo "$1: no width in the SVG"; failed=1; return; }
    set -- "$1" $w
    echo "$1: $2 x $3 pt"
    [ "$2" -le "$limit" ] || { echo "$1: $2 pt is wider than $limit pt"; failed=1; }
}
for exe in "$@"; do
    name=$(basename "$exe")
    "$exe" --unit-ms 2 --trace "$dir/$name.trace" >/dev/null
    check "$name"
done
"$word_count" --unit-ms 2 --workers 2 --trace "$dir/word_count.trace" >/dev/null
check word_count
for shape in "fanout 1000" "fanout 10000" "fanout 100000" "chain 100" "chain 1000" "chain 10000" \
             "chain 40000" "alternating 40000" "batches 50" "reduce 200" "reduce 1000" "long-and-short 200"; do
    set -- $shape
    "$scenarios" "$1" "$dir/$1-$2.trace" "$2" >/dev/null
    check "$1-$2"
done
exit $failed
