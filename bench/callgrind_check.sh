#!/bin/sh
# Counts the instructions per task of W1 (10,000 empty tasks, then a join) with
# callgrind, which counts the same on a noisy machine, untraced and traced (a run
# journal, FLOWY_TRACE), and fails if either grew by more than 20% over the numbers
# recorded in bench/callgrind-baseline.txt. It uses the synchronous executor: the
# engine's own work (scheduling, serialisation, calling the activity, recording) without
# the spin loops of the process pool, whose counts vary with timing.
# Per task is the slope between a run of 10 tasks and one of 10,000: the program's
# start (loading the shared libraries: libpq's TLS and Kerberos stack alone is about
# 15 million instructions) is not a cost per task.
# Usage: bench/callgrind_check.sh FLOWY_BENCH [--record]
set -eu
bench=$1
here=$(dirname "$0")
out=$(mktemp)
trace=$(mktemp -u /tmp/flowy-callgrind-XXXXXX.trace)
trap 'rm -f "$out" "$trace"' EXIT
count() {  # count N [TRACE]
    rm -f "$trace"
    if [ -n "${2:-}" ]; then
        FLOWY_TRACE=$2 valgrind --tool=callgrind --callgrind-out-file="$out" "$bench" fanout "$1" \
            --executor synchronous >/dev/null 2>&1
    else
        valgrind --tool=callgrind --callgrind-out-file="$out" "$bench" fanout "$1" --executor synchronous \
            >/dev/null 2>&1
    fi
    awk '/^(summary|totals):/ {print $2; exit}' "$out"
}
per_task() {  # per_task [TRACE]
    small=$(count 10 "${1:-}")
    large=$(count 10000 "${1:-}")
    echo $(((large - small) / 9990))
}
untraced=$(per_task)
traced=$(per_task "$trace")
if [ "${2:-}" = "--record" ]; then
    printf '# instructions per task, W1 N=10000, synchronous executor (bench/callgrind_check.sh --record)\n# untraced, then traced (a run journal)\n%s\n%s\n' \
        "$untraced" "$traced" >"$here/callgrind-baseline.txt"
    echo "recorded $untraced instructions per task untraced, $traced traced"
    exit 0
fi
base_untraced=$(grep -v '^#' "$here/callgrind-baseline.txt" | sed -n 1p)
base_traced=$(grep -v '^#' "$here/callgrind-baseline.txt" | sed -n 2p)
rc=0
for leg in untraced traced; do
    eval "now=\$$leg base=\$base_$leg"
    limit=$((base * 12 / 10))
    echo "instructions per task, $leg: $now (baseline $base, limit $limit)"
    [ "$now" -le "$limit" ] || { echo "regression: $leg is more than 20% over its baseline"; rc=1; }
done
echo "traced / untraced: $(awk "BEGIN {printf \"%.2f\", $traced / $untraced}")"
exit $rc
