#!/bin/sh
# A user's program builds against flowy with pkg-config: through meson's
# uninstalled .pc file, and after `meson install` (into a scratch DESTDIR).
# Usage: pkgconfig.sh BUILD_DIR SOURCE_DIR CXX
set -eu
build=$1 src=$2 cxx=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== against the build tree (meson-uninstalled/flowy-uninstalled.pc)"
PKG_CONFIG_PATH="$build/meson-uninstalled" $cxx "$src/samples/example.cpp" -o "$tmp/uninstalled" \
    $(PKG_CONFIG_PATH="$build/meson-uninstalled" pkg-config --cflags --libs flowy)
out=$(LD_LIBRARY_PATH="$build/src" "$tmp/uninstalled")
[ "$out" = 104 ] || { echo "uninstalled build printed '$out'"; exit 1; }

echo "== after meson install"
meson install -C "$build" --no-rebuild --quiet --destdir "$tmp/root" >/dev/null
pc=$(dirname "$(find "$tmp/root" -name flowy.pc | head -n 1)")
prefix=$(PKG_CONFIG_PATH="$pc" pkg-config --variable=prefix flowy)
flags=$(PKG_CONFIG_PATH="$pc" pkg-config --define-variable=prefix="$tmp/root$prefix" --cflags --libs flowy)
$cxx "$src/samples/example.cpp" -o "$tmp/installed" $flags
libdir=$(PKG_CONFIG_PATH="$pc" pkg-config --define-variable=prefix="$tmp/root$prefix" --variable=libdir flowy)
out=$(LD_LIBRARY_PATH="$libdir" "$tmp/installed")
[ "$out" = 104 ] || { echo "installed build printed '$out'"; exit 1; }
echo "both builds print 104"
