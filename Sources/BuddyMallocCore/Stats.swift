#if !BUDDY_ONE_MODULE
import BuddyEngine
#endif
import CBuddySupport

// The statistics' storage: fixed-size counter tables (no Swift allocation anywhere), the
// per-pool counters the engine and the C layer keep, and how the per-thread ones are updated.
//
// Who counts what (the README's "The report" defines each figure):
//   - per thread (CallCounters, in the thread's cache; plain adds by its owner, folded into the
//     pool when the thread exits, summed when read): blocks handed out and freed per order,
//     requested bytes, calls that took a slow path per entry point, failures, explicit
//     alignments, latency samples;
//   - threads without a cache use the pool's `directCalls` with atomic adds;
//   - per pool (PoolStats, in PoolState): splits and coalesces per order (under the lock), the
//     size histogram's corrections (atomic), times, the sampling settings.
// The malloc and free fast paths add to two per-thread counters each (the order's counter and
// the sampling countdown; malloc also adds the requested bytes): see CSemantics.swift.

/// The C entry points, in the order of `enum buddy_entry_point` (buddy_stats.h).
enum Entry: Int {
    case malloc, calloc, realloc, reallocarray, free, posixMemalign, alignedAlloc, memalign, valloc, pvalloc
    case mallocUsableSize, freeSized, freeAlignedSized

    static let count = 13

    /// The name in reports (the C function's). Not inlined: inside a loop, the optimizer hoists
    /// its jump table's base out of sight of tools/check-malloc-path.py's jump-table recognizer.
    var name: StaticString {
        @inline(never) get { entryName(self) }
    }
}

@inline(never) private func entryName(_ entry: Entry) -> StaticString {
    switch entry {
    case .malloc: return "malloc"
    case .calloc: return "calloc"
    case .realloc: return "realloc"
    case .reallocarray: return "reallocarray"
    case .free: return "free"
    case .posixMemalign: return "posix_memalign"
    case .alignedAlloc: return "aligned_alloc"
    case .memalign: return "memalign"
    case .valloc: return "valloc"
    case .pvalloc: return "pvalloc"
    case .mallocUsableSize: return "malloc_usable_size"
    case .freeSized: return "free_sized"
    case .freeAlignedSized: return "free_aligned_sized"
    }
}

extension Entry {

    /// Whether the caller chose the alignment (the alignment histogram counts these).
    var aligned: Bool {
        switch self {
        case .posixMemalign, .alignedAlloc, .memalign, .valloc, .pvalloc: return true
        default: return false
        }
    }

    /// Whether the entry point allocates (and so can fail).
    var allocates: Bool {
        switch self {
        case .free, .mallocUsableSize, .freeSized, .freeAlignedSized: return false
        default: return true
        }
    }
}

/// Latency samples of one thread (or the sum of several): CLOCK_MONOTONIC around whole calls.
struct LatencyCounters {
    var allocSamples: UInt64 = 0
    var allocTotalNs: UInt64 = 0
    var allocMaxNs: UInt64 = 0
    var freeSamples: UInt64 = 0
    var freeTotalNs: UInt64 = 0
    var freeMaxNs: UInt64 = 0

    init() {}

    mutating func add(_ other: LatencyCounters) {
        allocSamples &+= other.allocSamples
        allocTotalNs &+= other.allocTotalNs
        allocMaxNs = max(allocMaxNs, other.allocMaxNs)
        freeSamples &+= other.freeSamples
        freeTotalNs &+= other.freeTotalNs
        freeMaxNs = max(freeMaxNs, other.freeMaxNs)
    }

    @inline(__always) mutating func record(allocation: Bool, _ ns: UInt64) {
        if allocation {
            allocSamples &+= 1
            allocTotalNs &+= ns
            if ns > allocMaxNs { allocMaxNs = ns }
        } else {
            freeSamples &+= 1
            freeTotalNs &+= ns
            if ns > freeMaxNs { freeMaxNs = ns }
        }
    }
}

/// A power-of-two bucket: the smallest b with value <= 2^b.
@inline(__always) func bucket(of value: UInt) -> Int {
    ceilLog2(value)
}

// MARK: - Counting from the C layer

extension BuddyEngine {
    /// The calling thread's counters when it has a cache (plain adds), else nil (the caller
    /// uses the pool's direct counters, atomically).
    @inline(__always) static func threadCounters() -> UnsafeMutablePointer<ThreadCache>? {
        let raw = UInt(bitPattern: buddy_thread_cache())
        return raw > 1 ? UnsafeMutablePointer<ThreadCache>(bitPattern: raw) : nil
    }

    /// A call of `entry` that took a slow path (or has none).
    @inline(__always) func countCall(_ entry: Entry) {
        if let cache = BuddyEngine.threadCounters() {
            cache.pointee.calls.entries.add(entry.rawValue)
        } else {
            process.pointee.directCalls.entries.atomicAdd(entry.rawValue)
        }
    }

    /// A call of `entry` that failed (NULL, ENOMEM or EINVAL).
    @inline(never) func countFailure(_ entry: Entry) {
        if let cache = BuddyEngine.threadCounters() {
            cache.pointee.calls.failures.add(entry.rawValue)
        } else {
            process.pointee.directCalls.failures.atomicAdd(entry.rawValue)
        }
    }

    /// A block of `order` handed to the program by a slow path, for a request of `size` bytes
    /// aligned to `alignment`. (malloc's blocks are profiled by its instrumented path; the other
    /// entry points' here.)
    @inline(__always) func countSlowAllocation(order: Int, size: UInt, alignment: UInt, block: UnsafeMutableRawPointer, entry: Entry) {
        if let cache = BuddyEngine.threadCounters() {
            cache.pointee.calls.allocated.add(order)
            cache.pointee.calls.slowAllocations &+= 1
            cache.pointee.calls.requestedBytes &+= UInt64(size)
            cache.pointee.calls.countLiveAllocation()
            // A block of an order no bin holds came from the pool under its lock: fold now, so
            // that the delta only ever holds moves of the cache's own blocks (and its bound holds).
            if cache.bin(ofCode: order) < 0 { foldLiveDelta(cache) }
            if case .malloc = entry {} else if state.pointee.stats.profileSampleBytes != 0 {
                AllocationProfile.allocated(block, size: size, counted: true, cache: cache)
            }
        } else {
            process.pointee.directCalls.allocated.atomicAdd(order)
            buddy_atomic_add_u64_relaxed(&process.pointee.directCalls.slowAllocations, 1)
            buddy_atomic_add_u64_relaxed(&process.pointee.directCalls.requestedBytes, UInt64(size))
            countDirectLive(1)
        }
        if alignment > 16 { correctSizeHistogram(order: order, size: size) }
    }

    /// An over-aligned request's block may be larger than its size needs: the size histogram
    /// counts the block's order, so move this request to its size's bucket.
    @inline(never) func correctSizeHistogram(order: Int, size: UInt) {
        let shift = geometry.minShift
        let sizeBucket = max(bucket(of: size), shift)
        let blockBucket = shift &+ order
        if sizeBucket != blockBucket {
            state.pointee.stats.sizeDelta.atomicAdd(sizeBucket)
            state.pointee.stats.sizeDelta.atomicAdd(blockBucket, 0 &- 1)
        }
    }

    /// An explicit alignment asked for (posix_memalign, aligned_alloc, memalign, valloc, pvalloc).
    @inline(__always) func countAlignment(_ alignment: UInt) {
        if let cache = BuddyEngine.threadCounters() {
            cache.pointee.calls.alignments.add(bucket(of: alignment))
        } else {
            process.pointee.directCalls.alignments.atomicAdd(bucket(of: alignment))
        }
    }

    /// A request handed to the system allocator (larger than the maximum block).
    @inline(never) func countSystemRequest(_ size: UInt) {
        buddy_atomic_add_u64_relaxed(&state.pointee.counters.systemCalls, 1)
        buddy_atomic_add_u64_relaxed(&state.pointee.counters.systemBytes, UInt64(size))
        state.pointee.stats.sizeDelta.atomicAdd(max(bucket(of: size), geometry.minShift))
    }

    /// A block of `order` the program freed, released by a slow path.
    @inline(__always) func countSlowFree(order: Int) {
        if let cache = BuddyEngine.threadCounters() {
            cache.pointee.calls.freed.add(order)
            cache.pointee.calls.slowFrees &+= 1
            cache.pointee.calls.countLiveFree()
            foldLiveDelta(cache) // the block went back to the pool under its lock
        } else {
            process.pointee.directCalls.freed.atomicAdd(order)
            buddy_atomic_add_u64_relaxed(&process.pointee.directCalls.slowFrees, 1)
            countDirectLive(0 &- 1)
        }
        stampActivity()
    }

    /// A misuse the C layer found (counted atomically: callers hold no lock).
    @inline(never) func countMisuse(_ misuse: Misuse) {
        switch misuse {
        case .doubleFree: countBadPointer(.doubleFree)
        case .invalidPointer, .heapCorruption: countBadPointer(.invalidPointer)
        case .otherPool: countBadPointer(.otherPool)
        case .useAfterFree: buddy_atomic_add_u64_relaxed(&state.pointee.stats.useAfterFrees, 1)
        case .wrongSize: buddy_atomic_add_u64_relaxed(&state.pointee.stats.wrongSizes, 1)
        }
    }

    /// A call made from inside the allocator, served by glibc.
    @inline(never) func countReentrantCall() {
        buddy_atomic_add_u64_relaxed(&state.pointee.stats.reentrantCalls, 1)
    }

    /// An in-place realloc moved a live block from `old` to `new` (the caller holds the lock).
    @inline(__always) func countResize(from old: Int, to new: Int) {
        if old == new { return }
        state.pointee.stats.resizeDelta.add(new)
        state.pointee.stats.resizeDelta.add(old, 0 &- 1)
    }

    /// The pool was used now (coarse clock: a store, no system call). Racy by design.
    @inline(__always) func stampActivity() {
        // The coarse clock ticks every few ms: most stamps change nothing, and then do not write
        // the line every thread's stamps share.
        let now = buddy_os_monotonic_ns()
        if state.pointee.stats.lastActivityMonotonicNs != now { state.pointee.stats.lastActivityMonotonicNs = now }
    }
}

// MARK: - Live allocations and their peak (the process pool)
//
// The live count is spread over the threads, so that the fast paths keep to plain adds:
//
//     live = G + sum over the caches c of delta_c
//
// G is PoolStats.liveAllocations, delta_c is CallCounters.liveDelta: blocks cache c's thread
// handed out minus blocks it took back since its last fold, and max_c (liveDeltaMaximum) the
// largest delta_c since that fold. A fold, at every slow path that takes the pool lock (a refill,
// a flush, a block no bin holds, a free that goes to the pool, the thread's exit, a snapshot):
//
//     peak = max(peak, G + max_c);  G += delta_c;  delta_c = max_c = 0
//
// (atomically, so a thread without a cache folds each of its calls straight into G).
//
// Bound. Between two folds a thread only moves its cache's own blocks: the bin of order k holds
// at most limit_k + 1 blocks at any moment, plus the one block of the slow path that folded last
// (a refill's first block, counted after the fold), so
//
//     |delta_c| <= C = 1 + sum over the bins k of (limit_k + 1)   (953 by default: README)
//
// and delta_c moves within a range of width C. Write A_c(t) for thread c's count at time t
// (G's share plus delta_c). With T threads holding caches:
//   - too low by at most (T - 1) x C: let the true peak P be at time t*, and the first fold
//     after it be c's. G has not changed since t*, and max_c >= delta_c(t*), so that fold
//     records at least G(t*) + delta_c(t*) = P - (the other threads' delta(t*)).
//   - too high by at most (T - 1) x C: a fold by c records A_c(t_c) + the sum over the others
//     of A_s(f_s), with t_c the moment of c's maximum and f_s each other thread's last fold;
//     at t = the latest of those moments no thread has folded since its own moment, so each
//     A_u(t) >= A_u(its moment) - C: the true count at t, at most P, is at least the recorded
//     value minus C for every thread but the one whose moment is t. A snapshot that adds max_s
//     for every cache to G obeys the same.
//   - exact with one thread: both errors are sums over the other threads.

extension CallCounters {
    // delta_c moves in steps of +1 and -1 from 0, so its maximum since the fold is either its
    // value now or its value just before some -1 step: malloc only adds (one instruction), free
    // keeps the maximum, and max_c = max(liveDeltaPeak, liveDelta).

    /// This thread handed a block to the program (the fast paths call it).
    @inline(__always) mutating func countLiveAllocation() { liveDelta &+= 1 }

    /// This thread took a block back from the program.
    @inline(__always) mutating func countLiveFree() {
        let delta = liveDelta
        if delta > liveDeltaPeak { liveDeltaPeak = delta }
        liveDelta = delta &- 1
    }

    /// max_c: the largest delta since the last fold.
    var liveDeltaMaximum: Int { max(liveDeltaPeak, liveDelta) }
}

extension BuddyEngine {
    /// Folds a cache's live delta into the pool's count: peak = max(peak, G + max_c); G += delta_c.
    /// The caller holds the pool lock, or is the cache's own thread (atomics: a thread without
    /// a cache adds to G without the lock).
    @inline(__always) func foldLiveDelta(_ cache: UnsafeMutablePointer<ThreadCache>) {
        let delta = cache.pointee.calls.liveDelta
        let peak = cache.pointee.calls.liveDeltaMaximum
        cache.pointee.calls.liveDelta = 0
        cache.pointee.calls.liveDeltaPeak = 0
        let before = buddy_atomic_fetch_add_u64_relaxed(&state.pointee.stats.liveAllocations, UInt64(bitPattern: Int64(delta)))
        notePeakLive(Int64(bitPattern: before) &+ Int64(peak))
    }

    /// A thread without a cache allocated (+1) or freed (-1) a block: straight into G, a fold of
    /// its own (delta_c = change, max_c = max(change, 0)).
    @inline(never) func countDirectLive(_ change: Int64) {
        let before = buddy_atomic_fetch_add_u64_relaxed(&state.pointee.stats.liveAllocations, UInt64(bitPattern: change))
        notePeakLive(Int64(bitPattern: before) &+ max(change, 0))
    }

    /// Raises the recorded peak of live allocations to `candidate` if it is higher.
    @inline(__always) func notePeakLive(_ candidate: Int64) {
        if candidate > 0 { buddy_atomic_max_u64_relaxed(&state.pointee.stats.peakLiveAllocations, UInt64(candidate)) }
    }
}

// MARK: - Instrumented calls (latency samples, the allocation-site profile)

extension UnsafeMutablePointer where Pointee == ThreadCache {
    /// An instrumented call begins: restarts the thread's countdown and says whether to time it.
    /// (With the profile on, malloc's instrumented calls begin in AllocationProfile.latencyDue;
    /// its frees come here only when a timed free is due, and keep the profile's flag.)
    @inline(__always) func beginInstrumentedCall(allocation: Bool) -> Bool {
        let pool = pointee.pool
        let period = pool.pointee.stats.instrumentPeriod
        if allocation { pointee.calls.countdown = period }
        let profile = pool.pointee.stats.profileSampleBytes != 0 ? CallCounters.profileFrees : 0
        setFreeSampleDue((allocation || period == 1 ? CallCounters.timedFree : 0) | profile)
        let mode = pool.pointee.stats.latencyMode
        return mode == Int32(BUDDY_LATENCY_EXACT.rawValue) || mode == Int32(BUDDY_LATENCY_SAMPLED.rawValue)
    }

    /// Records a timed call that started at `start` (CLOCK_MONOTONIC ns).
    @inline(__always) func recordLatency(allocation: Bool, since start: UInt64) {
        let end = buddy_os_precise_ns()
        pointee.calls.latency.record(allocation: allocation, end &- start)
        pointee.pool.pointee.stats.lastActivityMonotonicNs = end
    }
}
