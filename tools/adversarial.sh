#!/usr/bin/env bash
# Adversarial checks of the built library against glibc's behaviour, under LD_PRELOAD, across a
# matrix of option configurations (issue 15). Each check is one run of a C driver from
# Tests/Programs (or of a real program) with a time-out; it passes when the program exits 0 with
# its "ok" line, prints no "buddy:" complaint, and its reports (when it writes any) are complete.
#
#   tools/adversarial.sh            the full run: every configuration (about 12 minutes on 2 cores)
#   tools/adversarial.sh --quick    a small subset (under a minute; AdversarialTests runs it)
#   tools/adversarial.sh --soak S   random drivers under random configurations for S seconds
#   tools/adversarial.sh --list     the configurations, one per line
#
# The library: $BUDDY, else .build/release/libBuddyMalloc.so (swift build -c release --product
# BuddyMalloc). Progress goes to stderr, one line per check; the last line of stdout is
# "N passed, N failed", after the list of failures (each with its log's folder, kept on failure).
# Exit 0 when nothing failed.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
mode=full
soak=0
while [ $# -gt 0 ]; do
    case $1 in
    --quick) mode=quick ;;
    --full) mode=full ;;
    --soak) mode=soak; soak=${2:?--soak needs a number of seconds}; shift ;;
    --list) mode=list ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "adversarial: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

lib=${BUDDY:-$root/.build/release/libBuddyMalloc.so}
case $lib in /*) ;; *) lib=$root/$lib ;; esac

# ---------------------------------------------------------------- configurations
# One per line: space-separated NAME=VALUE options (values have no spaces). "-" is the defaults.
# BUDDY_MAX_POOL below the largest block (8M by default) is ignored with a warning, so the small
# pools come with a smaller BUDDY_MAX_BLOCK.
configs_all=(
    "-"
    "BUDDY_THREAD_SAFETY=always"
    "BUDDY_SLABS=off"
    "BUDDY_ON_ERROR=log"
    "BUDDY_MAX_BLOCK=16"
    "BUDDY_MAX_BLOCK=32"
    "BUDDY_MAX_BLOCK=64"
    "BUDDY_MAX_BLOCK=256"
    "BUDDY_MAX_BLOCK=1K"
    "BUDDY_MAX_BLOCK=4K"
    "BUDDY_MAX_BLOCK=64K"
    "BUDDY_MAX_BLOCK=1M"
    "BUDDY_MAX_BLOCK=16M"
    "BUDDY_MAX_BLOCK=256M"
    "BUDDY_MAX_BLOCK=1G"
    "BUDDY_MIN_BLOCK=32"
    "BUDDY_MIN_BLOCK=64"
    "BUDDY_MIN_BLOCK=256"
    "BUDDY_MIN_BLOCK=4K"
    "BUDDY_INITIAL_SIZE=64K BUDDY_MAX_BLOCK=64K"
    "BUDDY_INITIAL_SIZE=1M BUDDY_MAX_BLOCK=512K"
    "BUDDY_INITIAL_SIZE=64M"
    "BUDDY_GROWTH_FACTOR=1.0"
    "BUDDY_GROWTH_FACTOR=1.5"
    "BUDDY_GROWTH_FACTOR=4"
    "BUDDY_GROWTH_FACTOR=64"
    "BUDDY_MAX_POOL=1M BUDDY_MAX_BLOCK=256K"
    "BUDDY_MAX_POOL=4M BUDDY_MAX_BLOCK=1M"
    "BUDDY_MAX_POOL=16M"
    "BUDDY_MAX_POOL=64M"
    "BUDDY_RELEASE_DELAY=0"
    "BUDDY_RELEASE_DELAY=0.01"
    "BUDDY_RELEASE_DELAY=10"
    "BUDDY_STATS_LATENCY=off"
    "BUDDY_STATS_LATENCY=exact"
    "BUDDY_STATS_LATENCY=sampled:7"
    "BUDDY_PROFILE_SAMPLE=4K BUDDY_REPORT=FILE"
    "BUDDY_PROFILE_SAMPLE=1M BUDDY_REPORT=FILE"
    "BUDDY_REPORT=stderr"
    "BUDDY_REPORT=FILE BUDDY_REPORT_FORMAT=json"
    "BUDDY_REPORT=FILE BUDDY_REPORT_INTERVAL=0.05"
    "BUDDY_REPORT=FILE BUDDY_REPORT_SIGNAL=USR2 BUDDY_REPORT_FORMAT=json BUDDY_PROFILE_SAMPLE=64K"
    "BUDDY_REPORT=FILE BUDDY_REPORT_SIGNAL=none BUDDY_STATS_LATENCY=exact"
    "BUDDY_MAX_BLOCK=64K BUDDY_SLABS=off BUDDY_THREAD_SAFETY=always"
    "BUDDY_MIN_BLOCK=64 BUDDY_MAX_BLOCK=4K"
    "BUDDY_MAX_POOL=8M BUDDY_RELEASE_DELAY=0 BUDDY_GROWTH_FACTOR=1.0"
    "BUDDY_INITIAL_SIZE=512K BUDDY_MAX_POOL=2M BUDDY_MAX_BLOCK=512K BUDDY_THREAD_SAFETY=always"
    "BUDDY_MAX_BLOCK=2M BUDDY_MAX_POOL=4M BUDDY_SLABS=off"
    "BUDDY_MAX_BLOCK=1G BUDDY_INITIAL_SIZE=1G"
    "BUDDY_ON_ERROR=log BUDDY_THREAD_SAFETY=always BUDDY_RELEASE_DELAY=0 BUDDY_REPORT=FILE BUDDY_REPORT_INTERVAL=0.2"
)
configs_quick=(
    "-"
    "BUDDY_THREAD_SAFETY=always"
    "BUDDY_SLABS=off"
    "BUDDY_MAX_BLOCK=16M"
    "BUDDY_MIN_BLOCK=64 BUDDY_MAX_BLOCK=4K"
    "BUDDY_REPORT=FILE BUDDY_REPORT_FORMAT=json"
    "BUDDY_MAX_BLOCK=16"
    "BUDDY_MAX_BLOCK=256"
)

if [ "$mode" = list ]; then
    printf '%s\n' "${configs_all[@]}"
    exit 0
fi

[ -f "$lib" ] || { echo "adversarial: $lib not found: run 'swift build -c release --product BuddyMalloc' first" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/buddy-adversarial.XXXXXX")
bin=$work/bin
mkdir -p "$bin"
keep_work=0
cleanup() { [ "$keep_work" = 1 ] || rm -rf "$work"; }
trap cleanup EXIT
trap 'echo "adversarial: interrupted" >&2; exit 130' INT TERM

build() { # build NAME [extra gcc flags]
    local name=$1; shift
    gcc -O2 -g -fno-builtin -pthread -o "$bin/$name" "Tests/Programs/$name.c" "$@" -ldl 2>"$work/gcc.log" || {
        cat "$work/gcc.log" >&2; echo "adversarial: gcc failed for $name.c" >&2; exit 2; }
}
for p in model_check report_storm thread_churn conformance stress fork_signal fork_stdio late_dlopen calloc_rss report_targets; do
    build "$p"
done

passed=0
failed=0
skipped=0
failures=()
skips=()
seq_no=0
started=$(date +%s)

elapsed() { echo $(($(date +%s) - started)); }

# check NAME TIMEOUT EXPECT CONFIG [VALIDATOR] -- COMMAND...
#   Runs COMMAND with CONFIG's options and the library preloaded. EXPECT: an extended regular
#   expression stdout must match. VALIDATOR: a function called with the run's folder (it holds
#   out, err, reports/) that prints a reason and returns 1 on failure.
check() {
    local name=$1 limit=$2 expect=$3 config=$4 validator=""
    shift 4
    if [ "$1" != -- ]; then validator=$1; shift; fi
    shift # --
    seq_no=$((seq_no + 1))
    local label="$name [$config]"
    local dir=$work/run.$seq_no
    mkdir -p "$dir/reports"
    local -a env=()
    if [ "$config" != - ]; then
        local kv
        for kv in $config; do
            case $kv in
            BUDDY_REPORT=FILE) env+=("BUDDY_REPORT=$dir/reports/report.%p") ;;
            *) env+=("$kv") ;;
            esac
        done
    fi
    local t0 rc
    t0=$(date +%s.%N)
    (cd "$dir" && timeout -k 5 "$limit" env ${env[@]+"${env[@]}"} LD_PRELOAD="$lib" "$@" >"$dir/out" 2>"$dir/err" </dev/null)
    rc=$?
    local took
    took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    local why=""
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then why="timed out after ${limit}s"
    elif [ $rc -ne 0 ]; then why="exit status $rc$( [ $rc -gt 128 ] && echo " (signal $((rc - 128)))")"
    elif ! grep -Eq "$expect" "$dir/out"; then why="no line matching /$expect/ on stdout"
    elif grep -q '^buddy:' "$dir/err"; then why="the library complained on stderr"
    elif [ -n "$validator" ] && ! why=$($validator "$dir" "$config"); then :
    else why=""
    fi
    if [ -z "$why" ]; then
        passed=$((passed + 1))
        echo "adversarial: [$(elapsed)s] PASS $label (${took}s)" >&2
        rm -rf "$dir"
    else
        failed=$((failed + 1))
        keep_work=1
        failures+=("$label: $why (log: $dir)")
        echo "adversarial: [$(elapsed)s] FAIL $label (${took}s): $why" >&2
        { echo "--- stdout (last lines)"; tail -n 5 "$dir/out"; echo "--- stderr (first lines)"; head -c 1500 "$dir/err"; echo; } \
            | sed 's/^/    /' >&2
    fi
}

# ---------------------------------------------------------------- validators

# Every report file is complete (text: its header and last section; JSON: parses, and says so).
reports_complete() {
    local dir=$1 config=$2 n=0 f
    for f in "$dir"/reports/report.*; do
        [ -e "$f" ] || continue
        case $f in *.tmp) echo "a temporary report was left behind: $f"; return 1 ;; esac
        n=$((n + 1))
        if [[ $config == *json* ]]; then
            python3 - "$f" <<'EOF' || { echo "report $f is not a complete JSON report"; return 1; }
import json, sys
d = json.load(open(sys.argv[1]))
assert d["format"] == "buddymalloc-report" and d["version"] == 1, d.get("format")
EOF
        else
            head -n 1 "$f" | grep -q '^BuddyMalloc report, pid ' && grep -q '^  bad pointers ' "$f" \
                || { echo "report $f is not a complete text report"; return 1; }
        fi
    done
    if [[ $config == *BUDDY_REPORT=FILE* ]] && [ $n -eq 0 ]; then echo "no report was written"; return 1; fi
    return 0
}

# Reports on stderr: text reports each whole; JSON ones a sequence of whole documents.
stderr_reports_complete() {
    local dir=$1 config=$2
    if [[ $config == *json* ]]; then
        python3 - "$dir/err" <<'EOF' || return 1
import json, sys
text = open(sys.argv[1], errors="replace").read()
decoder, i, n = json.JSONDecoder(), 0, 0
while True:
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text):
        break
    try:
        doc, i = decoder.raw_decode(text, i)
    except ValueError as e:
        print(f"stderr is not a sequence of whole JSON reports after {n} documents: {e}: {text[i:i+120]!r}")
        sys.exit(1)
    if doc.get("format") != "buddymalloc-report":
        print(f"document {n} is not a report"); sys.exit(1)
    n += 1
if n == 0:
    print("no JSON report on stderr"); sys.exit(1)
EOF
    else
        local heads tails
        heads=$(grep -c '^BuddyMalloc report, pid ' "$dir/err")
        tails=$(grep -c '^  bad pointers ' "$dir/err")
        if [ "$heads" -eq 0 ] || [ "$heads" -ne "$tails" ]; then
            echo "stderr holds $heads report headers and $tails report ends"; return 1
        fi
    fi
}

# report_storm with reports in files: complete, and at least one written for the signals.
storm_reports() {
    local dir=$1 config=$2
    reports_complete "$dir" "$config" || return 1
    if [[ $config != *BUDDY_REPORT_SIGNAL=* ]]; then
        local n
        n=$(find "$dir/reports" -name 'report.*.*' | wc -l)
        [ "$n" -ge 1 ] || { echo "no signal report was written"; return 1; }
    fi
}

# ---------------------------------------------------------------- the checks

storm_config() { # the options a report_storm run needs: a report destination and the signal
    case $1 in
    *BUDDY_REPORT=*) echo "$1" ;;
    -) echo "BUDDY_REPORT=FILE" ;;
    *) echo "$1 BUDDY_REPORT=FILE" ;;
    esac
}

validator_for() {
    case $1 in
    *BUDDY_REPORT=stderr*) echo stderr_reports_complete ;;
    *) echo reports_complete ;;
    esac
}

# The drivers under one configuration. $2: ops per thread of the model check. Each takes about a
# second; conformance with BUDDY_INITIAL_SIZE=1G took 29 s on a loaded machine: 60 s is a hang.
matrix_checks() {
    local config=$1 ops=$2 churn=$3 v
    v=$(validator_for "$config")
    check "model_check 2x$ops" 60 '^model_check: ok' "$config" "$v" -- "$bin/model_check" 2 "$ops" "$seq_no"
    if [[ $config =~ BUDDY_MAX_POOL=(1|2|4|8|16)M ]]; then
        : # conformance keeps about 20 MB live at once and needs 8 MiB blocks (4 MiB-aligned requests of 4 MiB + 1): a pool of 16 MiB or less fails it with ENOMEM, rightly
    elif [ "$config" = - ]; then
        check "conformance --expect-buddy" 60 '^ok [0-9]+ checks' "$config" "$v" -- "$bin/conformance" --expect-buddy
    else
        check "conformance --glibc-rules" 60 '^ok [0-9]+ checks' "$config" "$v" -- "$bin/conformance" --glibc-rules
    fi
    # thread_churn and report_storm take any NULL as fatal: a bounded pool may fail them rightly.
    [[ $config == *BUDDY_MAX_POOL=* ]] && return
    check "thread_churn $churn" 60 '^thread_churn: ok' "$config" "$v" -- "$bin/thread_churn" "$churn"
}

real_programs() {
    local config=$1 d=$work/real
    mkdir -p "$d"
    if command -v python3 >/dev/null; then
        cat >"$d/py.py" <<'EOF'
import json, collections, re
d = {str(i): [i] * (i % 50) for i in range(20000)}
s = json.dumps(d)
e = json.loads(s)
c = collections.Counter(w for w in re.findall(r"\d+", s[:400000]))
print(len(s), len(e), c.most_common(3), sum(len(v) for v in e.values()))
EOF
        real_program "python3" "$config" python3 "$d/py.py"
    else skip_missing python3; fi
    if command -v sqlite3 >/dev/null; then
        real_program "sqlite3" "$config" sqlite3 :memory: \
            "create table t(a integer, b text); with recursive c(x) as (select 1 union all select x+1 from c where x<20000) insert into t select x, 'k' || x from c; create index i on t(b); select count(*), sum(a), max(b) from t;"
    else skip_missing sqlite3; fi
    if command -v perl >/dev/null; then
        real_program "perl" "$config" perl -e 'my %h; $h{$_ x 3} = [1..($_ % 20)] for 1..30000; my $n = 0; $n += @$_ for values %h; print scalar(keys %h), " $n\n"; print join(",", (sort { $a <=> $b } map { $_ * 7 % 1000 } 1..50000)[0..5]), "\n"'
    else skip_missing perl; fi
    if command -v sort >/dev/null; then
        seq 1 200000 | awk '{ print ($1 * 7919) % 100003, $1 }' >"$d/lines"
        real_program "sort" "$config" sort -S 64K --parallel=2 -n "$d/lines"
    else skip_missing sort; fi
    if command -v git >/dev/null; then
        real_program "git" "$config" sh -c 'rm -rf g && git init -q g && cd g && for i in $(seq 1 30); do echo "line $i" >f$i; done && git add . && git -c user.name=t -c user.email=t@t commit -qm one && git log --format=%s && git fsck --no-progress 2>&1 && git count-objects'
    else skip_missing git; fi
    if command -v gcc >/dev/null && command -v objdump >/dev/null; then
        real_program "gcc -O2" "$config" sh -c "gcc -O2 -c -o x.o '$root/Tests/Programs/stress.c' && objdump -d x.o | tail -n +3 | md5sum"
    else skip_missing "gcc or objdump"; fi
    if command -v node >/dev/null; then
        real_program "node" "$config" node -e 'const m = new Map(); for (let i = 0; i < 200000; i++) m.set("k" + i, {i, s: "x".repeat(i % 30)}); const j = JSON.stringify([...m.values()].slice(0, 5000)); console.log(m.size, j.length, require("zlib").gzipSync(Buffer.from(j)).length > 0)'
    else skip_missing node; fi
    if command -v tar >/dev/null && command -v xz >/dev/null; then
        real_program "tar+xz" "$config" sh -c "tar -C '$root' -cf - Tests/Programs | xz -3 | xz -d | tar -tf - | sort"
    else skip_missing "tar or xz"; fi
    if command -v jq >/dev/null; then
        real_program "jq" "$config" sh -c 'seq 1 50000 | jq -s "map({k: (. % 97), v: .}) | group_by(.k) | map(length) | add"'
    else skip_missing jq; fi
}

skip_missing() {
    skipped=$((skipped + 1))
    skips+=("real program $1: not installed")
    echo "adversarial: SKIP real program $1 (not installed)" >&2
}

# A real program: the same stdout and exit status as on glibc, under the preload.
real_program() {
    local name=$1 config=$2
    shift 2
    real_ref=$work/real/ref
    rm -rf "$real_ref"
    mkdir -p "$real_ref"
    (cd "$real_ref" && timeout -k 5 120 "$@" >"$real_ref/out" 2>/dev/null </dev/null)
    real_status=$?
    check "real $name" 180 '.' "$config" real_same_as_glibc -- "$@"
}
# The glibc run (real_ref, real_status) against this one: same stdout; exit 0 both.
real_same_as_glibc() {
    local dir=$1
    [ "$real_status" -eq 0 ] || { echo "the control run on glibc failed (exit $real_status)"; return 1; }
    cmp -s "$dir/out" "$real_ref/out" || { echo "stdout differs from glibc's: $(diff "$real_ref/out" "$dir/out" | head -3 | tr '\n' ' ')"; return 1; }
}

# The report targets: a symlink, a FIFO and a character device given as BUDDY_REPORT.
report_target_checks() {
    check "report to a symlink" 30 '^report_targets: ok' "-" -- "$bin/report_targets" symlink
    check "report to a FIFO" 30 '^report_targets: ok' "-" -- "$bin/report_targets" fifo
    check "report to a character device" 30 '^report_targets: ok' "-" -- "$bin/report_targets" device
}

quick() {
    local c
    for c in "${configs_quick[@]}"; do
        check "model_check 2x20000" 60 '^model_check: ok' "$c" "$(validator_for "$c")" -- "$bin/model_check" 2 20000 "$seq_no"
    done
    check "model_check 4x50000 bounded" 60 '^model_check: ok .*bounded' "BUDDY_MAX_POOL=64M" -- "$bin/model_check" 4 50000 7
    check "model_check 2x20000 bounded" 60 '^model_check: ok .*bounded' "BUDDY_MAX_POOL=1M BUDDY_MAX_BLOCK=256K" -- "$bin/model_check" 2 20000 8
    check "calloc of fresh memory stays untouched" 60 '^calloc_rss: ok' "-" -- "$bin/calloc_rss"
    check "report to a symlink" 30 '^report_targets: ok' "-" -- "$bin/report_targets" symlink
    check "report to a FIFO" 30 '^report_targets: ok' "-" -- "$bin/report_targets" fifo
    check "report to a character device" 30 '^report_targets: ok' "-" -- "$bin/report_targets" device
    check "report_storm 4x20 JSON on stderr" 60 '^report_storm: ok' "BUDDY_REPORT=stderr BUDDY_REPORT_FORMAT=json" stderr_reports_complete -- "$bin/report_storm" 4 20 2
    check "conformance --glibc-rules" 60 '^ok [0-9]+ checks' "BUDDY_MAX_BLOCK=64K" -- "$bin/conformance" --glibc-rules
    check "thread_churn 3000" 60 '^thread_churn: ok' "-" -- "$bin/thread_churn" 3000
    check "report_storm 8x40, 4 forks" 60 '^report_storm: ok' "BUDDY_REPORT=FILE" storm_reports -- "$bin/report_storm" 8 40 4
    check "report_storm 8x200, 20 forks, profile" 60 '^report_storm: ok' "BUDDY_PROFILE_SAMPLE=4K BUDDY_REPORT=FILE" storm_reports -- "$bin/report_storm" 8 200 20
    check "report_storm 4x20 text on stderr" 60 '^report_storm: ok' "BUDDY_REPORT=stderr" stderr_reports_complete -- "$bin/report_storm" 4 20 2
    check "fork in a signal handler" 60 '^fork_signal: ok' "-" -- "$bin/fork_signal" 1
    check "late dlopen, dlclose" 60 '^late_dlopen: ok' "BUDDY_REPORT=FILE BUDDY_REPORT_INTERVAL=0.05" -- "$bin/late_dlopen" "$lib"
}

full() {
    local c
    # Every configuration: the model check, the edge arguments (conformance), thread churn.
    for c in "${configs_all[@]}"; do
        matrix_checks "$c" 20000 500
        case $c in
        *BUDDY_MAX_POOL=*) ;;
        *BUDDY_REPORT=*|-|BUDDY_THREAD_SAFETY=always|BUDDY_MAX_BLOCK=64K|BUDDY_SLABS=off)
            check "report_storm 8x200, 20 forks" 180 '^report_storm: ok' "$(storm_config "$c")" \
                "$(case $c in *BUDDY_REPORT=stderr*) echo stderr_reports_complete ;; *) echo storm_reports ;; esac)" \
                -- "$bin/report_storm" 8 200 20 ;;
        esac
    done
    # The long ones.
    check "model_check 4x2000000" 600 '^model_check: ok' "-" -- "$bin/model_check" 4 2000000 11
    check "model_check 4x500000" 300 '^model_check: ok' "BUDDY_THREAD_SAFETY=always BUDDY_SLABS=off" -- "$bin/model_check" 4 500000 12
    check "model_check 8x200000 bounded" 300 '^model_check: ok .*bounded' "BUDDY_MAX_POOL=32M" -- "$bin/model_check" 8 200000 13
    check "model_check 8x200000 bounded" 300 '^model_check: ok .*bounded' "BUDDY_MAX_POOL=4M BUDDY_MAX_BLOCK=1M" -- "$bin/model_check" 8 200000 14
    check "thread_churn 20000" 300 '^thread_churn: ok' "-" -- "$bin/thread_churn" 20000
    check "thread_churn 20000" 300 '^thread_churn: ok' "BUDDY_THREAD_SAFETY=always" -- "$bin/thread_churn" 20000 32
    check "report_storm 8x200 JSON on stderr" 180 '^report_storm: ok' "BUDDY_REPORT=stderr BUDDY_REPORT_FORMAT=json" stderr_reports_complete -- "$bin/report_storm" 8 200 20
    check "stress 8x20000, 50 forks" 300 '^stress: ok' "BUDDY_REPORT=FILE" reports_complete -- "$bin/stress" 8 20000 21 50
    check "stress 8x20000, 50 forks" 300 '^stress: ok' "BUDDY_MAX_BLOCK=1M BUDDY_THREAD_SAFETY=always" -- "$bin/stress" 8 20000 22 50
    for c in auto always; do
        check "fork in a signal handler" 60 '^fork_signal: ok' "BUDDY_THREAD_SAFETY=$c" -- "$bin/fork_signal" 3
    done
    check "fork with stdio locks" 60 '^fork_stdio: ok' "-" -- "$bin/fork_stdio" 3
    check "late dlopen, dlclose" 60 '^late_dlopen: ok' "-" -- "$bin/late_dlopen" "$lib"
    check "late dlopen, dlclose" 60 '^late_dlopen: ok' "BUDDY_REPORT=FILE BUDDY_REPORT_INTERVAL=0.05" -- "$bin/late_dlopen" "$lib"
    check "calloc of fresh memory stays untouched" 60 '^calloc_rss: ok' "-" -- "$bin/calloc_rss"
    report_target_checks
    for c in "-" "BUDDY_THREAD_SAFETY=always BUDDY_SLABS=off" "BUDDY_MAX_BLOCK=64K BUDDY_RELEASE_DELAY=0"; do
        real_programs "$c"
    done
}

soak_run() {
    local until=$(($(date +%s) + soak)) i=0 c r
    while [ "$(date +%s)" -lt "$until" ]; do
        i=$((i + 1))
        c=${configs_all[RANDOM % ${#configs_all[@]}]}
        r=$((RANDOM % 5))
        # Only the model check takes ENOMEM from a bounded pool as an answer.
        [[ $c == *BUDDY_MAX_POOL=* ]] && r=0
        case $r in
        0) check "soak model_check 4x100000" 300 '^model_check: ok' "$c" "$(validator_for "$c")" -- "$bin/model_check" 4 100000 "$RANDOM" ;;
        1) check "soak stress 8x10000, 20 forks" 300 '^stress: ok' "$c" "$(validator_for "$c")" -- "$bin/stress" 8 10000 "$RANDOM" 20 ;;
        2) check "soak report_storm 8x100, 10 forks" 300 '^report_storm: ok' "$(storm_config "$c")" \
               "$(case $c in *BUDDY_REPORT=stderr*) echo stderr_reports_complete ;; *) echo storm_reports ;; esac)" \
               -- "$bin/report_storm" 8 100 10 ;;
        3) check "soak thread_churn 3000" 300 '^thread_churn: ok' "$c" "$(validator_for "$c")" -- "$bin/thread_churn" 3000 ;;
        4) check "soak fork_signal" 60 '^fork_signal: ok' "$c" "$(validator_for "$c")" -- "$bin/fork_signal" 1 ;;
        esac
    done
}

echo "adversarial: mode $mode, library $lib, work folder $work" >&2
case $mode in
quick) quick ;;
full) full ;;
soak) soak_run ;;
esac

echo "adversarial: done in $(elapsed)s" >&2
if [ ${#skips[@]} -gt 0 ]; then
    echo "skipped:"
    printf '  %s\n' "${skips[@]}"
fi
if [ ${#failures[@]} -gt 0 ]; then
    echo "failures:"
    printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
