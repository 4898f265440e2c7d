#if !BUDDY_ONE_MODULE
import BuddyEngine
#endif
import CBuddySupport

// The report: one writer, two formats (README, "The report"; the JSON schema is
// docs/report-format.md, version 1). Both are written from a snapshot (struct
// buddy_stats, Stats+Snapshot.swift) into a TextBuffer that flushes to the descriptor with
// write(2) whenever it fills. Nothing here allocates or takes a lock, so the writer may run in a
// signal handler.

/// Why a report is written (the JSON "reason").
enum ReportReason {
    case exit, signal, interval, api

    /// Not inlined: where the optimizer hoists a jump table's base away from its jump,
    /// tools/check-malloc-path.py cannot recognise the table.
    var name: StaticString {
        @inline(never) get {
            switch self {
            case .exit: return "exit"
            case .signal: return "signal"
            case .interval: return "interval"
            case .api: return "api"
            }
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
            render(stats, context, pid: Int(buddy_os_getpid()), ppid: Int(buddy_report_parent()), program: program, to: &sink)
        }
        sink.flush()
    }

    /// The report of `stats` as process `pid` running `program` (NUL-terminated) writes it.
    static func render(_ stats: UnsafeMutablePointer<buddy_stats>, _ context: ReportContext, pid: Int, ppid: Int, program: UnsafePointer<UInt8>,
                       to sink: inout TextBuffer) {
        var figures = ReportFigures(stats, context, pid: pid, ppid: ppid, program: program)
        withUnsafePointer(to: &figures) { f in
            var writer = ReportWriter(out: sink, json: context.format == Int32(BUDDY_REPORT_JSON.rawValue), stats: stats, figures: f)
            if writer.json {
                writer.out.append("{\n  \"format\": \"buddymalloc-report\",\n  \"version\": 1")
                writer.first = false
                writer.walk(.report)
                writer.out.append("\n}\n")
            } else {
                writer.writeText(.report)
            }
            sink = writer.out
        }
    }
}

/// What the report shows besides the snapshot: who writes it, and the figures derived from the
/// snapshot (the field list reads them as it reads struct buddy_stats).
struct ReportFigures {
    var pid: UInt64
    /// The parent when the pool was created (or the process forked): buddy-report's process trees.
    var ppid: UInt64
    var sequence: UInt64
    var reason: StaticString
    /// "process" or "private".
    var pool: StaticString
    var processPool: Bool
    var program: UnsafePointer<UInt8>
    var health: Health
    var status: UInt32
    /// Seconds since the pool was last used.
    var idle: Double
    /// The text's sums: blocks and slab objects handed out and freed, failed calls, splits and
    /// coalesces over the orders.
    var allocations: UInt64 = 0
    var frees: UInt64 = 0
    var failed: UInt64 = 0
    var splits: UInt64 = 0
    var coalesces: UInt64 = 0
    /// JSON's latency: the averages, and the samples of both kinds.
    var allocAverageNs: Double
    var freeAverageNs: Double
    var samples: UInt64
    /// The process's resident bytes that none of the allocator's parts holds (its code, stacks,
    /// libraries, glibc's heap): process - (segments + metadata + oversize + retained), 0 when
    /// the process's figure is unknown or races below the parts.
    var outside: UInt64

    init(_ s: UnsafeMutablePointer<buddy_stats>, _ context: ReportContext, pid: Int, ppid: Int, program: UnsafePointer<UInt8>) {
        self.pid = UInt64(pid)
        self.ppid = UInt64(max(0, ppid))
        sequence = context.sequence
        reason = context.reason.name
        processPool = context.processPool
        pool = context.processPool ? "process" : "private"
        self.program = program
        health = Health(s)
        status = UInt32(health.status)
        idle = max(0, s.pointee.now - s.pointee.last_activity)
        let orders = statsOrders(s), slabs = statsSlabs(s), failures = statsFailures(s)
        for order in 0..<Int(s.pointee.order_count) {
            allocations &+= orders[order].allocations
            frees &+= orders[order].frees
            splits &+= orders[order].splits
            coalesces &+= orders[order].coalesces
        }
        for i in 0..<SlabStatsView.servedCount(s) {
            let c = SlabStatsView.served(s, i)
            allocations &+= slabs[c].allocations
            frees &+= slabs[c].frees
        }
        for entry in 0..<Entry.count { failed &+= failures[entry] }
        let st = UnsafePointer(s)
        allocAverageNs = st.pointee.alloc_samples > 0 ? Double(st.pointee.alloc_total_ns) / Double(st.pointee.alloc_samples) : 0
        freeAverageNs = st.pointee.free_samples > 0 ? Double(st.pointee.free_total_ns) / Double(st.pointee.free_samples) : 0
        samples = st.pointee.alloc_samples &+ st.pointee.free_samples
        let parts = st.pointee.resident &+ st.pointee.resident_metadata &+ st.pointee.resident_oversize &+ st.pointee.resident_retained
        outside = st.pointee.process_resident > parts ? st.pointee.process_resident &- parts : 0
    }
}
