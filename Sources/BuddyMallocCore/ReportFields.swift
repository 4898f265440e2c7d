#if !BUDDY_ONE_MODULE
import BuddyEngine
#endif
import CBuddySupport

// The report's fields, once: in the JSON schema's order (docs/report-format.md, version 1),
// each with where the text shows it. ReportWriter.swift walks these lists for either format.
//
//   field(JSON key, where the value is, format, text: position, words before, words after)
//
// A key of "" is a figure only the text shows; a field without a position only JSON shows.
// Text positions: the tens are the lines,
//
//    10 header    20 health    30 time      40 pool       50 resident   60 blocks
//    70 fragments 80 calls     90 entries  100 system    110 oversize  120 errors
//   130 segments 140 latency  150 orders  160 slab classes  170 sizes  180 alignments
//   190 bad pointers  200 profile
//
// the ones the place in the line.
//
// The words of the lists (`field`, `choice`, `column`, ...) are @_transparent and live in this
// file with every list that uses them: inlined, each key path is a literal the optimizer turns
// into a constant offset. (A debug build compiles each file on its own and inlines nothing from
// another file: a key path there would be built at run time, by the Swift runtime.)

/// Integer formats (a UInt64 or UInt32 field).
enum IntegerFormat { case count, bytes }

/// Real formats (a Double field).
enum RealFormat { case ratio, seconds, factor, tenths }

/// One field as a list names it (built on the stack for one `emit`, never stored).
struct ReportField {
    var key: StaticString = ""
    var value = ReportValue.count
    var base = ReportBase.stats
    var offset = 0
    /// Bytes of an integer value (4 or 8).
    var size = 8
    /// The text: position (0: not in the text), the words before and after the value.
    var at: UInt8 = 0
    var before: StaticString = ""
    var after: StaticString = ""
    /// JSON: starts a new line of its (multi-line) object.
    var newLine = false
    /// A choice's names ("a|b|c"); in the text `textNames` when they differ.
    var names: StaticString = ""
    var textNames: StaticString = ""
    /// A column of a text table: its heading and width.
    var heading: StaticString = ""
    var width = 0
    /// Frames: where their count is, how many at most, bytes from one to the next.
    var countOffset = 0
    var limit = 0
    var stride = 0
    var part = ReportPart.header
}

extension ReportWriter {
    @inline(never) mutating func reportFields() {
        part("", .header, text: 10)
        field("pid", \ReportFigures.pid)
        field("ppid", \ReportFigures.ppid)
        field("program", \ReportFigures.program)
        field("reason", \ReportFigures.reason)
        field("sequence", \ReportFigures.sequence)
        field("pool", \ReportFigures.pool)

        object("time")
        field("created", \.created, .seconds)
        field("now", \.now, .seconds)
        field("uptime", \.uptime, .seconds, text: 30, "  time        up ")
        field("last_activity", \.last_activity, .seconds)
        field("", \ReportFigures.idle, .seconds, text: 31, "s, last activity ", "s ago\n")
        end()

        object("config")
        field("min_block", \.min_block)
        field("max_block", \.max_block, .bytes, text: 102, " (larger than the maximum block ")
        field("initial_size", \.initial_size)
        field("growth_factor", \.growth_factor, .factor)
        field("max_pool_size", \.max_pool_size)
        choice("thread_safety", \.thread_safety, "auto|always|off")
        choice("on_error", \.on_error, "abort|log")
        end()

        object("memory", multiline: true)
        field("reserved", \.reserved, .bytes, text: 40, "  pool        ")
        field("resident", \.resident, .bytes, text: 42, " segments (resident ")
        field("used", \.used, .bytes, text: 44, "): used ")
        field("cached", \.cached, .bytes, text: 45, ", cached ")
        field("free", \.free, .bytes, text: 46, ", free ")
        field("metadata", \.metadata, .bytes, text: 43, ", metadata ")
        field("slab_spare", \.slab_spare, .bytes)
        field("usage", \.usage, .ratio, text: 63, "; usage ", "\n", newLine: true)
        field("requested", \.requested, .bytes, text: 73, " so far; live requested about ")
        field("requested_total", \.requested_total, .bytes, text: 71, " (requested ")
        field("allocated_total", \.allocated_total, .bytes, text: 72, " in blocks of ")
        field("internal_fragmentation", \.internal_fragmentation, .ratio, text: 70, "  fragments   internal ", newLine: true)
        field("largest_free_block", \.largest_free_block, .bytes, text: 62, "); largest free block ")
        field("external_fragmentation", \.external_fragmentation, .ratio, text: 74, "), external ", "\n")
        field("peak_used", \.peak_used, .bytes, text: 47, "; peak used ", "\n", newLine: true)
        field("live_allocations", \.live_allocations, text: 60, "  blocks      ")
        field("peak_live_allocations", \.peak_live_allocations, text: 61, " live (peak ")
        field("held", \.held, .bytes, text: 114, "); held by the program in all ", " (used + oversize)\n", newLine: true)
        end(multiline: true)

        // Resident memory explained (Engine+Residency.swift): the segments' resident bytes
        // (memory.resident) = used + cached + slab_spare + free.
        object("resident")
        field("used", \.resident_used, .bytes, text: 50, "  resident    used ")
        field("cached", \.resident_cached, .bytes, text: 51, ", cached ")
        field("slab_spare", \.resident_slab_spare, .bytes, text: 52, ", slab spare ")
        field("free", \.resident_free, .bytes, text: 53, ", free ", " (written once, not given back yet)")
        field("metadata", \.resident_metadata, .bytes, text: 54, "; metadata ")
        field("oversize", \.resident_oversize, .bytes, text: 55, ", oversize ")
        field("retained", \.resident_retained, .bytes, text: 56, " (retained ")
        field("process", \.process_resident, .bytes, text: 57, "); the process ")
        field("outside", \ReportFigures.outside, .bytes, text: 58, ", of which outside the allocator ", "\n")
        end()

        // Every entry point's calls, the allocating ones' failures (the order of buddy_stats.h).
        object("calls")
        for entry in 0..<Entry.count { field(Entry(rawValue: entry).unsafelyUnwrapped.name, \.calls, element: entry) }
        end()
        object("failures")
        for entry in 0..<Entry.count where Entry(rawValue: entry).unsafelyUnwrapped.allocates {
            field(Entry(rawValue: entry).unsafelyUnwrapped.name, \.failures, element: entry)
        }
        end()
        field("", \ReportFigures.allocations, text: 80, "  calls       allocations ")
        field("", \ReportFigures.frees, text: 81, ", frees ")
        field("", \ReportFigures.failed, text: 82, ", failed ")
        part("", .entries, text: 90, "  entries    ", "\n")

        object("errors")
        field("invalid_pointer", \.invalid_pointers, text: 120, "  errors      invalid pointers ")
        field("double_free", \.double_frees, text: 121, ", double frees ")
        field("use_after_free", \.use_after_frees, text: 122, ", uses after free ")
        field("wrong_size", \.wrong_sizes, text: 123, ", wrong sizes ", "\n")
        end()

        object("system")
        field("calls", \.system_calls, text: 100, "  system      ")
        field("bytes", \.system_bytes, .bytes, text: 101, " calls, ")
        field("reentrant", \.reentrant_calls, text: 103, ", mapped directly, so far); re-entrant calls ", "\n")
        end()

        object("oversize")
        field("blocks", \.oversize_blocks, text: 110, "  oversize    ")
        field("bytes", \.oversize_bytes, .bytes, text: 111, " live, ")
        field("peak_blocks", \.oversize_peak_blocks, text: 112, " (peak ")
        field("peak_bytes", \.oversize_peak_bytes, .bytes, text: 113, ", ")
        field("retained_bytes", \.oversize_retained_bytes, .bytes)
        end()

        object("segments")
        field("count", \.segments, text: 41, " in ")
        field("added", \.segments_added, text: 130, "  segments    added ")
        field("released", \.segments_released, text: 131, ", released ")
        field("released_bytes", \.released_bytes, .bytes, text: 134, "; returned to the OS ", "\n")
        field("realloc_in_place", \.realloc_in_place, text: 83, ", resized in place ", "\n")
        end()
        object("locks")
        field("pool_acquisitions", \.pool_lock_acquisitions, text: 135, "  locks       pool lock taken ")
        field("pool_contended", \.pool_lock_contended, text: 136, " times (", " after a wait); depot batches")
        field("depot_puts", \.depot_puts, text: 137, " in ")
        field("depot_takes", \.depot_takes, text: 138, ", out ")
        field("depot_full", \.depot_full, text: 139, ", to the pool ", " (shelf full)")
        field("depot_contended", \.depot_lock_contended, text: 140, "; shelf locks ", " after a wait\n")
        field("depot_bytes", \.depot_bytes, .bytes)
        end()
        field("", \ReportFigures.splits, text: 132, "; splits ")
        field("", \ReportFigures.coalesces, text: 133, ", coalesces ")

        part("orders", .orders, text: 150)
        part("slab_classes", .slabClasses, text: 160)
        part("sizes", .sizes, text: 170, "\n  sizes      ", "\n")
        part("alignments", .alignments, text: 180, "  alignments ", "\n")

        object("latency")
        choice("mode", \.latency_mode, "off|sampled|exact|sampled") // (what is neither off nor exact samples)
        field("sample_period", \.latency_period)
        field("alloc_avg_ns", \ReportFigures.allocAverageNs, .tenths)
        field("alloc_max_ns", \.alloc_max_ns)
        field("free_avg_ns", \ReportFigures.freeAverageNs, .tenths)
        field("free_max_ns", \.free_max_ns)
        field("samples", \ReportFigures.samples)
        field("alloc_samples", \.alloc_samples)
        field("free_samples", \.free_samples)
        end()
        part("", .latency, text: 145, "  latency     ", "\n")

        object("health")
        choice("status", \ReportFigures.status, "HEALTHY|WARNING|CRITICAL")
        part("message", .healthMessage, text: 20, "  health      ", "\n")
        end()

        part("profile", .profile, text: 200)
        part("bad_pointers", .badPointers, text: 190)
    }

    /// The orders' table (the text leaves out the orders with nothing in them), like the
    /// kernel's /proc/buddyinfo with more columns.
    @inline(never) mutating func orderColumns() {
        indexColumn("order", "order", width: 7)
        column("block_size", "block", width: 8, \buddy_order_stats.block_size, .bytes)
        column("live", "live", width: 9, \buddy_order_stats.live)
        column("free", "free", width: 9, \buddy_order_stats.free)
        column("cached", "cached", width: 9, \buddy_order_stats.cached)
        column("allocations", "allocations", width: 13, \buddy_order_stats.allocations)
        column("frees", "frees", width: 13, \buddy_order_stats.frees)
        column("splits", "splits", width: 11, \buddy_order_stats.splits)
        column("coalesces", "coalesces", width: 11, \buddy_order_stats.coalesces)
    }

    /// The slab classes' table (their slabs are blocks of the orders above).
    @inline(never) mutating func slabColumns() {
        indexColumn("class", "slab class", width: 12)
        column("object_size", "object", width: 8, \buddy_slab_stats.object_size, .bytes)
        column("slab_size", "slab", width: 7, \buddy_slab_stats.slab_size, .bytes)
        column("slabs", "slabs", width: 9, \buddy_slab_stats.slabs)
        column("live", "live", width: 9, \buddy_slab_stats.live)
        column("free", "free", width: 9, \buddy_slab_stats.free)
        column("cached", "cached", width: 9, \buddy_slab_stats.cached)
        column("allocations", "allocations", width: 13, \buddy_slab_stats.allocations)
        column("frees", "frees", width: 13, \buddy_slab_stats.frees)
    }

    /// One bad pointer: "    double free 0x7f3a1c2000a0 in free()" and its frames, or
    /// { "kind": "double_free", "function": "free", "pointer": "0x7f3a1c2000a0", "frames": [...] }.
    @inline(never) mutating func badPointerFields() {
        typealias Log = BadPointerLog
        recordField("kind", at: Log.kindOffset, .choice,
                    names: "invalid_pointer|double_free|other_pool|use_after_free|wrong_size|heap_corruption",
                    textNames: "invalid pointer|double free|another pool's pointer|use after free|wrong size|heap corruption",
                    text: 1, "    ")
        recordField("function", at: Log.functionOffset, .function, text: 3, " in ", "()\n")
        recordField("pointer", at: Log.pointerOffset, .address, text: 2, " ")
        frames("frames", countAt: Log.frameCountOffset, textsAt: Log.textOffset, limit: Log.maxFrames, stride: Log.frameText, text: 4)
    }

    /// One allocation site: "    12.5M in about 200 blocks (200 samples live)" and its frames, or
    /// { "live_bytes": ..., "live_count": ..., "samples": ..., "live_blocks": ..., "allocated_bytes": ...,
    /// "allocated_blocks": ..., "frames": [...] }. Bytes and blocks are estimates from the samples
    /// (a sample of s bytes stands for max(s, P) bytes and max(s, P) / s blocks); the counts are samples.
    @inline(never) mutating func profileSiteFields() {
        typealias Profile = AllocationProfile
        recordField("live_bytes", at: Profile.liveBytesOffset, .bytes, text: 1, "    ")
        recordField("live_count", at: Profile.liveCountOffset, .count, text: 3, " (", " samples live)\n")
        recordField("samples", at: Profile.samplesOffset, .count)
        recordField("live_blocks", at: Profile.liveBlocksOffset, .estimate, text: 2, " in about ", " blocks")
        recordField("allocated_bytes", at: Profile.allocatedBytesOffset, .count)
        recordField("allocated_blocks", at: Profile.allocatedBlocksOffset, .estimate)
        frames("frames", countAt: Profile.frameCountOffset, textsAt: Profile.textOffset, limit: Profile.maxFrames,
               stride: Profile.frameText, text: 4)
    }

    // MARK: The words of the lists

    @_transparent mutating func field(_ key: StaticString, _ path: KeyPath<buddy_stats, UInt64>, _ format: IntegerFormat = .count,
                                      text at: UInt8 = 0, _ before: StaticString = "", _ after: StaticString = "",
                                      newLine: Bool = false) {
        emit(ReportField(key: key, value: integer(format), base: .stats, offset: MemoryLayout<buddy_stats>.offset(of: path)!,
                         at: at, before: before, after: after, newLine: newLine))
    }

    @_transparent mutating func field(_ key: StaticString, _ path: KeyPath<buddy_stats, UInt32>) {
        emit(ReportField(key: key, value: .count, base: .stats, offset: MemoryLayout<buddy_stats>.offset(of: path)!, size: 4))
    }

    @_transparent mutating func field(_ key: StaticString, _ path: KeyPath<buddy_stats, Double>, _ format: RealFormat,
                                      text at: UInt8 = 0, _ before: StaticString = "", _ after: StaticString = "",
                                      newLine: Bool = false) {
        emit(ReportField(key: key, value: real(format), base: .stats, offset: MemoryLayout<buddy_stats>.offset(of: path)!,
                         at: at, before: before, after: after, newLine: newLine))
    }

    /// Element `element` of an array of UInt64 in the snapshot (calls, failures).
    @_transparent mutating func field<Elements>(_ key: StaticString, _ path: KeyPath<buddy_stats, Elements>, element: Int) {
        emit(ReportField(key: key, value: .count, base: .stats, offset: MemoryLayout<buddy_stats>.offset(of: path)! &+ element &* 8))
    }

    @_transparent mutating func field(_ key: StaticString, _ path: KeyPath<ReportFigures, UInt64>, _ format: IntegerFormat = .count,
                                      text at: UInt8 = 0, _ before: StaticString = "", _ after: StaticString = "") {
        emit(ReportField(key: key, value: integer(format), base: .figures, offset: MemoryLayout<ReportFigures>.offset(of: path)!,
                         at: at, before: before, after: after))
    }

    @_transparent mutating func field(_ key: StaticString, _ path: KeyPath<ReportFigures, Double>, _ format: RealFormat,
                                      text at: UInt8 = 0, _ before: StaticString = "", _ after: StaticString = "") {
        emit(ReportField(key: key, value: real(format), base: .figures, offset: MemoryLayout<ReportFigures>.offset(of: path)!,
                         at: at, before: before, after: after))
    }

    @_transparent mutating func field(_ key: StaticString, _ path: KeyPath<ReportFigures, StaticString>) {
        emit(ReportField(key: key, value: .name, base: .figures, offset: MemoryLayout<ReportFigures>.offset(of: path)!))
    }

    @_transparent mutating func field(_ key: StaticString, _ path: KeyPath<ReportFigures, UnsafePointer<UInt8>>) {
        emit(ReportField(key: key, value: .cString, base: .figures, offset: MemoryLayout<ReportFigures>.offset(of: path)!))
    }

    @_transparent mutating func choice(_ key: StaticString, _ path: KeyPath<buddy_stats, UInt32>, _ names: StaticString) {
        emit(ReportField(key: key, value: .choice, base: .stats, offset: MemoryLayout<buddy_stats>.offset(of: path)!, size: 4,
                         names: names))
    }

    @_transparent mutating func choice(_ key: StaticString, _ path: KeyPath<ReportFigures, UInt32>, _ names: StaticString) {
        emit(ReportField(key: key, value: .choice, base: .figures, offset: MemoryLayout<ReportFigures>.offset(of: path)!, size: 4,
                         names: names))
    }

    /// A column of a text table (and a member of each record's JSON object).
    @_transparent mutating func column<Record>(_ key: StaticString, _ heading: StaticString, width: Int,
                                               _ path: KeyPath<Record, UInt64>, _ format: IntegerFormat = .count) {
        emit(ReportField(key: key, value: integer(format), base: .record, offset: MemoryLayout<Record>.offset(of: path)!,
                         heading: heading, width: width))
    }

    /// The record's index as a column (an order, a slab class).
    @_transparent mutating func indexColumn(_ key: StaticString, _ heading: StaticString, width: Int) {
        emit(ReportField(key: key, value: .index, heading: heading, width: width))
    }

    /// A value at `offset` in the record (the logs' records have layouts of their own).
    @_transparent mutating func recordField(_ key: StaticString, at offset: Int, _ value: ReportValue, names: StaticString = "",
                                            textNames: StaticString = "",
                                            text at: UInt8 = 0, _ before: StaticString = "", _ after: StaticString = "") {
        emit(ReportField(key: key, value: value, base: .record, offset: offset, at: at, before: before, after: after,
                         names: names, textNames: textNames))
    }

    /// The record's frames: their count at `countAt`, their texts from `textsAt`, `stride` apart.
    @_transparent mutating func frames(_ key: StaticString, countAt: Int, textsAt: Int, limit: Int, stride: Int, text at: UInt8) {
        emit(ReportField(key: key, value: .frames, base: .record, offset: textsAt, at: at, countOffset: countAt, limit: limit,
                         stride: stride))
    }

    @_transparent mutating func part(_ key: StaticString, _ part: ReportPart,
                                     text at: UInt8 = 0, _ before: StaticString = "", _ after: StaticString = "") {
        emit(ReportField(key: key, value: .part, at: at, before: before, after: after, part: part))
    }

    /// Opens a JSON object (the text shows none).
    mutating func object(_ key: StaticString, multiline: Bool = false) {
        guard json else { return }
        member(key, newLine: false)
        out.append(multiline ? "{\n    " : "{ ")
        first = true
        level &+= 1
    }

    /// Closes the object `object` opened.
    mutating func end(multiline: Bool = false) {
        guard json else { return }
        out.append(multiline ? "\n  }" : " }")
        first = false
        level &-= 1
    }

    @_transparent private func integer(_ format: IntegerFormat) -> ReportValue {
        if case .bytes = format { return .bytes }
        return .count
    }

    @_transparent private func real(_ format: RealFormat) -> ReportValue {
        if case .ratio = format { return .ratio }
        if case .seconds = format { return .seconds }
        if case .factor = format { return .factor }
        return .tenths
    }
}
