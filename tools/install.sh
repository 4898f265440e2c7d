#!/usr/bin/env bash
# Installs libBuddyMalloc.so, its public headers and buddymalloc.pc under a prefix:
#
#   tools/install.sh PREFIX [BUILD-DIR]    # default BUILD-DIR .build/release (built if missing)
#   DESTDIR=/tmp/stage tools/install.sh /usr/local     # stage for packaging
#
# Result: PREFIX/lib/libBuddyMalloc.so, PREFIX/include/buddy.h (private pools) and, when the
# build has it, buddy_stats.h (the process pool's statistics), PREFIX/lib/pkgconfig/buddymalloc.pc,
# the man pages buddy-report(1), libBuddyMalloc(3) and buddymalloc(7) under PREFIX/share/man, and
# PREFIX/bin/buddy-run (which preloads the installed library), and PREFIX/bin/buddy-report when
# BUILD-DIR holds it (swift build -c release --product buddy-report).
# Then: cc app.c $(PKG_CONFIG_PATH=PREFIX/lib/pkgconfig pkg-config --cflags --libs buddymalloc)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

case "${1:-}" in
    ""|-h|--help) sed -n '2,11p' "$0"; [ -n "${1:-}" ]; exit ;;
esac
prefix="$1"
case "$prefix" in /*) ;; *) echo "install.sh: PREFIX must be an absolute path: $prefix" >&2; exit 2 ;; esac
build="${2:-}"
if [ -z "$build" ]; then
    build="$root/.build/release"
    if [ ! -f "$build/libBuddyMalloc.so" ]; then
        (cd "$root" && swift build -c release --product BuddyMalloc)
    fi
fi
[ -f "$build/libBuddyMalloc.so" ] || { echo "install.sh: no libBuddyMalloc.so in $build" >&2; exit 1; }

destination="${DESTDIR:-}$prefix"
install -d "$destination/lib/pkgconfig" "$destination/include"
install -m 755 "$build/libBuddyMalloc.so" "$destination/lib/libBuddyMalloc.so"
# The public headers only (buddy_exports.h is the library's internal list of its entry points).
for header in buddy.h buddy_stats.h; do
    source="$root/Sources/BuddyMallocAPI/include/$header"
    if [ -f "$source" ]; then install -m 644 "$source" "$destination/include/$header"; fi
done
# The man pages (docs/man/NAME.SECTION -> share/man/manSECTION/NAME.SECTION).
installed_extra=()
for page in "$root"/docs/man/*.[1-8]; do
    [ -f "$page" ] || continue
    name="$(basename "$page")"
    install -d "$destination/share/man/man${name##*.}"
    install -m 644 "$page" "$destination/share/man/man${name##*.}/$name"
    installed_extra+=("share/man/man${name##*.}/$name")
done
# buddy-run, which finds the installed library beside it (PREFIX/bin/../lib).
install -d "$destination/bin"
install -m 755 "$root/preload/buddy-run" "$destination/bin/buddy-run"
installed_extra+=("bin/buddy-run")
# The report tool, when it was built in the same folder.
if [ -f "$build/buddy-report" ]; then
    install -d "$destination/bin"
    install -m 755 "$build/buddy-report" "$destination/bin/buddy-report"
    installed_extra+=("bin/buddy-report")
fi
version="$(git -C "$root" describe --tags 2>/dev/null || echo "0.0.0+$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)")"
sed -e "s|@prefix@|$prefix|" -e 's|@libdir@|${prefix}/lib|' -e 's|@includedir@|${prefix}/include|' \
    -e "s|@version@|$version|" "$root/tools/buddymalloc.pc.in" > "$destination/lib/pkgconfig/buddymalloc.pc"
echo "installed under $destination: lib/libBuddyMalloc.so, include/buddy.h, lib/pkgconfig/buddymalloc.pc${installed_extra[*]:+, ${installed_extra[*]}}"
