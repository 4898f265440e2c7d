import BuddyEngine
import CBuddySupport

// The report: one writer, two formats (README, "The report"; the JSON schema is
// docs/report-format.md, version 1). Both are written from a snapshot (struct
// buddy_stats, Stats+Snapshot.swift) into a TextBuffer that flushes to the descriptor with
// write(2) whenever it fills. Nothing here allocates or takes a lock, so the writer may run in a
// signal handler.

/// Why a report is written (the JSON "reason").
enum ReportReason {
    case exit, signal, interval, api

    var name: StaticString {
        switch self {
        case .exit: return "exit"
        case .signal: return "signal"
        case .interval: return "interval"
        case .api: return "api"
        }
    }
}

/// What a report shows besides the snapshot.
struct ReportContext {
    var reason: ReportReason
    var sequence: UInt64
    var format: Int32
    /// The process pool (malloc's), or a private one (no bad-pointer log, no profile: those are
    /// the process's).
    var processPool = true
}

enum Report {
    /// Writes the report of any pool (a private pool's buddy_pool_report) to `fd`: a snapshot
    /// under the pool's lock (taken here: call it without holding it), then the writer.
    static func write(_ pool: BuddyEngine, to fd: Int32, format: Int32 = Int32(BUDDY_REPORT_TEXT.rawValue)) {
        var stats = buddy_stats()
        let process = buddy_process_pool_get() == pool.identity
        withUnsafeMutablePointer(to: &stats) { s in
            _ = pool.snapshot(into: s, locking: .wait)
            var sink = TextBuffer(flushingTo: fd)
            write(s, ReportContext(reason: .api, sequence: 0, format: format, processPool: process), to: &sink)
        }
    }

    /// Writes the report of `stats` to `sink` in the context's format.
    static func write(_ stats: UnsafeMutablePointer<buddy_stats>, _ context: ReportContext, to sink: inout TextBuffer) {
        var name: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &name) { raw in
            let p = raw.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: CChar.self)
            _ = buddy_os_program_name(p, raw.count)
        }
        withUnsafeBytes(of: &name) { raw in
            let program = raw.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: UInt8.self)
            render(stats, context, pid: Int(buddy_os_getpid()), program: program, to: &sink)
        }
        sink.flush()
    }

    /// The report of `stats` as process `pid` running `program` (NUL-terminated) writes it.
    static func render(_ stats: UnsafeMutablePointer<buddy_stats>, _ context: ReportContext, pid: Int, program: UnsafePointer<UInt8>,
                       to sink: inout TextBuffer) {
        if context.format == Int32(BUDDY_REPORT_JSON.rawValue) {
            writeJSON(stats, context, pid: pid, program: program, to: &sink)
        } else {
            writeText(stats, context, pid: pid, program: program, to: &sink)
        }
    }

    // MARK: Text

    static func writeText(_ s: UnsafeMutablePointer<buddy_stats>, _ context: ReportContext, pid: Int, program: UnsafePointer<UInt8>,
                          to out: inout TextBuffer) {
        let st = s.pointee
        let health = Health(s)
        let orders = statsOrders(s)
        let calls = statsCalls(s), failures = statsFailures(s)

        out.append(context.processPool ? "BuddyMalloc report, pid " : "BuddyMalloc report (private pool), pid ")
        out.append(decimal: pid)
        if program[0] != 0 { out.append(" ("); out.append(cString: program); out.append(")") }
        out.append(": ")
        out.append(context.reason.name)
        out.append(", report #")
        out.append(decimal: context.sequence)
        out.append(byte: 10)

        out.append("  health      ")
        writeHealthMessage(s, health, to: &out)
        out.append(byte: 10)

        out.append("  time        up ")
        out.append(fixed: st.uptime, digits: 2)
        out.append("s, last activity ")
        out.append(fixed: max(0, st.now - st.last_activity), digits: 2)
        out.append("s ago\n")

        out.append("  pool        ")
        out.append(bytes: st.reserved)
        out.append(" in ")
        out.append(decimal: st.segments)
        out.append(" segments (resident ")
        out.append(bytes: st.resident)
        out.append(", metadata ")
        out.append(bytes: st.metadata)
        out.append("): used ")
        out.append(bytes: st.used)
        out.append(", cached ")
        out.append(bytes: st.cached)
        out.append(", free ")
        out.append(bytes: st.free)
        out.append("; peak used ")
        out.append(bytes: st.peak_used)
        out.append(byte: 10)

        out.append("  blocks      ")
        out.append(decimal: st.live_allocations)
        out.append(" live (peak ")
        out.append(decimal: st.peak_live_allocations)
        out.append("); largest free block ")
        out.append(bytes: st.largest_free_block)
        out.append("; usage ")
        out.append(percent: st.usage)
        out.append(byte: 10)

        out.append("  fragments   internal ")
        out.append(percent: st.internal_fragmentation)
        out.append(" (requested ")
        out.append(bytes: st.requested_total)
        out.append(" in blocks of ")
        out.append(bytes: st.allocated_total)
        out.append(" so far; live requested about ")
        out.append(bytes: st.requested)
        out.append("), external ")
        out.append(percent: st.external_fragmentation)
        out.append(byte: 10)

        var allocations: UInt64 = 0, frees: UInt64 = 0, failed: UInt64 = 0
        for order in 0..<Int(st.order_count) {
            allocations &+= orders[order].allocations
            frees &+= orders[order].frees
        }
        let slabs = statsSlabs(s)
        for c in 0..<Int(st.slab_class_count) {
            allocations &+= slabs[c].allocations
            frees &+= slabs[c].frees
        }
        for entry in 0..<Entry.count { failed &+= failures[entry] }
        out.append("  calls       allocations ")
        out.append(decimal: allocations)
        out.append(", frees ")
        out.append(decimal: frees)
        out.append(", failed ")
        out.append(decimal: failed)
        out.append(", resized in place ")
        out.append(decimal: st.realloc_in_place)
        out.append(byte: 10)

        out.append("  entries    ")
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
        out.append(byte: 10)

        out.append("  system      ")
        out.append(decimal: st.system_calls)
        out.append(" calls, ")
        out.append(bytes: st.system_bytes)
        out.append(" (larger than the maximum block ")
        out.append(bytes: st.max_block)
        out.append(", mapped directly, so far); re-entrant calls ")
        out.append(decimal: st.reentrant_calls)
        out.append(byte: 10)

        out.append("  oversize    ")
        out.append(decimal: st.oversize_blocks)
        out.append(" live, ")
        out.append(bytes: st.oversize_bytes)
        out.append(" (peak ")
        out.append(decimal: st.oversize_peak_blocks)
        out.append(", ")
        out.append(bytes: st.oversize_peak_bytes)
        out.append("); held by the program in all ")
        out.append(bytes: st.held)
        out.append(" (used + oversize)\n")

        out.append("  errors      invalid pointers ")
        out.append(decimal: st.invalid_pointers)
        out.append(", double frees ")
        out.append(decimal: st.double_frees)
        out.append(", uses after free ")
        out.append(decimal: st.use_after_frees)
        out.append(", wrong sizes ")
        out.append(decimal: st.wrong_sizes)
        out.append(byte: 10)

        var splits: UInt64 = 0, coalesces: UInt64 = 0
        for order in 0..<Int(st.order_count) {
            splits &+= orders[order].splits
            coalesces &+= orders[order].coalesces
        }
        out.append("  segments    added ")
        out.append(decimal: st.segments_added)
        out.append(", released ")
        out.append(decimal: st.segments_released)
        out.append("; splits ")
        out.append(decimal: splits)
        out.append(", coalesces ")
        out.append(decimal: coalesces)
        out.append("; returned to the OS ")
        out.append(bytes: st.released_bytes)
        out.append(byte: 10)

        out.append("  latency     ")
        writeLatency(s, to: &out)
        out.append(byte: 10)

        // The orders with anything in them, like the kernel's /proc/buddyinfo with more columns.
        out.append("\n  order   block     live     free   cached  allocations        frees     splits  coalesces\n")
        for order in 0..<Int(st.order_count) {
            let o = orders[order]
            if o.live == 0 && o.free == 0 && o.cached == 0 && o.allocations == 0 && o.splits == 0 && o.coalesces == 0 { continue }
            out.append(decimal: UInt64(order), width: 7)
            out.append(bytes: o.block_size, width: 8)
            out.append(decimal: o.live, width: 9)
            out.append(decimal: o.free, width: 9)
            out.append(decimal: o.cached, width: 9)
            out.append(decimal: o.allocations, width: 13)
            out.append(decimal: o.frees, width: 13)
            out.append(decimal: o.splits, width: 11)
            out.append(decimal: o.coalesces, width: 11)
            out.append(byte: 10)
        }
        // Slab classes with anything in them (their slabs are blocks of the orders above).
        var slabHeader = false
        for c in 0..<Int(st.slab_class_count) {
            let k = slabs[c]
            if k.slabs == 0 && k.allocations == 0 && k.cached == 0 { continue }
            if !slabHeader {
                out.append("\n  slab class  object   slab    slabs     live     free   cached  allocations        frees\n")
                slabHeader = true
            }
            out.append(decimal: UInt64(c), width: 12)
            out.append(bytes: k.object_size, width: 8)
            out.append(bytes: k.slab_size, width: 7)
            out.append(decimal: k.slabs, width: 9)
            out.append(decimal: k.live, width: 9)
            out.append(decimal: k.free, width: 9)
            out.append(decimal: k.cached, width: 9)
            out.append(decimal: k.allocations, width: 13)
            out.append(decimal: k.frees, width: 13)
            out.append(byte: 10)
        }

        out.append("\n  sizes      ")
        let sizes = statsSizes(s)
        any = false
        for b in 0..<CounterTable.count where sizes[b] != 0 {
            out.append(" <=")
            out.append(bytes: b < 63 ? 1 << UInt64(b) : UInt64.max)
            out.append(byte: 58)
            out.append(decimal: sizes[b])
            any = true
        }
        if !any { out.append(" none") }
        out.append(byte: 10)
        out.append("  alignments ")
        let alignments = statsAlignments(s)
        any = false
        for b in 0..<CounterTable.count where alignments[b] != 0 {
            out.append(byte: 32)
            out.append(bytes: b < 63 ? 1 << UInt64(b) : UInt64.max)
            out.append(byte: 58)
            out.append(decimal: alignments[b])
            any = true
        }
        if !any { out.append(" none") }
        out.append(byte: 10)

        if context.processPool {
            BadPointerLog.writeText(to: &out)
            AllocationProfile.writeText(to: &out)
        }
    }

    /// "HEALTHY: usage 14%, external fragmentation 70%, 0 errors" and, when not healthy, why.
    static func writeHealthMessage(_ s: UnsafeMutablePointer<buddy_stats>, _ health: Health, to out: inout TextBuffer) {
        switch health.status {
        case Health.critical: out.append("CRITICAL")
        case Health.warning: out.append("WARNING")
        default: out.append("HEALTHY")
        }
        out.append(": usage ")
        out.append(percent: s.pointee.usage)
        out.append(", external fragmentation ")
        out.append(percent: s.pointee.external_fragmentation)
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
    }

    static func writeLatency(_ s: UnsafeMutablePointer<buddy_stats>, to out: inout TextBuffer) {
        let st = s.pointee
        switch Int32(bitPattern: st.latency_mode) {
        case Int32(BUDDY_LATENCY_OFF.rawValue):
            out.append("off (BUDDY_STATS_LATENCY=sampled, sampled:N or exact)")
            return
        case Int32(BUDDY_LATENCY_EXACT.rawValue): out.append("every call")
        default:
            out.append("1 malloc in ")
            out.append(decimal: UInt64(st.latency_period))
        }
        out.append(": allocations ")
        writeLatencyFigures(total: st.alloc_total_ns, max: st.alloc_max_ns, samples: st.alloc_samples, to: &out)
        out.append("; frees ")
        writeLatencyFigures(total: st.free_total_ns, max: st.free_max_ns, samples: st.free_samples, to: &out)
    }

    /// "avg 120ns max 3.1us (N samples)", each kind with its own count: an average of a handful
    /// of samples (a short program's first call maps its segments) says so.
    static func writeLatencyFigures(total: UInt64, max: UInt64, samples: UInt64, to out: inout TextBuffer) {
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

    // MARK: JSON (report-schema.md, version 1)

    static func writeJSON(_ s: UnsafeMutablePointer<buddy_stats>, _ context: ReportContext, pid: Int, program: UnsafePointer<UInt8>,
                          to out: inout TextBuffer) {
        let st = s.pointee
        let orders = statsOrders(s)
        let calls = statsCalls(s), failures = statsFailures(s)
        out.append("{\n  \"format\": \"buddymalloc-report\",\n  \"version\": 1,\n  ")
        out.append(jsonKey: "pid"); out.append(decimal: pid); out.append(",\n  ")
        out.append(jsonKey: "program"); out.append(jsonCString: program); out.append(",\n  ")
        out.append(jsonKey: "reason"); out.append(jsonString: context.reason.name); out.append(",\n  ")
        out.append(jsonKey: "sequence"); out.append(decimal: context.sequence); out.append(",\n  ")
        out.append(jsonKey: "pool"); out.append(jsonString: context.processPool ? "process" : "private"); out.append(",\n  ")

        out.append(jsonKey: "time"); out.append("{ ")
        out.append(jsonKey: "created"); out.append(fixed: st.created, digits: 6); out.append(", ")
        out.append(jsonKey: "now"); out.append(fixed: st.now, digits: 6); out.append(", ")
        out.append(jsonKey: "uptime"); out.append(fixed: st.uptime, digits: 6); out.append(", ")
        out.append(jsonKey: "last_activity"); out.append(fixed: st.last_activity, digits: 6); out.append(" },\n  ")

        out.append(jsonKey: "config"); out.append("{ ")
        out.append(jsonKey: "min_block"); out.append(decimal: st.min_block); out.append(", ")
        out.append(jsonKey: "max_block"); out.append(decimal: st.max_block); out.append(", ")
        out.append(jsonKey: "initial_size"); out.append(decimal: st.initial_size); out.append(", ")
        out.append(jsonKey: "growth_factor"); out.append(fixed: st.growth_factor, digits: 3); out.append(", ")
        out.append(jsonKey: "max_pool_size"); out.append(decimal: st.max_pool_size); out.append(", ")
        out.append(jsonKey: "thread_safety")
        switch st.thread_safety {
        case 0: out.append(jsonString: "auto")
        case 1: out.append(jsonString: "always")
        default: out.append(jsonString: "off")
        }
        out.append(", ")
        out.append(jsonKey: "on_error"); out.append(jsonString: st.on_error == 0 ? "abort" : "log"); out.append(" },\n  ")

        out.append(jsonKey: "memory"); out.append("{\n    ")
        out.append(jsonKey: "reserved"); out.append(decimal: st.reserved); out.append(", ")
        out.append(jsonKey: "resident"); out.append(decimal: st.resident); out.append(", ")
        out.append(jsonKey: "used"); out.append(decimal: st.used); out.append(", ")
        out.append(jsonKey: "cached"); out.append(decimal: st.cached); out.append(", ")
        out.append(jsonKey: "free"); out.append(decimal: st.free); out.append(", ")
        out.append(jsonKey: "metadata"); out.append(decimal: st.metadata); out.append(", ")
        out.append(jsonKey: "slab_spare"); out.append(decimal: st.slab_spare); out.append(",\n    ")
        out.append(jsonKey: "usage"); out.append(fixed: st.usage, digits: 4); out.append(", ")
        out.append(jsonKey: "requested"); out.append(decimal: st.requested); out.append(", ")
        out.append(jsonKey: "requested_total"); out.append(decimal: st.requested_total); out.append(", ")
        out.append(jsonKey: "allocated_total"); out.append(decimal: st.allocated_total); out.append(",\n    ")
        out.append(jsonKey: "internal_fragmentation"); out.append(fixed: st.internal_fragmentation, digits: 4); out.append(", ")
        out.append(jsonKey: "largest_free_block"); out.append(decimal: st.largest_free_block); out.append(", ")
        out.append(jsonKey: "external_fragmentation"); out.append(fixed: st.external_fragmentation, digits: 4); out.append(",\n    ")
        out.append(jsonKey: "peak_used"); out.append(decimal: st.peak_used); out.append(", ")
        out.append(jsonKey: "live_allocations"); out.append(decimal: st.live_allocations); out.append(", ")
        out.append(jsonKey: "peak_live_allocations"); out.append(decimal: st.peak_live_allocations); out.append(",\n    ")
        out.append(jsonKey: "held"); out.append(decimal: st.held); out.append("\n  },\n  ")

        out.append(jsonKey: "calls"); out.append("{")
        for entry in 0..<Entry.count {
            out.append(entry == 0 ? " " : ", ")
            out.append(jsonKey: Entry(rawValue: entry).unsafelyUnwrapped.name)
            out.append(decimal: calls[entry])
        }
        out.append(" },\n  ")
        out.append(jsonKey: "failures"); out.append("{")
        var first = true
        for entry in 0..<Entry.count where Entry(rawValue: entry).unsafelyUnwrapped.allocates {
            out.append(first ? " " : ", ")
            first = false
            out.append(jsonKey: Entry(rawValue: entry).unsafelyUnwrapped.name)
            out.append(decimal: failures[entry])
        }
        out.append(" },\n  ")
        out.append(jsonKey: "errors"); out.append("{ ")
        out.append(jsonKey: "invalid_pointer"); out.append(decimal: st.invalid_pointers); out.append(", ")
        out.append(jsonKey: "double_free"); out.append(decimal: st.double_frees); out.append(", ")
        out.append(jsonKey: "use_after_free"); out.append(decimal: st.use_after_frees); out.append(", ")
        out.append(jsonKey: "wrong_size"); out.append(decimal: st.wrong_sizes); out.append(" },\n  ")
        out.append(jsonKey: "system"); out.append("{ ")
        out.append(jsonKey: "calls"); out.append(decimal: st.system_calls); out.append(", ")
        out.append(jsonKey: "bytes"); out.append(decimal: st.system_bytes); out.append(", ")
        out.append(jsonKey: "reentrant"); out.append(decimal: st.reentrant_calls); out.append(" },\n  ")
        out.append(jsonKey: "oversize"); out.append("{ ")
        out.append(jsonKey: "blocks"); out.append(decimal: st.oversize_blocks); out.append(", ")
        out.append(jsonKey: "bytes"); out.append(decimal: st.oversize_bytes); out.append(", ")
        out.append(jsonKey: "peak_blocks"); out.append(decimal: st.oversize_peak_blocks); out.append(", ")
        out.append(jsonKey: "peak_bytes"); out.append(decimal: st.oversize_peak_bytes); out.append(" },\n  ")
        out.append(jsonKey: "segments"); out.append("{ ")
        out.append(jsonKey: "count"); out.append(decimal: st.segments); out.append(", ")
        out.append(jsonKey: "added"); out.append(decimal: st.segments_added); out.append(", ")
        out.append(jsonKey: "released"); out.append(decimal: st.segments_released); out.append(", ")
        out.append(jsonKey: "released_bytes"); out.append(decimal: st.released_bytes); out.append(", ")
        out.append(jsonKey: "realloc_in_place"); out.append(decimal: st.realloc_in_place); out.append(" },\n  ")

        out.append(jsonKey: "orders"); out.append("[")
        for order in 0..<Int(st.order_count) {
            let o = orders[order]
            out.append(order == 0 ? "\n    { " : ",\n    { ")
            out.append(jsonKey: "order"); out.append(decimal: order); out.append(", ")
            out.append(jsonKey: "block_size"); out.append(decimal: o.block_size); out.append(", ")
            out.append(jsonKey: "live"); out.append(decimal: o.live); out.append(", ")
            out.append(jsonKey: "free"); out.append(decimal: o.free); out.append(", ")
            out.append(jsonKey: "cached"); out.append(decimal: o.cached); out.append(", ")
            out.append(jsonKey: "allocations"); out.append(decimal: o.allocations); out.append(", ")
            out.append(jsonKey: "frees"); out.append(decimal: o.frees); out.append(", ")
            out.append(jsonKey: "splits"); out.append(decimal: o.splits); out.append(", ")
            out.append(jsonKey: "coalesces"); out.append(decimal: o.coalesces); out.append(" }")
        }
        out.append("\n  ],\n  ")

        out.append(jsonKey: "slab_classes"); out.append("[")
        let slabs = statsSlabs(s)
        for c in 0..<Int(st.slab_class_count) {
            let k = slabs[c]
            out.append(c == 0 ? "\n    { " : ",\n    { ")
            out.append(jsonKey: "class"); out.append(decimal: c); out.append(", ")
            out.append(jsonKey: "object_size"); out.append(decimal: k.object_size); out.append(", ")
            out.append(jsonKey: "slab_size"); out.append(decimal: k.slab_size); out.append(", ")
            out.append(jsonKey: "slabs"); out.append(decimal: k.slabs); out.append(", ")
            out.append(jsonKey: "live"); out.append(decimal: k.live); out.append(", ")
            out.append(jsonKey: "free"); out.append(decimal: k.free); out.append(", ")
            out.append(jsonKey: "cached"); out.append(decimal: k.cached); out.append(", ")
            out.append(jsonKey: "allocations"); out.append(decimal: k.allocations); out.append(", ")
            out.append(jsonKey: "frees"); out.append(decimal: k.frees); out.append(" }")
        }
        out.append(st.slab_class_count == 0 ? "],\n  " : "\n  ],\n  ")

        out.append(jsonKey: "sizes"); out.append("[")
        let sizes = statsSizes(s)
        first = true
        for b in 0..<63 where sizes[b] != 0 {
            out.append(first ? " " : ", ")
            first = false
            out.append("{ "); out.append(jsonKey: "upto"); out.append(decimal: UInt64(1) << UInt64(b))
            out.append(", "); out.append(jsonKey: "count"); out.append(decimal: sizes[b]); out.append(" }")
        }
        out.append(first ? "],\n  " : " ],\n  ")
        out.append(jsonKey: "alignments"); out.append("[")
        let alignments = statsAlignments(s)
        first = true
        for b in 0..<63 where alignments[b] != 0 {
            out.append(first ? " " : ", ")
            first = false
            out.append("{ "); out.append(jsonKey: "alignment"); out.append(decimal: UInt64(1) << UInt64(b))
            out.append(", "); out.append(jsonKey: "count"); out.append(decimal: alignments[b]); out.append(" }")
        }
        out.append(first ? "],\n  " : " ],\n  ")

        out.append(jsonKey: "latency"); out.append("{ ")
        out.append(jsonKey: "mode")
        switch Int32(bitPattern: st.latency_mode) {
        case Int32(BUDDY_LATENCY_OFF.rawValue): out.append(jsonString: "off")
        case Int32(BUDDY_LATENCY_EXACT.rawValue): out.append(jsonString: "exact")
        default: out.append(jsonString: "sampled")
        }
        out.append(", ")
        out.append(jsonKey: "sample_period"); out.append(decimal: UInt64(st.latency_period)); out.append(", ")
        out.append(jsonKey: "alloc_avg_ns"); out.append(fixed: st.alloc_samples > 0 ? Double(st.alloc_total_ns) / Double(st.alloc_samples) : 0, digits: 1); out.append(", ")
        out.append(jsonKey: "alloc_max_ns"); out.append(decimal: st.alloc_max_ns); out.append(", ")
        out.append(jsonKey: "free_avg_ns"); out.append(fixed: st.free_samples > 0 ? Double(st.free_total_ns) / Double(st.free_samples) : 0, digits: 1); out.append(", ")
        out.append(jsonKey: "free_max_ns"); out.append(decimal: st.free_max_ns); out.append(", ")
        out.append(jsonKey: "samples"); out.append(decimal: st.alloc_samples &+ st.free_samples); out.append(", ")
        out.append(jsonKey: "alloc_samples"); out.append(decimal: st.alloc_samples); out.append(", ")
        out.append(jsonKey: "free_samples"); out.append(decimal: st.free_samples); out.append(" },\n  ")

        out.append(jsonKey: "health"); out.append("{ ")
        let health = Health(s)
        out.append(jsonKey: "status")
        switch health.status {
        case Health.critical: out.append(jsonString: "CRITICAL")
        case Health.warning: out.append(jsonString: "WARNING")
        default: out.append(jsonString: "HEALTHY")
        }
        out.append(", ")
        out.append(jsonKey: "message")
        // The message holds no quote, backslash or control character: no escaping needed.
        out.append(byte: 34)
        writeHealthMessage(s, health, to: &out)
        out.append(byte: 34)
        out.append(" },\n  ")

        out.append(jsonKey: "profile")
        if context.processPool { AllocationProfile.writeJSON(to: &out) } else { out.append("{ \"sample_bytes\": 0, \"sites\": [] }") }
        out.append(",\n  ")
        out.append(jsonKey: "bad_pointers")
        if context.processPool { BadPointerLog.writeJSON(to: &out) } else { out.append("[]") }
        out.append("\n}\n")
    }
}
