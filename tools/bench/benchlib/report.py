"""The text report: number formats and the time and RSS tables."""


def fmt_time(s):
    if s is None:
        return "-"
    if s >= 100:
        return "%.0f s" % s
    if s >= 10:
        return "%.1f s" % s
    return "%.3f s" % s


def fmt_kb(kb):
    if kb is None:
        return "-"
    mib = kb / 1024.0
    if mib >= 1000:
        return "%.2fG" % (mib / 1024)
    if mib >= 100:
        return "%.0fM" % mib
    return "%.1fM" % mib


def fmt_ratio(r):
    return "-" if r is None else "%.2fx" % r


def render_table(title, rows, cols, width0=10, width=16):
    lines = [title]
    lines.append("".join([("%-" + str(width0) + "s") % rows[0][0]] +
                         [("%" + str(width) + "s") % c for c in rows[0][1:]]))
    for r in rows[1:]:
        lines.append("".join([("%-" + str(width0) + "s") % r[0]] +
                             [("%" + str(width) + "s") % c for c in r[1:]]))
    return "\n".join(lines)


def build_report(workloads, allocs, summary, baseline):
    """Returns the text tables (time and RSS)."""
    out = []
    names = [a.name for a in allocs]
    w0 = max(10, max(len(w) for w in workloads) + 2)
    for metric, key, fmt, title in (
            ("time", "median_wall_s", fmt_time,
             "Wall time: median over reps; ratio to %s (lower is better)" % baseline),
            ("rss", "median_maxrss_kb", fmt_kb,
             "Peak RSS: median over reps; ratio to %s (lower is better)" % baseline)):
        rows = [["workload"] + names]
        for w in workloads:
            row = [w]
            for a in names:
                c = summary[w].get(a)
                if c is None:
                    row.append("-")
                elif c["status"] != "ok":
                    row.append("%s %d/%d" % (c["status"], c["runs"] - c["ok"], c["runs"]))
                else:
                    r = c.get(metric + "_ratio")
                    if a == baseline or r is None:
                        row.append(fmt(c[key]))
                    else:
                        row.append("%s %s" % (fmt(c[key]), fmt_ratio(r)))
            rows.append(row)
        gm = ["geomean"]
        for a in names:
            g = summary["_geomean"].get(a, {}).get(metric)
            n = summary["_geomean"].get(a, {}).get("n", 0)
            if a == baseline:
                gm.append("1.00x")
            elif g is None:
                gm.append("-")
            else:
                gm.append(fmt_ratio(g) + ("" if n == len(workloads) else " (%d)" % n))
        rows.append(gm)
        out.append(render_table("== " + title + " ==", rows, names, w0))
        out.append("")
    # steady-state final RSS
    for w in workloads:
        if any(summary[w].get(a, {}).get("median_final_rss_kb") for a in names):
            parts = []
            for a in names:
                c = summary[w].get(a, {})
                v = c.get("median_final_rss_kb")
                if v is None:
                    parts.append("%s %s" % (a, c.get("status", "-")))
                else:
                    b = summary[w].get(baseline, {}).get("median_final_rss_kb")
                    parts.append("%s %s%s" % (a, fmt_kb(v), (" (%.2fx)" % (v / b))
                                              if b and a != baseline else ""))
            out.append("%s: RSS after the final shrink (final_rss_kb, median): %s"
                       % (w, ", ".join(parts)))
    return "\n".join(out).rstrip() + "\n"


def fmt_rate(v):
    """Operations per second: 16583679 -> '16.6M', 63812 -> '63.8k'."""
    if v is None:
        return "-"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= div:
            x = v / div
            return ("%.0f%s" if x >= 100 else "%.1f%s" if x >= 10 else "%.2f%s") % (x, suffix)
    return "%.0f" % v


def build_scaling_report(shapes, threads, names, summary, baseline, reps, duration,
                         eff_pair):
    """The scaling tables: per shape, median operations per second by thread count and
    allocator with the ratio to the baseline, and the two efficiency lines (from operations
    per second and from operations per CPU-second); then the efficiencies of every shape in
    one table. summary[shape][alloc] holds "points" {threads: cell}, "efficiency" and
    "efficiency_per_cpu"."""
    out = []
    lo, hi = eff_pair
    effs = (("efficiency", "%d/%d" % (hi, lo)), ("efficiency_per_cpu", "  per CPU")) \
        if hi is not None else ()
    for shape in shapes:
        rows = [["threads"] + names]
        for t in threads:
            row = [str(t)]
            for a in names:
                c = summary[shape][a]["points"].get(t)
                if c is None:
                    row.append("-")
                elif c["status"] != "ok":
                    row.append("%s %d/%d" % (c["status"], c["runs"] - c["ok"], c["runs"]))
                elif a == baseline or c.get("ratio") is None:
                    row.append(fmt_rate(c["median_ops_per_s"]))
                else:
                    row.append("%s %s" % (fmt_rate(c["median_ops_per_s"]),
                                          fmt_ratio(c["ratio"])))
            rows.append(row)
        for key, label in effs:
            row = [label]
            for a in names:
                e = summary[shape][a].get(key)
                row.append("-" if e is None else "%.2f" % e)
            rows.append(row)
        out.append(render_table(
            "== scaling %s: operations per second (median of %d x %g s); ratio to %s "
            "(higher is better) ==" % (shape, reps, duration, baseline), rows, names, 10))
        out.append("")
    for key, what in (("efficiency", "operations per second"),
                      ("efficiency_per_cpu", "operations per CPU-second")):
        if hi is None:
            break
        rows = [["shape"] + names]
        for shape in shapes:
            row = [shape]
            for a in names:
                e = summary[shape][a].get(key)
                row.append("-" if e is None else "%.2f" % e)
            rows.append(row)
        out.append(render_table(
            "== efficiency from %s: at %d threads / at %d threads (target >= 0.8) =="
            % (what, hi, lo), rows, names, 10))
        out.append("")
    return "\n".join(out).rstrip() + "\n"
