#!/usr/bin/env bash
# The engine's and the private pools' tests (BuddyCoreTests, BuddyPoolTests) under
# ThreadSanitizer, then under AddressSanitizer with UndefinedBehaviorSanitizer for the C code,
# each in a build folder of its own (.build-tsan, .build-asan). Not part of tools/test: the two
# builds take 3 to 5 minutes each on 2 cores (more when the machine is busy).
#
# UBSan covers CBuddySupport's C only (-Xcc -fsanitize=undefined; ASan's runtime carries UBSan's
# handlers): swiftc refuses -sanitize=undefined on Linux ("unsupported option '-sanitize=undefined'
# for target 'x86_64-unknown-linux-gnu'", Swift 6.3.1), so `swift build --sanitize=undefined`
# fails. Swift code traps on overflow and out-of-bounds by itself (except the &+ family and
# unsafe pointers, which ASan watches where the memory is malloc's: a pool's own pages are mmap'd
# and unpoisoned, so ASan cannot see overruns inside them; the fuzzer's stamps do).
#
#   tools/sanitize.sh [thread|address|all]      default all; logs: .build-tsan/sanitize.log and
#                                               .build-asan/sanitize.log (builds: sanitize-build.log)
#
# Left out, in both: ProgramTests (BuddyPoolTests' "Programs" suite). It compiles C and C++
# programs against the built libBuddyMalloc.so, which a sanitizer build instruments, so they
# cannot link without the sanitizer's runtime (undefined __tsan_*/__asan_* symbols); and the
# preloaded library cannot run under a sanitizer anyway (the sanitizer's runtime owns malloc).
# The PreloadTests and BuddyReportTests are not run here either (the first are about
# LD_PRELOAD, the second never link the allocator).
#
# ThreadSanitizer runs with Tests/Sanitizers/tsan.supp: the engine's lock word is passed to the
# C lock as an inout pointer, which Swift's instrumentation reports as a race on every contended
# take (see the file). A report of any other race fails the run (exit status 66 from the test
# process). ASan runs with detect_leaks=0: LeakSanitizer's only report is XCTest's own (144 bytes
# in 2 objects from XCTMainMisc and XCTestSuiteRun, in the XCTest pass, which has no tests here),
# and it turns that pass's exit status into a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
filter='BuddyCoreTests|BuddyPoolTests'
status=0
run() {
    local name=$1 folder=$2
    shift 2
    echo "sanitize: building for $name in $folder" >&2
    mkdir -p "$folder"
    swift build --build-tests "$@" --scratch-path "$folder" >"$folder/sanitize-build.log" 2>&1 \
        || { tail -n 30 "$folder/sanitize-build.log" >&2; return 1; }
    echo "sanitize: testing ($filter, without ProgramTests) under $name" >&2
    local result=0
    swift test --skip-build "$@" --scratch-path "$folder" --filter "$filter" --skip ProgramTests \
        >"$folder/sanitize.log" 2>&1 || result=$?
    local reports
    reports=$(grep -cE '^(WARNING: ThreadSanitizer|==[0-9]+==ERROR: AddressSanitizer)|runtime error:' "$folder/sanitize.log" || true)
    grep -E '^. Test run with' "$folder/sanitize.log" | tail -n 1 >&2 || true
    echo "sanitize: $name: exit status $result, $reports sanitizer reports (log: $folder/sanitize.log)" >&2
    [ "$result" -eq 0 ] && [ "$reports" -eq 0 ]
}
if [ "$which" = thread ] || [ "$which" = all ]; then
    TSAN_OPTIONS="suppressions=$PWD/Tests/Sanitizers/tsan.supp${TSAN_OPTIONS:+:$TSAN_OPTIONS}" \
        run ThreadSanitizer .build-tsan --sanitize=thread || status=1
fi
if [ "$which" = address ] || [ "$which" = all ]; then
    ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
    UBSAN_OPTIONS="print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}" \
        run "AddressSanitizer+UBSan" .build-asan --sanitize=address -Xcc -fsanitize=undefined || status=1
fi
exit "$status"
