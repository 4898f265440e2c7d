import Foundation

/// A hand-written SVG document: shapes appended as XML elements, text escaped.
struct SVG {
    var width: Double
    var height: Double
    private(set) var elements: [String] = []

    init(width: Double, height: Double) {
        self.width = width
        self.height = height
    }

    /// `&`, `<`, `>` and quotes as entities, and no control characters (XML 1.0 forbids them).
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\t", "\n", "\r": out.unicodeScalars.append(scalar)
            default:
                if scalar.value < 0x20 || (0xFFFE...0xFFFF).contains(scalar.value) { out += "?" } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out
    }

    /// A number as an attribute: at most two decimals, no "-0".
    static func n(_ v: Double) -> String {
        let r = (v * 100).rounded() / 100
        if r == r.rounded() { return String(Int(r)) }
        var text = String(format: "%.2f", r)
        while text.hasSuffix("0") { text.removeLast() }
        return text
    }

    mutating func raw(_ element: String) { elements.append(element) }

    mutating func rect(x: Double, y: Double, width: Double, height: Double, fill: String,
                       stroke: String? = nil, tooltip: String? = nil, cssClass: String? = nil) {
        var attributes = "x=\"\(Self.n(x))\" y=\"\(Self.n(y))\" width=\"\(Self.n(max(0, width)))\" height=\"\(Self.n(max(0, height)))\" fill=\"\(fill)\""
        if let stroke { attributes += " stroke=\"\(stroke)\" stroke-width=\"1\"" }
        if let cssClass { attributes += " class=\"\(cssClass)\"" }
        if let tooltip {
            elements.append("<rect \(attributes)><title>\(Self.escape(tooltip))</title></rect>")
        } else {
            elements.append("<rect \(attributes)/>")
        }
    }

    mutating func line(x1: Double, y1: Double, x2: Double, y2: Double, stroke: String, width: Double = 1, dash: String? = nil) {
        elements.append("<line x1=\"\(Self.n(x1))\" y1=\"\(Self.n(y1))\" x2=\"\(Self.n(x2))\" y2=\"\(Self.n(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(Self.n(width))\"\(dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")/>")
    }

    mutating func polyline(_ points: [(Double, Double)], stroke: String, width: Double = 2, dash: String? = nil, cssClass: String? = nil) {
        let list = points.map { "\(Self.n($0.0)),\(Self.n($0.1))" }.joined(separator: " ")
        elements.append("<polyline points=\"\(list)\" fill=\"none\" stroke=\"\(stroke)\" stroke-width=\"\(Self.n(width))\" stroke-linejoin=\"round\"\(dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")\(cssClass.map { " class=\"\($0)\"" } ?? "")/>")
    }

    mutating func circle(cx: Double, cy: Double, r: Double, fill: String, tooltip: String? = nil) {
        let attributes = "cx=\"\(Self.n(cx))\" cy=\"\(Self.n(cy))\" r=\"\(Self.n(r))\" fill=\"\(fill)\""
        if let tooltip {
            elements.append("<circle \(attributes)><title>\(Self.escape(tooltip))</title></circle>")
        } else {
            elements.append("<circle \(attributes)/>")
        }
    }

    enum Anchor: String { case start, middle, end }

    mutating func text(_ string: String, x: Double, y: Double, size: Double = 12, anchor: Anchor = .start,
                       fill: String = "#333", bold: Bool = false, rotate: Double? = nil, cssClass: String? = nil) {
        var attributes = "x=\"\(Self.n(x))\" y=\"\(Self.n(y))\" font-size=\"\(Self.n(size))\" text-anchor=\"\(anchor.rawValue)\" fill=\"\(fill)\""
        if bold { attributes += " font-weight=\"bold\"" }
        if let rotate { attributes += " transform=\"rotate(\(Self.n(rotate)) \(Self.n(x)) \(Self.n(y)))\"" }
        if let cssClass { attributes += " class=\"\(cssClass)\"" }
        elements.append("<text \(attributes)>\(Self.escape(string))</text>")
    }

    /// Starts a group (a series); end it with `endGroup()`.
    mutating func group(id: String? = nil, cssClass: String? = nil, label: String? = nil) {
        var attributes = ""
        if let id { attributes += " id=\"\(Self.escape(id))\"" }
        if let cssClass { attributes += " class=\"\(Self.escape(cssClass))\"" }
        if let label { attributes += " data-series=\"\(Self.escape(label))\"" }
        elements.append("<g\(attributes)>")
    }

    mutating func endGroup() { elements.append("</g>") }

    func document(title: String) -> String {
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Self.n(width))" height="\(Self.n(height))" viewBox="0 0 \(Self.n(width)) \(Self.n(height))" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">
        <title>\(Self.escape(title))</title>
        <rect x="0" y="0" width="\(Self.n(width))" height="\(Self.n(height))" fill="#ffffff"/>
        \(elements.joined(separator: "\n"))
        </svg>

        """
    }
}

/// How an axis labels its values.
enum AxisFormat {
    case bytes, count, percent, seconds

    func label(_ v: Double) -> String {
        switch self {
        case .bytes:
            // Exact, as ticks are powers of two: 768K, 1M, 1.25M.
            var value = v
            var unit = 0
            while value >= 1024 && unit < Units.byteUnits.count - 1 { value /= 1024; unit += 1 }
            return SVG.n(value) + Units.byteUnits[unit]
        case .count:
            if v >= 1_000_000 { return SVG.n(v / 1_000_000) + "M" }
            if v >= 10_000 { return SVG.n(v / 1000) + "k" }
            return SVG.n(v)
        case .percent: return SVG.n(v * 100) + "%"
        case .seconds: return SVG.n(v) + "s"
        }
    }

    /// Ticks over [low, high] at a nice step, and the axis range: whole steps around the data.
    func range(_ low: Double, _ high: Double) -> (ticks: [Double], lower: Double, upper: Double) {
        let span = max(high - low, 1e-9)
        let step = (ticks(upTo: span).dropFirst().first ?? span)
        let lower = (low / step).rounded(.down) * step
        let upper = max(lower + step, (high / step).rounded(.up) * step)
        let count = Int(((upper - lower) / step).rounded())
        return ((0...count).map { lower + Double($0) * step }, lower, upper)
    }

    /// A value that is not a tick (a bar's total, a tooltip): bytes as the text report writes them.
    func value(_ v: Double) -> String {
        if case .bytes = self { return Units.bytes(Int(v.rounded())) }
        return label(v)
    }

    /// Ticks of a log axis: powers of two (bytes) or ten, from one at or below `minimum` to one at
    /// or above `maximum`, at most 8 (every second or third power when they are many).
    func logTicks(from minimum: Double, upTo maximum: Double) -> [Double] {
        let base: Double = { if case .bytes = self { return 2 } else { return 10 } }()
        let low = floor(log(max(minimum, 1)) / log(base))
        let high = max(low + 1, ceil(log(max(maximum, 1)) / log(base) - 1e-9))
        let step = max(1, ceil((high - low) / 7))
        var ticks: [Double] = []
        var e = low
        while e < high + step - 1e-9 { ticks.append(pow(base, e)); e += step }
        return ticks
    }

    /// Ticks from 0 to at least `maximum`, at most 7 steps: 1, 2, 2.5 or 5 x a power of ten, or
    /// for bytes a power of two.
    func ticks(upTo maximum: Double, steps: Double = 7) -> [Double] {
        let top = maximum > 0 && maximum.isFinite ? maximum : 1
        if case .bytes = self {
            // A power of two: at most `steps` steps.
            var step = 1.0
            while top / step > steps { step *= 2 }
            let count = Int((top / step).rounded(.up))
            return (0...max(1, count)).map { Double($0) * step }
        }
        let power = pow(10, floor(log10(top / 5)))
        let step = [1.0, 2, 2.5, 5, 10, 20, 25, 50].map { $0 * power }.first { top / $0 <= steps } ?? 100 * power
        let count = Int((top / step).rounded(.up))
        return (0...max(1, count)).map { Double($0) * step }
    }
}

/// The colors of the charts (Tableau 10), and what each series uses.
enum Palette {
    static let live = "#4e79a7"
    static let cached = "#f28e2b"
    static let slabObjects = "#a0cbe8"
    static let slabSpare = "#d7b5d8"
    static let free = "#bab0ac"
    static let reserved = "#59a14f"
    static let requested = "#b07aa1"
    static let resident = "#9c755f"
    static let internalFragmentation = "#e15759"
    static let externalFragmentation = "#76b7b2"
    static let usage = "#4e79a7"
    static let bars = "#4e79a7"
    static let grid = "#e5e5e5"
    static let axis = "#555555"
}

struct Series {
    var name: String
    var color: String
    var values: [Double]
    var dash: String? = nil
}

/// How a panel's y axis maps values.
enum PanelScale: Equatable {
    /// 0 at the bottom, the last tick at the top.
    case linear
    /// Powers apart evenly, from the first tick (a power below the smallest value) to the last.
    case log
    /// Broken: 0 to `lower` linear over the lower 72% of the panel, then a gap, then `lower` to
    /// the last tick compressed into the rest, so that a few huge bars (free bytes) do not flatten
    /// the others.
    case split(lower: Double)
}

/// One plot area: its rectangle and its y axis.
struct Panel {
    var x: Double
    var y: Double
    var width: Double
    var height: Double
    var yTicks: [Double]
    var scale: PanelScale = .linear

    /// The share of the height below a split axis's break, and the gap of the break.
    static let lowerShare = 0.72
    static let breakGap = 12.0

    var top: Double { yTicks.last ?? 1 }

    /// The y coordinate of a value.
    func y(_ value: Double) -> Double {
        switch scale {
        case .linear:
            return y + height - value / top * height
        case .log:
            let low = yTicks.first ?? 1
            let v = min(max(value, low), top)
            return y + height - (log2(v) - log2(low)) / max(1e-9, log2(top) - log2(low)) * height
        case .split(let lower):
            let lowerHeight = height * Self.lowerShare
            if value <= lower { return y + height - value / lower * lowerHeight }
            let upperHeight = height - lowerHeight - Self.breakGap
            return y + upperHeight - (min(value, top) - lower) / max(1e-9, top - lower) * upperHeight
        }
    }

    /// The gap of a split axis: its top and bottom.
    var breakBand: (top: Double, bottom: Double)? {
        guard case .split = scale else { return nil }
        let bottom = y + height - height * Self.lowerShare
        return (bottom - Self.breakGap, bottom)
    }

    var bottom: Double { y + height }
}

/// What every chart shares: the title and subtitle, a legend row, panels with a y axis and
/// horizontal grid lines, and axis titles.
struct ChartCanvas {
    var svg: SVG
    static let left = 86.0
    static let right = 24.0
    /// Where the panels may start.
    let top: Double

    /// `lines`: legend swatches are line segments (line charts), not boxes.
    init(title: String, subtitle: String?, legend: [Series], lines: Bool = false, width: Double = 860, height: Double = 480) {
        svg = SVG(width: width, height: height)
        top = legend.isEmpty ? 64 : 84
        svg.text(title, x: width / 2, y: 26, size: 17, anchor: .middle, fill: "#111", bold: true, cssClass: "title")
        if let subtitle { svg.text(subtitle, x: width / 2, y: 45, size: 12, anchor: .middle, fill: "#666", cssClass: "subtitle") }
        guard !legend.isEmpty else { return }
        svg.group(cssClass: "legend")
        var x = Self.left
        for s in legend {
            if lines {
                svg.line(x1: x, y1: 64, x2: x + 22, y2: 64, stroke: s.color, width: 3, dash: s.dash)
            } else {
                svg.rect(x: x, y: 58, width: 18, height: 12, fill: s.color)
            }
            svg.text(s.name, x: x + 28, y: 69, size: 12, fill: "#333")
            x += 28 + Double(s.name.count) * 7.2 + 22
        }
        svg.endGroup()
    }

    var plotWidth: Double { svg.width - Self.left - Self.right }

    /// A panel from `y` to `y + height`, with its grid, y ticks and y title. `scale`: linear;
    /// log from `yMinimum` (the smallest value above 0); split above `yBreak`.
    mutating func panel(y: Double, height: Double, yMax: Double, yFormat: AxisFormat, yTitle: String,
                        scale: PanelScale = .linear, yMinimum: Double = 1) -> Panel {
        var ticks = yFormat.ticks(upTo: yMax)
        switch scale {
        case .linear: break
        case .log: ticks = yFormat.logTicks(from: yMinimum, upTo: yMax)
        case .split(let lower):
            // Whole steps below the break; above it, at most three ticks up to the top.
            let below = yFormat.ticks(upTo: lower)
            let breakValue = below.last ?? lower
            let above = yFormat.ticks(upTo: yMax, steps: 3).filter { $0 > breakValue * 1.2 }
            guard !above.isEmpty else { break }
            ticks = below + above
            let panel = Panel(x: Self.left, y: y, width: plotWidth, height: height, yTicks: ticks, scale: .split(lower: breakValue))
            return drawAxis(panel, yFormat: yFormat, yTitle: yTitle)
        }
        return drawAxis(Panel(x: Self.left, y: y, width: plotWidth, height: height, yTicks: ticks, scale: scale), yFormat: yFormat, yTitle: yTitle)
    }

    private mutating func drawAxis(_ panel: Panel, yFormat: AxisFormat, yTitle: String) -> Panel {
        svg.group(cssClass: "y-axis")
        for tick in panel.yTicks {
            let yy = panel.y(tick)
            svg.line(x1: panel.x, y1: yy, x2: panel.x + panel.width, y2: yy, stroke: tick == panel.yTicks.first ? Palette.axis : Palette.grid)
            svg.text(yFormat.label(tick), x: panel.x - 8, y: yy + 4, size: 11, anchor: .end, fill: "#444")
        }
        svg.line(x1: panel.x, y1: panel.y, x2: panel.x, y2: panel.bottom, stroke: Palette.axis)
        svg.text(yTitle + (panel.scale == .log ? " (log scale)" : panel.breakBand != nil ? " (axis broken)" : ""), x: 18, y: panel.y + panel.height / 2, size: 12, anchor: .middle, fill: "#333", rotate: -90)
        svg.endGroup()
        return panel
    }

    /// Over a split axis's gap: a white band across the bars, and the break's marks on the axis.
    mutating func breakMarks(_ panel: Panel, note: String) {
        guard let band = panel.breakBand else { return }
        svg.group(cssClass: "axis-break")
        svg.rect(x: panel.x + 1, y: band.top + 2, width: panel.width - 1, height: band.bottom - band.top - 4, fill: "#ffffff")
        for dy in [band.top + 2, band.bottom - 2] {
            svg.line(x1: panel.x - 6, y1: dy + 3, x2: panel.x + 6, y2: dy - 3, stroke: Palette.axis, width: 1.2)
        }
        svg.raw("<desc>\(SVG.escape(note))</desc>")
        svg.endGroup()
    }

    mutating func xTitle(_ text: String) {
        svg.text(text, x: Self.left + plotWidth / 2, y: svg.height - 12, size: 12, anchor: .middle, fill: "#333", cssClass: "x-title")
    }
}

/// Bars per category, each panel's series stacked; panels share the categories (one above the other).
struct StackedBarChart {
    struct Part {
        var series: [Series]
        var yTitle: String
        var yFormat: AxisFormat
        /// Print each bar's total above it.
        var totals = false
        var scale: PanelScale = .linear
        /// A split axis's note at its break ("free bytes cut").
        var breakNote = ""
    }

    var title: String
    var subtitle: String?
    var categories: [String]
    /// Extra text per category for the tooltips.
    var details: [String]? = nil
    var parts: [Part]
    var xTitle: String

    func render() -> String {
        let rotate = categories.count > 16
        let legend = parts[0].series.count > 1 ? parts[0].series : []
        let panelHeight = 330.0
        let gap = 26.0
        let bottomMargin = rotate ? 86.0 : 64.0
        let headTop = legend.isEmpty ? 64.0 : 84.0
        let height = headTop + Double(parts.count) * panelHeight + Double(parts.count - 1) * gap + bottomMargin
        var canvas = ChartCanvas(title: title, subtitle: subtitle, legend: legend, height: height)
        let slot = canvas.plotWidth / Double(max(1, categories.count))
        let barWidth = max(2, slot * 0.72)
        var y = canvas.top
        for (p, part) in parts.enumerated() {
            let totals = categories.indices.map { i in part.series.reduce(0) { $0 + $1.values[i] } }
            let grouped = part.scale == .log
            let smallest = part.series.flatMap(\.values).filter { $0 > 0 }.min() ?? 1
            let largest = grouped ? (part.series.flatMap(\.values).max() ?? 1) : (totals.max() ?? 1)
            // Room above the tallest bar for its total.
            let panel = canvas.panel(y: y, height: panelHeight, yMax: largest * (part.totals && !grouped ? 1.06 : 1),
                                     yFormat: part.yFormat, yTitle: part.yTitle, scale: part.scale, yMinimum: smallest)
            let visible = part.series.filter { s in s.values.contains { $0 > 0 } }
            for s in part.series {
                canvas.svg.group(cssClass: "series", label: s.name + (parts.count > 1 ? " (\(part.yTitle))" : ""))
                for (i, value) in s.values.enumerated() where value > 0 {
                    let tooltip = "\(categories[i]): \(s.name) \(part.yFormat.value(value))" + (details.map { " (\($0[i]))" } ?? "")
                    if grouped {
                        // Log: each series its own bar from the axis's foot (stacked heights would not add up).
                        let k = Double(visible.firstIndex { $0.name == s.name } ?? 0)
                        let width = barWidth / Double(max(1, visible.count))
                        let y1 = panel.y(value)
                        canvas.svg.rect(x: panel.x + Double(i) * slot + (slot - barWidth) / 2 + k * width, y: y1, width: width,
                                        height: max(0.5, panel.bottom - y1), fill: s.color, tooltip: tooltip)
                        continue
                    }
                    let below = part.series.prefix { $0.name != s.name }.reduce(0) { $0 + $1.values[i] }
                    let y0 = panel.y(below), y1 = panel.y(below + value)
                    canvas.svg.rect(x: panel.x + Double(i) * slot + (slot - barWidth) / 2, y: y1, width: barWidth,
                                    height: max(0.5, y0 - y1), fill: s.color, tooltip: tooltip)
                }
                canvas.svg.endGroup()
            }
            canvas.breakMarks(panel, note: part.breakNote)
            if part.totals && slot >= 26 && !grouped {
                canvas.svg.group(cssClass: "totals")
                for (i, total) in totals.enumerated() where total > 0 {
                    canvas.svg.text(part.yFormat.value(total), x: panel.x + (Double(i) + 0.5) * slot, y: panel.y(total) - 4,
                                    size: 9.5, anchor: .middle, fill: "#555")
                }
                canvas.svg.endGroup()
            }
            // Category ticks on every panel, labels under the last one.
            canvas.svg.group(cssClass: "x-axis")
            for (i, category) in categories.enumerated() {
                let x = panel.x + (Double(i) + 0.5) * slot
                canvas.svg.line(x1: x, y1: panel.bottom, x2: x, y2: panel.bottom + 4, stroke: Palette.axis)
                guard p == parts.count - 1 else { continue }
                if rotate {
                    canvas.svg.text(category, x: x + 3, y: panel.bottom + 16, size: 11, anchor: .end, fill: "#444", rotate: -45)
                } else {
                    canvas.svg.text(category, x: x, y: panel.bottom + 18, size: 11, anchor: .middle, fill: "#444")
                }
            }
            canvas.svg.endGroup()
            y += panelHeight + gap
        }
        canvas.xTitle(xTitle)
        return canvas.svg.document(title: title)
    }
}

/// Lines over a numeric x axis (time).
struct LineChart {
    var title: String
    var subtitle: String?
    var x: [Double]
    var xFormat: AxisFormat
    var series: [Series]
    var yTitle: String
    var xTitle: String
    var yFormat: AxisFormat
    /// The y axis goes at least this high (0.1 for ratios: a flat 1% line does not fill the chart).
    var yMin: Double = 0

    func render() -> String {
        let yMax = max(yMin, series.flatMap(\.values).filter(\.isFinite).max() ?? 1)
        var canvas = ChartCanvas(title: title, subtitle: subtitle, legend: series, lines: true)
        let panel = canvas.panel(y: canvas.top, height: 480 - canvas.top - 64, yMax: yMax, yFormat: yFormat, yTitle: yTitle)
        let (xTicks, lower, upper) = xFormat.range(x.min() ?? 0, x.max() ?? 1)
        func px(_ v: Double) -> Double { panel.x + (v - lower) / max(1e-9, upper - lower) * panel.width }

        canvas.svg.group(cssClass: "x-axis")
        for tick in xTicks {
            let xx = px(tick)
            canvas.svg.line(x1: xx, y1: panel.y, x2: xx, y2: panel.bottom, stroke: Palette.grid)
            canvas.svg.line(x1: xx, y1: panel.bottom, x2: xx, y2: panel.bottom + 4, stroke: Palette.axis)
            canvas.svg.text(xFormat.label(tick), x: xx, y: panel.bottom + 18, size: 11, anchor: .middle, fill: "#444")
        }
        canvas.svg.endGroup()
        for s in series {
            canvas.svg.group(cssClass: "series", label: s.name)
            let data = zip(x, s.values).filter { $0.1.isFinite }
            canvas.svg.polyline(data.map { (px($0.0), panel.y($0.1)) }, stroke: s.color, width: 2.2, dash: s.dash)
            if data.count <= 60 {
                for (xv, yv) in data {
                    canvas.svg.circle(cx: px(xv), cy: panel.y(yv), r: 3, fill: s.color,
                                      tooltip: "\(s.name) at \(xFormat.value(xv)): \(yFormat.value(yv))")
                }
            }
            canvas.svg.endGroup()
        }
        canvas.xTitle(xTitle)
        return canvas.svg.document(title: title)
    }
}
