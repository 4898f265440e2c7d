"""Scaling mode: throughput (operations per second) against the number of threads, per shape
(workloads/scaling.c) and allocator."""

import json
import os
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

from .allocators import Installer, probe_allocators, resolve_allocators
from .common import log
from .context import Context
from .machine import alloc_info, machine_info
from .process import Proc, run_process, tail
from .programs import build_programs
from .report import build_scaling_report, fmt_rate
from .svg import write_svg

SHAPES = ["private", "exchange", "pipeline", "random"]
SHAPE_DESC = {
    "private": "each thread churns its own 1000 blocks of 16..1024 B",
    "exchange": "larson-style: a random slot of a shared array is swapped (atomic exchange) "
                "and the block got back, most often another thread's, is freed",
    "pipeline": "threads/2 producer/consumer pairs, one lock-free ring each; "
                "the consumer frees",
    "random": "each thread churns 16 blocks of 16 B..1 MiB (log-uniform)",
}
THREADS = [1, 2, 4, 8, 16, 32, 64]
QUICK_THREADS = [1, 2, 8, 64]
RESULT_RE = re.compile(r"ops=(\d+) elapsed_s=([0-9.]+) ops_per_s=([0-9.]+) "
                       r"cpu_s=([0-9.]+) ops_per_cpu_s=([0-9.]+)")
TSV_COLUMNS = ["shape", "threads", "allocator", "rep", "status", "ops", "elapsed_s",
               "ops_per_s", "cpu_s", "ops_per_cpu_s", "cpus", "wall_s", "maxrss_kb",
               "utime_s", "stime_s", "reason"]


def parse_list(text, known=None, what="value"):
    items = [x.strip() for x in text.split(",") if x.strip()]
    if known is not None:
        bad = [x for x in items if x not in known]
        if bad:
            sys.exit("bench: unknown %s(s) %s; known: %s"
                     % (what, ", ".join(bad), ", ".join(known)))
    return items


def shape_svg_path(svg, shape):
    """bench-scaling.svg -> bench-scaling-private.svg"""
    root, ext = os.path.splitext(svg)
    return "%s-%s%s" % (root, shape, ext or ".svg")


def efficiency_pair(threads):
    """(low, high) thread counts of the efficiency figure: 2 (one thread per core here)
    against the most threads measured."""
    lo = 2 if 2 in threads else min(threads)
    hi = max(threads)
    return (lo, hi) if hi > lo else (lo, None)


def one_point(ctx, prog, shape, nthreads, ms, alloc):
    argv = [prog, shape, str(nthreads), str(ms)]
    if alloc.lib and not os.path.isfile(alloc.lib):
        res = Proc()  # ld.so silently ignores a missing preload: refuse to time it
        res.status, res.reason = "FAIL", "preload library %s is missing" % alloc.lib
        return res, None
    res = run_process(argv, alloc.env(ctx.base_env), ctx.timeout, cwd=ctx.tmp)
    m = RESULT_RE.search(res.stdout.decode("utf-8", "replace"))
    if res.status == "ok" and not m:
        res.status, res.reason = "FAIL", "no result line in the output"
    if res.status != "ok":
        return res, None
    el, cpu = float(m.group(2)), float(m.group(4))
    return res, {"ops": int(m.group(1)), "elapsed_s": el, "ops_per_s": float(m.group(3)),
                 "cpu_s": cpu, "ops_per_cpu_s": float(m.group(5)),
                 "cpus": round(cpu / el, 2) if el > 0 else None}


def summarize_point(samples):
    bad = [s for s in samples if s["status"] != "ok"]
    cell = {"runs": len(samples), "ok": len(samples) - len(bad)}
    if bad:
        cell["status"] = "FAIL"
        cell["failures"] = ["rep %d: %s%s" % (
            s["rep"], s.get("reason", ""),
            (": " + s["stderr_tail"].strip().splitlines()[-1][:200])
            if s.get("stderr_tail", "").strip() else "") for s in bad]
        return cell
    rates = [s["ops_per_s"] for s in samples]
    cell["status"] = "ok"
    cell["median_ops_per_s"] = statistics.median(rates)
    cell["min_ops_per_s"] = min(rates)
    cell["max_ops_per_s"] = max(rates)
    cell["median_ops_per_cpu_s"] = statistics.median(s["ops_per_cpu_s"] for s in samples)
    cpus = [s["cpus"] for s in samples if s.get("cpus") is not None]
    cell["median_cpus"] = statistics.median(cpus) if cpus else None
    return cell


def cmd_scaling(args):
    shapes = parse_list(args.shapes, SHAPES, "shape") if args.shapes else list(SHAPES)
    if args.threads:
        try:
            threads = sorted({int(t) for t in parse_list(args.threads)})
        except ValueError:
            sys.exit("bench: --threads wants a comma-separated list of numbers")
        if not threads or threads[0] < 1:
            sys.exit("bench: --threads: counts must be >= 1")
    else:
        threads = QUICK_THREADS if args.quick else THREADS
    if "pipeline" in shapes and any(t > 1 and t % 2 for t in threads):
        sys.exit("bench: the pipeline shape needs 1 or an even number of threads")
    duration = args.duration if args.duration is not None else (0.2 if args.quick else 0.5)
    ms = max(1, int(round(duration * 1000)))
    installer = Installer(not args.no_install)
    anames = [a.strip() for a in args.allocators.split(",") if a.strip()]
    allocs = resolve_allocators(anames, args, installer)
    bins = build_programs(Path(args.build_dir).resolve())
    ctx = Context(args, installer, bins)
    try:
        return _cmd_scaling(args, ctx, allocs, shapes, threads, duration, ms)
    finally:
        shutil.rmtree(ctx.tmp, ignore_errors=True)


def _cmd_scaling(args, ctx, allocs, shapes, threads, duration, ms):
    load0 = os.getloadavg()
    allocs = probe_allocators(ctx, allocs)
    if not allocs:
        sys.exit("bench: no usable allocator")
    prog = ctx.bins["scaling"]
    names = [a.name for a in allocs]
    baseline = "glibc" if "glibc" in names else names[0]
    reps = args.reps
    total = reps * len(shapes) * len(threads) * len(allocs)
    log("bench: scaling: %d shape(s) x %d thread count(s) x %d allocator(s) x %d rep(s), "
        "%g s each; allocators: %s"
        % (len(shapes), len(threads), len(allocs), reps, duration,
           ", ".join("%s=%s" % (a.name, a.lib or "-") for a in allocs)))
    if args.warmup:
        for a in allocs:  # untimed: page cache, first loads of each library
            res, _ = one_point(ctx, prog, "private", 2, 100, a)
            log("[warm-up] private 2 threads %-9s %s" % (a.name, res.status))

    raw = []
    samples = {s: {a: {t: [] for t in threads} for a in names} for s in shapes}
    i = 0
    t_start = time.monotonic()
    w = len(str(total))
    for rep in range(1, reps + 1):
        for shape in shapes:
            for t in threads:
                for a in allocs:
                    i += 1
                    res, got = one_point(ctx, prog, shape, t, ms, a)
                    s = {"shape": shape, "threads": t, "allocator": a.name, "rep": rep,
                         "status": res.status, "ops": None, "elapsed_s": None,
                         "ops_per_s": None, "cpu_s": None, "ops_per_cpu_s": None,
                         "cpus": None, "wall_s": res.wall, "maxrss_kb": res.maxrss_kb,
                         "utime_s": res.utime, "stime_s": res.stime, "reason": ""}
                    if got:
                        s.update(got)
                        txt = "%s ops/s" % fmt_rate(got["ops_per_s"])
                        if s.get("cpus") is not None:
                            txt += "  %.2f cpus" % s["cpus"]
                    else:
                        s["reason"] = res.reason
                        s["stderr_tail"] = tail(res.stderr, 1500)
                        txt = "%s (%s) %s" % (res.status, res.reason, tail(res.stderr, 200))
                    raw.append(s)
                    samples[shape][a.name][t].append(s)
                    log("[%*d/%d] %-8s %2d threads %-9s rep %d/%d  %s"
                        % (w, i, total, shape, t, a.name, rep, reps, txt))
    elapsed = time.monotonic() - t_start

    lo, hi = efficiency_pair(threads)
    summary = {}
    for shape in shapes:
        summary[shape] = {}
        for a in names:
            pts = {t: summarize_point(samples[shape][a][t]) for t in threads}
            summary[shape][a] = {"points": pts}
        for a in names:
            for t in threads:
                c = summary[shape][a]["points"][t]
                b = summary[shape][baseline]["points"][t]
                if c["status"] == "ok" and b["status"] == "ok" and b["median_ops_per_s"]:
                    c["ratio"] = c["median_ops_per_s"] / b["median_ops_per_s"]
            pts = summary[shape][a]["points"]
            for key, name in (("median_ops_per_s", "efficiency"),
                              ("median_ops_per_cpu_s", "efficiency_per_cpu")):
                e = None
                if hi is not None and pts[lo]["status"] == "ok" \
                        and pts[hi]["status"] == "ok" and pts[lo][key]:
                    e = pts[hi][key] / pts[lo][key]
                summary[shape][a][name] = e

    multi = [s["cpus"] for s in raw if s["threads"] >= 2 and s.get("cpus") is not None]
    cpus_note = None
    if multi:
        cpus_note = ("CPUs per run at 2+ threads: median %.2f (an idle %s-core machine "
                     "gives about %s)" % (statistics.median(multi), os.cpu_count(),
                                          os.cpu_count()))
    print()
    print(build_scaling_report(shapes, threads, names, summary, baseline, reps, duration,
                               (lo, hi)), end="")
    if cpus_note:
        print()
        print(cpus_note)
    failed = [(s["shape"], s["threads"], s["allocator"], s) for s in raw
              if s["status"] != "ok"]
    if failed:
        print()
        print("Failures:")
        for shape, t, a, s in failed:
            last = s.get("stderr_tail", "").strip().splitlines()
            print("  %s %d threads / %s rep %d: %s %s%s" % (
                shape, t, a, s["rep"], s["status"], s["reason"],
                (": " + last[-1][:200]) if last else ""))

    minfo = machine_info(load0)
    minfo["loadavg_end"] = os.getloadavg()
    doc = {
        "suite": "BuddyMalloc bench scaling",
        "mode": "quick" if args.quick else "full",
        "machine": minfo,
        "config": {
            "reps": reps, "duration_s": duration, "threads": threads, "shapes": shapes,
            "baseline": baseline, "elapsed_s": round(elapsed, 1),
            "median_cpus_at_2plus_threads": statistics.median(multi) if multi else None,
            "efficiency": {"low_threads": lo, "high_threads": hi},
            "order": "for each rep: for each shape: for each thread count: "
                     "for each allocator",
        },
        "allocators": {a.name: alloc_info(a) for a in allocs},
        "shapes": {s: {"description": SHAPE_DESC[s],
                       "command": "scaling %s THREADS %d" % (s, ms)} for s in shapes},
        "samples": raw,
        "summary": {s: {a: {"efficiency": summary[s][a]["efficiency"],
                            "efficiency_per_cpu": summary[s][a]["efficiency_per_cpu"],
                            "points": {str(t): c for t, c in
                                       summary[s][a]["points"].items()}}
                        for a in names} for s in shapes},
    }
    with open(args.json, "w") as f:
        json.dump(doc, f, indent=1)
    log("bench: wrote %s" % args.json)
    with open(args.tsv, "w") as f:
        f.write("\t".join(TSV_COLUMNS) + "\n")
        for s in raw:
            f.write("\t".join("" if s.get(k) is None else str(s[k]).replace("\t", " ")
                              for k in TSV_COLUMNS) + "\n")
    log("bench: wrote %s" % args.tsv)

    nproc = minfo.get("nproc_available") or minfo.get("nproc")
    for shape in shapes:
        charts = []
        for key, what in (("median_ops_per_s", "operations per second"),
                          ("median_ops_per_cpu_s", "operations per CPU-second")):
            vals = {(t, a): summary[shape][a]["points"][t].get(key)
                    for t in threads for a in names}
            charts.append(dict(
                kind="line",
                title="%s: %s against threads (higher is better)" % (shape, what),
                ylabel="%s (median of %d)" % (what, reps),
                xs=threads, series=names, values=vals,
                xlabel="threads (log2 axis)",
                vline=nproc, vline_label="%s cores: oversubscribed to the right" % nproc))
        path = shape_svg_path(args.svg, shape)
        write_svg(path, charts,
            "%s, %d reps x %g s, nproc=%s, kernel %s; %s%s"
            % ("quick run" if args.quick else "full run", reps, duration, nproc,
               minfo["kernel"], minfo["date"],
               "; median CPUs per run at 2+ threads %.2f" % statistics.median(multi)
               if multi else ""))
        log("bench: wrote %s" % path)
    log("bench: done in %.0f s" % elapsed)
    return 1 if failed else 0
