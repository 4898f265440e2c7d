import CBuddySupport

/// A pool's own statistics, beside its engine counters (PoolCounters). Splits and coalesces are
/// counted by the engine under the lock; the rest atomically by the C layer.
package struct PoolStats {
    /// Blocks of each order split into two of the order below; pairs of free buddies of each
    /// order merged into one of the order above.
    package var splits = CounterTable()
    package var coalesces = CounterTable()
    /// Live blocks moved between orders by in-place reallocs (+1 at the new order, -1 at the
    /// old one, wrapping): live[k] = allocated[k] - freed[k] + resizeDelta[k].
    package var resizeDelta = CounterTable()
    /// Corrections of the size histogram, which is derived from the blocks handed out per order:
    /// an over-aligned request moves its count from its block's bucket to its size's; a request
    /// served by the system allocator adds one (wrapping, atomic).
    package var sizeDelta = CounterTable()
    /// Calls made from inside the allocator (libc, the runtime, a signal handler): glibc served them.
    package var reentrantCalls: UInt64 = 0
    /// Creation time, wall clock and monotonic (ns), and the last activity (monotonic ns).
    package var createdNs: UInt64
    package var createdMonotonicNs: UInt64
    package var lastActivityMonotonicNs: UInt64
    /// Live allocations of the process pool (the C layer's), as folded so far: the thread caches'
    /// deltas (`CallCounters.liveDelta`) added at their folds, and the calls of threads without
    /// a cache added one by one. Atomic (folds happen under the pool lock, the direct calls'
    /// after it); wrapping, read as signed: a thread that frees blocks another thread allocated
    /// folds a negative delta. At any moment, with T threads holding caches:
    ///
    ///     live = liveAllocations + sum over the T caches of liveDelta
    package var liveAllocations: UInt64 = 0
    /// The most live allocations at once (atomic maximum; see `foldLiveDelta` for the bound).
    package var peakLiveAllocations: UInt64 = 0
    /// The engine's own count of allocated blocks (allocate minus releaseBlock, under the lock or
    /// by the pool's single thread) and its peak: exact. A private pool's live allocations are
    /// these; in the process pool they also count the blocks thread caches hold.
    package var engineBlocks: UInt64 = 0
    package var peakEngineBlocks: UInt64 = 0
    /// A thread's countdown restarts at this many calls: 1 when every call is instrumented
    /// (exact latency), the latency period when sampling. (With the allocation-site profile on,
    /// the profile arms it: AllocationProfile.rearm.)
    package var instrumentPeriod: Int
    /// Latency: off, sampled or exact (enum buddy_latency_mode), and one call in `latencyPeriod`.
    package var latencyMode: Int32
    package var latencyPeriod: Int
    /// The allocation-site profile's sampling period in bytes (0: off).
    package var profileSampleBytes: UInt64
    /// Misuses besides invalid pointers and double frees (atomic): realloc or malloc_usable_size
    /// of a freed block, free_sized or free_aligned_sized with a wrong size.
    package var useAfterFrees: UInt64 = 0
    package var wrongSizes: UInt64 = 0

    /// A new pool's statistics, with the sampling settings the options asked for.
    package init() {
        createdNs = buddy_os_realtime_ns()
        createdMonotonicNs = buddy_os_precise_ns()
        lastActivityMonotonicNs = createdMonotonicNs
        let settings = buddy_report_settings_get()!
        latencyMode = settings.pointee.latency_mode
        latencyPeriod = max(1, Int(settings.pointee.latency_period))
        profileSampleBytes = settings.pointee.profile_sample
        if latencyMode == Int32(BUDDY_LATENCY_EXACT.rawValue) {
            instrumentPeriod = 1
        } else if latencyMode == Int32(BUDDY_LATENCY_SAMPLED.rawValue) {
            instrumentPeriod = latencyPeriod
        } else {
            instrumentPeriod = Int.max
        }
    }
}

extension PoolStats {
    /// The engine handed out `blocks` blocks (the caller holds the lock, or is the pool's only
    /// thread).
    @inline(__always) package mutating func countEngineBlockAllocated(_ blocks: UInt64) {
        engineBlocks &+= blocks
        if engineBlocks > peakEngineBlocks { peakEngineBlocks = engineBlocks }
    }

    /// The engine took a block back.
    @inline(__always) package mutating func countEngineBlockReleased() { engineBlocks &-= 1 }

    /// Every block went back at once (reset): the peak stays.
    package mutating func countEngineBlocksReset() { engineBlocks = 0 }
}
