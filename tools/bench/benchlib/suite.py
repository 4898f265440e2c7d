"""The workload suite (the default mode): warm-up, timed repetitions, summary, JSON and SVG."""

import hashlib
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

from .allocators import Installer, file_sha256, probe_allocators, resolve_allocators
from .common import CFLAGS, log, progress, warn
from .context import Context
from .machine import alloc_info, machine_info
from .process import Proc, tail
from .programs import build_programs
from .report import build_report
from .stats import check_digests, geomean, summarize_cell
from .svg import write_svg
from .workloads import make_workloads


def sample_from(res, rep, check_digest):
    s = {"rep": rep, "status": res.status, "wall_s": res.wall,
         "maxrss_kb": res.maxrss_kb, "exit": res.exit,
         "utime_s": res.utime, "stime_s": res.stime}
    if res.status != "ok":
        s["reason"] = res.reason
        s["stderr_tail"] = tail(res.stderr, 1500)
        s["wall_s"] = None
    out = res.stdout.decode("utf-8", "replace")
    m = re.search(r"^final_rss_kb (\d+)", out, re.M)
    if m:
        s["final_rss_kb"] = int(m.group(1))
        for key in ("live_kb", "peak_rss_kb", "empty_rss_kb"):
            m2 = re.search(r"^%s (-?\d+)" % key, out, re.M)
            if m2:
                s[key] = int(m2.group(1))
    if check_digest and res.status == "ok":
        s["digest"] = hashlib.sha256(res.stdout).hexdigest()
    if getattr(res, "extra", None):
        s["extra"] = res.extra
    return s


def cmd_run(args):
    installer = Installer(not args.no_install)
    workloads = make_workloads()
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        known = {w.name for w in workloads}
        unknown = [w for w in wanted if w not in known]
        if unknown:
            sys.exit("bench: unknown workload(s) %s; known: %s"
                     % (", ".join(unknown), ", ".join(w.name for w in workloads)))
        workloads = [w for w in workloads if w.name in wanted]
    anames = [a.strip() for a in args.allocators.split(",") if a.strip()]
    allocs = resolve_allocators(anames, args, installer)
    bins = build_programs(Path(args.build_dir).resolve())  # absolute: the programs run from a temporary folder
    ctx = Context(args, installer, bins)
    try:
        return _cmd_run(args, ctx, workloads, allocs)
    finally:
        if args.keep_tmp:
            log("bench: temporary files kept in %s" % ctx.tmp)
        else:
            shutil.rmtree(ctx.tmp, ignore_errors=True)


def _cmd_run(args, ctx, workloads, allocs):
    load0 = os.getloadavg()
    allocs = probe_allocators(ctx, allocs)
    if not allocs:
        sys.exit("bench: no usable allocator")
    workloads = [w for w in workloads if w.requirements(ctx) or
                 warn("skipping workload %s: requirements missing" % w.name)]
    for w in workloads:
        w.prepare(ctx)
    reps = args.reps
    baseline = "glibc" if any(a.name == "glibc" for a in allocs) else allocs[0].name
    log("bench: %d workload(s) x %d allocator(s) x %d rep(s)%s; allocators: %s"
        % (len(workloads), len(allocs), reps, " (quick)" if args.quick else "",
           ", ".join("%s=%s" % (a.name, a.lib or "-") for a in allocs)))

    if args.warmup:
        base = next(a for a in allocs if a.name == baseline)
        for w in workloads:
            r = w.run(ctx, base)
            log("[warm-up] %-11s %-9s %s" % (w.name, base.name,
                "%.2f s" % r.wall if r.status == "ok" else r.status + " " + r.reason))

    results = {w.name: {a.name: [] for a in allocs} for w in workloads}
    total = reps * len(workloads) * len(allocs)
    i = 0
    t_start = time.monotonic()
    for rep in range(1, reps + 1):
        for w in workloads:
            for a in allocs:
                i += 1
                if a.lib and not os.path.isfile(a.lib):
                    # ld.so silently ignores a missing preload: refuse to time it.
                    res = Proc()
                    res.status = "FAIL"
                    res.reason = "preload library %s is missing" % a.lib
                else:
                    res = w.run(ctx, a)
                s = sample_from(res, rep, w.check_digest)
                results[w.name][a.name].append(s)
                if res.status == "ok":
                    txt = "%.2f s" % res.wall
                else:
                    txt = "%s (%s)" % (res.status, res.reason)
                    err = tail(res.stderr, 300)
                    if err:
                        txt += "\n        " + err.replace("\n", "\n        ")
                progress(i, total, w.name, a.name, rep, reps, txt)
    elapsed = time.monotonic() - t_start

    mismatches = check_digests(results, baseline)
    for m in mismatches:
        warn(m)

    # Summaries, ratios, geomeans
    summary = {}
    for w in workloads:
        summary[w.name] = {}
        for a in allocs:
            summary[w.name][a.name] = summarize_cell(results[w.name][a.name])
        b = summary[w.name].get(baseline)
        for a in allocs:
            c = summary[w.name][a.name]
            if c["status"] == "ok" and b and b["status"] == "ok":
                c["time_ratio"] = c["median_wall_s"] / b["median_wall_s"]
                if c.get("median_maxrss_kb") and b.get("median_maxrss_kb"):
                    c["rss_ratio"] = c["median_maxrss_kb"] / b["median_maxrss_kb"]
                if c.get("median_final_rss_kb") and b.get("median_final_rss_kb"):
                    c["final_rss_ratio"] = (c["median_final_rss_kb"]
                                            / b["median_final_rss_kb"])
    gms = {}
    for a in allocs:
        tr = [summary[w.name][a.name].get("time_ratio") for w in workloads]
        rr = [summary[w.name][a.name].get("rss_ratio") for w in workloads]
        tr = [x for x in tr if x]
        rr = [x for x in rr if x]
        gms[a.name] = {"time": geomean(tr), "rss": geomean(rr), "n": len(tr)}
    summary["_geomean"] = gms

    wnames = [w.name for w in workloads]
    report = build_report(wnames, allocs, summary, baseline)
    print()
    print(report, end="")
    failed = [(w, a, c) for w in wnames for a, c in summary[w].items()
              if c["status"] != "ok"]
    if failed:
        print()
        print("Failures:")
        for w, a, c in failed:
            for f in c["failures"]:
                print("  %s / %s: %s" % (w, a, f))
    for a in allocs:
        if a.sha256 and a.lib and os.path.isfile(a.lib) and file_sha256(a.lib) != a.sha256:
            warn("%s changed on disk during the run (%s); results may mix builds"
                 % (a.lib, a.name))

    minfo = machine_info(load0)
    minfo["loadavg_end"] = os.getloadavg()
    doc = {
        "suite": "BuddyMalloc bench",
        "mode": "quick" if args.quick else "full",
        "machine": minfo,
        "config": {
            "reps": reps, "timeout_s": args.timeout, "baseline": baseline,
            "cflags": CFLAGS, "elapsed_s": round(elapsed, 1),
            "order": "for each rep: for each workload: for each allocator",
        },
        "allocators": {a.name: alloc_info(a) for a in allocs},
        "workloads": {w.name: {"description": w.desc, "kind": w.kind,
                               "command": {a.name: w.command_line(ctx, a) for a in allocs}}
                      for w in workloads},
        "results": {w: {a: {"samples": results[w][a], **summary[w][a]}
                        for a in results[w]} for w in wnames},
        "geomean": gms,
    }
    with open(args.json, "w") as f:
        json.dump(doc, f, indent=1)
    log("bench: wrote %s" % args.json)

    series = [a.name for a in allocs if a.name != baseline]
    groups = wnames + ["geomean"]
    tv, rv, st = {}, {}, {}
    for w in wnames:
        for a in series:
            c = summary[w][a]
            tv[(w, a)] = c.get("time_ratio")
            rv[(w, a)] = c.get("rss_ratio")
            if c["status"] != "ok":
                st[(w, a)] = c["status"]
            elif summary[w][baseline]["status"] != "ok":
                st[(w, a)] = "no base"
    for a in series:
        tv[("geomean", a)] = gms[a]["time"]
        rv[("geomean", a)] = gms[a]["rss"]
    footer = ("%s, %s reps, %s; nproc=%s, kernel %s; %s"
              % ("quick run" if args.quick else "full run", reps,
                 "median of runs, ratio to %s" % baseline, minfo["nproc"],
                 minfo["kernel"], minfo["date"]))
    if series:
        write_svg(args.svg, [
            dict(title="Wall time relative to %s (lower is better)" % baseline,
                 ylabel="median wall time / %s" % baseline, groups=groups,
                 series=series, values=tv, statuses=st, baseline_name=baseline),
            dict(title="Peak RSS relative to %s (lower is better)" % baseline,
                 ylabel="median peak RSS / %s" % baseline, groups=groups,
                 series=series, values=rv, statuses=st, baseline_name=baseline),
        ], footer)
        log("bench: wrote %s" % args.svg)
    else:
        log("bench: only the baseline ran; no chart written")
    log("bench: done in %.0f s" % elapsed)
    return 1 if failed else 0
