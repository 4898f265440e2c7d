#if !BUDDY_ONE_MODULE
import BuddyEngine
#endif
import CBuddySupport

// A snapshot of a pool's statistics in the public layout (struct buddy_stats, buddy_stats.h).
//
// Snapshot semantics: the pool's own figures (segments, free areas, thread-cache registry,
// engine counters) are read under the pool lock, so they are consistent with each other; the
// per-thread counters are read without stopping their threads (each value is exact, the sum
// may be a few calls behind a thread that runs meanwhile). Residency (mincore) is measured
// under the lock. Nothing here allocates.

/// How a snapshot may take the pool lock.
enum SnapshotLocking {
    /// Wait for it (a thread that holds no allocator lock: depth 0, not a signal handler).
    case wait
    /// Only try it (a signal handler, or a thread inside the allocator): never waits.
    case attempt
}

// Views of the C arrays inside struct buddy_stats (imported as tuples).
@inline(__always) func statsOrders(_ s: UnsafeMutablePointer<buddy_stats>) -> UnsafeMutablePointer<buddy_order_stats> {
    withUnsafeMutableBytes(of: &s.pointee.orders) { $0.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: buddy_order_stats.self) }
}
@inline(__always) func statsSlabs(_ s: UnsafeMutablePointer<buddy_stats>) -> SlabStatsView {
    SlabStatsView(
        large: withUnsafeMutableBytes(of: &s.pointee.slab_classes) { $0.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: buddy_slab_stats.self) },
        small: withUnsafeMutableBytes(of: &s.pointee.small_slab_classes) { $0.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: buddy_slab_stats.self) })
}

/// Slab class c's record: the classes from 1 KiB up in `slab_classes`, those under 1 KiB
/// (SlabClass.largeCount ...) in `small_slab_classes`, appended to the layout after it.
struct SlabStatsView {
    let large: UnsafeMutablePointer<buddy_slab_stats>
    let small: UnsafeMutablePointer<buddy_slab_stats>
    @inline(__always) func record(_ c: Int) -> UnsafeMutablePointer<buddy_slab_stats> {
        c < SlabClass.largeCount ? large + c : small + (c &- SlabClass.largeCount)
    }
    /// The classes a snapshot's pool serves, in size order: largeCount ..< largeCount +
    /// small_slab_class_count, then 0 ..< slab_class_count.
    /// (The counts are clamped to the arrays: a snapshot is also rendered from figures the
    /// library did not write, in tests.)
    static func servedCount(_ s: UnsafePointer<buddy_stats>) -> Int {
        min(Int(s.pointee.slab_class_count), SlabClass.largeCount) &+ smallCount(s)
    }
    /// The i-th of them.
    static func served(_ s: UnsafePointer<buddy_stats>, _ i: Int) -> Int {
        let small = smallCount(s)
        return i < small ? SlabClass.largeCount &+ i : i &- small
    }
    private static func smallCount(_ s: UnsafePointer<buddy_stats>) -> Int {
        min(Int(s.pointee.small_slab_class_count), SlabClass.smallCount)
    }
    subscript(c: Int) -> buddy_slab_stats {
        get { record(c).pointee }
        nonmutating set { record(c).pointee = newValue }
    }
}
@inline(__always) func statsCalls(_ s: UnsafeMutablePointer<buddy_stats>) -> UnsafeMutablePointer<UInt64> {
    withUnsafeMutableBytes(of: &s.pointee.calls) { $0.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: UInt64.self) }
}
@inline(__always) func statsFailures(_ s: UnsafeMutablePointer<buddy_stats>) -> UnsafeMutablePointer<UInt64> {
    withUnsafeMutableBytes(of: &s.pointee.failures) { $0.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: UInt64.self) }
}
@inline(__always) func statsSizes(_ s: UnsafeMutablePointer<buddy_stats>) -> UnsafeMutablePointer<UInt64> {
    withUnsafeMutableBytes(of: &s.pointee.sizes) { $0.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: UInt64.self) }
}
@inline(__always) func statsAlignments(_ s: UnsafeMutablePointer<buddy_stats>) -> UnsafeMutablePointer<UInt64> {
    withUnsafeMutableBytes(of: &s.pointee.alignments) { $0.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: UInt64.self) }
}

extension BuddyEngine {
    /// Fills `out` (all of it) with a snapshot of this pool. Returns false, having written
    /// nothing but zeros, when `locking` is `.attempt` and the lock is busy.
    func snapshot(into out: UnsafeMutablePointer<buddy_stats>, locking: SnapshotLocking) -> Bool {
        UnsafeMutableRawPointer(out).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<buddy_stats>.size)
        let locked: Bool
        switch locking {
        case .wait: locked = lock()
        case .attempt:
            let attempt = tryLock()
            if !attempt.ok { return false }
            locked = attempt.locked
        }
        let geometry = self.geometry
        let maxOrder = geometry.maxOrder
        let orders = statsOrders(out)
        let slabs = statsSlabs(out)
        let s = state
        let firstCode = s.pointee.slabFirstCode

        // Segments: sizes, free areas, the largest free block, residency, metadata.
        let largest = UInt64(largestFreeBlock)
        var residency = self.residency()
        var metadata = UInt64(s.pointee.stateBytes)
        if s.pointee.slabClasses != nil { metadata &+= UInt64(SlabClass.stateBytes(page: buddy_os_page_recorded())) }
        var segment = s.pointee.segments
        while let current = segment {
            for order in 0...maxOrder {
                orders[order].free &+= UInt64(current.pointee.freeAreas[order].count)
            }
            metadata &+= UInt64(current.pointee.orderMapBytes)
            segment = current.pointee.next
        }
        // A segment's untouched tail is free top-order blocks, not carved yet.
        orders[maxOrder].free &+= UInt64(uncarvedTopBlocks)

        // Thread caches: their blocks per order, their descriptors, their threads' counters.
        // (A private pool has no process state: no caches, and one engine call per call.)
        let process = processIfAny
        var calls = CallCounters()
        var hasCaches = false
        if let process {
            calls = process.pointee.retiredCacheCalls
            withUnsafePointer(to: &process.pointee.directCalls) { calls.add($0) }
            hasCaches = process.pointee.cachesEnabled || process.pointee.caches != nil
        }
        var cachedBytes: UInt64 = 0
        var cache = process?.pointee.caches
        while let current = cache {
            for bin in 0..<current.totalBins {
                let count = UInt64(max(0, (current.bins + bin).pointee.count)) &+ UInt64(max(0, (current.bins + bin).pointee.spareCount))
                let code = current.code(ofBin: bin)
                if code <= maxOrder { orders[code].cached &+= count } else { slabs[code &- firstCode].cached &+= count }
                cachedBytes &+= count &* UInt64(size(ofCode: code))
            }
            let descriptor = MemoryLayout<ThreadCache>.stride &+ current.totalBins &* MemoryLayout<CacheBin>.stride
            let descriptorBlock = geometry.size(ofOrder: geometry.order(forSize: descriptor))
            cachedBytes &+= UInt64(descriptorBlock)
            // The descriptor's block is tagged used: its resident bytes are the cache's.
            if current.pointee.mappedBytes == 0 {
                let bytes = residentBytes(UInt(bitPattern: current), count: UInt(descriptorBlock))
                residency.used &-= min(bytes, residency.used)
                residency.cached &+= bytes
            }
            withUnsafePointer(to: &current.pointee.calls) { calls.add($0) }
            cache = current.pointee.next
        }
        // The depot's batches (Depot.swift): cached too, between two threads' bins.
        if let process, let depot = process.pointee.depot {
            metadata &+= UInt64(process.pointee.depotMappedBytes)
            residency.metadata &+= buddy_os_resident_bytes(depot, process.pointee.depotMappedBytes)
            for bin in 0..<binsPerCache {
                let count = UInt64(depotBlocks(bin: bin))
                if count == 0 { continue }
                let code = codeOfBin(bin)
                if code <= maxOrder { orders[code].cached &+= count } else { slabs[code &- firstCode].cached &+= count }
                cachedBytes &+= count &* UInt64(size(ofCode: code))
            }
        }

        out.pointee.pool_lock_acquisitions = buddy_lock_acquisitions(&s.pointee.lock)
        out.pointee.pool_lock_contended = buddy_lock_contended(&s.pointee.lock)
        let depot = depotTotals()
        out.pointee.depot_puts = depot.puts
        out.pointee.depot_takes = depot.takes
        out.pointee.depot_full = depot.full
        out.pointee.depot_lock_contended = depot.contended
        out.pointee.depot_bytes = depot.bytes

        let counters = s.pointee.counters
        out.pointee.reserved = UInt64(s.pointee.segmentBytes)
        // A slab's spare bytes are allocated to the pool but free to the program: counted as free.
        let spare = UInt64(s.pointee.slabSpareBytes)
        out.pointee.slab_spare = spare
        out.pointee.free = UInt64(s.pointee.freeBytes) &+ spare
        let allocatedBytes = UInt64(s.pointee.allocatedBytes) &- spare
        out.pointee.segments = UInt64(s.pointee.segmentCount)
        for order in 0...maxOrder {
            orders[order].splits = s.pointee.stats.splits[order]
            orders[order].coalesces = s.pointee.stats.coalesces[order]
        }
        var live: UInt64 = 0
        if hasCaches {
            for order in 0...maxOrder {
                let blocks = calls.allocated[order] &- calls.freed[order] &+ s.pointee.stats.resizeDelta[order]
                orders[order].live = Int64(bitPattern: blocks) < 0 ? 0 : blocks
                orders[order].allocations = calls.allocated[order]
                orders[order].frees = calls.freed[order]
                live &+= orders[order].live
            }
            if let classes = s.pointee.slabClasses {
                for c in 0..<s.pointee.slabClassCount {
                    let objects = calls.allocated[firstCode &+ c] &- calls.freed[firstCode &+ c]
                    slabs[c].live = Int64(bitPattern: objects) < 0 ? 0 : objects
                    slabs[c].allocations = calls.allocated[firstCode &+ c]
                    slabs[c].frees = calls.freed[firstCode &+ c]
                    slabs[c].slabs = UInt64(classes[c].slabs)
                    slabs[c].free = UInt64(classes[c].slabs &* SlabClass.capacity(c) &- classes[c].objectsOut)
                    live &+= slabs[c].live
                }
            }
            // The peak (Stats.swift, "Live allocations and their peak"): this thread's delta is
            // folded now (its own counters: it is not inside a fast path, the depth says so);
            // the other threads run on, so each counts at its running maximum since its fold.
            if let mine = BuddyEngine.threadCounters(), mine.pointee.pool == s { foldLiveDelta(mine) }
            var candidate = Int64(bitPattern: buddy_atomic_load_u64_relaxed(&s.pointee.stats.liveAllocations))
            cache = process?.pointee.caches
            while let current = cache {
                candidate &+= Int64(current.pointee.calls.liveDeltaMaximum)
                cache = current.pointee.next
            }
            notePeakLive(candidate)
            // Never below this report's live count. (Not recorded: `live` sums counters read while
            // their threads run, each at a moment of its own, with folds in between, so it obeys
            // no bound of its own.)
            out.pointee.peak_live_allocations = max(live, buddy_atomic_load_u64_relaxed(&s.pointee.stats.peakLiveAllocations))
        } else {
            // A pool without the C layer (a private pool): its live blocks are its order maps' used
            // tags, and its peak the engine's exact count.
            live = countLiveBlocksFromOrderMaps(orders)
            out.pointee.peak_live_allocations = max(live, s.pointee.stats.peakEngineBlocks)
        }
        unlock(locked)

        // Figures outside the lock.
        let stats = s.pointee.stats
        out.pointee.version = UInt32(BUDDY_STATS_VERSION)
        out.pointee.size = UInt32(MemoryLayout<buddy_stats>.size)
        let nowNs = buddy_os_realtime_ns()
        out.pointee.created = Double(stats.createdNs) / 1e9
        out.pointee.now = Double(nowNs) / 1e9
        out.pointee.uptime = Double(nowNs &- min(nowNs, stats.createdNs)) / 1e9
        let activity = stats.lastActivityMonotonicNs &- min(stats.lastActivityMonotonicNs, stats.createdMonotonicNs)
        out.pointee.last_activity = Double(stats.createdNs &+ activity) / 1e9

        let config = s.pointee.config
        out.pointee.min_block = UInt64(config.minBlock)
        out.pointee.max_block = UInt64(config.maxBlock)
        out.pointee.initial_size = UInt64(config.initialSize)
        out.pointee.max_pool_size = UInt64(config.maxPoolSize)
        out.pointee.growth_factor = config.growthFactor
        out.pointee.thread_safety = UInt32(config.threadSafety.rawValue)
        out.pointee.on_error = UInt32(config.errorStrategy.rawValue)

        out.pointee.resident = residency.segments
        out.pointee.resident_used = residency.used
        out.pointee.resident_cached = residency.cached
        out.pointee.resident_slab_spare = residency.slabSpare
        out.pointee.resident_free = residency.free
        out.pointee.resident_metadata = residency.metadata
        out.pointee.cached = min(cachedBytes, allocatedBytes)
        out.pointee.used = allocatedBytes &- out.pointee.cached
        out.pointee.metadata = metadata
        out.pointee.live_allocations = live
        out.pointee.largest_free_block = largest
        out.pointee.peak_used = counters.peakAllocatedBytes
        var allocatedTotal: UInt64 = 0
        for order in 0...maxOrder {
            orders[order].block_size = UInt64(geometry.size(ofOrder: order))
            allocatedTotal &+= orders[order].allocations &* orders[order].block_size
        }
        if s.pointee.slabClasses != nil {
            var classes = 0
            while classes < SlabClass.largeCount && UInt(SlabClass.objectSize(classes)) <= s.pointee.slabCeiling { classes &+= 1 }
            out.pointee.slab_class_count = UInt32(classes)
            out.pointee.small_slab_class_count = UInt32(s.pointee.slabClassCount &- SlabClass.largeCount)
            for c in 0..<s.pointee.slabClassCount {
                slabs[c].object_size = UInt64(SlabClass.objectSize(c))
                slabs[c].slab_size = UInt64(SlabClass.slabBytes(c))
                allocatedTotal &+= slabs[c].allocations &* slabs[c].object_size
            }
        }
        out.pointee.requested_total = calls.requestedBytes
        out.pointee.allocated_total = allocatedTotal
        if allocatedTotal > 0 {
            let ratio = min(1.0, Double(calls.requestedBytes) / Double(allocatedTotal))
            out.pointee.internal_fragmentation = 1.0 - ratio
            out.pointee.requested = UInt64(Double(out.pointee.used) * ratio)
        }
        out.pointee.usage = Figures.usage(used: out.pointee.used, reserved: out.pointee.reserved)
        out.pointee.external_fragmentation = Figures.externalFragmentation(largestFree: largest, free: out.pointee.free,
                                                                            maxBlock: UInt64(config.maxBlock))

        // Calls by entry point: the slow paths counted theirs; malloc's and free's fast-path
        // calls are the blocks handed out and freed that no slow path counted.
        let callCounts = statsCalls(out)
        let failureCounts = statsFailures(out)
        for entry in 0..<Entry.count {
            callCounts[entry] = calls.entries[entry]
            failureCounts[entry] = calls.failures[entry]
        }
        callCounts[Entry.malloc.rawValue] &+= calls.allocated.total &- calls.slowAllocations
        callCounts[Entry.free.rawValue] &+= calls.freed.total &- calls.slowFrees
        if !hasCaches {
            // A private pool: one engine call per call.
            callCounts[Entry.malloc.rawValue] = counters.allocations
            callCounts[Entry.free.rawValue] = counters.frees
            failureCounts[Entry.malloc.rawValue] = counters.failedAllocations
        }
        out.pointee.invalid_pointers = buddy_atomic_load_u64_relaxed(&s.pointee.counters.invalidPointers)
        out.pointee.double_frees = buddy_atomic_load_u64_relaxed(&s.pointee.counters.doubleFrees)
        out.pointee.system_calls = buddy_atomic_load_u64_relaxed(&s.pointee.counters.systemCalls)
        out.pointee.system_bytes = buddy_atomic_load_u64_relaxed(&s.pointee.counters.systemBytes)
        out.pointee.reentrant_calls = buddy_atomic_load_u64_relaxed(&s.pointee.stats.reentrantCalls)
        out.pointee.use_after_frees = buddy_atomic_load_u64_relaxed(&s.pointee.stats.useAfterFrees)
        out.pointee.wrong_sizes = buddy_atomic_load_u64_relaxed(&s.pointee.stats.wrongSizes)
        // Oversize blocks are the process pool's (malloc's): private pools refuse such requests.
        if buddy_process_pool_get() == UnsafeMutableRawPointer(s) {
            out.pointee.oversize_blocks = Oversize.liveBlocks
            out.pointee.oversize_bytes = Oversize.liveBytes
            out.pointee.oversize_peak_blocks = max(Oversize.peakBlocks, out.pointee.oversize_blocks)
            out.pointee.oversize_peak_bytes = max(Oversize.peakBytes, out.pointee.oversize_bytes)
            out.pointee.oversize_retained_bytes = Oversize.retainedBytes
            // (The oversize lock is taken with no other allocator lock held: here, after unlock.)
            var mayWait = false
            if case .wait = locking { mayWait = true } // (no enum ==: generic in a debug build)
            let oversize = Oversize.residency(wait: mayWait)
            out.pointee.resident_oversize = oversize.live
            out.pointee.resident_retained = oversize.retained
            out.pointee.process_resident = buddy_os_process_resident()
        }
        out.pointee.held = out.pointee.used &+ out.pointee.oversize_bytes
        out.pointee.segments_added = counters.segmentsAdded
        out.pointee.segments_released = counters.segmentsReleased
        out.pointee.released_bytes = counters.releasedBytes
        out.pointee.realloc_in_place = counters.reallocInPlace
        out.pointee.order_count = UInt32(maxOrder &+ 1)

        // Requested sizes: the blocks handed out per order, in their buckets, plus corrections.
        let sizes = statsSizes(out)
        let alignments = statsAlignments(out)
        for b in 0..<CounterTable.count {
            sizes[b] = s.pointee.stats.sizeDelta.atomicLoad(b)
            alignments[b] = calls.alignments[b]
        }
        for order in 0...maxOrder where geometry.minShift &+ order < CounterTable.count {
            sizes[geometry.minShift &+ order] &+= orders[order].allocations
        }
        for i in 0..<SlabStatsView.servedCount(out) {
            let c = SlabStatsView.served(out, i)
            sizes[bucket(of: UInt(slabs[c].object_size))] &+= slabs[c].allocations
        }
        for b in 0..<CounterTable.count where Int64(bitPattern: sizes[b]) < 0 { sizes[b] = 0 }

        out.pointee.latency_mode = UInt32(bitPattern: stats.latencyMode)
        out.pointee.latency_period = UInt32(truncatingIfNeeded: stats.latencyPeriod)
        out.pointee.alloc_samples = calls.latency.allocSamples
        out.pointee.alloc_total_ns = calls.latency.allocTotalNs
        out.pointee.alloc_max_ns = calls.latency.allocMaxNs
        out.pointee.free_samples = calls.latency.freeSamples
        out.pointee.free_total_ns = calls.latency.freeTotalNs
        out.pointee.free_max_ns = calls.latency.freeMaxNs

        out.pointee.health = UInt32(Health(out).status)
        return true
    }

    /// Counts the used tags per order in every segment's order map (O(pool size)): the live
    /// blocks of a pool whose calls are not counted by the C layer.
    private func countLiveBlocksFromOrderMaps(_ orders: UnsafeMutablePointer<buddy_order_stats>) -> UInt64 {
        let geometry = self.geometry
        var live: UInt64 = 0
        var segment = state.pointee.segments
        while let current = segment {
            var offset: UInt = 0
            while offset < current.pointee.frontier {
                let tag = current.pointee.orderMap[Int(offset >> UInt(geometry.minShift))]
                let order = Int(tag & Tag.orderMask)
                if tag == 0 || order > geometry.maxOrder { break } // not a block start: stop, never loop
                if tag & Tag.stateMask == Tag.used {
                    orders[order].live &+= 1
                    live &+= 1
                }
                offset &+= UInt(geometry.size(ofOrder: order))
            }
            segment = current.pointee.next
        }
        return live
    }
}

/// The health of a pool: the engine's one policy (BuddyEngine/Health.swift, the README's
/// "Health" table) on a snapshot's figures, with each check's verdict as the report words it.
struct Health {
    static let healthy: UInt8 = 0, warning: UInt8 = 1, critical: UInt8 = 2

    var status: UInt8 = 0
    /// Each check's verdict (0, warning or critical), for the message.
    var badPointers: UInt8 = 0
    var failures: UInt8 = 0
    var fragmentation: UInt8 = 0
    var limit: UInt8 = 0
    var idle: UInt8 = 0
    var failureRate = 0.0
    var limitUse = 0.0
    var errorCount: UInt64 = 0

    init(_ s: UnsafeMutablePointer<buddy_stats>) {
        var f = HealthFigures()
        f.badPointers = s.pointee.invalid_pointers &+ s.pointee.double_frees &+ s.pointee.use_after_frees &+ s.pointee.wrong_sizes
        let calls = statsCalls(s), failed = statsFailures(s)
        for entry in 0..<Entry.count {
            f.failedCalls &+= failed[entry]
            if Entry(rawValue: entry)?.allocates ?? false { f.allocatingCalls &+= calls[entry] }
        }
        f.used = s.pointee.used
        f.free = s.pointee.free
        f.reserved = s.pointee.reserved
        f.maxBlock = s.pointee.max_block
        f.maxPoolSize = s.pointee.max_pool_size
        f.externalFragmentation = s.pointee.external_fragmentation
        f.usage = s.pointee.usage
        let verdict = HealthPolicy.evaluate(f)
        errorCount = f.badPointers
        status = verdict.status.rawValue
        badPointers = verdict.badPointers.rawValue
        failures = verdict.failedCalls.rawValue
        fragmentation = verdict.fragmentation.rawValue
        limit = verdict.limit.rawValue
        idle = verdict.idle.rawValue
        failureRate = verdict.failureRate
        limitUse = verdict.limitUse
    }
}
