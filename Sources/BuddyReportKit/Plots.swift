import Foundation

/// The charts of `buddy-report plot`.
public enum ChartKind: String, CaseIterable, Sendable {
    /// Bytes per order, stacked live / cached / free (the newest report).
    case perOrder = "per-order"
    /// The requested-size histogram (the newest report).
    case sizes
    /// Internal and external fragmentation, and usage, over time (a series).
    case fragmentation
    /// Reserved, used, cached, free and requested bytes over time (a series).
    case usage

    public var fileName: String { rawValue + ".svg" }

    /// Whether the chart needs several reports of one process.
    public var needsSeries: Bool { self == .fragmentation || self == .usage }
}

/// The y axis of the per-order chart's bytes.
public enum ChartScale: String, CaseIterable, Sendable {
    /// split when the free bytes would flatten the rest (the largest bar more than 3 times the
    /// largest bar without its free bytes), else linear.
    case auto
    case linear
    /// Each part its own bar, on a log axis.
    case log
    /// A broken axis: the live, slab and cached bytes on the lower 72%, free bytes above the break compressed.
    case split
}

public struct PlotError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// Charts of one process's reports: the newest one's orders and sizes, the series over time.
public struct Plotter: Sendable {
    /// The process plotted, its reports oldest first.
    public let pid: Int
    public let reports: [ReportDocument]
    /// What the reader should know (other processes left out, ...).
    public private(set) var notes: [String] = []
    /// The per-order chart's bytes axis.
    public var scale: ChartScale = .auto

    public init(documents: [ReportDocument]) throws(PlotError) {
        let series = ReportSeries(documents)
        guard let pid = series.mainPid else { throw PlotError(description: "no reports to plot") }
        self.pid = pid
        reports = series.reports(pid: pid)
        let others = series.pids.filter { $0 != pid }
        if !others.isEmpty {
            notes.append("the reports are of \(others.count + 1) processes: plotting pid \(pid) (\(reports.count) report\(reports.count == 1 ? "" : "s")), not pid\(others.count == 1 ? "" : "s") \(others.map(String.init).joined(separator: ", "))")
        }
    }

    public var latest: Report { reports.last!.report }

    /// The charts these reports can make: all four for a series, the newest report's otherwise.
    public var available: [ChartKind] {
        ChartKind.allCases.filter { kind in
            if kind.needsSeries { return reports.count > 1 }
            if kind == .sizes { return latest.sizes.contains { $0.count > 0 } }
            return true
        }
    }

    public func svg(_ kind: ChartKind) throws(PlotError) -> String {
        if kind.needsSeries && reports.count < 2 {
            throw PlotError(description: "the \(kind.rawValue) chart needs a series of reports of one process (several files, or a stream such as BUDDY_REPORT_INTERVAL writes); got 1 report of pid \(pid)")
        }
        switch kind {
        case .perOrder: return perOrder()
        case .sizes: return try sizes()
        case .fragmentation: return fragmentation()
        case .usage: return usage()
        }
    }

    // MARK: - Charts

    /// "python3, pid 6513, at exit, uptime 4.38s".
    static func describe(_ r: Report) -> String {
        var parts = [r.program.isEmpty ? "pid \(r.pid)" : "\(r.program), pid \(r.pid)", ShowRenderer.reasonText(r.reason)]
        if r.sequence > 0 || r.reason == "interval" { parts.append("report #\(r.sequence)") }
        if let uptime = r.uptime { parts.append("uptime \(Units.duration(uptime))") }
        return parts.joined(separator: ", ")
    }

    /// Bytes per order of the newest report, split as the memory figures are: live blocks, live
    /// slab objects, cached (blocks and objects in thread caches), spare in slabs (their free
    /// objects, headers and slack) and free blocks. A slab is a block of its slab size's order.
    func perOrder() -> String {
        let r = latest
        let orders = r.orders.sorted { $0.order < $1.order }
        let slabs = Dictionary(grouping: r.slabClasses, by: \.slabSize)
        func slabBytes(_ o: Report.Order) -> (live: Int, cached: Int, spare: Int, count: Int) {
            let classes = slabs[o.blockSize] ?? []
            return (classes.reduce(0) { $0 + $1.liveBytes }, classes.reduce(0) { $0 + $1.cachedBytes },
                    classes.reduce(0) { $0 + max(0, $1.spareBytes) }, classes.reduce(0) { $0 + $1.slabs })
        }
        let active = orders.filter { $0.live + $0.free + $0.cached + slabBytes($0).count > 0 }
        let low = active.first?.order ?? orders.first?.order ?? 0
        let high = active.last?.order ?? orders.last?.order ?? 0
        let shown = orders.filter { (low...high).contains($0.order) }
        let slab = shown.map(slabBytes)
        let m = r.memory
        let hasSlabs = slab.contains { $0.count > 0 }
        var bytes = [Series(name: "live blocks", color: Palette.live, values: shown.map { Double($0.liveBytes) })]
        if hasSlabs { bytes.append(Series(name: "live slab objects", color: Palette.slabObjects, values: slab.map { Double($0.live) })) }
        bytes.append(Series(name: "cached", color: Palette.cached, values: zip(shown, slab).map { Double($0.cachedBytes + $1.cached) }))
        if hasSlabs { bytes.append(Series(name: "spare in slabs", color: Palette.slabSpare, values: slab.map { Double($0.spare) })) }
        bytes.append(Series(name: "free", color: Palette.free, values: shown.map { Double($0.freeBytes) }))

        // The free blocks (a fresh segment's untouched tail is free top-order blocks) can be
        // hundreds of times the rest: a broken axis keeps the other bars readable.
        let totals = shown.indices.map { i in bytes.reduce(0) { $0 + $1.values[i] } }
        let held = shown.indices.map { i in bytes.dropLast().reduce(0) { $0 + $1.values[i] } }
        let largestHeld = held.max() ?? 0, largest = totals.max() ?? 0
        var scale = self.scale
        if scale == .auto { scale = largestHeld > 0 && largest > 3 * largestHeld ? .split : .linear }
        var panelScale = PanelScale.linear
        var note = ""
        switch scale {
        case .split where largestHeld > 0 && largest > largestHeld * 1.3:
            panelScale = .split(lower: largestHeld * 1.08)
            note = "bytes axis broken above \(Units.bytes(Int(largestHeld * 1.08))): the bars above it (free bytes) compressed"
        case .log: panelScale = .log
        default: break
        }
        var counts = [Series(name: "live blocks", color: Palette.live, values: shown.map { Double($0.live) })]
        if hasSlabs { counts.append(Series(name: "slabs", color: Palette.slabObjects, values: slab.map { Double($0.count) })) }
        counts += [
            Series(name: "cached", color: Palette.cached, values: shown.map { Double($0.cached) }),
            Series(name: "free", color: Palette.free, values: shown.map { Double($0.free) }),
        ]
        return StackedBarChart(
            title: "Blocks per order",
            subtitle: "\(Self.describe(r)): used \(Units.bytes(m.used)), cached \(Units.bytes(m.cached)), free \(Units.bytes(m.free)) of \(Units.bytes(m.reserved)) reserved",
            categories: shown.map { Units.bytes($0.blockSize) },
            details: zip(shown, slab).map { o, s in
                "order \(o.order): \(o.live) live, \(o.cached) cached, \(o.free) free blocks"
                    + (s.count > 0 ? "; \(s.count) slab\(s.count == 1 ? "" : "s"): \(Units.bytes(s.live)) live objects, \(Units.bytes(s.cached)) cached, \(Units.bytes(s.spare)) spare" : "")
            },
            parts: [
                .init(series: bytes, yTitle: "bytes", yFormat: .bytes, totals: true, scale: panelScale, breakNote: note),
                // Counts: the small orders, invisible in bytes next to the free top-order blocks.
                .init(series: counts, yTitle: "blocks", yFormat: .count),
            ],
            xTitle: "block size (order)"
        ).render()
    }

    func sizes() throws(PlotError) -> String {
        let r = latest
        let counts = Dictionary(r.sizes.map { ($0.upto, $0.count) }, uniquingKeysWith: +)
        guard let low = counts.filter({ $0.value > 0 }).keys.min(), let high = counts.filter({ $0.value > 0 }).keys.max() else {
            throw PlotError(description: "the report has no requested sizes (its \"sizes\" list is empty)")
        }
        // Every power-of-two bucket between the smallest and the largest, empty ones too.
        var buckets: [Int] = []
        if low > 0 && low & (low - 1) == 0 && high & (high - 1) == 0 {
            var b = low
            while b <= high { buckets.append(b); b *= 2 }
        } else {
            buckets = counts.keys.sorted()
        }
        let total = counts.values.reduce(0, +)
        return StackedBarChart(
            title: "Requested sizes",
            subtitle: "\(Self.describe(r)): \(total) requests",
            categories: buckets.map { Units.bytes($0) },
            details: buckets.map { "sizes up to \(Units.bytes($0)): \(counts[$0] ?? 0) requests" },
            parts: [.init(series: [Series(name: "requests", color: Palette.bars, values: buckets.map { Double(counts[$0] ?? 0) })],
                          yTitle: "requests", yFormat: .count, totals: true)],
            xTitle: "requested size (bucket: at most)"
        ).render()
    }

    /// Seconds of uptime, or the report's sequence number when a report has no time.
    var xAxis: (values: [Double], format: AxisFormat, title: String) {
        if reports.allSatisfy({ $0.report.time != nil }) {
            return (reports.map { $0.report.time!.uptime }, .seconds, "time since the pool was created")
        }
        return (reports.map { Double($0.report.sequence) }, .count, "report number")
    }

    func fragmentation() -> String {
        let x = xAxis
        let m = reports.map(\.report.memory)
        return LineChart(
            title: "Fragmentation and usage over time",
            subtitle: "\(Self.describe(latest)); \(reports.count) reports",
            x: x.values, xFormat: x.format,
            series: [
                Series(name: "internal fragmentation", color: Palette.internalFragmentation, values: m.map(\.internalFragmentation)),
                Series(name: "external fragmentation", color: Palette.externalFragmentation, values: m.map(\.externalFragmentation)),
                Series(name: "usage (used / reserved)", color: Palette.usage, values: m.map(\.usage), dash: "6 4"),
            ],
            yTitle: "share", xTitle: x.title, yFormat: .percent, yMin: 0.1
        ).render()
    }

    func usage() -> String {
        let x = xAxis
        let m = reports.map(\.report.memory)
        var series = [Series(name: "reserved", color: Palette.reserved, values: m.map { Double($0.reserved) })]
        if m.contains(where: { $0.resident > 0 }) {
            series.append(Series(name: "resident", color: Palette.resident, values: m.map { Double($0.resident) }, dash: "2 3"))
        }
        series += [
            Series(name: "used", color: Palette.live, values: m.map { Double($0.used) }),
            Series(name: "requested", color: Palette.requested, values: m.map { Double($0.requested) }, dash: "6 4"),
            Series(name: "cached", color: Palette.cached, values: m.map { Double($0.cached) }),
            Series(name: "free", color: Palette.free, values: m.map { Double($0.free) }),
        ]
        return LineChart(
            title: "Memory over time",
            subtitle: "\(Self.describe(latest)); \(reports.count) reports",
            x: x.values, xFormat: x.format, series: series,
            yTitle: "bytes", xTitle: x.title, yFormat: .bytes
        ).render()
    }
}
