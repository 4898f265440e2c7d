"""Micro mode: the hot path, ns per malloc+free pair by size."""

import json
import os
import shutil
import statistics
import sys
from pathlib import Path

from .allocators import Installer, probe_allocators, resolve_allocators
from .common import log, progress
from .context import Context
from .machine import alloc_info, machine_info
from .process import Proc, run_process, tail
from .programs import build_programs
from .report import fmt_ratio, render_table
from .stats import geomean
from .svg import write_svg

MICRO_MODES = ["pair", "batch64"]


def cmd_micro(args):
    installer = Installer(not args.no_install)
    anames = [a.strip() for a in args.allocators.split(",") if a.strip()]
    allocs = resolve_allocators(anames, args, installer)
    bins = build_programs(Path(args.build_dir).resolve())  # absolute: the programs run from a temporary folder
    ctx = Context(args, installer, bins)
    load0 = os.getloadavg()
    try:
        allocs = probe_allocators(ctx, allocs)
        if not allocs:
            sys.exit("bench: no usable allocator")
        baseline = "glibc" if any(a.name == "glibc" for a in allocs) else allocs[0].name
        iters = "300000" if args.quick else "2000000"
        reps = args.reps
        total = reps * len(MICRO_MODES) * len(allocs)
        raw = {m: {a.name: [] for a in allocs} for m in MICRO_MODES}
        i = 0
        for rep in range(1, reps + 1):
            for mode in MICRO_MODES:
                for a in allocs:
                    i += 1
                    argv = [bins["micro"], mode, iters, "3"]
                    if a.lib and not os.path.isfile(a.lib):
                        res = Proc()
                        res.status, res.reason = "FAIL", "preload library missing"
                    else:
                        res = run_process(argv, a.env(ctx.base_env), args.timeout)
                    vals = {}
                    for line in res.stdout.decode(errors="replace").splitlines():
                        p = line.split()
                        if len(p) == 2:
                            vals[int(p[0])] = float(p[1])
                    s = {"rep": rep, "status": res.status, "ns": vals,
                         "wall_s": res.wall if res.status == "ok" else None}
                    if res.status != "ok":
                        s["reason"] = res.reason
                        s["stderr_tail"] = tail(res.stderr, 1500)
                    raw[mode][a.name].append(s)
                    txt = ("%.2f s" % res.wall) if res.status == "ok" else \
                        "%s (%s) %s" % (res.status, res.reason, tail(res.stderr, 200))
                    progress(i, total, "micro-" + mode, a.name, rep, reps, txt)
        summary = {}
        out = []
        names = [a.name for a in allocs]
        for mode in MICRO_MODES:
            summary[mode] = {}
            sizes = sorted({sz for a in names for s in raw[mode][a] for sz in s["ns"]})
            for a in names:
                ok = [s for s in raw[mode][a] if s["status"] == "ok"]
                bad = len(raw[mode][a]) - len(ok)
                summary[mode][a] = {
                    "status": "ok" if not bad else "FAIL",
                    "median_ns": {sz: statistics.median(s["ns"][sz] for s in ok
                                                        if sz in s["ns"])
                                  for sz in sizes if not bad and ok},
                }
            rows = [["size"] + names]
            for sz in sizes:
                row = [str(sz)]
                b = summary[mode][baseline]["median_ns"].get(sz)
                for a in names:
                    c = summary[mode][a]
                    v = c["median_ns"].get(sz)
                    if c["status"] != "ok" or v is None:
                        row.append(c["status"])
                        continue
                    r = v / b if b else None
                    c.setdefault("ratio", {})[sz] = r
                    row.append("%.1f ns" % v if a == baseline or r is None
                               else "%.1f ns %s" % (v, fmt_ratio(r)))
                rows.append(row)
            gm = ["geomean"]
            for a in names:
                g = geomean(list(summary[mode][a].get("ratio", {}).values()))
                summary[mode][a]["geomean_ratio"] = g
                gm.append("1.00x" if a == baseline else fmt_ratio(g))
            rows.append(gm)
            out.append(render_table(
                "== micro %s: ns per malloc+free pair (median of %d runs, best of 3 "
                "trials each); ratio to %s ==" % (mode, reps, baseline), rows, names, 10))
            out.append("")
        print()
        print("\n".join(out).rstrip())
        minfo = machine_info(load0)
        minfo["loadavg_end"] = os.getloadavg()
        doc = {"suite": "BuddyMalloc bench micro", "machine": minfo,
               "config": {"reps": reps, "iters": int(iters), "baseline": baseline},
               "allocators": {a.name: alloc_info(a) for a in allocs},
               "results": {m: {a: {"samples": raw[m][a], **summary[m][a]} for a in names}
                           for m in MICRO_MODES}}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
        log("bench: wrote %s" % args.json)
        series = [a for a in names if a != baseline]
        if series:
            charts = []
            for mode in MICRO_MODES:
                vals, st = {}, {}
                sizes = sorted({sz for a in names
                                for sz in summary[mode][a]["median_ns"]})
                for sz in sizes:
                    for a in series:
                        vals[(str(sz), a)] = summary[mode][a].get("ratio", {}).get(sz)
                        if summary[mode][a]["status"] != "ok":
                            st[(str(sz), a)] = "FAIL"
                charts.append(dict(
                    title="micro %s: ns per malloc+free relative to %s" % (mode, baseline),
                    ylabel="ns per pair / %s" % baseline, groups=[str(s) for s in sizes],
                    series=series, values=vals, statuses=st,
                    baseline_name=baseline, xlabel="allocation size (bytes)"))
            write_svg(args.svg, charts, "micro mode, %d reps; x axis: size in bytes; %s"
                      % (reps, minfo["date"]))
            log("bench: wrote %s" % args.svg)
        return 0 if all(summary[m][a]["status"] == "ok" for m in MICRO_MODES
                        for a in names) else 1
    finally:
        shutil.rmtree(ctx.tmp, ignore_errors=True)
