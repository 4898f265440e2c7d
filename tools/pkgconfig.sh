#!/usr/bin/env bash
# Generates buddymalloc.pc for a build folder, so programs build against the library in place:
#
#   tools/pkgconfig.sh [BUILD-DIR]        # default .build/release; writes BUILD-DIR/pkgconfig/buddymalloc.pc
#   cc app.c $(PKG_CONFIG_PATH=BUILD-DIR/pkgconfig pkg-config --cflags --libs buddymalloc)
#
# The .pc points at BUILD-DIR for the library (with an rpath, so the program runs without
# LD_LIBRARY_PATH) and at Sources/BuddyMallocAPI/include for buddy.h. To install the library,
# the header and the .pc under a prefix, use tools/install.sh.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

case "${1:-}" in
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
esac
build="${1:-$root/.build/release}"
[ -d "$build" ] || { echo "pkgconfig.sh: no folder $build (build first: swift build -c release --product BuddyMalloc)" >&2; exit 1; }
build="$(cd "$build" && pwd)"
[ -f "$build/libBuddyMalloc.so" ] || { echo "pkgconfig.sh: no libBuddyMalloc.so in $build (build first: swift build -c release --product BuddyMalloc)" >&2; exit 1; }

version="$(git -C "$root" describe --tags 2>/dev/null || echo "0.0.0+$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)")"
mkdir -p "$build/pkgconfig"
# Write beside the target and rename: a reader (or a parallel run) never sees half a file.
partial="$(mktemp "$build/pkgconfig/.buddymalloc.pc.XXXXXX")"
sed -e "s|@prefix@|$build|" -e "s|@libdir@|$build|" \
    -e "s|@includedir@|$root/Sources/BuddyMallocAPI/include|" -e "s|@version@|$version|" \
    "$root/tools/buddymalloc.pc.in" > "$partial"
mv -f "$partial" "$build/pkgconfig/buddymalloc.pc"
echo "$build/pkgconfig/buddymalloc.pc"
