#if !BUDDY_ONE_MODULE
import BuddyEngine
#endif
import CBuddySupport

// The parts of the report that are more than one value (ReportPart): the text's header, health,
// entries and latency lines, the tables of orders and slab classes, the histograms. The bad
// pointers and the profile are their logs' (Stats+BadPointers.swift, Stats+Profile.swift).

extension ReportWriter {
    /// Writes a part in the walker's format (an if-case chain: a switch here would be a jump table).
    @inline(never) mutating func writePart(_ part: ReportPart) {
        if case .header = part { writeHeader() }
        else if case .healthMessage = part { writeHealthMessage() }
        else if case .entries = part { writeEntries() }
        else if case .latency = part { writeLatency() }
        else if case .orders = part { writeOrders() }
        else if case .slabClasses = part { writeSlabClasses() }
        else if case .sizes = part { writeHistogram(statsSizes(stats), key: "upto", mark: " <=") }
        else if case .alignments = part { writeHistogram(statsAlignments(stats), key: "alignment", mark: " ") }
        else if case .badPointers = part { writeBadPointers() }
        else { writeProfile() }
    }

    /// "BuddyMalloc report, pid 20939 (python3.11): exit, report #0" (text only).
    mutating func writeHeader() {
        let f = figures.pointee
        out.append(f.processPool ? "BuddyMalloc report, pid " : "BuddyMalloc report (private pool), pid ")
        out.append(decimal: f.pid)
        if f.program[0] != 0 { out.append(" ("); out.append(cString: f.program); out.append(")") }
        out.append(": ")
        out.append(f.reason)
        out.append(", report #")
        out.append(decimal: f.sequence)
        out.append(byte: 10)
    }

    /// "HEALTHY: usage 14%, external fragmentation 70%, 0 errors" and, when not healthy, why (in
    /// JSON a string: the message holds no quote, backslash or control character).
    mutating func writeHealthMessage() {
        let health = figures.pointee.health
        if json { out.append(byte: 34) }
        if health.status == Health.critical { out.append("CRITICAL") }
        else if health.status == Health.warning { out.append("WARNING") }
        else { out.append("HEALTHY") }
        out.append(": usage ")
        out.append(percent: stats.pointee.usage)
        out.append(", external fragmentation ")
        out.append(percent: stats.pointee.external_fragmentation)
        out.append(", ")
        out.append(decimal: health.errorCount)
        out.append(health.errorCount == 1 ? " error" : " errors")
        if health.badPointers != 0 { out.append("; bad pointers were freed (see errors)") }
        if health.failures != 0 {
            out.append("; ")
            out.append(fixed: health.failureRate * 100, digits: 2)
            out.append("% of allocating calls failed")
        }
        if health.fragmentation != 0 { out.append("; the free memory is fragmented into small blocks") }
        if health.limit != 0 {
            out.append("; ")
            out.append(percent: health.limitUse)
            out.append(" of BUDDY_MAX_POOL in use")
        }
        if health.idle != 0 { out.append("; most reserved memory is unused (malloc_trim returns it)") }
        if json { out.append(byte: 34) }
    }

    /// " malloc 1038 calloc 88 (2 failed) ...": the entry points called (text only).
    mutating func writeEntries() {
        let calls = statsCalls(stats), failures = statsFailures(stats)
        var any = false
        for entry in 0..<Entry.count where calls[entry] != 0 || failures[entry] != 0 {
            out.append(byte: 32)
            out.append(Entry(rawValue: entry).unsafelyUnwrapped.name)
            out.append(byte: 32)
            out.append(decimal: calls[entry])
            if failures[entry] != 0 {
                out.append(" (")
                out.append(decimal: failures[entry])
                out.append(" failed)")
            }
            any = true
        }
        if !any { out.append(" none") }
    }

    /// "1 malloc in 1024: allocations avg 700ns max 8.6us (17 samples); frees ..." (text only).
    mutating func writeLatency() {
        let s = stats
        let mode = Int32(bitPattern: s.pointee.latency_mode)
        if mode == Int32(BUDDY_LATENCY_OFF.rawValue) {
            out.append("off (BUDDY_STATS_LATENCY=sampled, sampled:N or exact)")
            return
        }
        if mode == Int32(BUDDY_LATENCY_EXACT.rawValue) { out.append("every call") }
        else {
            out.append("1 malloc in ")
            out.append(decimal: UInt64(s.pointee.latency_period))
        }
        out.append(": allocations ")
        writeLatencyFigures(total: s.pointee.alloc_total_ns, max: s.pointee.alloc_max_ns, samples: s.pointee.alloc_samples)
        out.append("; frees ")
        writeLatencyFigures(total: s.pointee.free_total_ns, max: s.pointee.free_max_ns, samples: s.pointee.free_samples)
    }

    /// "avg 120ns max 3.1us (N samples)", each kind with its own count: an average of a handful
    /// of samples (a short program's first call maps its segments) says so.
    mutating func writeLatencyFigures(total: UInt64, max: UInt64, samples: UInt64) {
        guard samples > 0 else { out.append("- (0 samples)"); return }
        out.append("avg ")
        out.append(duration: total / samples)
        out.append(" max ")
        out.append(duration: max)
        out.append(" (")
        out.append(decimal: samples)
        out.append(samples == 1 ? " sample" : " samples")
        if samples < 10 { out.append(": too few for a reliable average") }
        out.append(")")
    }

    /// The orders: the text's table of those with anything in them, or the JSON array of all.
    mutating func writeOrders() {
        let orders = statsOrders(stats)
        let count = Int(stats.pointee.order_count)
        if !json { out.append(byte: 10) }
        writeHeadings(.orders)
        for order in 0..<count {
            let o = orders[order]
            if !json && o.live == 0 && o.free == 0 && o.cached == 0 && o.allocations == 0 && o.splits == 0 && o.coalesces == 0 {
                continue
            }
            writeRecord(.orders, UnsafeRawPointer(orders + order), index: order, first: order == 0)
        }
        if json { out.append(count == 0 ? "]" : "\n  ]") }
    }

    /// The slab classes: the text's table of those used (none: no table), or the JSON array of all.
    mutating func writeSlabClasses() {
        let slabs = statsSlabs(stats)
        let count = SlabStatsView.servedCount(stats)
        if json { out.append("[") }
        var headings = false
        for i in 0..<count {
            let c = SlabStatsView.served(stats, i)
            let k = slabs[c]
            if !json {
                if k.slabs == 0 && k.allocations == 0 && k.cached == 0 { continue }
                if !headings {
                    out.append(byte: 10)
                    writeHeadings(.slabClasses)
                    headings = true
                }
            }
            writeRecord(.slabClasses, UnsafeRawPointer(slabs.record(c)), index: c, first: i == 0)
        }
        if json { out.append(count == 0 ? "]" : "\n  ]") }
    }

    /// A table's headings, right-aligned over their columns.
    mutating func writeHeadings(_ list: ReportFieldList) {
        if json { out.append("["); return }
        columns = .heading
        walk(list)
        out.append(byte: 10)
    }

    /// One record of a table: a row of the text's table, an element of the JSON array.
    mutating func writeRecord(_ list: ReportFieldList, _ record: UnsafeRawPointer, index: Int, first: Bool) {
        self.record = record
        self.index = index
        if json {
            writeElement(list, first: first)
        } else {
            columns = .row
            walk(list)
            out.append(byte: 10)
        }
        self.record = nil
    }

    /// A histogram's non-empty buckets: " <=16B:52 <=32B:196" (the text's `mark`, then the
    /// bucket's bound) or [ { "upto": 16, "count": 52 }, ... ] (the bound under `key`; JSON
    /// leaves out the last bucket, 2^63 and above).
    mutating func writeHistogram(_ counts: UnsafeMutablePointer<UInt64>, key: StaticString, mark: StaticString) {
        var any = false
        if json { out.append("[") }
        for b in 0..<(json ? 63 : CounterTable.count) where counts[b] != 0 {
            let bound = b < 63 ? 1 << UInt64(b) : UInt64.max
            if json {
                out.append(any ? ", { " : " { ")
                out.append(jsonKey: key)
                out.append(decimal: bound)
                out.append(", ")
                out.append(jsonKey: "count")
                out.append(decimal: counts[b])
                out.append(" }")
            } else {
                out.append(mark)
                out.append(bytes: bound)
                out.append(byte: 58)
                out.append(decimal: counts[b])
            }
            any = true
        }
        if json { out.append(any ? " ]" : "]") }
        else if !any { out.append(" none") }
    }
}
