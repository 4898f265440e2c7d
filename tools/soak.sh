#!/usr/bin/env bash
# The soak of issue 13: a larson-style load (Tests/Programs/larson_soak.c: THREADS threads
# exchanging blocks through a shared table, so most blocks are freed by a thread that did not
# allocate them) under LD_PRELOAD of the release library for SECONDS, with a report signal
# (SIGUSR1, BUDDY_REPORT to a temporary folder) every second and a fork every 5 seconds (the
# child allocates a little and exits). The resident set (VmRSS) is sampled every second.
#
#   tools/soak.sh [SECONDS] [THREADS]      defaults: 600 s, 8 threads; $BUDDY: the library
#
# The run is cut into ten windows of SECONDS/10 (minutes for the 10-minute soak); one line per
# window gives its mean and largest RSS. Verdict "ok" when:
#   - the driver finished with "larson_soak: ok" (every block's stamp checked, every child
#     exited 0) within SECONDS + 60 s, and its operation count grew every second (no deadlock,
#     no stall);
#   - every signal's report arrived as a non-empty file (report.<sequence>, deleted once counted);
#   - no upward trend: the mean RSS of the last window is at most the second window's mean
#     (the first is warm-up) times 1.10 plus 4 MiB;
#   - bounded: no sample after the first window exceeds the second window's mean times 1.5
#     plus 16 MiB.
# Exit status 0 for "ok"; the samples are kept in $SOAK_SAMPLES when it is set.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
threads=${2:-8}
lib=${BUDDY:-$PWD/.build/release/libBuddyMalloc.so}
[ -f "$lib" ] || { echo "soak: $lib not found: run 'swift build -c release --product BuddyMalloc' first" >&2; exit 2; }
[ "$seconds" -ge 10 ] || { echo "soak: SECONDS must be at least 10" >&2; exit 2; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/buddy-soak.XXXXXX")
pid=
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
mkdir "$tmp/reports"
gcc -O2 -g -fno-builtin -pthread -o "$tmp/larson_soak" Tests/Programs/larson_soak.c
seed=${SOAK_SEED:-$RANDOM}
echo "soak: $threads threads for $seconds s, seed $seed, library $lib" >&2
BUDDY_REPORT="$tmp/reports/report" LD_PRELOAD="$lib" \
    "$tmp/larson_soak" "$threads" "$seconds" "$seed" 5 >"$tmp/out" 2>"$tmp/err" &
pid=$!
start=$(date +%s.%N)
samples="$tmp/samples"
: >"$samples"
signals=0 reports=0 empty=0 deadline=$((seconds + 60)) timed_out=0
while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    now=$(date +%s.%N)
    elapsed=$(awk -v a="$start" -v b="$now" 'BEGIN { printf "%.1f", b - a }')
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
    [ -n "$rss" ] || break
    echo "$elapsed $rss" >>"$samples"
    kill -USR1 "$pid" 2>/dev/null && signals=$((signals + 1))
    # Count and delete the reports written so far (the newest may still be being written: a
    # report goes to a temporary name and is renamed, so every report.N seen is complete).
    for f in "$tmp/reports"/report.[0-9]*; do
        [ -e "$f" ] || continue
        case "$f" in *.tmp.*) continue ;; esac
        if [ -s "$f" ]; then reports=$((reports + 1)); else empty=$((empty + 1)); fi
        rm -f "$f"
    done
    if awk -v e="$elapsed" -v d="$deadline" 'BEGIN { exit !(e > d) }'; then
        timed_out=1
        kill -KILL "$pid" 2>/dev/null || true
        break
    fi
done
status=0
wait "$pid" || status=$?
pid=
sleep 0.2
for f in "$tmp/reports"/report.[0-9]*; do
    [ -e "$f" ] || continue
    case "$f" in *.tmp.*) continue ;; esac
    if [ -s "$f" ]; then reports=$((reports + 1)); else empty=$((empty + 1)); fi
done
[ -n "${SOAK_SAMPLES:-}" ] && cp "$samples" "$SOAK_SAMPLES"
tail -n 1 "$tmp/out" >&2
[ -s "$tmp/err" ] && sed 's/^/soak: driver: /' "$tmp/err" | head -n 20 >&2

python3 - "$samples" "$tmp/out" "$seconds" "$status" "$timed_out" "$signals" "$reports" "$empty" <<'EOF'
import sys
samples_path, out_path, seconds, status, timed_out, signals, reports, empty = sys.argv[1:]
seconds, status, timed_out = int(seconds), int(status), int(timed_out)
signals, reports, empty = int(signals), int(reports), int(empty)
samples = [tuple(map(float, line.split())) for line in open(samples_path) if line.strip()]
window = seconds / 10
means, peaks = [], []
for w in range(10):
    rss = [kb for t, kb in samples if w * window <= t < (w + 1) * window]
    means.append(sum(rss) / len(rss) if rss else float("nan"))
    peaks.append(max(rss) if rss else float("nan"))
    unit = "min" if seconds == 600 else "window"
    print(f"{unit} {w + 1:2d} ({w * window:5.0f}-{(w + 1) * window:5.0f} s): RSS mean {means[-1] / 1024:7.1f} MiB, max {peaks[-1] / 1024:7.1f} MiB, {len(rss)} samples")
problems = []
lines = open(out_path).read().splitlines()
ticks = [int(l.split("ops=")[1]) for l in lines if l.startswith("t=")]
if timed_out:
    problems.append(f"no end {seconds + 60} s after the start: killed (deadlock?)")
if status != 0 or not lines or not lines[-1].startswith("larson_soak: ok"):
    problems.append(f"driver failed: exit status {status}, last line {lines[-1] if lines else '(none)'!r}")
stalls = [i + 2 for i in range(len(ticks) - 1) if ticks[i + 1] <= ticks[i]]
if stalls:
    problems.append(f"no progress in second(s) {stalls[:10]}")
if len(ticks) < seconds:
    problems.append(f"{len(ticks)} progress lines for {seconds} s")
if empty or reports < signals * 0.9:
    problems.append(f"{signals} signals sent, {reports} reports read, {empty} empty")
early, late = means[1], means[9]
if not (late <= early * 1.10 + 4096):
    problems.append(f"upward trend: last window {late / 1024:.1f} MiB > second window {early / 1024:.1f} MiB x 1.10 + 4 MiB")
bound = early * 1.5 + 16384
high = [kb for t, kb in samples if t >= window and kb > bound]
if high:
    problems.append(f"{len(high)} samples above {bound / 1024:.1f} MiB (largest {max(high) / 1024:.1f} MiB)")
print(f"signals {signals}, reports {reports}, forks {lines[-1].split('forks=')[1] if 'forks=' in (lines[-1] if lines else '') else '?'}, "
      f"ops {ticks[-1] if ticks else 0}, max RSS {max(kb for _, kb in samples) / 1024:.1f} MiB")
if problems:
    for p in problems:
        print("soak: FAIL: " + p)
    sys.exit(1)
print(f"soak: ok (last window {late / 1024:.1f} MiB vs second {early / 1024:.1f} MiB: {100 * (late / early - 1):+.1f}%)")
EOF
