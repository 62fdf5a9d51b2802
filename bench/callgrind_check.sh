#!/bin/sh
# Counts the instructions per task of W1 (10,000 empty tasks, then a join) with
# callgrind, which counts the same on a noisy machine, and fails if they grew by more
# than 20% over the number recorded in bench/callgrind-baseline.txt. It uses the
# synchronous executor: the engine's own work (scheduling, serialisation, calling the
# activity) without the spin loops of the process pool, whose counts vary with timing.
# Per task is the slope between a run of 10 tasks and one of 10,000: the program's
# start (loading the shared libraries: libpq's TLS and Kerberos stack alone is about
# 15 million instructions) is not a cost per task.
# Usage: bench/callgrind_check.sh FLOWY_BENCH [--record]
set -eu
bench=$1
here=$(dirname "$0")
out=$(mktemp)
trap 'rm -f "$out"' EXIT
count() {
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bench" fanout "$1" --executor synchronous >/dev/null 2>&1
    awk '/^(summary|totals):/ {print $2; exit}' "$out"
}
small=$(count 10)
large=$(count 10000)
per_task=$(((large - small) / 9990))
baseline=$(grep -v '^#' "$here/callgrind-baseline.txt" | head -n 1)
if [ "${2:-}" = "--record" ]; then
    printf '# instructions per task, W1 N=10000, synchronous executor (bench/callgrind_check.sh --record)\n%s\n' \
        "$per_task" >"$here/callgrind-baseline.txt"
    echo "recorded $per_task instructions per task"
    exit 0
fi
limit=$((baseline * 12 / 10))
echo "instructions per task: $per_task (baseline $baseline, limit $limit)"
[ "$per_task" -le "$limit" ] || { echo "regression: more than 20% over the baseline"; exit 1; }
