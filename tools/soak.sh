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
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/reports"
gcc -O2 -g -fno-builtin -pthread -o "$tmp/larson_soak" Tests/Programs/larson_soak.c
seed=${SOAK_SEED:-$RANDOM}
echo "soak: $threads threads for $seconds s, seed $seed, library $lib" >&2
export SOAK_LIBRARY="$lib" SOAK_FOLDER="$tmp"
# The monitor: starts the driver, samples VmRSS and sends SIGUSR1 on every whole second after
# the start, counts and deletes the reports, kills the driver SECONDS + 60 s after the start.
python3 - "$threads" "$seconds" "$seed" <<'MONITOR'
import os, signal, subprocess, sys, time
threads, seconds, seed = sys.argv[1:]
tmp, lib = os.environ["SOAK_FOLDER"], os.environ["SOAK_LIBRARY"]
env = dict(os.environ, BUDDY_REPORT=f"{tmp}/reports/report", LD_PRELOAD=lib)
with open(f"{tmp}/out", "w") as out, open(f"{tmp}/err", "w") as err:
    driver = subprocess.Popen([f"{tmp}/larson_soak", threads, seconds, seed, "5"], stdout=out, stderr=err, env=env)
start = time.monotonic()
signals = reports = empty = timed_out = 0
def collect():
    global reports, empty
    for name in os.listdir(f"{tmp}/reports"):
        suffix = name[len("report."):]
        if not name.startswith("report.") or not suffix.isdigit():
            continue  # the exit reports (report), temporaries (report.tmp.PID)
        path = f"{tmp}/reports/{name}"
        if os.path.getsize(path) > 0: reports += 1
        else: empty += 1
        os.unlink(path)
with open(f"{tmp}/samples", "w") as samples:
    tick = 1
    while driver.poll() is None:
        time.sleep(max(0, start + tick - time.monotonic()))
        tick += 1
        elapsed = time.monotonic() - start
        try:
            with open(f"/proc/{driver.pid}/status") as status:
                rss = next(int(l.split()[1]) for l in status if l.startswith("VmRSS:"))
        except (OSError, StopIteration):
            break
        samples.write(f"{elapsed:.1f} {rss}\n")
        samples.flush()
        try:
            os.kill(driver.pid, signal.SIGUSR1)
            signals += 1
        except OSError:
            pass
        collect()
        if elapsed > int(seconds) + 60:
            timed_out = 1
            driver.kill()
            break
status = driver.wait()
time.sleep(0.2)
collect()
with open(f"{tmp}/monitor", "w") as m:
    m.write(f"{status if status >= 0 else 128 - status} {timed_out} {signals} {reports} {empty}\n")
MONITOR
read -r status timed_out signals reports empty <"$tmp/monitor"
samples="$tmp/samples"
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
