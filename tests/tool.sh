#!/bin/sh
# The flowy tool: each command on a recorded trace, its exit codes (0 done, 1 failed,
# 2 bad usage), errors that name the file and line, no colour without a terminal.
# Usage: tool.sh FLOWY DATA_DIR VERSION
set -u
flowy=$1 data=$2 version=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() {  # check NAME EXPECTED_RC COMMAND...
    name=$1 want=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" != "$want" ]; then
        echo "FAIL $name: exit $rc, expected $want"; cat "$tmp/err"; fail=1
    else
        echo "ok   $name"
    fi
}
for s in seed failing child restart large; do
    check "render $s svg" 0 "$flowy" render "$data/$s.jsonl" -o "$tmp/$s.svg"
    grep -q "<svg" "$tmp/$s.svg" || { echo "FAIL $s.svg is no SVG"; fail=1; }
    check "render $s dot" 0 "$flowy" render "$data/$s.jsonl" -o "$tmp/$s.dot"
    cmp -s "$tmp/$s.dot" "$data/$s.dot" || { echo "FAIL $s.dot differs from the checked-in one"; fail=1; }
    check "timeline $s" 0 "$flowy" timeline "$data/$s.jsonl" -o "$tmp/$s.json"
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['traceEvents']" "$tmp/$s.json" \
        || { echo "FAIL timeline $s is not trace-event JSON"; fail=1; }
    check "summary $s" 0 "$flowy" summary "$data/$s.jsonl"
done
check "render png" 0 "$flowy" render "$data/seed.jsonl" -o "$tmp/seed.png"
head -c 8 "$tmp/seed.png" | od -c | grep -q "P   N   G" || { echo "FAIL seed.png is no PNG"; fail=1; }
"$flowy" summary "$data/seed.jsonl" >"$tmp/sum"
grep -q "critical path" "$tmp/sum" || { echo "FAIL summary has no critical path"; fail=1; }
grep -q "$(printf '\033')" "$tmp/sum" && { echo "FAIL colour written to a file"; fail=1; }

check "no command" 2 "$flowy"
check "unknown command" 2 "$flowy" paint "$data/seed.jsonl"
check "missing file" 1 "$flowy" summary "$tmp/none.jsonl"
grep -q "none.jsonl: cannot open the trace: No such file or directory" "$tmp/err" ||
    { echo "FAIL a missing trace is not named with the reason:"; cat "$tmp/err"; fail=1; }
check "a directory" 1 "$flowy" render "$tmp" -o "$tmp/x.svg"
check "bad output name" 2 "$flowy" render "$data/seed.jsonl" -o "$tmp/x.gif"
check "help" 0 "$flowy" render --help
check "top help" 0 "$flowy" --help
for c in render timeline summary; do
    grep -q "^  $c " "$tmp/out" || { echo "FAIL flowy --help does not list $c:"; cat "$tmp/out"; fail=1; }
done
check "version" 0 "$flowy" --version
[ "$(cat "$tmp/out")" = "flowy $version" ] || { echo "FAIL flowy --version printed '$(cat "$tmp/out")', not 'flowy $version'"; fail=1; }
head -n 2 "$data/seed.jsonl" >"$tmp/bad.jsonl"
echo '{"t": 1, "event": ' >>"$tmp/bad.jsonl"
echo '{}' >>"$tmp/bad.jsonl"
check "corrupt trace" 1 "$flowy" summary "$tmp/bad.jsonl"
grep -q "bad.jsonl:3: bad JSON" "$tmp/err" || { echo "FAIL the error does not name file and line:"; cat "$tmp/err"; fail=1; }
exit $fail
