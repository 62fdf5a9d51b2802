#!/bin/sh
# Counts the instructions per task of W1 (10,000 empty tasks, then a join) with
# callgrind, which counts the same on a noisy machine, and fails if they grew by more
# than 20% over the number recorded in bench/callgrind-baseline.txt. It uses the
# synchronous executor: the engine's own work (scheduling, serialisation, calling the
# activity) without the spin loops of the process pool, whose counts vary with timing.
# Usage: bench/callgrind_check.sh FLOWY_BENCH [--record]
set -eu
bench=$1
here=$(dirname "$0")
out=$(mktemp)
trap 'rm -f "$out"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$out" "$bench" fanout 10000 --executor synchronous >/dev/null 2>&1
total=$(awk '/^(summary|totals):/ {print $2; exit}' "$out")
per_task=$((total / 10001))
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
