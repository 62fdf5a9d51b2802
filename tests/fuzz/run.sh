#!/bin/sh
# Builds the trace-reader fuzz target with clang (libFuzzer, ASan, UBSan) and runs it
# for SECONDS (default 60) from the recorded traces in tests/data (JSON Lines) and
# tests/data/journal (journals). Exits non-zero on a
# crash; the reproducer is left in the work directory.
# Usage: tests/fuzz/run.sh [SECONDS] [WORKDIR]
set -eu
cd "$(dirname "$0")/../.."
seconds=${1:-60}
work=${2:-build-fuzz}
cxx=$(command -v clang++-14 || command -v clang++)
mkdir -p "$work/corpus"
cp tests/data/*.jsonl tests/data/journal/*.trace "$work/corpus/" 2>/dev/null || true
# the large trace is slow to mutate: keep its first lines only
head -n 40 tests/data/large.jsonl >"$work/corpus/large.jsonl"
$cxx -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION \
    -Iinclude -Isrc $(pkg-config --cflags libgvc) \
    tests/fuzz/fuzz_trace.cpp src/trace/reader.cpp src/trace/journal.cpp src/trace/json.cpp src/trace/writer.cpp \
    src/render/report.cpp src/render/dot.cpp src/render/ci.cpp src/command/run_command.cpp \
    $(pkg-config --libs libgvc) -o "$work/fuzz_trace"
# Graphviz keeps a little memory in fontconfig/pango on purpose: no leak check here.
ASAN_OPTIONS=detect_leaks=0 "$work/fuzz_trace" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
    -artifact_prefix="$work/" "$work/corpus" 2>&1 | tail -n 5
