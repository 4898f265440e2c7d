#!/usr/bin/env bash
# The fork regression programs, many runs in a row (default 100 each): a deadlock in any run is
# a failure. The test suite runs each once; this is the longer check the README documents.
#   tools/fork-soak.sh [RUNS] [SECONDS-PER-RUN]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-100}
seconds=${2:-0.5}
lib=${BUDDY:-$PWD/.build/release/libBuddyMalloc.so}
[ -f "$lib" ] || { echo "fork-soak: $lib not found: run 'swift build -c release --product BuddyMalloc' first" >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for p in fork_signal fork_stdio; do
    gcc -O2 -g -fno-builtin -pthread -o "$out/$p" "Tests/Programs/$p.c"
done
failures=0
for mode in auto always; do
    for p in fork_signal fork_stdio; do
        [ "$p" = fork_stdio ] && [ "$mode" = always ] && continue
        ok=0
        for i in $(seq "$runs"); do
            if timeout 30 env BUDDY_THREAD_SAFETY=$mode LD_PRELOAD="$lib" "$out/$p" "$seconds" >/dev/null; then
                ok=$((ok + 1))
            else
                echo "fork-soak: $p (BUDDY_THREAD_SAFETY=$mode) run $i failed or hung (exit $?)" >&2
            fi
            [ $((i % 10)) -eq 0 ] && printf '%s %s: %d/%d\r' "$p" "$mode" "$i" "$runs" >&2
        done
        echo "$p BUDDY_THREAD_SAFETY=$mode: $ok of $runs runs passed"
        failures=$((failures + runs - ok))
    done
done
[ "$failures" -eq 0 ]
