#!/bin/sh
# Runs a sample and checks the last line it prints. Usage: run_sample.sh EXE EXPECTED [ARGS...]
set -eu
exe=$1 expected=$2
shift 2
out=$("$exe" "$@")
last=$(printf '%s\n' "$out" | tail -n 1)
if [ "$last" != "$expected" ]; then
    printf 'expected %s, got:\n%s\n' "$expected" "$out"
    exit 1
fi
echo "$last"
