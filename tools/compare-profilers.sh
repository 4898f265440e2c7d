#!/usr/bin/env bash
# The side-by-side comparison of docs/comparison.md: this allocator's profile (buddy-report),
# heaptrack, jemalloc's profiler (jeprof) and valgrind massif on three programs (sqlite3 on a
# generated SQL script, python3 on a JSON/dict-heavy script, g++'s compiler proper cc1plus on a
# small C++ file), and the profile's overhead (wall and CPU time, median of RUNS runs).
#
#   tools/compare-profilers.sh [OUT [RUNS [PROGRAM...]]]   # default /tmp/buddy-compare, 5, all three
#   tools/compare-profilers.sh --list                       # the tools it needs, and whether each is here
#   tools/compare-profilers.sh --overhead [OUT [RUNS [PROGRAM...]]]   # default /tmp/buddy-overhead, 7
#
# --overhead times only this allocator without and with the profile at its default rate
# (BUDDY_PROFILE_SAMPLE=1M; PROFILE=... for another), interleaved (off, on, off, on, ...) so that
# the load of a shared machine falls on both alike, and prints the medians and their ratios
# (wall, CPU), and about how many samples one run took (its report's bytes requested / the rate).
# BUDDY_LIBS="A.so B.so" times several builds (before and after a change) in the same rounds.
#
# PROGRAM: sqlite3, python3, cc1plus. RUNS=0 skips the times.
#
# Needs the release library (swift build -c release --product BuddyMalloc) and buddy-report
# (either build), and Debian's heaptrack, valgrind, libjemalloc2 and libjemalloc-dev (jeprof),
# sqlite3, python3 and g++: `apt-get install -y heaptrack valgrind libjemalloc2 libjemalloc-dev
# sqlite3 g++`. A tool that is missing is skipped, and said. Everything it writes is in OUT:
# each tool's raw output and its text answer per program, and times.tsv.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
lib=${BUDDY_LIB:-$root/.build/release/libBuddyMalloc.so}
tool=$root/.build/release/buddy-report
[ -x "$tool" ] || tool=$root/.build/debug/buddy-report
jemalloc=$(ls /usr/lib/*/libjemalloc.so.2 2>/dev/null | head -1 || true)

if [ "${1:-}" = "--list" ]; then
    for t in "$lib" "$tool" heaptrack heaptrack_print valgrind ms_print "$jemalloc" jeprof sqlite3 python3 g++; do
        if [ -n "$t" ] && { [ -e "$t" ] || command -v "$t" >/dev/null; }; then echo "here     $t"; else echo "missing  $t"; fi
    done
    exit 0
fi
overhead=0
if [ "${1:-}" = "--overhead" ]; then overhead=1; shift; fi
default_out=/tmp/buddy-compare; default_runs=5
[ $overhead = 1 ] && { default_out=/tmp/buddy-overhead; default_runs=7; }
out=${1:-$default_out}
runs=${2:-$default_runs}
shift 2 2>/dev/null || shift $#
[ -f "$lib" ] || { echo "compare-profilers: $lib not found: swift build -c release --product BuddyMalloc" >&2; exit 2; }
[ $overhead = 1 ] || [ -x "$tool" ] || { echo "compare-profilers: no buddy-report: swift build -c release --product buddy-report" >&2; exit 2; }
mkdir -p "$out"
cd "$out"

# --- The programs -------------------------------------------------------------------------------
python3 - <<'EOF'
import random
random.seed(14)
cats = ['tools', 'books', 'food', 'toys', 'music', 'garden', 'sport', 'office']
words = ['lorem', 'ipsum', 'dolor', 'sit', 'amet', 'consectetur', 'adipiscing', 'elit']
with open('workload.sql', 'w') as f:
    f.write("PRAGMA cache_size=-20000;\nCREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, category TEXT, price REAL, body TEXT);\nBEGIN;\n")
    for i in range(60000):
        name = ''.join(random.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(random.randint(6, 20)))
        body = ' '.join(random.choice(words) for _ in range(random.randint(5, 40)))
        f.write(f"INSERT INTO items(name,category,price,body) VALUES('{name}','{random.choice(cats)}',{random.uniform(1, 500):.2f},'{body}');\n")
    f.write("COMMIT;\nCREATE INDEX items_name ON items(name);\nCREATE INDEX items_cat_price ON items(category, price);\n")
    f.write("SELECT category, count(*), avg(price), max(length(body)) FROM items GROUP BY category ORDER BY 2 DESC;\n")
    f.write("SELECT count(*) FROM items a JOIN items b ON a.name = b.name WHERE a.id < b.id;\n")
    f.write("SELECT name, price FROM items WHERE category='books' ORDER BY price DESC LIMIT 5;\n")
    f.write("CREATE TABLE words AS SELECT substr(body, 1, 11) AS w, count(*) AS n FROM items GROUP BY w;\nSELECT count(*) FROM words;\n")
EOF
cat > workload.py <<'EOF'
# A JSON/dict-heavy workload: build records, serialize, parse back, index, keep some.
import json, random
random.seed(14)
records = [{"id": i, "name": "user%06d" % i, "tags": [random.choice("abcdefgh") * random.randint(1, 8) for _ in range(random.randint(1, 6))],
            "score": random.random(), "address": {"city": random.choice(["Oslo", "Lima", "Pune", "Kyiv"]), "zip": "%05d" % random.randint(0, 99999)}}
           for i in range(40000)]
text = json.dumps(records)
parsed = json.loads(text)
by_city = {}
for r in parsed:
    by_city.setdefault(r["address"]["city"], []).append(r)
index = {r["name"]: r for r in parsed if r["score"] > 0.5}
del records, text
kept = [json.dumps(v[:1000]) for v in by_city.values()]
print(len(parsed), len(index), sum(len(k) for k in kept))
EOF
cat > workload.cpp <<'EOF'
// A small C++ file with the usual headers and some templates, for the compiler's memory.
#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <unordered_map>
#include <vector>

template <typename T, int N> struct Table {
    std::vector<std::map<std::string, T>> rows;
    T sum() const { T s{}; for (auto &r : rows) for (auto &kv : r) s += kv.second * N; return s; }
};

template <int N> int fib() { return fib<N - 1>() + fib<N - 2>(); }
template <> int fib<0>() { return 0; }
template <> int fib<1>() { return 1; }

int main() {
    Table<double, 3> t;
    t.rows.resize(10);
    std::unordered_map<std::string, std::shared_ptr<Table<int, 2>>> named;
    std::regex words("[a-z]+");
    std::string text = "some words to match";
    for (std::sregex_iterator it(text.begin(), text.end(), words), end; it != end; ++it) named[it->str()] = std::make_shared<Table<int, 2>>();
    std::cout << t.sum() << " " << fib<25>() << " " << named.size() << "\n";
}
EOF
# g++ runs cc1plus, as and ld; the compiler proper is where the memory goes: every tool runs it
# directly, with the arguments g++ gives it.
cc1plus=$(g++ -### -c -O1 -o w.o workload.cpp 2>&1 | awk '/\/cc1plus / && !n++ { gsub(/"/, ""); sub(/-o [^ ]*\.s/, "-o workload.s"); print }')

# Each program: NAME, the command (sh), its standard input. python3 allocates through malloc
# (PYTHONMALLOC=malloc), not its own arenas of 256 KiB, so that every tool sees its objects; set
# in the environment, not with env(1): heaptrack and massif follow no exec.
export PYTHONMALLOC=malloc
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(sqlite3 python3 cc1plus)
declare -A command input
command[sqlite3]="sqlite3 :memory:"; input[sqlite3]=workload.sql
# The interpreter itself (python3 may be a wrapper script, pyenv's shim: tools that follow no exec
# would profile the shell).
python=$(python3 -c 'import sys; print(sys.executable)')
command[python3]="$python workload.py"; input[python3]=/dev/null
command[cc1plus]="$cc1plus"; input[cc1plus]=/dev/null

# Runs "$@" < $input with the environment in ENVS, appends "label wall user+sys" to times.tsv.
timed() {
    local label=$1 stdin=$2; shift 2
    python3 - "$label" "$stdin" "$@" <<'EOF' >> times.tsv
import os, resource, subprocess, sys, time
label, stdin, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
start = time.monotonic()
with open(stdin) as f:
    status = subprocess.call(argv, stdin=f, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wall = time.monotonic() - start
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{label}\t{wall:.3f}\t{r.ru_utime + r.ru_stime:.3f}\t{status}")
EOF
}

have() { command -v "$1" >/dev/null 2>&1; }
note() { echo "compare-profilers: $*" >&2; }

if [ $overhead = 1 ]; then
    rate=${PROFILE:-1M}
    read -r -a libs <<< "${BUDDY_LIBS:-$lib}"
    for l in "${libs[@]}"; do [ -f "$l" ] || { note "$l not found"; exit 2; }; done
    : > times.tsv
    for name in "${names[@]}"; do
        read -r -a cmd <<< "${command[$name]}"
        in=${input[$name]}
        note "$name: off vs BUDDY_PROFILE_SAMPLE=$rate, $runs runs each, interleaved"
        for i in $(seq "$runs"); do
            for l in "${libs[@]}"; do
                timed "$name off ${l//[[:space:]]/_}" "$in" env LD_PRELOAD="$l" "${cmd[@]}"
                timed "$name $rate ${l//[[:space:]]/_}" "$in" env LD_PRELOAD="$l" BUDDY_PROFILE_SAMPLE="$rate" "${cmd[@]}"
            done
        done
        env LD_PRELOAD="${libs[-1]}" BUDDY_REPORT="$out/$name.overhead.json" BUDDY_REPORT_FORMAT=json BUDDY_PROFILE_SAMPLE="$rate" \
            "${cmd[@]}" < "$in" > /dev/null 2>&1 || note "$name under BuddyMalloc exited $?"
    done
    mv times.tsv overhead.tsv
    python3 - "$rate" "${#libs[@]}" "${libs[@]}" "${names[@]}" <<'EOF' | tee overhead.median.tsv
import collections, json, statistics, sys
rate, count = sys.argv[1], int(sys.argv[2])
libs, names = [l.replace(" ", "_") for l in sys.argv[3:3 + count]], sys.argv[3 + count:]
rows = collections.defaultdict(list)
for line in open("overhead.tsv"):
    label, wall, cpu, status = line.rstrip("\n").split("\t")
    rows[label].append((float(wall), float(cpu), int(status)))
def profile_of(node):
    if isinstance(node, dict):
        if "sites" in node and "sample_bytes" in node: return node
        node = list(node.values())
    if isinstance(node, list):
        for v in node:
            found = profile_of(v)
            if found is not None: return found
    return None
def samples(name):
    # The sample points fall one per sample_bytes requested, on average; the report lists only
    # the sites that hold live samples.
    try:
        report = json.load(open(f"{name}.overhead.json"))
        profile = profile_of(report)
        requested = report["memory"]["requested_total"]
    except (OSError, ValueError, KeyError, TypeError):
        return "?"
    if profile is None: return "?"
    return f"~{requested // profile['sample_bytes']} ({requested} bytes requested), {profile.get('dropped_samples', 0)} dropped"
print(f"program\tlibrary\toff wall / cpu s\t{rate} wall / cpu s\tratio wall, cpu\truns\tstatuses\tsamples (one run, {libs[-1]})")
for name in names:
    for lib in libs:
        off, on = rows[f"{name} off {lib}"], rows[f"{name} {rate} {lib}"]
        med = lambda v, k: statistics.median(x[k] for x in v)
        print(f"{name}\t{lib}\t{med(off, 0):.3f} / {med(off, 1):.3f}\t{med(on, 0):.3f} / {med(on, 1):.3f}\t"
              f"{med(on, 0) / med(off, 0):.2f}, {med(on, 1) / med(off, 1):.2f}\t{len(off)}+{len(on)}\t"
              f"{sorted(set(x[2] for x in off + on))}\t{samples(name) if lib == libs[-1] else ''}")
EOF
    note "done: $out (overhead.tsv: every run)"
    exit 0
fi

[ "$runs" -gt 0 ] && : > times.tsv
for name in "${names[@]}"; do
    read -r -a cmd <<< "${command[$name]}"
    in=${input[$name]}
    note "$name: the answers"
    # This allocator: the report at exit with the profile, then buddy-report.
    env LD_PRELOAD="$lib" BUDDY_REPORT="$out/$name.buddy.json" BUDDY_REPORT_FORMAT=json BUDDY_PROFILE_SAMPLE=1M \
        "${cmd[@]}" < "$in" > /dev/null 2>&1 || note "$name under BuddyMalloc exited $?"
    "$tool" show "$name.buddy.json" --top 8 > "$name.buddy.show.txt" 2>&1 || true
    "$tool" leaks "$name.buddy.json" --frames 4 > "$name.buddy.leaks.txt" 2>&1 || true
    "$tool" flame "$name.buddy.json" -o "$name.buddy.flame.svg" > /dev/null 2>&1 || true
    # The same with a report every 0.1 s: the sites at the peak (leaks --at-peak), the charts.
    rm -f "$name".series.json*
    env LD_PRELOAD="$lib" BUDDY_REPORT="$out/$name.series.json" BUDDY_REPORT_FORMAT=json BUDDY_PROFILE_SAMPLE=1M \
        BUDDY_REPORT_INTERVAL=0.1 "${cmd[@]}" < "$in" > /dev/null 2>&1 || note "$name under BuddyMalloc (periodic) exited $?"
    "$tool" leaks --at-peak --frames 5 "$name".series.json* > "$name.buddy.peak.txt" 2>&1 || true
    "$tool" html "$name".series.json* -o "$name.buddy.html" > /dev/null 2>&1 || true
    "$tool" plot "$name".series.json* -o "$name.buddy.charts" > /dev/null 2>&1 || true
    # heaptrack: every call with its backtrace; heaptrack_print for the text.
    if have heaptrack && have heaptrack_print; then
        rm -f "$name.heaptrack".*
        heaptrack -o "$out/$name.heaptrack" "${cmd[@]}" < "$in" > "$name.heaptrack.log" 2>&1 || note "heaptrack $name exited $?"
        file=$(ls "$name".heaptrack.zst "$name".heaptrack.gz 2>/dev/null | head -1 || true)
        heaptrack_print -f "$file" -p 1 -a 0 -T 0 -l 1 -n 6 -s 2 > "$name.heaptrack.txt" 2>&1 || true
        heaptrack_print -f "$file" -a 0 -T 0 -p 0 --flamegraph-cost-type leaked -F "$name.heaptrack.leaked.stacks" > /dev/null 2>&1 || true
    else
        note "heaptrack is not installed: skipped"
    fi
    # jemalloc: sampled profile (one sample per 2^20 bytes, as BUDDY_PROFILE_SAMPLE=1M), dumped
    # at exit and at each new peak of its mapped memory (prof_gdump).
    if [ -n "$jemalloc" ] && have jeprof; then
        rm -f "$name.jeprof".*
        env LD_PRELOAD="$jemalloc" MALLOC_CONF="prof:true,prof_final:true,prof_gdump:true,prof_leak:true,lg_prof_sample:20,prof_prefix:$out/$name.jeprof" \
            "${cmd[@]}" < "$in" > /dev/null 2> "$name.jeprof.log" || note "jemalloc $name exited $?"
        final=$(ls -t "$name".jeprof.*.f.heap 2>/dev/null | head -1 || true)
        peak=$(ls -t "$name".jeprof.*.u*.heap 2>/dev/null | head -1 || true)
        binary=$(command -v "${cmd[0]}" || echo "${cmd[0]}")
        [ -n "$final" ] && jeprof --text "$binary" "$final" > "$name.jeprof.exit.txt" 2>&1 || true
        [ -n "$peak" ] && jeprof --text "$binary" "$peak" > "$name.jeprof.peak.txt" 2>&1 || true
        # (prof_gdump wrote a dump at every new peak: keep the last.)
        ls "$name".jeprof.*.u*.heap 2>/dev/null | grep -v -F "$peak" | xargs -r rm -f
    else
        note "jemalloc's profiler (libjemalloc2, jeprof) is not installed: skipped"
    fi
    # massif: heap snapshots; ms_print for the peak's tree.
    if have valgrind && have ms_print; then
        valgrind --tool=massif --massif-out-file="$out/$name.massif" "${cmd[@]}" < "$in" > /dev/null 2> "$name.massif.log" || note "massif $name exited $?"
        ms_print "$name.massif" > "$name.massif.txt" 2>&1 || true
    else
        note "valgrind is not installed: skipped"
    fi

    [ "$runs" -gt 0 ] || continue
    note "$name: times ($runs runs each)"
    for i in $(seq "$runs"); do
        timed "$name glibc" "$in" "${cmd[@]}"
        timed "$name buddy" "$in" env LD_PRELOAD="$lib" "${cmd[@]}"
        timed "$name buddy+profile-1M" "$in" env LD_PRELOAD="$lib" BUDDY_PROFILE_SAMPLE=1M "${cmd[@]}"
        timed "$name buddy+profile-64K" "$in" env LD_PRELOAD="$lib" BUDDY_PROFILE_SAMPLE=64K "${cmd[@]}"
        if [ -n "$jemalloc" ]; then
            timed "$name jemalloc" "$in" env LD_PRELOAD="$jemalloc" "${cmd[@]}"
            timed "$name jemalloc+prof-1M" "$in" env LD_PRELOAD="$jemalloc" MALLOC_CONF="prof:true,lg_prof_sample:20" "${cmd[@]}"
        fi
        have heaptrack && timed "$name heaptrack" "$in" heaptrack -o "$out/timing.heaptrack" "${cmd[@]}"
        rm -f timing.heaptrack.*
    done
    # massif is slow: 3 runs.
    if have valgrind && [ "$runs" -gt 0 ]; then
        for i in 1 2 3; do timed "$name massif" "$in" valgrind --tool=massif --massif-out-file=/dev/null "${cmd[@]}"; done
    fi
done

# Medians.
[ -s times.tsv ] || { note "done: $out"; exit 0; }
python3 - <<'EOF' > times.median.tsv
import collections, statistics
rows = collections.defaultdict(list)
for line in open("times.tsv"):
    label, wall, cpu, status = line.rstrip("\n").split("\t")
    rows[label].append((float(wall), float(cpu), int(status)))
print("program\tsetup\truns\tmedian wall s\tmedian cpu s\tstatuses")
for label, values in rows.items():
    program, setup = label.split(" ", 1)
    print(f"{program}\t{setup}\t{len(values)}\t{statistics.median(v[0] for v in values):.3f}\t{statistics.median(v[1] for v in values):.3f}\t{sorted(set(v[2] for v in values))}")
EOF
cat times.median.tsv
note "done: $out"
