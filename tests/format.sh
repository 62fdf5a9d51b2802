#!/bin/sh
# Fails on any source file that clang-format (with the repository's .clang-format)
# would change, naming the files and the first lines it would change.
# Usage: tests/format.sh SOURCE_ROOT
set -eu
cd "$1"
clang_format=$(command -v clang-format-14 || command -v clang-format)
files=$(find include src tools tests bench samples -name '*.cpp' -o -name '*.hpp' | grep -v '^tests/data/' | sort)
if ! out=$("$clang_format" --dry-run --Werror $files 2>&1); then
    echo "$out" | head -n 40
    echo "format: these files differ from clang-format's output: run clang-format -i on them" >&2
    echo "$out" | grep -o '^[^:]*:[0-9]*:[0-9]*: error' | cut -d: -f1 | sort -u >&2
    exit 1
fi
echo "format: $(echo "$files" | wc -l) files as clang-format writes them"
