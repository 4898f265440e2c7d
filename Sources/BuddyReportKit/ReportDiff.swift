import Foundation

/// `buddy-report diff A B`: what grew or shrank between two reports, section by section (memory,
/// calls, blocks per order, slab classes, requested sizes, allocation sites), largest change first.
public struct ReportDiff: Sendable {
    public enum Unit: String, Sendable, Encodable {
        case bytes, count, ratio
        /// Blocks of one order (or slabs, or slab objects): a count, whose bytes are count x block size.
        case blocks
    }

    public struct Row: Sendable, Encodable {
        public var name: String
        public var a: Double
        public var b: Double
        public var unit: Unit
        /// For `.blocks`, the size of one block, slab or object (the change in bytes is change x blockSize).
        public var blockSize: Int?
        /// For sites: the change in live samples (not blocks: one sample stands for P bytes).
        public var countChange: Int?

        public var change: Double { b - a }

        /// What the rows of a section are sorted by: the change in bytes where there are bytes.
        var weight: Double {
            switch unit {
            case .blocks: return abs(change) * Double(blockSize ?? 1)
            default: return abs(change)
            }
        }

        enum CodingKeys: String, CodingKey {
            case name, a, b, unit, change
            case blockSize = "block_size", countChange = "count_change"
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            try c.encode(a, forKey: .a)
            try c.encode(b, forKey: .b)
            try c.encode(change, forKey: .change)
            try c.encode(unit, forKey: .unit)
            try c.encodeIfPresent(blockSize, forKey: .blockSize)
            try c.encodeIfPresent(countChange, forKey: .countChange)
        }
    }

    public struct Section: Sendable, Encodable {
        public var title: String
        public var rows: [Row]
    }

    public var a: ReportDocument
    public var b: ReportDocument
    /// Every row, unchanged ones included, each section sorted by the size of its change.
    public var sections: [Section]

    public init(_ a: ReportDocument, _ b: ReportDocument) {
        self.a = a
        self.b = b
        sections = Self.compare(a.report, b.report)
    }

    static func compare(_ a: Report, _ b: Report) -> [Section] {
        var sections: [Section] = []

        // Memory: bytes first, then counts, then ratios (they do not compare across units).
        func bytes(_ name: String, _ f: (Report) -> Int) -> Row { Row(name: name, a: Double(f(a)), b: Double(f(b)), unit: .bytes) }
        func count(_ name: String, _ f: (Report) -> Int) -> Row { Row(name: name, a: Double(f(a)), b: Double(f(b)), unit: .count) }
        func ratio(_ name: String, _ f: (Report) -> Double) -> Row { Row(name: name, a: f(a), b: f(b), unit: .ratio) }
        let memory = [
            bytes("reserved") { $0.memory.reserved }, bytes("resident") { $0.memory.resident },
            bytes("used") { $0.memory.used }, bytes("cached") { $0.memory.cached },
            bytes("free") { $0.memory.free }, bytes("slab spare") { $0.memory.slabSpare },
            bytes("requested") { $0.memory.requested },
            bytes("largest free block") { $0.memory.largestFreeBlock }, bytes("peak used") { $0.memory.peakUsed },
            bytes("system bytes") { $0.system.bytes },
            bytes("oversize") { $0.oversize.bytes },
        ]
        let counts = [
            count("live allocations") { $0.memory.liveAllocations },
            count("peak live allocations") { $0.memory.peakLiveAllocations },
            count("segments") { $0.segments?.count ?? 0 }, count("system calls") { $0.system.calls },
            count("oversize blocks") { $0.oversize.blocks },
        ]
        let ratios = [
            ratio("usage") { $0.memory.usage },
            ratio("internal fragmentation") { $0.memory.internalFragmentation },
            ratio("external fragmentation") { $0.memory.externalFragmentation },
        ]
        sections.append(Section(title: "memory", rows: sorted(memory) + sorted(counts) + sorted(ratios)))

        // Calls and failures by entry point.
        let entryPoints = Report.ordered(Set(a.calls.keys).union(b.calls.keys))
        sections.append(Section(title: "calls", rows: sorted(entryPoints.map { name in
            Row(name: name, a: Double(a.calls[name] ?? 0), b: Double(b.calls[name] ?? 0), unit: .count)
        })))
        let failing = Report.ordered(Set(a.failures.keys).union(b.failures.keys))
        let errorKinds = Set(a.errors.keys).union(b.errors.keys).sorted()
        sections.append(Section(title: "failures and errors", rows: sorted(
            failing.map { Row(name: "\($0) failed", a: Double(a.failures[$0] ?? 0), b: Double(b.failures[$0] ?? 0), unit: .count) }
            + errorKinds.map { Row(name: ShowRenderer.errorName($0), a: Double(a.errors[$0] ?? 0), b: Double(b.errors[$0] ?? 0), unit: .count) }
        )))

        // Lock acquisitions and waits (reports written before the library counted them read as 0).
        let aLocks = a.locks ?? Report.Locks(), bLocks = b.locks ?? Report.Locks()
        func lockRow(_ name: String, _ f: (Report.Locks) -> Int) -> Row { Row(name: name, a: Double(f(aLocks)), b: Double(f(bLocks)), unit: .count) }
        sections.append(Section(title: "locks", rows: sorted([
            lockRow("pool lock taken") { $0.poolAcquisitions }, lockRow("pool lock waits") { $0.poolContended },
            lockRow("depot batches in") { $0.depotPuts }, lockRow("depot batches out") { $0.depotTakes },
            lockRow("depot batches to the pool") { $0.depotFull }, lockRow("shelf lock waits") { $0.depotContended },
        ])))

        // Blocks per order, live and free, matched by order.
        let aOrders = Dictionary(a.orders.map { ($0.order, $0) }, uniquingKeysWith: { x, _ in x })
        let bOrders = Dictionary(b.orders.map { ($0.order, $0) }, uniquingKeysWith: { x, _ in x })
        var orderRows: [Row] = []
        for order in Set(aOrders.keys).union(bOrders.keys).sorted() {
            let size = (bOrders[order] ?? aOrders[order])!.blockSize
            let label = "order \(order) (\(Units.bytes(size)))"
            orderRows.append(Row(name: "\(label) live", a: Double(aOrders[order]?.live ?? 0), b: Double(bOrders[order]?.live ?? 0), unit: .blocks, blockSize: size))
            orderRows.append(Row(name: "\(label) free", a: Double(aOrders[order]?.free ?? 0), b: Double(bOrders[order]?.free ?? 0), unit: .blocks, blockSize: size))
        }
        sections.append(Section(title: "blocks per order", rows: sorted(orderRows)))

        // Slab classes the same way, with their slabs too: a slab more or less is the class's
        // memory, which its objects' counts do not show.
        let aSlabs = Dictionary(a.slabClasses.map { ($0.index, $0) }, uniquingKeysWith: { x, _ in x })
        let bSlabs = Dictionary(b.slabClasses.map { ($0.index, $0) }, uniquingKeysWith: { x, _ in x })
        var slabRows: [Row] = []
        for index in Set(aSlabs.keys).union(bSlabs.keys).sorted() {
            let k = (bSlabs[index] ?? aSlabs[index])!
            let label = "class \(index) (\(k.objectSize)B)"
            slabRows.append(Row(name: "\(label) slabs", a: Double(aSlabs[index]?.slabs ?? 0), b: Double(bSlabs[index]?.slabs ?? 0), unit: .blocks, blockSize: k.slabSize))
            slabRows.append(Row(name: "\(label) live", a: Double(aSlabs[index]?.live ?? 0), b: Double(bSlabs[index]?.live ?? 0), unit: .blocks, blockSize: k.objectSize))
            slabRows.append(Row(name: "\(label) free", a: Double(aSlabs[index]?.free ?? 0), b: Double(bSlabs[index]?.free ?? 0), unit: .blocks, blockSize: k.objectSize))
        }
        sections.append(Section(title: "slab classes", rows: sorted(slabRows)))

        // Requested sizes by bucket.
        let aSizes = Dictionary(a.sizes.map { ($0.upto, $0.count) }, uniquingKeysWith: +)
        let bSizes = Dictionary(b.sizes.map { ($0.upto, $0.count) }, uniquingKeysWith: +)
        sections.append(Section(title: "requested sizes", rows: sorted(Set(aSizes.keys).union(bSizes.keys).sorted().map { upto in
            Row(name: "<= \(Units.bytes(upto))", a: Double(aSizes[upto] ?? 0), b: Double(bSizes[upto] ?? 0), unit: .count)
        })))

        // Allocation sites, matched by their frames.
        func key(_ site: Report.Site) -> [String] { site.frames }
        let aSites = Dictionary(a.sites.map { (key($0), $0) }, uniquingKeysWith: { x, y in
            Report.Site(liveBytes: x.liveBytes + y.liveBytes, liveCount: x.liveCount + y.liveCount, frames: x.frames) })
        let bSites = Dictionary(b.sites.map { (key($0), $0) }, uniquingKeysWith: { x, y in
            Report.Site(liveBytes: x.liveBytes + y.liveBytes, liveCount: x.liveCount + y.liveCount, frames: x.frames) })
        var order: [[String]] = []
        var seen = Set<[String]>()
        for site in a.sites + b.sites where seen.insert(key(site)).inserted { order.append(key(site)) }
        sections.append(Section(title: "allocation sites (live bytes)", rows: sorted(order.map { frames in
            var row = Row(name: siteName(frames), a: Double(aSites[frames]?.liveBytes ?? 0), b: Double(bSites[frames]?.liveBytes ?? 0), unit: .bytes)
            row.countChange = (bSites[frames]?.liveCount ?? 0) - (aSites[frames]?.liveCount ?? 0)
            return row
        })))
        return sections
    }

    /// Largest change first; ties keep their order.
    static func sorted(_ rows: [Row]) -> [Row] {
        rows.enumerated().sorted { ($1.element.weight, $0.offset) < ($0.element.weight, $1.offset) }.map(\.element)
    }

    /// A site by its innermost two frames: "foo+0x12 (/usr/bin/prog) < main+0x40 (/usr/bin/prog)".
    static func siteName(_ frames: [String]) -> String {
        if frames.isEmpty { return "(no frames)" }
        return frames.prefix(2).joined(separator: " < ") + (frames.count > 2 ? " < ..." : "")
    }

    // MARK: - Text

    /// The changed rows of every section (all rows with `includeUnchanged`), as text.
    public func render(includeUnchanged: Bool = false) -> String {
        var lines = ["A: \(Self.describe(a))", "B: \(Self.describe(b))"]
        var anyChange = false
        for section in sections {
            let rows = section.rows.filter { includeUnchanged || $0.change != 0 }
            guard !rows.isEmpty else { continue }
            anyChange = anyChange || rows.contains { $0.change != 0 }
            var table = TextTable([(section.title, .left), ("A", .right), ("B", .right), ("change", .right), ("", .left)])
            table.indent = ""
            for row in rows {
                table.add(["  " + row.name, Self.value(row.a, row.unit), Self.value(row.b, row.unit), Self.change(row), Self.note(row)])
            }
            lines.append("")
            lines += table.render()
        }
        if !anyChange { lines += ["", "no differences"] }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The JSON form: both documents' labels and every section's rows.
    public func json(includeUnchanged: Bool = false) throws -> Data {
        struct Out: Encodable {
            var a: String
            var b: String
            var sections: [Section]
        }
        let kept = sections.map { Section(title: $0.title, rows: $0.rows.filter { includeUnchanged || $0.change != 0 }) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(Out(a: a.label, b: b.label, sections: kept))
    }

    static func describe(_ d: ReportDocument) -> String {
        let r = d.report
        var parts = [r.program.isEmpty ? "pid \(r.pid)" : "\(r.program) pid \(r.pid)", ShowRenderer.reasonText(r.reason)]
        if r.sequence > 0 || r.reason == "interval" { parts.append("report #\(r.sequence)") }
        if let uptime = r.uptime { parts.append("uptime \(Units.duration(uptime))") }
        return "\(d.label) (\(parts.joined(separator: ", ")))"
    }

    static func value(_ v: Double, _ unit: Unit) -> String {
        switch unit {
        case .bytes: return Units.bytes(Int(v))
        case .count, .blocks: return "\(Int(v))"
        case .ratio: return Units.percent(v)
        }
    }

    static func change(_ row: Row) -> String {
        switch row.unit {
        case .bytes: return Units.signedBytes(Int(row.change))
        case .count, .blocks: return Units.signedCount(Int(row.change))
        case .ratio: return Units.signedPoints(row.change)
        }
    }

    static func note(_ row: Row) -> String {
        var parts: [String] = []
        if row.unit == .blocks, let size = row.blockSize, row.change != 0 {
            parts.append("(\(Units.signedBytes(Int(row.change) * size)))")
        }
        if let n = row.countChange, n != 0 { parts.append("(\(Units.signedCount(n)) sample\(abs(n) == 1 ? "" : "s"))") }
        if row.unit != .ratio && row.change != 0 {
            if row.a == 0 { parts.append("new") } else if row.b == 0 { parts.append("gone") } else { parts.append(Units.relative(row.a, row.b)) }
        }
        return parts.joined(separator: " ")
    }
}
