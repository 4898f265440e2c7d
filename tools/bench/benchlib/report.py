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
