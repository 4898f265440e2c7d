import BuddyEngine
import CBuddySupport

// The report: one writer, two formats (README, "The report"; the JSON schema is
// docs/report-format.md, version 1). Both are written from a snapshot (struct
// buddy_stats, Stats+Snapshot.swift) through a ReportSink: a 4 KiB stack buffer flushed with
// write(2). Nothing here allocates or takes a lock, so the writer may run in a signal handler.

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

typealias SinkChunk = (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
     UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
     UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
     UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)

@inline(__always) func zeroSinkChunk() -> SinkChunk {
    (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
     0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
}

/// Text on its way to a file descriptor: 4 KiB on the stack, written out whenever it fills (so a
/// report of any length goes out in a few write(2) calls, never truncated).
struct ReportSink {
    private var storage: (SinkChunk, SinkChunk, SinkChunk, SinkChunk, SinkChunk, SinkChunk, SinkChunk, SinkChunk)
    private var count = 0
    let fd: Int32
    static let capacity = 4096

    init(fd: Int32) {
        self.fd = fd
        storage = (zeroSinkChunk(), zeroSinkChunk(), zeroSinkChunk(), zeroSinkChunk(),
                   zeroSinkChunk(), zeroSinkChunk(), zeroSinkChunk(), zeroSinkChunk())
    }

    mutating func flush() {
        if count == 0 { return }
        let n = count
        withUnsafeBytes(of: &storage) { buddy_os_write(fd, $0.baseAddress, n) }
        count = 0
    }

    mutating func byte(_ b: UInt8) {
        if count == ReportSink.capacity { flush() }
        let at = count
        withUnsafeMutableBytes(of: &storage) { $0[at] = b }
        count &+= 1
    }

    mutating func text(_ s: StaticString) {
        let start = s.utf8Start
        for i in 0..<s.utf8CodeUnitCount { byte(start[i]) }
    }

    /// Raw bytes (`length` of them, or up to the first NUL when `length` is negative).
    mutating func raw(_ p: UnsafePointer<UInt8>, length: Int) {
        var i = 0
        while length < 0 ? p[i] != 0 : i < length {
            byte(p[i])
            i &+= 1
        }
    }

    mutating func decimal(_ value: UInt64) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        var n = 0
        var v = value
        withUnsafeMutableBytes(of: &digits) { d in
            repeat { d[n] = UInt8(truncatingIfNeeded: 48 &+ v % 10); v /= 10; n &+= 1 } while v > 0
        }
        withUnsafeBytes(of: &digits) { d in
            while n > 0 { n &-= 1; byte(d[n]) }
        }
    }

    mutating func decimal(_ value: Int) {
        if value < 0 { byte(45) }
        decimal(UInt64(value.magnitude))
    }

    /// Right-aligned in `width` columns.
    mutating func decimal(_ value: UInt64, width: Int) {
        var digits = 1
        var v = value
        while v >= 10 { v /= 10; digits &+= 1 }
        var pad = width &- digits
        while pad > 0 { byte(32); pad &-= 1 }
        decimal(value)
    }

    mutating func hex(_ value: UInt) {
        text("0x")
        var shift = UInt.bitWidth - 4
        var started = false
        while shift >= 0 {
            let nibble = UInt8(truncatingIfNeeded: (value >> UInt(shift)) & 0xF)
            if nibble != 0 || started || shift == 0 {
                started = true
                byte(nibble < 10 ? 48 &+ nibble : 87 &+ nibble)
            }
            shift -= 4
        }
    }

    /// A number with `digits` decimals (JSON: no exponent; NaN and infinities as 0).
    mutating func fixed(_ value: Double, digits: Int) {
        var v = value
        if !(v.isFinite) { v = 0 }
        if v < 0 { byte(45); v = -v }
        var scale: UInt64 = 1
        for _ in 0..<digits { scale &*= 10 }
        if v >= 1e18 / Double(scale) { decimal(UInt64(v)); return }
        // Half up by truncation (v >= 0 here): .rounded() calls libm's round, which is not on
        // POSIX's async-signal-safe list, and the signal handler writes reports.
        let scaled = UInt64(v * Double(scale) + 0.5)
        decimal(scaled / scale)
        if digits > 0 {
            byte(46)
            var fraction = scaled % scale
            var divisor = scale / 10
            while divisor > 0 {
                byte(UInt8(truncatingIfNeeded: 48 &+ fraction / divisor))
                fraction %= divisor
                divisor /= 10
            }
        }
    }

    /// A ratio as a whole percentage: "14%".
    mutating func percent(_ ratio: Double) {
        fixed(ratio * 100, digits: 0)
        byte(37)
    }

    /// A byte count the way people read it: 512B, 1.5K, 64K, 3.2M, 2.0G (as LineBuffer does).
    mutating func bytes(_ value: UInt64) {
        let units: StaticString = "KMGTP"
        if value < 1024 { decimal(value); byte(66); return }
        var scaled = value
        var unit = -1
        var tenths: UInt64 = 0
        while scaled >= 1024 && unit < 4 {
            tenths = (scaled % 1024) * 10 / 1024
            scaled /= 1024
            unit += 1
        }
        decimal(scaled)
        if scaled < 100 { byte(46); decimal(tenths) }
        byte(units.utf8Start[unit])
    }

    /// A duration in nanoseconds the way people read it: 850ns, 12us, 3.4ms, 1.2s.
    mutating func duration(_ ns: UInt64) {
        if ns < 1000 { decimal(ns); text("ns"); return }
        if ns < 1_000_000 { fixed(Double(ns) / 1e3, digits: ns < 10_000 ? 1 : 0); text("us"); return }
        if ns < 1_000_000_000 { fixed(Double(ns) / 1e6, digits: ns < 10_000_000 ? 1 : 0); text("ms"); return }
        fixed(Double(ns) / 1e9, digits: 2)
        byte(115)
    }

    /// A JSON string from raw bytes: quotes, backslashes and control characters escaped.
    mutating func jsonString(_ p: UnsafePointer<UInt8>, length: Int) {
        byte(34)
        var i = 0
        while length < 0 ? p[i] != 0 : i < length {
            let c = p[i]
            if c == 34 || c == 92 { byte(92); byte(c) }
            else if c < 32 {
                text("\\u00")
                byte(48 &+ c / 16)
                let low = c % 16
                byte(low < 10 ? 48 &+ low : 87 &+ low)
            } else { byte(c) }
            i &+= 1
        }
        byte(34)
    }

    mutating func jsonString(_ s: StaticString) {
        jsonString(s.utf8Start, length: s.utf8CodeUnitCount)
    }

    /// `"name": ` for JSON objects.
    mutating func key(_ name: StaticString) {
        byte(34)
        text(name)
        text("\": ")
    }

    /// `value` as bytes (`bytes(_:)`), right-aligned in `width` columns.
    mutating func paddedBytes(_ value: UInt64, width: Int) {
        var size = LineBuffer()
        size.append(bytes: value)
        pad(from: size.count, to: width)
        bytes(value)
    }

    mutating func pad(from start: Int, to width: Int) {
        var n = width &- start
        while n > 0 { byte(32); n &-= 1 }
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
            var sink = ReportSink(fd: fd)
            write(s, ReportContext(reason: .api, sequence: 0, format: format, processPool: process), to: &sink)
        }
    }

    /// Writes the report of `stats` to `sink` in the context's format.
    static func write(_ stats: UnsafeMutablePointer<buddy_stats>, _ context: ReportContext, to sink: inout ReportSink) {
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
                       to sink: inout ReportSink) {
        if context.format == Int32(BUDDY_REPORT_JSON.rawValue) {
            writeJSON(stats, context, pid: pid, program: program, to: &sink)
        } else {
            writeText(stats, context, pid: pid, program: program, to: &sink)
        }
    }

    // MARK: Text

    static func writeText(_ s: UnsafeMutablePointer<buddy_stats>, _ context: ReportContext, pid: Int, program: UnsafePointer<UInt8>,
                          to out: inout ReportSink) {
        let st = s.pointee
        let health = Health(s)
        let orders = statsOrders(s)
        let calls = statsCalls(s), failures = statsFailures(s)

        out.text(context.processPool ? "BuddyMalloc report, pid " : "BuddyMalloc report (private pool), pid ")
        out.decimal(pid)
        if program[0] != 0 { out.text(" ("); out.raw(program, length: -1); out.text(")") }
        out.text(": ")
        out.text(context.reason.name)
        out.text(", report #")
        out.decimal(context.sequence)
        out.byte(10)

        out.text("  health      ")
        writeHealthMessage(s, health, to: &out)
        out.byte(10)

        out.text("  time        up ")
        out.fixed(st.uptime, digits: 2)
        out.text("s, last activity ")
        out.fixed(max(0, st.now - st.last_activity), digits: 2)
        out.text("s ago\n")

        out.text("  pool        ")
        out.bytes(st.reserved)
        out.text(" in ")
        out.decimal(st.segments)
        out.text(" segments (resident ")
        out.bytes(st.resident)
        out.text(", metadata ")
        out.bytes(st.metadata)
        out.text("): used ")
        out.bytes(st.used)
        out.text(", cached ")
        out.bytes(st.cached)
        out.text(", free ")
        out.bytes(st.free)
        out.text("; peak used ")
        out.bytes(st.peak_used)
        out.byte(10)

        out.text("  blocks      ")
        out.decimal(st.live_allocations)
        out.text(" live (peak ")
        out.decimal(st.peak_live_allocations)
        out.text("); largest free block ")
        out.bytes(st.largest_free_block)
        out.text("; usage ")
        out.percent(st.usage)
        out.byte(10)

        out.text("  fragments   internal ")
        out.percent(st.internal_fragmentation)
        out.text(" (requested ")
        out.bytes(st.requested_total)
        out.text(" in blocks of ")
        out.bytes(st.allocated_total)
        out.text(" so far; live requested about ")
        out.bytes(st.requested)
        out.text("), external ")
        out.percent(st.external_fragmentation)
        out.byte(10)

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
        out.text("  calls       allocations ")
        out.decimal(allocations)
        out.text(", frees ")
        out.decimal(frees)
        out.text(", failed ")
        out.decimal(failed)
        out.text(", resized in place ")
        out.decimal(st.realloc_in_place)
        out.byte(10)

        out.text("  entries    ")
        var any = false
        for entry in 0..<Entry.count where calls[entry] != 0 || failures[entry] != 0 {
            out.byte(32)
            out.text(Entry(rawValue: entry).unsafelyUnwrapped.name)
            out.byte(32)
            out.decimal(calls[entry])
            if failures[entry] != 0 {
                out.text(" (")
                out.decimal(failures[entry])
                out.text(" failed)")
            }
            any = true
        }
        if !any { out.text(" none") }
        out.byte(10)

        out.text("  system      ")
        out.decimal(st.system_calls)
        out.text(" calls, ")
        out.bytes(st.system_bytes)
        out.text(" (larger than the maximum block ")
        out.bytes(st.max_block)
        out.text(", mapped directly, so far); re-entrant calls ")
        out.decimal(st.reentrant_calls)
        out.byte(10)

        out.text("  oversize    ")
        out.decimal(st.oversize_blocks)
        out.text(" live, ")
        out.bytes(st.oversize_bytes)
        out.text(" (peak ")
        out.decimal(st.oversize_peak_blocks)
        out.text(", ")
        out.bytes(st.oversize_peak_bytes)
        out.text("); held by the program in all ")
        out.bytes(st.held)
        out.text(" (used + oversize)\n")

        out.text("  errors      invalid pointers ")
        out.decimal(st.invalid_pointers)
        out.text(", double frees ")
        out.decimal(st.double_frees)
        out.text(", uses after free ")
        out.decimal(st.use_after_frees)
        out.text(", wrong sizes ")
        out.decimal(st.wrong_sizes)
        out.byte(10)

        var splits: UInt64 = 0, coalesces: UInt64 = 0
        for order in 0..<Int(st.order_count) {
            splits &+= orders[order].splits
            coalesces &+= orders[order].coalesces
        }
        out.text("  segments    added ")
        out.decimal(st.segments_added)
        out.text(", released ")
        out.decimal(st.segments_released)
        out.text("; splits ")
        out.decimal(splits)
        out.text(", coalesces ")
        out.decimal(coalesces)
        out.text("; returned to the OS ")
        out.bytes(st.released_bytes)
        out.byte(10)

        out.text("  latency     ")
        writeLatency(s, to: &out)
        out.byte(10)

        // The orders with anything in them, like the kernel's /proc/buddyinfo with more columns.
        out.text("\n  order   block     live     free   cached  allocations        frees     splits  coalesces\n")
        for order in 0..<Int(st.order_count) {
            let o = orders[order]
            if o.live == 0 && o.free == 0 && o.cached == 0 && o.allocations == 0 && o.splits == 0 && o.coalesces == 0 { continue }
            out.decimal(UInt64(order), width: 7)
            out.paddedBytes(o.block_size, width: 8)
            out.decimal(o.live, width: 9)
            out.decimal(o.free, width: 9)
            out.decimal(o.cached, width: 9)
            out.decimal(o.allocations, width: 13)
            out.decimal(o.frees, width: 13)
            out.decimal(o.splits, width: 11)
            out.decimal(o.coalesces, width: 11)
            out.byte(10)
        }
        // Slab classes with anything in them (their slabs are blocks of the orders above).
        var slabHeader = false
        for c in 0..<Int(st.slab_class_count) {
            let k = slabs[c]
            if k.slabs == 0 && k.allocations == 0 && k.cached == 0 { continue }
            if !slabHeader {
                out.text("\n  slab class  object   slab    slabs     live     free   cached  allocations        frees\n")
                slabHeader = true
            }
            out.decimal(UInt64(c), width: 12)
            out.paddedBytes(k.object_size, width: 8)
            out.paddedBytes(k.slab_size, width: 7)
            out.decimal(k.slabs, width: 9)
            out.decimal(k.live, width: 9)
            out.decimal(k.free, width: 9)
            out.decimal(k.cached, width: 9)
            out.decimal(k.allocations, width: 13)
            out.decimal(k.frees, width: 13)
            out.byte(10)
        }

        out.text("\n  sizes      ")
        let sizes = statsSizes(s)
        any = false
        for b in 0..<CounterTable.count where sizes[b] != 0 {
            out.text(" <=")
            out.bytes(b < 63 ? 1 << UInt64(b) : UInt64.max)
            out.byte(58)
            out.decimal(sizes[b])
            any = true
        }
        if !any { out.text(" none") }
        out.byte(10)
        out.text("  alignments ")
        let alignments = statsAlignments(s)
        any = false
        for b in 0..<CounterTable.count where alignments[b] != 0 {
            out.byte(32)
            out.bytes(b < 63 ? 1 << UInt64(b) : UInt64.max)
            out.byte(58)
            out.decimal(alignments[b])
            any = true
        }
        if !any { out.text(" none") }
        out.byte(10)

        if context.processPool {
            BadPointerLog.writeText(to: &out)
            AllocationProfile.writeText(to: &out)
        }
    }

    /// "HEALTHY: usage 14%, external fragmentation 70%, 0 errors" and, when not healthy, why.
    static func writeHealthMessage(_ s: UnsafeMutablePointer<buddy_stats>, _ health: Health, to out: inout ReportSink) {
        switch health.status {
        case Health.critical: out.text("CRITICAL")
        case Health.warning: out.text("WARNING")
        default: out.text("HEALTHY")
        }
        out.text(": usage ")
        out.percent(s.pointee.usage)
        out.text(", external fragmentation ")
        out.percent(s.pointee.external_fragmentation)
        out.text(", ")
        out.decimal(health.errorCount)
        out.text(health.errorCount == 1 ? " error" : " errors")
        if health.badPointers != 0 { out.text("; bad pointers were freed (see errors)") }
        if health.failures != 0 {
            out.text("; ")
            out.fixed(health.failureRate * 100, digits: 2)
            out.text("% of allocating calls failed")
        }
        if health.fragmentation != 0 { out.text("; the free memory is fragmented into small blocks") }
        if health.limit != 0 {
            out.text("; ")
            out.percent(health.limitUse)
            out.text(" of BUDDY_MAX_POOL in use")
        }
        if health.idle != 0 { out.text("; most reserved memory is unused (malloc_trim returns it)") }
    }

    static func writeLatency(_ s: UnsafeMutablePointer<buddy_stats>, to out: inout ReportSink) {
        let st = s.pointee
        switch Int32(bitPattern: st.latency_mode) {
        case Int32(BUDDY_LATENCY_OFF.rawValue):
            out.text("off (BUDDY_STATS_LATENCY=sampled, sampled:N or exact)")
            return
        case Int32(BUDDY_LATENCY_EXACT.rawValue): out.text("every call")
        default:
            out.text("1 malloc in ")
            out.decimal(UInt64(st.latency_period))
        }
        out.text(": allocations ")
        writeLatencyFigures(total: st.alloc_total_ns, max: st.alloc_max_ns, samples: st.alloc_samples, to: &out)
        out.text("; frees ")
        writeLatencyFigures(total: st.free_total_ns, max: st.free_max_ns, samples: st.free_samples, to: &out)
    }

    /// "avg 120ns max 3.1us (N samples)", each kind with its own count: an average of a handful
    /// of samples (a short program's first call maps its segments) says so.
    static func writeLatencyFigures(total: UInt64, max: UInt64, samples: UInt64, to out: inout ReportSink) {
        guard samples > 0 else { out.text("- (0 samples)"); return }
        out.text("avg ")
        out.duration(total / samples)
        out.text(" max ")
        out.duration(max)
        out.text(" (")
        out.decimal(samples)
        out.text(samples == 1 ? " sample" : " samples")
        if samples < 10 { out.text(": too few for a reliable average") }
        out.text(")")
    }

    // MARK: JSON (report-schema.md, version 1)

    static func writeJSON(_ s: UnsafeMutablePointer<buddy_stats>, _ context: ReportContext, pid: Int, program: UnsafePointer<UInt8>,
                          to out: inout ReportSink) {
        let st = s.pointee
        let orders = statsOrders(s)
        let calls = statsCalls(s), failures = statsFailures(s)
        out.text("{\n  \"format\": \"buddymalloc-report\",\n  \"version\": 1,\n  ")
        out.key("pid"); out.decimal(pid); out.text(",\n  ")
        out.key("program"); out.jsonString(program, length: -1); out.text(",\n  ")
        out.key("reason"); out.jsonString(context.reason.name); out.text(",\n  ")
        out.key("sequence"); out.decimal(context.sequence); out.text(",\n  ")
        out.key("pool"); out.jsonString(context.processPool ? "process" : "private"); out.text(",\n  ")

        out.key("time"); out.text("{ ")
        out.key("created"); out.fixed(st.created, digits: 6); out.text(", ")
        out.key("now"); out.fixed(st.now, digits: 6); out.text(", ")
        out.key("uptime"); out.fixed(st.uptime, digits: 6); out.text(", ")
        out.key("last_activity"); out.fixed(st.last_activity, digits: 6); out.text(" },\n  ")

        out.key("config"); out.text("{ ")
        out.key("min_block"); out.decimal(st.min_block); out.text(", ")
        out.key("max_block"); out.decimal(st.max_block); out.text(", ")
        out.key("initial_size"); out.decimal(st.initial_size); out.text(", ")
        out.key("growth_factor"); out.fixed(st.growth_factor, digits: 3); out.text(", ")
        out.key("max_pool_size"); out.decimal(st.max_pool_size); out.text(", ")
        out.key("thread_safety")
        switch st.thread_safety {
        case 0: out.jsonString("auto")
        case 1: out.jsonString("always")
        default: out.jsonString("off")
        }
        out.text(", ")
        out.key("on_error"); out.jsonString(st.on_error == 0 ? "abort" : "log"); out.text(" },\n  ")

        out.key("memory"); out.text("{\n    ")
        out.key("reserved"); out.decimal(st.reserved); out.text(", ")
        out.key("resident"); out.decimal(st.resident); out.text(", ")
        out.key("used"); out.decimal(st.used); out.text(", ")
        out.key("cached"); out.decimal(st.cached); out.text(", ")
        out.key("free"); out.decimal(st.free); out.text(", ")
        out.key("metadata"); out.decimal(st.metadata); out.text(", ")
        out.key("slab_spare"); out.decimal(st.slab_spare); out.text(",\n    ")
        out.key("usage"); out.fixed(st.usage, digits: 4); out.text(", ")
        out.key("requested"); out.decimal(st.requested); out.text(", ")
        out.key("requested_total"); out.decimal(st.requested_total); out.text(", ")
        out.key("allocated_total"); out.decimal(st.allocated_total); out.text(",\n    ")
        out.key("internal_fragmentation"); out.fixed(st.internal_fragmentation, digits: 4); out.text(", ")
        out.key("largest_free_block"); out.decimal(st.largest_free_block); out.text(", ")
        out.key("external_fragmentation"); out.fixed(st.external_fragmentation, digits: 4); out.text(",\n    ")
        out.key("peak_used"); out.decimal(st.peak_used); out.text(", ")
        out.key("live_allocations"); out.decimal(st.live_allocations); out.text(", ")
        out.key("peak_live_allocations"); out.decimal(st.peak_live_allocations); out.text(",\n    ")
        out.key("held"); out.decimal(st.held); out.text("\n  },\n  ")

        out.key("calls"); out.text("{")
        for entry in 0..<Entry.count {
            out.text(entry == 0 ? " " : ", ")
            out.key(Entry(rawValue: entry).unsafelyUnwrapped.name)
            out.decimal(calls[entry])
        }
        out.text(" },\n  ")
        out.key("failures"); out.text("{")
        var first = true
        for entry in 0..<Entry.count where Entry(rawValue: entry).unsafelyUnwrapped.allocates {
            out.text(first ? " " : ", ")
            first = false
            out.key(Entry(rawValue: entry).unsafelyUnwrapped.name)
            out.decimal(failures[entry])
        }
        out.text(" },\n  ")
        out.key("errors"); out.text("{ ")
        out.key("invalid_pointer"); out.decimal(st.invalid_pointers); out.text(", ")
        out.key("double_free"); out.decimal(st.double_frees); out.text(", ")
        out.key("use_after_free"); out.decimal(st.use_after_frees); out.text(", ")
        out.key("wrong_size"); out.decimal(st.wrong_sizes); out.text(" },\n  ")
        out.key("system"); out.text("{ ")
        out.key("calls"); out.decimal(st.system_calls); out.text(", ")
        out.key("bytes"); out.decimal(st.system_bytes); out.text(", ")
        out.key("reentrant"); out.decimal(st.reentrant_calls); out.text(" },\n  ")
        out.key("oversize"); out.text("{ ")
        out.key("blocks"); out.decimal(st.oversize_blocks); out.text(", ")
        out.key("bytes"); out.decimal(st.oversize_bytes); out.text(", ")
        out.key("peak_blocks"); out.decimal(st.oversize_peak_blocks); out.text(", ")
        out.key("peak_bytes"); out.decimal(st.oversize_peak_bytes); out.text(" },\n  ")
        out.key("segments"); out.text("{ ")
        out.key("count"); out.decimal(st.segments); out.text(", ")
        out.key("added"); out.decimal(st.segments_added); out.text(", ")
        out.key("released"); out.decimal(st.segments_released); out.text(", ")
        out.key("released_bytes"); out.decimal(st.released_bytes); out.text(", ")
        out.key("realloc_in_place"); out.decimal(st.realloc_in_place); out.text(" },\n  ")

        out.key("orders"); out.text("[")
        for order in 0..<Int(st.order_count) {
            let o = orders[order]
            out.text(order == 0 ? "\n    { " : ",\n    { ")
            out.key("order"); out.decimal(order); out.text(", ")
            out.key("block_size"); out.decimal(o.block_size); out.text(", ")
            out.key("live"); out.decimal(o.live); out.text(", ")
            out.key("free"); out.decimal(o.free); out.text(", ")
            out.key("cached"); out.decimal(o.cached); out.text(", ")
            out.key("allocations"); out.decimal(o.allocations); out.text(", ")
            out.key("frees"); out.decimal(o.frees); out.text(", ")
            out.key("splits"); out.decimal(o.splits); out.text(", ")
            out.key("coalesces"); out.decimal(o.coalesces); out.text(" }")
        }
        out.text("\n  ],\n  ")

        out.key("slab_classes"); out.text("[")
        let slabs = statsSlabs(s)
        for c in 0..<Int(st.slab_class_count) {
            let k = slabs[c]
            out.text(c == 0 ? "\n    { " : ",\n    { ")
            out.key("class"); out.decimal(c); out.text(", ")
            out.key("object_size"); out.decimal(k.object_size); out.text(", ")
            out.key("slab_size"); out.decimal(k.slab_size); out.text(", ")
            out.key("slabs"); out.decimal(k.slabs); out.text(", ")
            out.key("live"); out.decimal(k.live); out.text(", ")
            out.key("free"); out.decimal(k.free); out.text(", ")
            out.key("cached"); out.decimal(k.cached); out.text(", ")
            out.key("allocations"); out.decimal(k.allocations); out.text(", ")
            out.key("frees"); out.decimal(k.frees); out.text(" }")
        }
        out.text(st.slab_class_count == 0 ? "],\n  " : "\n  ],\n  ")

        out.key("sizes"); out.text("[")
        let sizes = statsSizes(s)
        first = true
        for b in 0..<63 where sizes[b] != 0 {
            out.text(first ? " " : ", ")
            first = false
            out.text("{ "); out.key("upto"); out.decimal(UInt64(1) << UInt64(b))
            out.text(", "); out.key("count"); out.decimal(sizes[b]); out.text(" }")
        }
        out.text(first ? "],\n  " : " ],\n  ")
        out.key("alignments"); out.text("[")
        let alignments = statsAlignments(s)
        first = true
        for b in 0..<63 where alignments[b] != 0 {
            out.text(first ? " " : ", ")
            first = false
            out.text("{ "); out.key("alignment"); out.decimal(UInt64(1) << UInt64(b))
            out.text(", "); out.key("count"); out.decimal(alignments[b]); out.text(" }")
        }
        out.text(first ? "],\n  " : " ],\n  ")

        out.key("latency"); out.text("{ ")
        out.key("mode")
        switch Int32(bitPattern: st.latency_mode) {
        case Int32(BUDDY_LATENCY_OFF.rawValue): out.jsonString("off")
        case Int32(BUDDY_LATENCY_EXACT.rawValue): out.jsonString("exact")
        default: out.jsonString("sampled")
        }
        out.text(", ")
        out.key("sample_period"); out.decimal(UInt64(st.latency_period)); out.text(", ")
        out.key("alloc_avg_ns"); out.fixed(st.alloc_samples > 0 ? Double(st.alloc_total_ns) / Double(st.alloc_samples) : 0, digits: 1); out.text(", ")
        out.key("alloc_max_ns"); out.decimal(st.alloc_max_ns); out.text(", ")
        out.key("free_avg_ns"); out.fixed(st.free_samples > 0 ? Double(st.free_total_ns) / Double(st.free_samples) : 0, digits: 1); out.text(", ")
        out.key("free_max_ns"); out.decimal(st.free_max_ns); out.text(", ")
        out.key("samples"); out.decimal(st.alloc_samples &+ st.free_samples); out.text(", ")
        out.key("alloc_samples"); out.decimal(st.alloc_samples); out.text(", ")
        out.key("free_samples"); out.decimal(st.free_samples); out.text(" },\n  ")

        out.key("health"); out.text("{ ")
        let health = Health(s)
        out.key("status")
        switch health.status {
        case Health.critical: out.jsonString("CRITICAL")
        case Health.warning: out.jsonString("WARNING")
        default: out.jsonString("HEALTHY")
        }
        out.text(", ")
        out.key("message")
        // The message holds no quote, backslash or control character: no escaping needed.
        out.byte(34)
        writeHealthMessage(s, health, to: &out)
        out.byte(34)
        out.text(" },\n  ")

        out.key("profile")
        if context.processPool { AllocationProfile.writeJSON(to: &out) } else { out.text("{ \"sample_bytes\": 0, \"sites\": [] }") }
        out.text(",\n  ")
        out.key("bad_pointers")
        if context.processPool { BadPointerLog.writeJSON(to: &out) } else { out.text("[]") }
        out.text("\n}\n")
    }
}
