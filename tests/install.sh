#!/bin/sh
# A user's program builds against flowy: through meson's uninstalled pkg-config file,
# and after `meson install` (into a scratch DESTDIR) with pkg-config and with CMake's
# find_package; the installed tool runs from its prefix; the installed library is
# stripped.
# Usage: install.sh BUILD_DIR SOURCE_DIR CXX
set -eu
build=$1 src=$2 cxx=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== against the build tree (meson-uninstalled/flowy-uninstalled.pc)"
PKG_CONFIG_PATH="$build/meson-uninstalled" $cxx "$src/samples/example.cpp" -o "$tmp/uninstalled" \
    $(PKG_CONFIG_PATH="$build/meson-uninstalled" pkg-config --cflags --libs flowy)
out=$(LD_LIBRARY_PATH="$build/src" "$tmp/uninstalled")
[ "$out" = 104 ] || { echo "uninstalled build printed '$out'"; exit 1; }
# the lean include: only std::string's and std::vector's serialisers
PKG_CONFIG_PATH="$build/meson-uninstalled" $cxx -DFLOWY_MINIMAL_SERIALIZERS "$src/samples/example.cpp" \
    -o "$tmp/minimal" $(PKG_CONFIG_PATH="$build/meson-uninstalled" pkg-config --cflags --libs flowy)
out=$(LD_LIBRARY_PATH="$build/src" "$tmp/minimal")
[ "$out" = 104 ] || { echo "the FLOWY_MINIMAL_SERIALIZERS build printed '$out'"; exit 1; }

echo "== after meson install: pkg-config"
meson install -C "$build" --no-rebuild --quiet --destdir "$tmp/root" >/dev/null
pc=$(dirname "$(find "$tmp/root" -name flowy.pc | head -n 1)")
prefix=$(PKG_CONFIG_PATH="$pc" pkg-config --variable=prefix flowy)
# a user needs no -dev package of what the shared library links (Graphviz, Boost)
if grep -q '^Requires' "$pc/flowy.pc"; then echo "flowy.pc requires: $(grep '^Requires' "$pc/flowy.pc")"; exit 1; fi
flags=$(PKG_CONFIG_PATH="$pc" pkg-config --define-variable=prefix="$tmp/root$prefix" --cflags --libs flowy)
$cxx "$src/samples/example.cpp" -o "$tmp/installed" $flags
libdir=$(PKG_CONFIG_PATH="$pc" pkg-config --define-variable=prefix="$tmp/root$prefix" --variable=libdir flowy)
out=$(LD_LIBRARY_PATH="$libdir" "$tmp/installed")
[ "$out" = 104 ] || { echo "installed build printed '$out'"; exit 1; }

echo "== after meson install: the tool runs from its prefix, the library is stripped"
out=$(env -u LD_LIBRARY_PATH "$tmp/root$prefix/bin/flowy" --version)
case "$out" in "flowy "[0-9]*) ;; *) echo "the installed tool printed '$out'"; exit 1 ;; esac
if readelf -S "$libdir/libflowy.so" | grep -q '\.debug_info'; then
    echo "the installed libflowy.so keeps its debug information ($(du -k "$libdir/libflowy.so" | cut -f1) KiB)"
    exit 1
fi

if command -v cmake >/dev/null; then
    echo "== after meson install: CMake's find_package(flowy 0.1 CONFIG REQUIRED)"
    mkdir -p "$tmp/cmake"
    cp "$src/samples/example.cpp" "$tmp/cmake/"
    cat >"$tmp/cmake/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.16)
project(consumer CXX)
find_package(flowy ${WANT} CONFIG REQUIRED)
add_executable(example example.cpp)
target_link_libraries(example PRIVATE flowy::flowy)
CM
    cmake -S "$tmp/cmake" -B "$tmp/cmake/build" -DWANT=0.1 -DCMAKE_CXX_COMPILER="$cxx" \
        -DCMAKE_PREFIX_PATH="$tmp/root$prefix" >"$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log"; exit 1; }
    cmake --build "$tmp/cmake/build" >"$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log"; exit 1; }
    out=$("$tmp/cmake/build/example")  # CMake's build rpath finds the library
    [ "$out" = 104 ] || { echo "the CMake build printed '$out'"; exit 1; }
    # The version file: another minor version is another API (0.x).
    if cmake -S "$tmp/cmake" -B "$tmp/cmake/build2" -DWANT=0.2 -DCMAKE_PREFIX_PATH="$tmp/root$prefix" \
        >"$tmp/cmake.log" 2>&1; then
        echo "find_package(flowy 0.2) accepted version $(grep -o 'PACKAGE_VERSION "[^"]*"' -r "$tmp/root" | head -1)"
        exit 1
    fi
    grep -q "requested version \"0.2\"" "$tmp/cmake.log" || { cat "$tmp/cmake.log"; exit 1; }
fi
echo "== as a meson subproject: only the library and the tool are built"
mkdir -p "$tmp/sub/subprojects"
ln -s "$src" "$tmp/sub/subprojects/flowy"
cp "$src/samples/example.cpp" "$tmp/sub/"
printf '%s\n' "project('consumer', 'cpp', default_options : ['cpp_std=c++20'])" \
    "flowy_dep = dependency('flowy', fallback : ['flowy', 'flowy_dep'])" \
    "executable('example', 'example.cpp', dependencies : flowy_dep)" >"$tmp/sub/meson.build"
meson setup "$tmp/sub/build" "$tmp/sub" >"$tmp/sub.log" 2>&1 || { cat "$tmp/sub.log"; exit 1; }
targets=$(meson introspect "$tmp/sub/build" --targets |
    python3 -c "import json, sys; print(' '.join(sorted(t['name'] for t in json.load(sys.stdin))))")
[ "$targets" = "example flowy flowy" ] || { echo "a subproject build defines: $targets"; exit 1; }
echo "pkg-config (uninstalled, installed) and CMake builds print 104; the installed tool runs; a subproject builds no tests"
