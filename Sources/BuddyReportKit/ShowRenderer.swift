import Foundation

/// `buddy-report show`: one report as text, in sections (memory, blocks per order and slab classes
/// with bars, calls, errors, latency, requested sizes, allocation sites, bad pointers).
public struct ShowRenderer {
    public var style: BarStyle
    /// How many allocation sites to list.
    public var topSites: Int
    /// How many frames of each site and bad pointer to print.
    public var maxFrames: Int
    /// Symbolizes frames and skips allocator wrappers (default: frames as the report has them).
    public var resolver: SiteResolver

    public init(ascii: Bool = false, barWidth: Int = 30, topSites: Int = 10, maxFrames: Int = 8, resolver: SiteResolver = .raw) {
        style = BarStyle(ascii: ascii, width: barWidth)
        self.topSites = topSites
        self.maxFrames = maxFrames
        self.resolver = resolver
    }

    public func render(_ report: Report) -> String {
        var sections: [[String]] = [header(report), memory(report), resident(report), orders(report), slabClasses(report),
                                  calls(report), locks(report), errors(report)]
        sections.append(latency(report))
        sections.append(sizes(report))
        sections.append(sites(report))
        sections.append(badPointers(report))
        return sections.filter { !$0.isEmpty }.map { $0.joined(separator: "\n") }.joined(separator: "\n\n") + "\n"
    }

    // MARK: - Sections

    func header(_ r: Report) -> [String] {
        var lines = ["BuddyMalloc report: \(r.program.isEmpty ? "(unnamed)" : r.program), pid \(r.pid), \(Self.reasonText(r.reason))"
            + (r.sequence > 0 || r.reason == "interval" ? ", report #\(r.sequence)" : "")]
        var facts: [String] = []
        if r.pool != "process" { facts.append("\(r.pool) pool") }
        if let time = r.time {
            facts.append("uptime \(Units.duration(time.uptime))")
            if let now = time.now {
                facts.append("written \(Self.date(now))")
                if let last = time.lastActivity, now - last >= 1 {
                    facts.append("idle for \(Units.duration(now - last))")
                }
            }
        }
        if !facts.isEmpty { lines.append("  " + facts.joined(separator: ", ")) }
        if let health = r.health {
            // The library's message may start with the status itself.
            let message = health.message.map { $0.hasPrefix(health.status) ? String($0.dropFirst(health.status.count).drop { $0 == ":" || $0 == " " }) : $0 }
            lines.append("  health \(health.status)" + (message.map { $0.isEmpty ? "" : ": \($0)" } ?? ""))
        }
        if let origin = r.textOrigin {
            lines.append("  read from " + origin.note)
        }
        if let c = r.config {
            var parts = ["min block \(Units.bytes(c.minBlock))", "max block \(Units.bytes(c.maxBlock))"]
            if let initial = c.initialSize { parts.append("initial \(Units.bytes(initial))") }
            if let growth = c.growthFactor { parts.append(String(format: "growth x%.1f", growth)) }
            if let limit = c.maxPoolSize { parts.append("max pool \(limit == 0 ? "unlimited" : Units.bytes(limit))") }
            if let safety = c.threadSafety { parts.append("thread safety \(safety)") }
            if let onError = c.onError { parts.append("on error \(onError)") }
            lines.append("  config " + parts.joined(separator: ", "))
        }
        return lines
    }

    func memory(_ r: Report) -> [String] {
        let m = r.memory
        var table = TextTable([("", .left), ("", .right), ("", .left)])
        table.showHeader = false
        var reserved: [String] = []
        if m.resident > 0 { reserved.append("resident \(Units.bytes(m.resident))") }
        if let s = r.segments {
            reserved.append("in \(s.count) segment\(s.count == 1 ? "" : "s") (added \(s.added), released \(s.released))")
        }
        table.add(["reserved", Units.bytes(m.reserved), reserved.joined(separator: ", ")])
        table.add(["used", Units.bytes(m.used), "\(Units.percent(m.usage)) of reserved, peak \(Units.bytes(m.peakUsed))"])
        table.add(["cached", Units.bytes(m.cached), "in thread caches"])
        table.add(["free", Units.bytes(m.free), "largest free block \(Units.bytes(m.largestFreeBlock))"
                   + (m.slabSpare > 0 ? ", \(Units.bytes(m.slabSpare)) spare in slabs" : "")])
        table.add(["requested", Units.bytes(m.requested), "in \(m.liveAllocations) live allocations (peak \(m.peakLiveAllocations))"])
        table.add(["fragmentation", "", "internal \(Units.percent(m.internalFragmentation)), external \(Units.percent(m.externalFragmentation))"])
        if r.oversize.blocks > 0 || r.oversize.peakBlocks > 0 {
            table.add(["oversize", Units.bytes(r.oversize.bytes),
                       "in \(r.oversize.blocks) live block\(r.oversize.blocks == 1 ? "" : "s") above the maximum block, mapped directly (peak \(Units.bytes(r.oversize.peakBytes)) in \(r.oversize.peakBlocks))"])
        }
        if m.held != m.used {
            table.add(["held", Units.bytes(m.held), "by the program in all: used + oversize"])
        }
        if r.system.calls > 0 || r.system.bytes > 0 {
            table.add(["system", Units.bytes(r.system.bytes), "in \(r.system.calls) requests larger than the maximum block so far"])
        }
        return ["memory"] + table.render()
    }

    /// Resident memory explained: where the process's resident bytes are, part by part, with
    /// a bar for each part's share (empty when the report has no breakdown: an older library).
    func resident(_ r: Report) -> [String] {
        guard let x = r.resident, x.segments + x.metadata + x.oversize + x.retained + x.process > 0 else { return [] }
        let inside = x.segments + x.metadata + x.oversize + x.retained
        let total = max(x.process, inside)
        var table = TextTable([("", .left), ("", .right), ("", .right), ("", .left), ("", .left)])
        table.showHeader = false
        func row(_ name: String, _ bytes: Int, _ what: String) {
            let share = total > 0 ? Double(bytes) / Double(total) : 0
            table.add([name, Units.bytes(bytes), Units.percent(share), String(repeating: "█", count: Int((share * 20).rounded())), what])
        }
        row("used", x.used, "the program's blocks and slab objects")
        row("cached", x.cached, "in thread caches and the depot, for the next mallocs")
        row("slab spare", x.slabSpare, "in slabs, outside live objects (free objects, headers)")
        row("free", x.free, "free blocks written once, not given back to the OS yet (malloc_trim gives them back)")
        row("metadata", x.metadata, "order maps, the pool's state")
        if x.oversize + x.retained > 0 {
            row("oversize", x.oversize, "blocks above the maximum block")
            row("retained", x.retained, "freed oversize blocks kept for reuse (malloc_trim unmaps them)")
        }
        if x.process > 0 { row("outside", x.outside, "not the allocator's: code, stacks, libraries, glibc's own heap") }
        let title = x.process > 0 ? "resident \(Units.bytes(x.process)) in the process" : "resident \(Units.bytes(inside)) in the allocator"
        return [title] + table.render()
    }

    func orders(_ r: Report) -> [String] {
        // A slab is a block of its slab size's order: its objects count as live or cached, the
        // rest of it (free objects, header, slack) as free, as in the memory figures.
        let slabs = Dictionary(grouping: r.slabClasses, by: \.slabSize)
        func slab(_ o: Report.Order) -> (count: Int, live: Int, cached: Int, spare: Int) {
            let classes = slabs[o.blockSize] ?? []
            return (classes.reduce(0) { $0 + $1.slabs }, classes.reduce(0) { $0 + $1.liveBytes },
                    classes.reduce(0) { $0 + $1.cachedBytes }, classes.reduce(0) { $0 + max(0, $1.spareBytes) })
        }
        let active = r.orders.filter {
            $0.live + $0.free + $0.cached + $0.allocations + $0.splits + $0.coalesces + slab($0).count > 0
        }
        guard !active.isEmpty else { return ["blocks per order: none"] }
        let parts = active.map { o -> [Int] in
            let s = slab(o)
            return [o.liveBytes + s.live, o.cachedBytes + s.cached, o.freeBytes + s.spare]
        }
        let totals = parts.map { $0.reduce(0, +) }
        let hasSlabs = active.contains { slab($0).count > 0 }
        // The free top-order blocks can be hundreds of times the rest: then the bars' full width is
        // the largest live + cached, and longer bars are cut (the free bytes beyond it).
        let largestHeld = parts.map { $0[0] + $0[1] }.max() ?? 0
        let largest = max(1, totals.max() ?? 1)
        let cut = largestHeld > 0 && largest > 3 * largestHeld
        let scale = cut ? largestHeld : largest
        let fills = style.stackFills
        var columns: [(String, TextTable.Alignment)] = [("order", .right), ("block", .right), ("live", .right), ("free", .right),
                                                        ("cached", .right)]
        if hasSlabs { columns.append(("slabs", .right)) }
        columns += [("allocations", .right), ("splits", .right), ("coalesces", .right), ("bytes", .right), ("", .left)]
        var table = TextTable(columns)
        let more = style.ascii ? ">" : "»"
        for (o, (part, total)) in zip(active, zip(parts, totals)) {
            let fractions = part.map { Double($0) / Double(scale) }
            var bar: String
            if fractions.reduce(0, +) > 1 {
                bar = style.stacked([fractions[0], fractions[1], max(0, 1 - fractions[0] - fractions[1])]) + more
            } else {
                bar = style.stacked(fractions)
            }
            var row = ["\(o.order)", Units.bytes(o.blockSize), "\(o.live)", "\(o.free)", "\(o.cached)"]
            if hasSlabs { row.append("\(slab(o).count)") }
            row += ["\(o.allocations)", "\(o.splits)", "\(o.coalesces)", Units.bytes(total), bar]
            table.add(row)
        }
        let omitted = r.orders.count - active.count
        let legend = "bars: \(fills[0]) live, \(fills[1]) cached, \(fills[2]) free bytes"
            + (hasSlabs ? ", slabs' objects and spare bytes included" : "")
            + "; full width \(Units.bytes(scale))" + (cut ? ", longer bars cut \(more)" : "")
        return ["blocks per order (\(legend))"]
            + table.render()
            + (omitted > 0 ? ["  (\(omitted) order\(omitted == 1 ? "" : "s") without blocks or activity not shown)"] : [])
    }

    /// Like the orders, with a bar of each class's slab bytes; nothing for a pool without slabs
    /// (and for reports written before the library had them).
    func slabClasses(_ r: Report) -> [String] {
        let active = r.slabClasses.filter { $0.slabs + $0.live + $0.allocations > 0 }
        guard !active.isEmpty else { return [] }
        let scale = max(1, active.map(\.slabBytes).max() ?? 1)
        let fills = style.stackFills
        var table = TextTable([("class", .right), ("object", .right), ("slab", .right), ("slabs", .right),
                               ("live", .right), ("free", .right), ("cached", .right), ("allocations", .right),
                               ("frees", .right), ("bytes", .right), ("", .left)])
        for k in active {
            let bar = style.stacked([k.liveBytes, k.cachedBytes, k.spareBytes].map { Double($0) / Double(scale) })
            // Object sizes in bytes: the classes are an eighth of a power of two apart, which
            // Units.bytes' one decimal would blur (1280 B reads 1.2K).
            table.add(["\(k.index)", "\(k.objectSize)B", Units.bytes(k.slabSize), "\(k.slabs)", "\(k.live)", "\(k.free)",
                       "\(k.cached)", "\(k.allocations)", "\(k.frees)", Units.bytes(k.slabBytes), bar])
        }
        let omitted = r.slabClasses.count - active.count
        return ["slab classes (bars: \(fills[0]) live, \(fills[1]) cached, \(fills[2]) spare bytes of the slabs; full width \(Units.bytes(scale)))"]
            + table.render()
            + (omitted > 0 ? ["  (\(omitted) class\(omitted == 1 ? "" : "es") without slabs or activity not shown)"] : [])
    }

    func calls(_ r: Report) -> [String] {
        let names = Report.ordered(Set(r.calls.keys).union(r.failures.keys))
        let used = names.filter { (r.calls[$0] ?? 0) > 0 || (r.failures[$0] ?? 0) > 0 }
        guard !used.isEmpty else { return ["calls: none"] }
        var table = TextTable([("entry point", .left), ("calls", .right), ("failed", .right)])
        for name in used {
            let failed = r.failures[name] ?? 0
            table.add([name, "\(r.calls[name] ?? 0)", failed > 0 ? "\(failed)" : (r.failures[name] == nil ? "" : "0")])
        }
        let total = r.calls.values.reduce(0, +)
        let failed = r.failures.values.reduce(0, +)
        table.add(["total", "\(total)", "\(failed)"])
        let unused = names.filter { !used.contains($0) }
        return ["calls by entry point"] + table.render()
            + (unused.isEmpty ? [] : ["  (no calls to \(unused.joined(separator: ", ")))"])
    }

    /// The pool lock (shared by every thread) and the depot's shelf locks: acquisitions, waits,
    /// and the pool lock per 1,000 calls, the figure issue 12's larson target is stated in.
    func locks(_ r: Report) -> [String] {
        let lines = Self.lockLines(r)
        guard lines.count == 2 else { return [] }
        return ["locks  " + lines[0], "       " + lines[1]]
    }

    /// The locks' two lines (the pool lock; the depot), without indentation; none when the report
    /// has no lock counts (`show` and `html` both print them).
    static func lockLines(_ r: Report) -> [String] {
        guard let k = r.locks else { return [] }
        var pool = "pool lock taken \(k.poolAcquisitions) times, \(k.poolContended) after a wait"
        if k.poolAcquisitions > 0 { pool += " (" + Units.percent(Double(k.poolContended) / Double(k.poolAcquisitions)) + ")" }
        let calls = r.calls.values.reduce(0, +)
        if calls > 0 { pool += String(format: "; %.2f per 1,000 calls", Double(k.poolAcquisitions) * 1000 / Double(calls)) }
        var depot = "depot: batches in \(k.depotPuts), out \(k.depotTakes), to the pool \(k.depotFull) (shelf full); "
            + "shelf locks \(k.depotContended) after a wait"
        // (A text report does not print the shelves' bytes.)
        if r.textOrigin == nil { depot += "; holding \(Units.bytes(k.depotBytes))" }
        return [pool, depot]
    }

    func errors(_ r: Report) -> [String] {
        let kinds = r.errors.keys.sorted { (Self.errorOrder($0), $0) < (Self.errorOrder($1), $1) }
        let parts = kinds.map { "\(Self.errorName($0)) \(r.errors[$0]!)" }
        return ["errors  " + (parts.isEmpty ? "none reported" : parts.joined(separator: ", "))]
    }

    func latency(_ r: Report) -> [String] {
        guard let l = r.latency else { return [] }
        if l.mode == "off" { return ["latency  not measured (off)"] }
        var how = l.mode
        var details: [String] = []
        if let period = l.samplePeriod, l.mode == "sampled" { details.append("period \(period)") }
        if let samples = l.samples { details.append("\(samples) samples") }
        if !details.isEmpty { how += " (" + details.joined(separator: ", ") + ")" }
        var parts: [String] = []
        if let avg = l.allocAvgNs {
            parts.append("allocation avg \(ns(avg))" + (l.allocMaxNs.map { ", max \(ns($0))" } ?? ""))
        }
        if let avg = l.freeAvgNs {
            parts.append("free avg \(ns(avg))" + (l.freeMaxNs.map { ", max \(ns($0))" } ?? ""))
        }
        return ["latency  \(how): " + (parts.isEmpty ? "no samples" : parts.joined(separator: "; "))]
    }

    func sizes(_ r: Report) -> [String] {
        var lines: [String] = []
        let buckets = r.sizes.filter { $0.count > 0 }.sorted { $0.upto < $1.upto }
        if !buckets.isEmpty {
            let total = buckets.reduce(0) { $0 + $1.count }
            let most = max(1, buckets.map(\.count).max()!)
            var table = TextTable([("size", .left), ("count", .right), ("share", .right), ("", .left)])
            for b in buckets {
                table.add([(style.ascii ? "<= " : "≤ ") + Units.bytes(b.upto), "\(b.count)",
                           Units.percent(Double(b.count) / Double(total)), style.bar(Double(b.count) / Double(most))])
            }
            lines += ["requested sizes (\(total) requests)"] + table.render()
        }
        if !r.alignments.isEmpty {
            let parts = r.alignments.sorted { $0.alignment < $1.alignment }.map { "\(Units.bytes($0.alignment)) x\($0.count)" }
            if !lines.isEmpty { lines.append("") }
            lines.append("alignments asked for  " + parts.joined(separator: ", "))
        }
        return lines
    }

    func sites(_ r: Report) -> [String] {
        guard !r.sites.isEmpty, topSites > 0 else { return [] }
        let sites = resolver.sites(r)
        let shown = sites.prefix(topSites)
        let period = r.profile?.sampleBytes ?? 0
        let sampling = period > 0 ? "estimated from samples, one per \(Units.bytes(period)) allocated" : "by live bytes"
        var lines = [r.reason == "exit"
            ? "allocation sites live at exit (\(sampling); \(shown.count) of \(sites.count); buddy-report leaks lists them all)"
            : "top allocation sites (\(sampling); \(shown.count) of \(sites.count))"]
        let cells = shown.map { s -> [String] in
            let e = s.estimate
            let share = (e.shareText(ascii: style.ascii).map { ", \($0) of held" } ?? "")
                + (e.peakShareText(ascii: style.ascii).map { ", \($0) of the peak" } ?? "")
            return [Units.bytes(e.liveBytes), period > 0 ? (style.ascii ? e.errorText.replacingOccurrences(of: "±", with: "+-") : e.errorText) : "", e.blocksText + " block" + (e.liveBlocks == 1 && e.liveBlocksRange == nil ? "" : "s"),
                    "\(e.liveSamples) sample" + (e.liveSamples == 1 ? "" : "s") + share]
        }
        let widths = (0..<4).map { c in cells.map { $0[c].count }.max() ?? 0 }
        for (i, site) in shown.enumerated() {
            let rank = "\(i + 1)".leftPadded(to: "\(shown.count)".count)
            let c = cells[i]
            let head = "  \(rank). \(c[0].leftPadded(to: widths[0])) "
                + (period > 0 ? "\(c[1].rightPadded(to: widths[1])) " : "")
                + "in \(c[2].rightPadded(to: widths[2])) (\(c[3]))".rightPadded(to: widths[2] + widths[3] + 6) + "  "
            let pad = String(repeating: " ", count: head.count)
            var frames = frameLines(Array(site.stack))
            if !site.skipped.isEmpty, !frames.isEmpty {
                frames[0] += "  [via " + site.viaText + "]"
            }
            lines.append(head + (frames.first ?? "(no frames)"))
            for frame in frames.dropFirst() { lines.append(pad + frame) }
        }
        if period > 0 {
            lines.append("  (" + (style.ascii ? "+-" : "±") + " one standard error of the sampling; blocks: " + Self.blockNote(shown.map(\.estimate)) + ")")
        }
        return lines
    }

    /// How the block counts shown were estimated.
    static func blockNote(_ estimates: [SiteEstimate]) -> String {
        let methods = Set(estimates.map(\.blockMethod))
        var parts: [String] = []
        if methods.contains(.reported) { parts.append("the library's estimate") }
        if methods.contains(.meanSize) { parts.append("~ live bytes / the mean size of the process's live blocks below the period") }
        if methods.contains(.bounds) { parts.append("a range where some samples were large blocks") }
        if methods.contains(.exact) { parts.append("exact for one large block") }
        if methods.contains(.samples) { parts.append("at least the samples") }
        return parts.joined(separator: "; ")
    }

    func badPointers(_ r: Report) -> [String] {
        guard !r.badPointers.isEmpty else { return [] }
        resolver.prepare([r])
        var lines = ["bad pointers (\(r.badPointers.count), the most recent)"]
        let width = r.badPointers.map { Self.errorName($0.kind, plural: false).count }.max()!
        for p in r.badPointers {
            let call = "\(p.function ?? "?")(\(p.pointer ?? "?"))"
            lines.append("  " + Self.errorName(p.kind, plural: false).rightPadded(to: width) + "  " + call)
            for frame in frameLines(resolver.frames(p.frames ?? [])) { lines.append("      " + frame) }
        }
        return lines
    }

    /// Nanoseconds in the unit that keeps them short ("us" for µs in ASCII).
    func ns(_ value: Double) -> String {
        let text = Units.nanoseconds(value)
        return style.ascii ? text.replacingOccurrences(of: "µ", with: "u") : text
    }

    func frameLines(_ frames: [SymbolizedFrame]) -> [String] {
        let texts = frames.map(\.display)
        guard texts.count > maxFrames else { return texts }
        return Array(texts.prefix(maxFrames)) + ["... \(texts.count - maxFrames) more"]
    }

    // MARK: - Words

    static func reasonText(_ reason: String) -> String {
        switch reason {
        case "exit": return "at exit"
        case "signal": return "on a signal"
        case "interval": return "periodic"
        case "api": return "asked for by the program"
        default: return reason
        }
    }

    static func errorOrder(_ kind: String) -> Int {
        ["invalid_pointer": 0, "double_free": 1, "use_after_free": 2, "wrong_size": 3][kind] ?? 4
    }

    /// "invalid_pointer" -> "invalid pointers", "double_free" -> "double frees".
    static func errorName(_ kind: String, plural: Bool = true) -> String {
        switch kind {
        case "invalid_pointer": return plural ? "invalid pointers" : "invalid pointer"
        case "double_free": return plural ? "double frees" : "double free"
        case "use_after_free": return plural ? "uses after free" : "use after free"
        case "wrong_size": return plural ? "wrong sizes" : "wrong size"
        default: return kind.replacingOccurrences(of: "_", with: " ")
        }
    }

    static func date(_ seconds: Double) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss 'UTC'"
        return formatter.string(from: Date(timeIntervalSince1970: seconds))
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }

    func rightPadded(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
