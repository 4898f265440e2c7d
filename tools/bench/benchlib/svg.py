"""The SVG charts: grouped bars of ratios to the baseline, and lines of a value against a
thread count (log2 x axis)."""

import math
from xml.sax.saxutils import escape as xml_escape

COLORS = {
    "glibc": "#7f7f7f",
    "buddy": "#d62728",
    "jemalloc": "#1f77b4",
    "tcmalloc": "#2ca02c",
    "mimalloc": "#9467bd",
}
EXTRA_COLORS = ["#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]


def color_for(name, idx):
    return COLORS.get(name) or EXTRA_COLORS[idx % len(EXTRA_COLORS)]


def nice_step(span):
    for step in (0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000):
        if span / step <= 8:
            return step
    return span / 8


def svg_chart(x0, y0, title, ylabel, groups, series, values, statuses, cap=4.0,
              group_label_rot=0, fmt_val="%.2f", baseline_name="baseline",
              xlabel="workload"):
    """A grouped bar chart. values[(group, series)] -> float or None,
    statuses[(group, series)] -> status text shown when the value is None.
    Returns (svg elements, width, height)."""
    bar_w = 13
    gap = 20
    left, right, top, bottom = 64, 150, 34, 58
    plot_h = 260
    gw = bar_w * len(series) + gap
    plot_w = max(gw * len(groups), 200)
    width = left + plot_w + right
    height = top + plot_h + bottom
    finite = [v for v in values.values() if v is not None]
    vmax = max(finite + [1.0])
    ymax = min(max(vmax * 1.08, 1.2), cap)
    step = nice_step(ymax)
    ymax = math.ceil(ymax / step - 1e-9) * step
    X = lambda px: x0 + left + px  # noqa: E731
    Y = lambda v: y0 + top + plot_h - (min(v, ymax) / ymax) * plot_h  # noqa: E731
    e = []
    e.append('<g font-family="sans-serif" font-size="11">')
    e.append('<text x="%.1f" y="%.1f" font-size="14" font-weight="bold">%s</text>'
             % (x0 + left, y0 + 20, xml_escape(title)))
    # grid + y ticks
    t = 0.0
    while t <= ymax + 1e-9:
        y = Y(t)
        e.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e0e0e0"/>'
                 % (X(0), y, X(plot_w), y))
        e.append('<text x="%.1f" y="%.1f" text-anchor="end">%g</text>'
                 % (X(-6), y + 4, round(t, 3)))
        t += step
    # axes
    e.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000"/>'
             % (X(0), Y(0), X(plot_w), Y(0)))
    e.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000"/>'
             % (X(0), Y(0), X(0), Y(ymax)))
    e.append('<text transform="translate(%.1f,%.1f) rotate(-90)" '
             'text-anchor="middle" font-size="12">%s</text>'
             % (x0 + 16, y0 + top + plot_h / 2, xml_escape(ylabel)))
    # bars
    for gi, g in enumerate(groups):
        gx = gi * gw + gap / 2
        for si, s in enumerate(series):
            v = values.get((g, s))
            bx = X(gx + si * bar_w)
            if v is None:
                st = statuses.get((g, s))
                if st:
                    e.append('<text transform="translate(%.1f,%.1f) rotate(-90)" '
                             'font-size="9" fill="#c00000">%s</text>'
                             % (bx + bar_w * 0.75, Y(0) - 3, xml_escape(st)))
                continue
            yt = Y(v)
            e.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s">'
                     '<title>%s / %s: %s</title></rect>'
                     % (bx, yt, bar_w - 1, Y(0) - yt, color_for(s, si),
                        xml_escape(g), xml_escape(s), fmt_val % v))
            if v > ymax:
                e.append('<text x="%.1f" y="%.1f" font-size="9" text-anchor="middle" '
                         'fill="#000">%s</text>'
                         % (bx + bar_w / 2, yt - 3, (fmt_val % v) + "\u2191"))
        lx = X(gx + len(series) * bar_w / 2)
        if group_label_rot:
            e.append('<text transform="translate(%.1f,%.1f) rotate(%d)" '
                     'text-anchor="end">%s</text>'
                     % (lx, Y(0) + 14, group_label_rot, xml_escape(g)))
        else:
            e.append('<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>'
                     % (lx, Y(0) + 15, xml_escape(g)))
    # 1.0 reference line
    if ymax >= 1.0:
        e.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000" '
                 'stroke-width="1.5" stroke-dasharray="6,3"/>'
                 % (X(0), Y(1.0), X(plot_w), Y(1.0)))
    # separator before the summary group
    if "geomean" in groups:
        sx = X(groups.index("geomean") * gw)
        e.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999" '
                 'stroke-dasharray="2,3"/>' % (sx, Y(0), sx, Y(ymax)))
    # legend
    lx, ly = X(plot_w) + 14, y0 + top + 4
    e.append('<text x="%.1f" y="%.1f" font-weight="bold">allocator</text>' % (lx, ly + 10))
    for si, s in enumerate(series):
        yy = ly + 18 + si * 17
        e.append('<rect x="%.1f" y="%.1f" width="12" height="12" fill="%s"/>'
                 % (lx, yy, color_for(s, si)))
        e.append('<text x="%.1f" y="%.1f">%s</text>' % (lx + 17, yy + 10, xml_escape(s)))
    yy = ly + 18 + len(series) * 17 + 6
    e.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000" '
             'stroke-width="1.5" stroke-dasharray="6,3"/>' % (lx, yy + 6, lx + 12, yy + 6))
    e.append('<text x="%.1f" y="%.1f">%s</text>'
             % (lx + 17, yy + 10, xml_escape("1.0 = " + baseline_name)))
    e.append('<text x="%.1f" y="%.1f" text-anchor="middle" font-size="12">%s</text>'
             % (X(plot_w / 2), y0 + height - 12, xml_escape(xlabel)))
    e.append("</g>")
    return e, width, height


def fmt_si(v):
    """1234567 -> '1.23M', 45600 -> '45.6k'."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            x = v / div
            return ("%.0f%s" if x >= 100 else "%.1f%s" if x >= 10 else "%.2f%s") % (x, suffix)
    return "%.3g" % v


def svg_line_chart(x0, y0, title, ylabel, xs, series, values, xlabel="threads",
                   vline=None, vline_label=""):
    """Lines of values[(x, series)] -> float or None (a gap) against xs, which
    are powers of two placed evenly (a log2 axis); y is linear from 0.
    vline: an x at which a dashed vertical line is drawn, labelled vline_label.
    Returns (svg elements, width, height)."""
    left, right, top, bottom = 70, 150, 34, 58
    plot_h = 280
    plot_w = 520
    width = left + plot_w + right
    height = top + plot_h + bottom
    finite = [v for v in values.values() if v is not None]
    vmax = max(finite) if finite else 1.0
    if vmax <= 0:
        vmax = 1.0
    mag = 10 ** math.floor(math.log10(vmax))
    step = nice_step(vmax * 1.08 / mag) * mag
    ymax = math.ceil(vmax * 1.08 / step - 1e-9) * step
    lx0 = math.log2(xs[0]) if xs else 0
    lspan = (math.log2(xs[-1]) - lx0) if len(xs) > 1 else 1
    X = lambda x: x0 + left + (math.log2(x) - lx0) / lspan * plot_w  # noqa: E731
    Y = lambda v: y0 + top + plot_h - (v / ymax) * plot_h  # noqa: E731
    e = ['<g font-family="sans-serif" font-size="11">']
    e.append('<text x="%.1f" y="%.1f" font-size="14" font-weight="bold">%s</text>'
             % (x0 + left, y0 + 20, xml_escape(title)))
    t = 0.0
    while t <= ymax + step * 1e-6:
        y = Y(t)
        e.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e0e0e0"/>'
                 % (X(xs[0]), y, X(xs[0]) + plot_w, y))
        e.append('<text x="%.1f" y="%.1f" text-anchor="end">%s</text>'
                 % (X(xs[0]) - 6, y + 4, fmt_si(t) if t else "0"))
        t += step
    for x in xs:
        e.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#f0f0f0"/>'
                 % (X(x), Y(0), X(x), Y(ymax)))
        e.append('<text x="%.1f" y="%.1f" text-anchor="middle">%d</text>'
                 % (X(x), Y(0) + 15, x))
    e.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000"/>'
             % (X(xs[0]), Y(0), X(xs[0]) + plot_w, Y(0)))
    e.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000"/>'
             % (X(xs[0]), Y(0), X(xs[0]), Y(ymax)))
    e.append('<text transform="translate(%.1f,%.1f) rotate(-90)" '
             'text-anchor="middle" font-size="12">%s</text>'
             % (x0 + 16, y0 + top + plot_h / 2, xml_escape(ylabel)))
    if vline is not None and xs[0] <= vline <= xs[-1]:
        e.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#888" '
                 'stroke-dasharray="4,3"/>' % (X(vline), Y(0), X(vline), Y(ymax)))
        e.append('<text x="%.1f" y="%.1f" font-size="10" fill="#555">%s</text>'
                 % (X(vline) + 4, Y(ymax) + 10, xml_escape(vline_label)))
    for si, s in enumerate(series):
        c = color_for(s, si)
        run = []
        for x in xs + [None]:
            v = values.get((x, s)) if x is not None else None
            if v is not None:
                run.append((X(x), Y(v)))
                continue
            if len(run) > 1:
                e.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>'
                         % (c, " ".join("%.1f,%.1f" % p for p in run)))
            run = []
        for x in xs:
            v = values.get((x, s))
            if v is not None:
                e.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s">'
                         '<title>%s, %d threads: %s</title></circle>'
                         % (X(x), Y(v), c, xml_escape(s), x, fmt_si(v)))
    lx, ly = X(xs[0]) + plot_w + 14, y0 + top + 4
    e.append('<text x="%.1f" y="%.1f" font-weight="bold">allocator</text>' % (lx, ly + 10))
    for si, s in enumerate(series):
        yy = ly + 18 + si * 17
        e.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" '
                 'stroke-width="2"/>' % (lx, yy + 6, lx + 14, yy + 6, color_for(s, si)))
        e.append('<text x="%.1f" y="%.1f">%s</text>' % (lx + 19, yy + 10, xml_escape(s)))
    e.append('<text x="%.1f" y="%.1f" text-anchor="middle" font-size="12">%s</text>'
             % (X(xs[0]) + plot_w / 2, y0 + height - 12, xml_escape(xlabel)))
    e.append("</g>")
    return e, width, height


def write_svg(path, charts, footer):
    """charts: list of dicts with svg_chart kwargs (or svg_line_chart kwargs and
    kind="line"); stacks them vertically."""
    parts, w, y = [], 0, 0
    for c in charts:
        c = dict(c)
        draw = svg_line_chart if c.pop("kind", "bar") == "line" else svg_chart
        els, cw, ch = draw(0, y, **c)
        parts += els
        w = max(w, cw)
        y += ch + 10
    y += 10
    parts.append('<text x="10" y="%d" font-family="sans-serif" font-size="10" '
                 'fill="#555">%s</text>' % (y, xml_escape(footer)))
    y += 10
    doc = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'viewBox="0 0 %d %d">' % (w, y, w, y),
           '<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>' % (w, y)]
    doc += parts
    doc.append("</svg>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(doc) + "\n")
