#!/usr/bin/env bash
# Builds the libFuzzer target of the operation-sequence fuzzer and runs it on the corpus.
#
#   tools/fuzz.sh [SECONDS] [-- LIBFUZZER-OPTIONS...]     default 60 s
#
# The engine's and malloc core's sources, Tests/BuddyCoreTests/FuzzDriver.swift and Tests/Fuzz/main.swift are
# compiled into one module by swiftc -sanitize=fuzzer,address (-D BUDDY_FUZZER), outside SwiftPM;
# CBuddySupport's C files by clang with -fsanitize=fuzzer-no-link,address. The binary is
# .build-fuzz/buddy-fuzz. The run starts from a copy of Tests/Fuzz/corpus (the committed corpus
# is not changed: copy an input into it by hand when it is worth keeping) and writes a crash
# input to .build-fuzz/ (libFuzzer prints its name and bytes; FuzzTests can replay it once
# it is in the corpus). Error lines of C pools with on_error = log go to .build-fuzz/fuzz.log
# with libFuzzer's output (FUZZ_QUIET=1 turns them off). Inputs are at most 1 KiB
# (about 400 operations; -max_len=N after -- changes it). The build's output: .build-fuzz/build.log.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
out=.build-fuzz
mkdir -p "$out/obj" "$out/module"
: >"$out/build.log"
root=$PWD
cat >"$out/module/module.modulemap" <<MAP
module CBuddySupport {
    umbrella "$root/Sources/CBuddySupport/include"
    export *
}
MAP
clang=$(dirname "$(readlink -f "$(command -v swiftc)")")/clang
objects=()
for c in Sources/CBuddySupport/*.c; do
    o="$out/obj/$(basename "$c" .c).o"
    "$clang" -c -O1 -g -fsanitize=fuzzer-no-link,address -I Sources/CBuddySupport/include -I Sources/BuddyMallocAPI/include "$c" -o "$o" \
        >>"$out/build.log" 2>&1 || { cat "$out/build.log" >&2; exit 1; }
    objects+=("$o")
done
# The engine's and malloc core's sources as one module (no cross-module imports between them).
rm -rf "$out/src" && mkdir -p "$out/src"
for f in Sources/BuddyEngine/*.swift Sources/BuddyMallocCore/*.swift; do
    sed '/^import BuddyEngine$/d' "$f" > "$out/src/$(basename "$(dirname "$f")")_$(basename "$f")"
done
swiftc -O -g -enforce-exclusivity=unchecked -sanitize=fuzzer,address -parse-as-library \
    -module-name BuddyFuzz -package-name BuddyMalloc -D BUDDY_FUZZER -I "$out/module" \
    -Xcc -I -Xcc Sources/CBuddySupport/include -Xcc -I -Xcc Sources/BuddyMallocAPI/include \
    "$out/src"/*.swift Tests/BuddyCoreTests/FuzzDriver.swift Tests/Fuzz/main.swift \
    "${objects[@]}" -o "$out/buddy-fuzz" >>"$out/build.log" 2>&1 || { grep -v 'Cannot export local symbol' "$out/build.log" >&2; exit 1; }
rm -rf "$out/corpus"
cp -r Tests/Fuzz/corpus "$out/corpus"
echo "fuzz: running $out/buddy-fuzz for $seconds s (log: $out/fuzz.log)" >&2
status=0
SWIFT_BACKTRACE=enable=no "$out/buddy-fuzz" -max_total_time="$seconds" -max_len=1024 -timeout=30 -rss_limit_mb=4096 \
    -artifact_prefix="$out/" -print_final_stats=1 "$@" "$out/corpus" >"$out/fuzz.log" 2>&1 || status=$?
grep -E '^(stat::number_of_executed_runs|stat::peak_rss_mb|Done|#[0-9]+ +DONE)|buddy fuzz:|ERROR|SUMMARY|Test unit written' "$out/fuzz.log" >&2 || true
tail -n 1 "$out/fuzz.log" >&2
[ "$status" -eq 0 ] && echo "fuzz: ok, no failure in $seconds s; corpus grew to $(ls "$out/corpus" | wc -l) inputs" >&2
exit "$status"
