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

# Journals (what runs write): each command reads them; export writes JSON Lines that
# read the same, and jq reads.
for s in seed failing child restart; do
    j="$data/journal/$s.trace"
    check "render journal $s" 0 "$flowy" render "$j" -o "$tmp/j-$s.svg"
    grep -q "<svg" "$tmp/j-$s.svg" || { echo "FAIL j-$s.svg is no SVG"; fail=1; }
    check "export journal $s" 0 "$flowy" export "$j" -o "$tmp/j-$s.jsonl"
    "$flowy" summary "$j" >"$tmp/j-sum" 2>&1
    "$flowy" summary "$tmp/j-$s.jsonl" >"$tmp/e-sum" 2>&1
    cmp -s "$tmp/j-sum" "$tmp/e-sum" || { echo "FAIL the export of $s does not summarise as the journal does"; fail=1; }
    "$flowy" render "$j" -o "$tmp/j-$s.dot" && "$flowy" render "$tmp/j-$s.jsonl" -o "$tmp/e-$s.dot" &&
        cmp -s "$tmp/j-$s.dot" "$tmp/e-$s.dot" || { echo "FAIL the export of $s draws another picture"; fail=1; }
done
head -c 1 "$tmp/j-seed.jsonl" | grep -q '{' || { echo "FAIL export did not write JSON Lines"; fail=1; }
if command -v jq >/dev/null; then
    [ "$(jq -r 'select(.event == "run_finished") | .short' "$tmp/j-seed.jsonl")" = 104 ] ||
        { echo "FAIL jq does not find the seed's result in its export"; fail=1; }
    [ "$(jq -r 'select(.event == "task_failed") | .id' "$tmp/j-failing.jsonl" | head -n 1)" = check-0-0 ] ||
        { echo "FAIL jq does not find the failed task in the failing run's export"; fail=1; }
else
    echo "FAIL jq is not installed (tools/dev deps installs it)"; fail=1
fi
# A damaged journal is refused with the record and its byte offset; so is its export.
python3 -c "import sys; d=bytearray(open(sys.argv[1],'rb').read()); d[60]^=0x5a; open(sys.argv[2],'wb').write(d)" \
    "$data/journal/seed.trace" "$tmp/damaged.trace"
check "damaged journal" 1 "$flowy" summary "$tmp/damaged.trace"
grep -q "damaged.trace: record [0-9]* (byte [0-9]*): " "$tmp/err" ||
    { echo "FAIL the error does not name the record and its offset:"; cat "$tmp/err"; fail=1; }
# ... and its export leaves what was at the output path as it was, and no half-written file.
printf 'an earlier export\n' >"$tmp/damaged.jsonl"
check "export damaged journal" 1 "$flowy" export "$tmp/damaged.trace" -o "$tmp/damaged.jsonl"
[ "$(cat "$tmp/damaged.jsonl")" = "an earlier export" ] ||
    { echo "FAIL a failed export changed the file at its output path"; fail=1; }
ls "$tmp" | grep -q partial && { echo "FAIL a failed export left a partial file"; fail=1; }
# A symbolic link, or what is not a regular file (a pipe here; /dev/stdout, which a
# rename as root would replace), is written in place: not replaced by a file.
ln -s linked.jsonl "$tmp/link.jsonl"
check "export to a link" 0 "$flowy" export "$data/journal/seed.trace" -o "$tmp/link.jsonl"
[ -L "$tmp/link.jsonl" ] && cmp -s "$tmp/linked.jsonl" "$tmp/j-seed.jsonl" ||
    { echo "FAIL an export through a symbolic link replaced the link, or wrote another text"; fail=1; }
mkfifo "$tmp/pipe"
timeout 10 cat "$tmp/pipe" >"$tmp/from-pipe" &
check "export to a pipe" 0 timeout 10 "$flowy" export "$data/journal/seed.trace" -o "$tmp/pipe"
wait
[ -p "$tmp/pipe" ] && cmp -s "$tmp/from-pipe" "$tmp/j-seed.jsonl" ||
    { echo "FAIL an export to a pipe replaced the pipe, or wrote another text"; fail=1; }
check "export missing trace" 1 "$flowy" export "$tmp/none.trace" -o "$tmp/none.jsonl"
exit $fail
