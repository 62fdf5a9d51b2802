#!/bin/bash
# How the trace tools scale: `flowy summary`, `render`, `timeline` and `export` of W1 and
# W2 traces of N and 10 N tasks (run journals written by flowy_bench with FLOWY_TRACE),
# interleaved, REPS times. Prints each command's median wall time and peak RSS at both
# sizes and the ratio of the large one's time per task to the small one's: linear tools
# stay near 1.0.
#   bench/tools.sh BUILD_DIR [N=100000] [REPS=3]
set -euo pipefail
build=${1:-build}; n=${2:-100000}; reps=${3:-3}
flowy="$build/tools/flowy"
dir=$(mktemp -d /tmp/flowy-tools-XXXXXX)
trap 'rm -rf "$dir"' EXIT
big=$((10 * n))
for shape in fanout chain; do
    for size in "$n" "$big"; do
        FLOWY_TRACE="$dir/$shape-$size.trace" "$build/bench/flowy_bench" "$shape" "$size" >/dev/null
    done
done
: >"$dir/times"
for ((i = 0; i < reps; i++)); do
    for shape in fanout chain; do
        for size in "$n" "$big"; do
            t="$dir/$shape-$size.trace"
            for cmd in summary render timeline export; do
                case $cmd in
                summary) args=("$t") ;;
                render) args=("$t" -o "$dir/out.svg") ;;
                timeline) args=("$t" -o "$dir/out.json") ;;
                export) args=("$t" -o "$dir/out.jsonl") ;;
                esac
                /usr/bin/time -f "$shape $size $cmd %e %M" -a -o "$dir/times" "$flowy" "$cmd" "${args[@]}" >/dev/null
            done
        done
    done
done
python3 - "$dir/times" "$n" "$big" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    parts = line.split()
    if len(parts) != 5 or not parts[3].replace('.', '').isdigit():
        continue  # /usr/bin/time's own lines about a failed command
    shape, size, cmd, secs, kib = parts
    rows.setdefault((shape, cmd, int(size)), []).append((float(secs), int(kib)))
small, big = int(sys.argv[2]), int(sys.argv[3])
print(f"trace tools, medians of {len(next(iter(rows.values())))} interleaved runs: N = {small:,} and {big:,} tasks")
print(f"| shape | command | {small:,} tasks | {big:,} tasks | time per task, {big:,} / {small:,} | peak RSS per task at {big:,} |")
print("|---|---|--:|--:|--:|--:|")
for shape in ("fanout", "chain"):
    for cmd in ("summary", "render", "timeline", "export"):
        a, b = rows.get((shape, cmd, small)), rows.get((shape, cmd, big))
        if not a or not b:
            continue
        ta, tb = statistics.median(x[0] for x in a), statistics.median(x[0] for x in b)
        rss = statistics.median(x[1] for x in b) * 1024 / big
        print(f"| {shape} | {cmd} | {ta:.2f} s | {tb:.2f} s | {tb / big / (ta / small):.2f} | {rss:.0f} B |")
PY
