internal import BuddyEngine
internal import BuddyMallocCore
#if canImport(Glibc)
import Glibc
#endif

// Statistics: each property is one snapshot, taken under the pool lock in one hold (so its
// figures agree with each other); two properties read one after the other may see calls in
// between. Counters run from the pool's creation or the last `resetStats()`; memory figures are
// always current.

extension MemoryPool {
    /// Free blocks of one size (the pool's `/proc/buddyinfo` row, one entry per order).
    public struct FreeBlocks: Sendable, Equatable {
        public var blockSize: Int
        public var count: Int
    }

    /// The pool at a glance. C++: `class PoolStats` (section 3.4), `get_stats()`.
    public struct Stats: Sendable, Equatable {
        /// Bytes in the pool's segments. C++: `get_total_memory()`.
        public var totalBytes: Int
        /// Bytes in allocated blocks (whole blocks: a 100-byte request holds 128). C++: `get_used_memory()`.
        public var usedBytes: Int
        /// `totalBytes - usedBytes`. C++: `get_free_memory()`.
        public var freeBytes: Int
        /// The most bytes allocated at once. C++: `get_peak_memory_usage()`.
        public var peakUsedBytes: Int
        /// Segments the pool has mapped now.
        public var segmentCount: Int
        /// Blocks allocated. C++: `get_allocation_count()`.
        public var allocationCount: UInt64
        /// Blocks freed. C++: `get_deallocation_count()`.
        public var deallocationCount: UInt64
        /// Blocks split in two, and buddies merged, by the engine.
        public var splits: UInt64
        public var coalesces: UInt64
        /// Free blocks, all sizes (a segment's untouched tail counts as largest blocks).
        /// C++: `get_fragment_count()`.
        public var fragmentCount: Int
        /// The largest block available without growing the pool.
        public var largestFreeBlock: Int
        /// Free blocks per block size, smallest first. C++: `get_block_size_distribution()`.
        public var freeBlocks: [FreeBlocks]
        /// Time since the pool was created. C++: `get_uptime()`.
        public var uptime: Duration
        /// `usedBytes / totalBytes`, in percent. C++: `get_memory_usage()`.
        public var usagePercent: Double
        /// External fragmentation, in percent: `1 - largestFreeBlock / min(freeBytes, maxBlockSize)`
        /// (0 when nothing is free): how far the free memory is from one usable block.
        /// C++: `get_fragmentation_rate()`.
        public var fragmentationPercent: Double
    }

    /// C++: `struct MemoryUsage`, `get_memory_usage()`.
    public struct MemoryUsage: Sendable, Equatable {
        public var totalBytes: Int
        public var usedBytes: Int
        public var freeBytes: Int
        public var usagePercent: Double
    }

    /// Counts are always kept; times only with `Configuration.measuresTiming` (else 0): each
    /// call timed with CLOCK_MONOTONIC from entry to return, the wait for the lock included.
    /// Failed calls are not timed. C++: `struct PerformanceMetrics`, `get_performance_metrics()`.
    public struct PerformanceMetrics: Sendable, Equatable {
        public var allocationCount: UInt64
        public var deallocationCount: UInt64
        /// Whether the times below were measured.
        public var isTimed: Bool
        public var averageAllocationNanoseconds: Double
        public var maxAllocationNanoseconds: UInt64
        public var averageDeallocationNanoseconds: Double
        public var maxDeallocationNanoseconds: UInt64
    }

    /// C++: `struct ErrorStats`, `get_error_stats()`.
    public struct ErrorStats: Sendable, Equatable {
        /// Allocations that failed: `outOfMemory + poolFull + invalidAlignment`.
        public var allocationFailures: UInt64
        /// Deallocations refused: every invalid pointer, double frees included.
        public var deallocationFailures: UInt64
        /// C++: `invalid_pointer_errors` (equal to `deallocationFailures` here).
        public var invalidPointerErrors: UInt64
        /// Of those, frees of a block already free.
        public var doubleFrees: UInt64
        public var outOfMemoryErrors: UInt64
        public var poolFullErrors: UInt64
        public var invalidAlignmentErrors: UInt64
        /// Failed / attempted allocations, in percent.
        public var allocationFailurePercent: Double
        /// Failed / attempted deallocations, in percent.
        public var deallocationFailurePercent: Double
    }

    /// C++: `enum class HealthStatus`.
    public enum HealthStatus: Sendable, Equatable, Comparable {
        case healthy, warning, critical
    }

    /// A verdict on the pool, with the figures behind it: the library's one health policy
    /// (BuddyEngine's HealthPolicy, the README's "Health" table), so the report of the same pool
    /// (`detailedReport()`) gives the same status. The worst of:
    ///
    /// - critical: the pool's structure fails its invariant check (a bug, or a write past the
    ///   end of a block); a bad pointer was deallocated; 1% or more of the allocations failed;
    ///   external fragmentation is 90% or more (see below); a pool with `maxSize` is 98% full;
    /// - warning: an allocation failed; external fragmentation is 50% or more, while at least
    ///   max(4 x maxBlockSize, totalBytes / 4) is free; a pool with `maxSize` is 90% full;
    ///   less than 10% of a pool of 64 MiB or more is used;
    /// - healthy otherwise.
    ///
    /// It walks every free list and order map (the invariant check): O(pool size).
    /// C++: `struct HealthReport`, `get_health_report()`.
    public struct HealthReport: Sendable, Equatable {
        public var status: HealthStatus
        /// The findings, worst first, each with what to do.
        public var message: String
        public var fragmentationPercent: Double
        /// Used bytes over `maxSize` for a limited pool, else over the segments' bytes, in percent.
        public var usagePercent: Double
        /// Failed over attempted calls, in percent.
        public var errorPercent: Double
        /// The first broken invariant, when the structure check failed.
        public var brokenInvariant: String?
    }

    /// A snapshot of the pool. C++: `PoolStats get_stats() const`.
    public var stats: Stats {
        let snapshot = takeSnapshot(checkingInvariants: false)
        return snapshot.stats(uptime: ContinuousClock.now - created)
    }

    /// C++: `MemoryUsage get_memory_usage() const`.
    public var memoryUsage: MemoryUsage {
        let s = stats
        return MemoryUsage(totalBytes: s.totalBytes, usedBytes: s.usedBytes, freeBytes: s.freeBytes,
                           usagePercent: s.usagePercent)
    }

    /// C++: `PerformanceMetrics get_performance_metrics() const`.
    public var performanceMetrics: PerformanceMetrics {
        let locked = engine.lock()
        let counters = engine.counters
        engine.unlock(locked)
        func average(_ total: UInt64, _ count: UInt64) -> Double { count == 0 ? 0 : Double(total) / Double(count) }
        return PerformanceMetrics(
            allocationCount: counters.allocations, deallocationCount: counters.frees,
            isTimed: configuration.measuresTiming,
            averageAllocationNanoseconds: average(tally.allocationNanoseconds.load(ordering: .relaxed),
                                                  tally.timedAllocations.load(ordering: .relaxed)),
            maxAllocationNanoseconds: tally.maxAllocationNanoseconds.load(ordering: .relaxed),
            averageDeallocationNanoseconds: average(tally.deallocationNanoseconds.load(ordering: .relaxed),
                                                    tally.timedDeallocations.load(ordering: .relaxed)),
            maxDeallocationNanoseconds: tally.maxDeallocationNanoseconds.load(ordering: .relaxed))
    }

    /// C++: `ErrorStats get_error_stats() const`.
    public var errorStats: ErrorStats {
        let locked = engine.lock()
        let counters = engine.counters
        engine.unlock(locked)
        return errorStats(counters)
    }

    private func errorStats(_ counters: PoolCounters) -> ErrorStats {
        let oom = tally.outOfMemory.load(ordering: .relaxed)
        let full = tally.poolFull.load(ordering: .relaxed)
        let alignment = tally.invalidAlignment.load(ordering: .relaxed)
        let invalid = tally.invalidPointer.load(ordering: .relaxed)
        let allocationFailures = oom &+ full &+ alignment
        func percent(_ part: UInt64, _ whole: UInt64) -> Double { whole == 0 ? 0 : 100 * Double(part) / Double(whole) }
        return ErrorStats(
            allocationFailures: allocationFailures, deallocationFailures: invalid, invalidPointerErrors: invalid,
            doubleFrees: tally.doubleFrees.load(ordering: .relaxed), outOfMemoryErrors: oom, poolFullErrors: full,
            invalidAlignmentErrors: alignment,
            allocationFailurePercent: percent(allocationFailures, counters.allocations &+ allocationFailures),
            deallocationFailurePercent: percent(invalid, counters.frees &+ invalid))
    }

    /// C++: `HealthReport get_health_report() const`.
    public var healthReport: HealthReport {
        let snapshot = takeSnapshot(checkingInvariants: true)
        let stats = snapshot.stats(uptime: ContinuousClock.now - created)
        let errors = errorStats(snapshot.counters)
        let failures = errors.allocationFailures &+ errors.deallocationFailures
        let calls = stats.allocationCount &+ stats.deallocationCount &+ failures
        let errorPercent = calls == 0 ? 0 : 100 * Double(failures) / Double(calls)
        let verdict = HealthPolicy.evaluate(snapshot.health)
        let usagePercent = snapshot.health.maxPoolSize > 0 ? 100 * verdict.limitUse : stats.usagePercent
        // Each finding: the policy's meaning of the rule that fired, then the figures and what to do.
        var findings: [(level: HealthLevel, text: String)] = []
        func note(_ check: HealthCheck, _ level: HealthLevel, _ detail: String) {
            guard level.rawValue > HealthLevel.healthy.rawValue, let rule = HealthPolicy.rule(check, level) else { return }
            findings.append((level, "\(rule.meaning)\(detail)"))
        }
        note(.structure, verdict.structure, " (\(snapshot.brokenInvariant ?? "")): a block was written past its end, or freed behind the pool's back; stop using the pool")
        note(.badPointers, verdict.badPointers, " (\(snapshot.health.badPointers) invalid pointers or double frees): deallocate only pointers this pool returned, once each; see errorStats")
        note(.limit, verdict.limit, " (\(Int(usagePercent))% of maxSize in use): raise maxSize or free blocks"
             + (verdict.limit == .critical ? ", or allocations fail with POOL_FULL" : ""))
        note(.fragmentation, verdict.fragmentation, " (\(Int(stats.fragmentationPercent))%): the largest free block is \(stats.largestFreeBlock) bytes; free neighbouring blocks, or reset() between phases")
        note(.failedCalls, verdict.failedCalls, " (\(snapshot.counters.failedAllocations) failed, \(snapshot.counters.allocations) succeeded): see errorStats")
        note(.idle, verdict.idle, " (usage \(Int(stats.usagePercent))%): the pool keeps a segment while any block lives in it; reset() between phases, or a smaller pool")
        let status: HealthStatus = verdict.status == .critical ? .critical : verdict.status == .warning ? .warning : .healthy
        let summary = "\(stats.usedBytes) of \(stats.totalBytes) bytes used in \(stats.segmentCount) segments, fragmentation \(Int(stats.fragmentationPercent))%"
        let worstFirst = findings.enumerated().sorted { ($0.element.level.rawValue, -$0.offset) > ($1.element.level.rawValue, -$1.offset) }
        let message = findings.isEmpty ? "healthy: \(summary)" : worstFirst.map(\.element.text).joined(separator: "; ") + " (\(summary))"
        return HealthReport(status: status, message: message, fragmentationPercent: stats.fragmentationPercent,
                            usagePercent: usagePercent, errorPercent: errorPercent,
                            brokenInvariant: snapshot.brokenInvariant)
    }

    /// The pool's report in text: the same writer as libBuddyMalloc's exit report (BUDDY_REPORT),
    /// followed by this pool's error counts and, when measured, its call times.
    /// C++: `std::string get_detailed_report() const`.
    public func detailedReport() -> String { detailedReport(format: .text) }

    /// The pool's report as `format`: `.text` (as `detailedReport()`), or `.json`, the versioned
    /// document of the process report (the README's "The report"), which `buddy-report` reads.
    public func detailedReport(format: ReportFormat) -> String {
        var text = ""
        if let file = tmpfile() {
            let fd = fileno(file)
            engine.writeReport(to: fd, json: format == .json)
            lseek(fd, 0, SEEK_SET)
            var buffer = [UInt8](repeating: 0, count: 4096)
            var bytes: [UInt8] = []
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                bytes.append(contentsOf: buffer[0..<n])
            }
            fclose(file)
            text = String(decoding: bytes, as: UTF8.self)
        }
        if format == .json { return text }
        let errors = errorStats
        text += "  pool errors out of memory \(errors.outOfMemoryErrors), pool full \(errors.poolFullErrors), invalid alignment \(errors.invalidAlignmentErrors), invalid pointers \(errors.invalidPointerErrors) (double frees \(errors.doubleFrees))\n"
        let metrics = performanceMetrics
        if metrics.isTimed {
            text += "  pool times  allocate avg \(Int(metrics.averageAllocationNanoseconds)) ns, max \(metrics.maxAllocationNanoseconds) ns; deallocate avg \(Int(metrics.averageDeallocationNanoseconds)) ns, max \(metrics.maxDeallocationNanoseconds) ns\n"
        } else {
            text += "  pool times  not measured (Configuration.measuresTiming)\n"
        }
        return text
    }

    /// Zeroes the counters (calls, errors, times); the peak restarts at the bytes used now.
    /// Calls running at the same time may land on either side. C++: `void reset_stats()`.
    public func resetStats() {
        let locked = engine.lock()
        engine.resetCounters()
        tally.reset()
        engine.unlock(locked)
    }

    // MARK: Snapshot

    /// The pool's figures in one lock hold, each from its one definition in the engine
    /// (BuddyEngine/Figures.swift, Health.swift).
    struct Snapshot {
        var usage: PoolUsage
        var counters: PoolCounters
        /// Free blocks per order, the untouched tails as top-order blocks.
        var freeCounts: [Int]
        var largestFreeBlock: Int
        var health: HealthFigures
        var brokenInvariant: String?
        var minBlock: Int
        var maxBlock: Int

        func stats(uptime: Duration) -> Stats {
            let freeBlocks = freeCounts.enumerated().map { FreeBlocks(blockSize: minBlock << $0.offset, count: $0.element) }
            return Stats(
                totalBytes: usage.segmentBytes, usedBytes: usage.allocatedBytes, freeBytes: usage.freeBytes,
                peakUsedBytes: Int(counters.peakAllocatedBytes), segmentCount: usage.segmentCount,
                allocationCount: counters.allocations, deallocationCount: counters.frees,
                splits: counters.splits, coalesces: counters.coalesces,
                fragmentCount: freeCounts.reduce(0, +), largestFreeBlock: largestFreeBlock,
                freeBlocks: freeBlocks, uptime: uptime,
                usagePercent: 100 * Figures.usage(used: UInt64(usage.allocatedBytes), reserved: UInt64(usage.segmentBytes)),
                fragmentationPercent: 100 * Figures.externalFragmentation(
                    largestFree: UInt64(largestFreeBlock), free: UInt64(usage.freeBytes), maxBlock: UInt64(maxBlock)))
        }
    }

    func takeSnapshot(checkingInvariants: Bool) -> Snapshot {
        var freeCounts = [Int](repeating: 0, count: geometry.maxOrder + 1)
        let locked = engine.lock()
        for order in 0...geometry.maxOrder { freeCounts[order] = engine.freeBlockCountWithTails(order: order) }
        let broken = checkingInvariants ? engine.checkInvariants() : nil
        let snapshot = Snapshot(usage: engine.usage, counters: engine.counters, freeCounts: freeCounts,
                                largestFreeBlock: engine.largestFreeBlock,
                                health: engine.healthFigures(structureBroken: broken != nil),
                                brokenInvariant: broken.map { "\($0)" },
                                minBlock: geometry.minBlock, maxBlock: geometry.maxBlock)
        engine.unlock(locked)
        return snapshot
    }
}

/// The formats of `MemoryPool.detailedReport(format:)`.
public enum ReportFormat: Sendable {
    /// Tables for people.
    case text
    /// The versioned JSON report (`"format": "buddymalloc-report"`).
    case json
}
