#if !BUDDY_ONE_MODULE
import BuddyEngine
#endif
import CBuddySupport

// malloc and free: the fast paths, in one place beside the thread cache they serve. A thread with
// a cache takes a block from its bin, or puts one there, with no lock and no call; everything
// else (an empty or full bin, a size or pointer the bins do not serve, re-entry, sampling)
// leaves through one out-of-line function into the C-semantics layer (CSemantics.swift).
//
// The cost is counted in instructions per malloc+free pair under callgrind (README,
// "Performance"): every line here is paid on every call.


@_cdecl("buddy_malloc")
public func buddy_malloc(_ size: Int) -> UnsafeMutableRawPointer? {
    mallocFast(size, sampling: true)
}

/// malloc's fast path: a thread with a cache, a cached size, a bin with a block: the sampling
/// countdown, one size test (the limit is 0 until the pool exists with caches on), then pop
/// (which clears the block's cache mark) and count; no lock, no call, no write to the order
/// map. The depth is still raised around the pop, so a signal handler's malloc cannot
/// interleave. With `sampling`, the call the countdown stops at takes the
/// instrumented path instead (which runs this same code without `sampling`), and with the
/// allocation-site profile on, the calls that leave this inline path check the profile's sample
/// point themselves (AllocationProfile.rearm says why the inline ones need not).
@inline(__always)
private func mallocFast(_ size: Int, sampling: Bool) -> UnsafeMutableRawPointer? {
    let request = UInt(bitPattern: size)
    // (A thread cache exists only for the process pool, and names it: no load of the pool's global.)
    if buddy_thread_idle() != 0 {
        let cache = UInt(bitPattern: buddy_thread_cache())
        if cache > 1 {
            let threadCache = UnsafeMutablePointer<ThreadCache>(bitPattern: cache)!
            if sampling {
                threadCache.pointee.calls.countdown &-= 1
                if threadCache.pointee.calls.countdown == 0 { return mallocInstrumented(size, threadCache) }
            }
            if request <= threadCache.pointee.orderPathLimit {
                let (words, code) = threadCache.pointee.smallSizes.entry(request)
                let (block, sound) = takeCached(threadCache, threadCache.slot(words: words), code: code, request: request)
                if let block {
                    if _fastPath(sound) { return block }
                    return mallocCorrupted(size, threadCache, block, bin: words / ThreadCache.wordsPerBin, profiled: sampling)
                }
            } else if request <= threadCache.pointee.cachedSizeLimit {
                return mallocMedium(request, threadCache, profiled: sampling)
            }
        }
    }
    return mallocSlow(size, profiled: sampling)
}

/// malloc's fast path for the cached sizes above `orderPathLimit` (1 KiB): the same as
/// mallocFast's, by the medium table (a slab class, or an order).
/// With `profiled` (a call outside the instrumented path), the profile's sample point is checked.
@inline(never)
private func mallocMedium(_ request: UInt, _ threadCache: UnsafeMutablePointer<ThreadCache>, profiled: Bool) -> UnsafeMutableRawPointer? {
    let (words, code) = threadCache.mediumEntry(request)
    if words != MediumSizeTable.none,
       case let (block?, sound) = takeCached(threadCache, threadCache.slot(words: words), code: code, request: request) {
        guard sound else {
            return mallocCorrupted(Int(bitPattern: request), threadCache, block, bin: words / ThreadCache.wordsPerBin, profiled: profiled)
        }
        if profiled, threadCache.pointee.pool.pointee.stats.profileSampleBytes != 0 {
            AllocationProfile.allocated(block, size: request, counted: true, cache: threadCache)
        }
        return block
    }
    return mallocSlow(Int(bitPattern: request), profiled: profiled)
}

/// The fast path of calloc and of the aligned entry points: a cached block for a request of
/// `request` bytes aligned to `alignment` (a power of two, at least 16), popped as malloc's fast
/// path pops one and counted as the slow path counts a call of `entry`
/// (Stats.countSlowAllocation: the block is not one of malloc's fast-path calls). nil when the
/// call must take its own path: no cache, re-entry, a size or alignment no bin serves, an empty
/// bin, or links overwritten (which that path's pop reports). The caller has not entered the
/// allocator. Off the countdown: the latency samples are malloc's and free's, and the profile's
/// sample point is checked here, as mallocMedium checks it.
/// (These calls took the general path before: 260-295 instructions per call and free, against
/// malloc's 110; rpmalloc's benchmark makes two of its three small requests with memalign and
/// every large one with calloc.)
@inline(__always)
func allocateCached(_ request: UInt, alignment: UInt, entry: Entry) -> UnsafeMutableRawPointer? {
    guard buddy_thread_idle() != 0 else { return nil }
    let cache = UInt(bitPattern: buddy_thread_cache())
    guard cache > 1 else { return nil }
    let threadCache = UnsafeMutablePointer<ThreadCache>(bitPattern: cache)!
    let limit = threadCache.pointee.cachedSizeLimit
    guard request <= limit, alignment <= limit else { return nil }
    let slot: UnsafeMutablePointer<CacheBin>
    let code: Int
    if alignment <= minimumAlignment {
        guard let (words, tabled) = threadCache.sizeEntry(request) else { return nil }
        (slot, code) = (threadCache.slot(words: words), tabled)
    } else {
        // (Any block of the code's order is aligned enough: code(forSize:alignment:).)
        code = BuddyEngine(state: threadCache.pointee.pool).code(forSize: request, alignment: alignment)
        let bin = threadCache.bin(ofCode: code)
        guard bin >= 0 else { return nil }
        slot = threadCache.slot(bin)
    }
    guard case let (block?, true) = takeCached(threadCache, slot, code: code, request: request) else { return nil }
    threadCache.pointee.calls.slowAllocations &+= 1
    threadCache.pointee.calls.entries.add(entry.rawValue)
    if entry.aligned {
        threadCache.pointee.calls.alignments.add(bucket(of: alignment))
        if alignment > minimumAlignment { BuddyEngine(state: threadCache.pointee.pool).correctSizeHistogram(order: code, size: request) }
    }
    if threadCache.pointee.pool.pointee.stats.profileSampleBytes != 0 {
        AllocationProfile.allocated(block, size: request, counted: true, cache: threadCache)
    }
    return block
}

/// realloc's fast path, decided without the pool lock: the block at `pointer` itself, when it
/// stays where it is; a new block, when it moves; nil when the locked path decides.
/// - It stays when it is a used block (or slab object) of a code the bins hold and `size` maps
///   to the same code: the locked path would leave it as it is too (one order: nothing to split
///   or join, counted nowhere; one class: a class is one size).
/// - A slab object moves to a block of another cached code, taken from its bin, its bytes copied,
///   the object pushed on its own bin, counted as the locked path counts a move (reallocByMoving):
///   a class has no neighbour to grow into, so the locked path would move it too. A block of an
///   order may grow into free buddies or shrink in place, which needs the lock.
/// The tag is read as free's fast path reads it: the block is the caller's, so no other thread
/// changes its tag. nil: another case (a block a cache holds, a pointer this pool's bins do not
/// know, an empty bin, re-entry), which the locked path handles and reports. (Each realloc took
/// the pool lock to classify the pointer, one lock shared by every thread on a steady path.)
@inline(__always)
func reallocCached(_ pointer: UnsafeMutableRawPointer, _ size: UInt) -> UnsafeMutableRawPointer? {
    guard buddy_thread_idle() != 0 else { return nil }
    let cache = UInt(bitPattern: buddy_thread_cache())
    guard cache > 1 else { return nil }
    let threadCache = UnsafeMutablePointer<ThreadCache>(bitPattern: cache)!
    let address = UInt(bitPattern: pointer)
    guard size <= threadCache.pointee.cachedSizeLimit, address & threadCache.pointee.minBlockMask == 0 else { return nil }
    // The segment: the cache's copy of the last one free used, else the segment map's (which
    // covers exactly the live segments: a hit of this pool contains the address).
    var map = threadCache.pointee.lastOrderMap
    var offset = address &- threadCache.pointee.lastBase
    if offset >= threadCache.pointee.lastSize {
        guard let found = SegmentMap.lookup(address), found.pointee.pool == UnsafeMutableRawPointer(threadCache.pointee.pool) else { return nil }
        map = found.pointee.orderMap
        offset = address &- found.pointee.base
    }
    guard let (tag, code, words) = threadCache.cachedUse(address, map: map, offset: offset),
          let (newWords, newCode) = threadCache.sizeEntry(size) else { return nil }
    if newCode == code { return pointer }
    // A move: only a slab object's (the bins after the orders' are the classes').
    guard words / ThreadCache.wordsPerBin >= threadCache.pointee.binCount else { return nil }
    return reallocMovingCached(pointer, tag, code: code, binWords: words, to: size, newCode: newCode, newBinWords: newWords, threadCache)
}

/// reallocCached's move of a slab object (of `code`, on the bin at `binWords`) to a block of
/// `newCode` from its bin; nil when that bin is empty. Out of line: the in-place case keeps
/// its registers.
@inline(never)
private func reallocMovingCached(_ pointer: UnsafeMutableRawPointer, _ tag: UnsafeMutablePointer<UInt8>, code: Int, binWords words: Int,
                                 to size: UInt, newCode: Int, newBinWords newWords: Int,
                                 _ threadCache: UnsafeMutablePointer<ThreadCache>) -> UnsafeMutableRawPointer? {
    guard case let (moved?, true) = takeCached(threadCache, threadCache.slot(words: newWords), code: newCode, request: size) else { return nil }
    let pool = BuddyEngine(state: threadCache.pointee.pool)
    moved.copyMemory(from: pointer, byteCount: min(pool.size(ofCode: code), Int(bitPattern: size)))
    threadCache.pointee.calls.slowAllocations &+= 1
    if pool.state.pointee.stats.profileSampleBytes != 0 {
        AllocationProfile.allocated(moved, size: size, counted: true, cache: threadCache)
        AllocationProfile.freed(pointer)
    }
    // A free of realloc's, not of the program's: counted with the slow paths' frees.
    threadCache.pointee.calls.slowFrees &+= 1
    keepCached(pointer, tag, code: code, threadCache.slot(words: words), threadCache, idle: true)
    return moved
}

/// A cached block whose links were overwritten (ThreadCache.take): reported and handled as
/// FreeLinks.cacheCorrupted says (the bin is abandoned), then the request takes the slow path.
/// Out of line and reached by a tail call, so the fast paths keep no registers for it.
@inline(never)
private func mallocCorrupted(_ size: Int, _ threadCache: UnsafeMutablePointer<ThreadCache>, _ block: UnsafeMutableRawPointer,
                             bin: Int, profiled: Bool) -> UnsafeMutableRawPointer? {
    buddy_thread_enter()
    FreeLinks.cacheCorrupted(threadCache, bin: bin, block: block, function: "malloc()")
    buddy_thread_leave()
    return mallocSlow(size, profiled: profiled)
}

/// The fast paths' pop: a cached block (or object) of allocation code `code` from the bin at
/// `slot`, counted, or nil when the bin is empty; `sound` false when its links were overwritten
/// (not counted, not taken: the caller tail-calls mallocCorrupted). Its tag already says used
/// (CacheMark). The depth is raised around the pop, so a signal handler's malloc cannot
/// interleave. The caller found the thread idle (buddy_thread_idle): every caller is a fast path.
@inline(__always)
private func takeCached(_ threadCache: UnsafeMutablePointer<ThreadCache>, _ slot: UnsafeMutablePointer<CacheBin>,
                        code: Int, request: UInt) -> (block: UnsafeMutableRawPointer?, sound: Bool) {
    buddy_thread_enter_idle()
    defer { buddy_thread_leave() }
    let (block, _, sound) = threadCache.take(slot)
    guard let block, sound else { return (block, false) }
    threadCache.pointee.calls.allocated.add(code)
    threadCache.pointee.calls.requestedBytes &+= UInt64(request)
    threadCache.pointee.calls.countLiveAllocation()
    return (block, true)
}

/// The fast paths' push: a block (or object) of code `code` the program frees goes on the bin at
/// `slot`, counted and marked (its tag stays used: CacheMark); a bin over its limit is flushed.
/// (Also realloc's move, for the block it leaves.) `idle`: the caller found the thread idle
/// (buddy_thread_idle), as free's fast path does; false inside the allocator (realloc's locked
/// path, depth already raised), where entering must add to the depth, not overwrite it. No
/// default: a caller inside the allocator that took one would drop the depth to 0.
@inline(__always)
func keepCached(_ pointer: UnsafeMutableRawPointer, _ tag: UnsafeMutablePointer<UInt8>, code: Int,
                _ slot: UnsafeMutablePointer<CacheBin>, _ threadCache: UnsafeMutablePointer<ThreadCache>, idle: Bool) {
    if idle { buddy_thread_enter_idle() } else { buddy_thread_enter() }
    threadCache.pointee.calls.freed.add(code)
    threadCache.pointee.calls.countLiveFree()
    _ = threadCache.push(pointer, into: slot, tag: tag)
    buddy_thread_leave()
    // The room is read again after the leave, not kept from the push: the leave's decrement sets
    // the flags, and keeping the push's sign across it cost two instructions (setns, test). A
    // signal handler's call in between may have moved the room: the flush follows what it is.
    if slot.pointee.isOverLimit { flushFullBin(threadCache, bin: threadCache.bin(of: slot)) }
}

/// The call the countdown stopped at: timed (latency) and profiled (allocation sites) as due.
@inline(never)
private func mallocInstrumented(_ size: Int, _ cache: UnsafeMutablePointer<ThreadCache>) -> UnsafeMutableRawPointer? {
    if cache.pointee.pool.pointee.stats.profileSampleBytes != 0 { return mallocProfiled(size, cache) }
    let timed = cache.beginInstrumentedCall(allocation: true)
    let start = timed ? buddy_os_precise_ns() : 0
    let block = mallocFast(size, sampling: false)
    if timed { cache.recordLatency(allocation: true, since: start) }
    return block
}

/// mallocInstrumented with the profile on: the countdown stopped where a latency sample or the
/// profile's sample point may be due (AllocationProfile.rearm); it is armed again whatever
/// happens. (Whether the allocation's bytes were counted in the thread's requested bytes: an
/// oversize block's are not.)
@inline(never)
private func mallocProfiled(_ size: Int, _ cache: UnsafeMutablePointer<ThreadCache>) -> UnsafeMutableRawPointer? {
    let timed = AllocationProfile.latencyDue(cache)
    let start = timed ? buddy_os_precise_ns() : 0
    let before = cache.pointee.calls.requestedBytes
    let block = mallocFast(size, sampling: false)
    if timed { cache.recordLatency(allocation: true, since: start) }
    if let block {
        AllocationProfile.allocated(block, size: UInt(bitPattern: size), counted: cache.pointee.calls.requestedBytes != before, cache: cache)
    } else {
        AllocationProfile.rearm(cache)
    }
    return block
}

/// With `profiled` (a call outside the instrumented path), the profile's sample point is checked.
/// The process's first call makes the pool, and a thread's first call its cache, inside
/// allocate: the check follows the allocation, so those calls are profiled too. (It came before
/// it, and needed both: a thread whose first malloc was 300 KB never had that block sampled.)
@inline(never)
private func mallocSlow(_ size: Int, profiled: Bool) -> UnsafeMutableRawPointer? {
    if reentered() { return __libc_malloc(size) }
    defer { buddy_thread_leave() }
    if buddy_report_pending() != 0 { ReportTriggers.servicePending() }
    // (No pool yet: this call makes it, and the profile may be on in it.)
    let existing = ProcessPool.existing
    let check = profiled && (existing == nil || existing.unsafelyUnwrapped.state.pointee.stats.profileSampleBytes != 0)
    // (A cache made by this call starts its requested bytes at 0.)
    let before = check ? BuddyEngine.threadCounters()?.pointee.calls.requestedBytes ?? 0 : 0
    let block = allocate(UInt(bitPattern: size), alignment: minimumAlignment, entry: .malloc, call: true)
    if check, let block, let pool = ProcessPool.existing, pool.state.pointee.stats.profileSampleBytes != 0,
       let cache = BuddyEngine.threadCounters() {
        AllocationProfile.allocated(block, size: UInt(bitPattern: size), counted: cache.pointee.calls.requestedBytes != before, cache: cache)
    }
    return block
}

@_cdecl("buddy_free")
public func buddy_free(_ pointer: UnsafeMutableRawPointer?) {
    freeFast(pointer, sampling: true)
}

/// free's fast path: an allocated block of a cached order, freed by an idle thread with a cache
/// (no deferred free waiting either: the slow path releases it first), goes on its bin: no lock,
/// no call. A free sample due is seen by the segment copy's range test (setFreeSampleDue). (The
/// segment map covers exactly the live segments, so a hit whose pool is ours contains the
/// address.) Anything else takes the checked path. `sampling` as in mallocFast.
@inline(__always)
private func freeFast(_ pointer: UnsafeMutableRawPointer?, sampling: Bool) {
    let address = UInt(bitPattern: pointer)
    if buddy_thread_idle() != 0 {
        let cache = UInt(bitPattern: buddy_thread_cache())
        if cache > 1 {
            let threadCache = UnsafeMutablePointer<ThreadCache>(bitPattern: cache)!
            // The segment of this thread's last free, when it covers the address (a range test
            // on the cache's copy); else the segment map's, which becomes the copy when it is
            // this pool's. (The segment map covers exactly the live segments.)
            // (The offset is computed once on each way: the tag's slot below reuses it.)
            var map = threadCache.pointee.lastOrderMap
            var offset = address &- threadCache.pointee.lastBase
            // (A free sample due keeps the copy's size at 0, ThreadCache.setFreeSampleDue: this
            // one test also sends such a free to the sample check below.)
            if offset >= threadCache.pointee.lastSize {
                // free(NULL) is tested here, not first: address 0 lies below every segment, so it
                // always misses the copy's range (two instructions off every other free).
                guard let pointer else { return }
                // Pointers no pool owns go back to glibc (which preserves errno itself).
                guard let found = SegmentMap.lookup(address) else { return freeForeign(pointer) }
                if found.pointee.pool != UnsafeMutableRawPointer(threadCache.pointee.pool) { return freeSlow(pointer) }
                // With the profile on (and no timed free due), the profile's filter: one load for
                // a block not sampled. (Both leave by a tail call: a call that returns here would
                // cost every free a frame.)
                if sampling, case let due = threadCache.pointee.calls.freeSampleDue, due != 0,
                   due != CallCounters.profileFrees || AllocationProfile.maySample(address) {
                    return freeInstrumented(pointer, threadCache)
                }
                map = found.pointee.orderMap
                offset = address &- found.pointee.base
                // The segment becomes the copy, unless a sample is still due (the profile's
                // filter): the copy's size stays 0 then, and the next free comes back here.
                if threadCache.pointee.calls.freeSampleDue == 0 {
                    threadCache.pointee.lastBase = found.pointee.base
                    threadCache.pointee.lastSize = found.pointee.size
                    threadCache.pointee.lastOrderMap = map
                }
            }
            // (In the copy's range: not NULL.)
            let block = pointer.unsafelyUnwrapped
            if address & threadCache.pointee.minBlockMask == 0,
               let (tag, code, words) = threadCache.cachedUse(address, map: map, offset: offset) {
                return keepCached(block, tag, code: code, threadCache.slot(words: words), threadCache, idle: true)
            }
            return freeSlow(block)
        }
    }
    guard let pointer else { return }
    // Pointers no pool owns go back to glibc (which preserves errno itself).
    guard SegmentMap.lookup(address) != nil else { return freeForeign(pointer) }
    freeSlow(pointer)
}

/// One call in the instrument period (see mallocInstrumented), or, with the profile on, a free
/// whose block the profile's filter cannot rule out.
@inline(never)
private func freeInstrumented(_ pointer: UnsafeMutableRawPointer, _ cache: UnsafeMutablePointer<ThreadCache>) {
    let timed = cache.pointee.calls.freeSampleDue & CallCounters.timedFree != 0 && cache.beginInstrumentedCall(allocation: false)
    // Before the free: once freed, the block may be handed out again by another thread.
    if cache.pointee.pool.pointee.stats.profileSampleBytes != 0 { AllocationProfile.freed(pointer) }
    let start = timed ? buddy_os_precise_ns() : 0
    freeFast(pointer, sampling: false)
    if timed { cache.recordLatency(allocation: false, since: start) }
}

/// A pointer no pool owns: glibc's (counted as a free call of the program, unless re-entrant).
@inline(never)
private func freeForeign(_ pointer: UnsafeMutableRawPointer) {
    if let pool = ProcessPool.existing {
        if buddy_thread_depth() == 0 { pool.countCall(.free) } else { pool.countReentrantCall() }
        if Oversize.mayKnow() { return freeOutside(pointer, pool, function: "free()") }
    }
    __libc_free(pointer)
}

@inline(never)
private func flushFullBin(_ cache: UnsafeMutablePointer<ThreadCache>, bin: Int) {
    buddy_thread_enter()
    if buddy_report_pending() != 0 { ReportTriggers.servicePending() }
    let pool = BuddyEngine(state: cache.pointee.pool)
    // A bin of one large block gives the block just freed to the pool, where it coalesces, and
    // keeps the one it held (see largestDepotBlock). Elsewhere all but the newest block become
    // the bin's spare batch (the spare before it goes to the depot, for any thread's next
    // refill, or to the pool when the depot's shelf is full).
    if pool.size(ofCode: cache.code(ofBin: bin)) > ThreadCache.largestDepotBlock {
        pool.flush(cache, bin: bin, keep: 1)
    } else if pool.stashBatch(cache, bin: bin) {
        pool.foldLiveDelta(cache)
    } else {
        pool.flush(cache, bin: bin, keep: Int((cache.bins + bin).pointee.limit) / 2)
    }
    pool.stampActivity()
    pool.decayDepotIfDue(now: pool.state.pointee.stats.lastActivityMonotonicNs)
    // A thread that allocates gets its timed frees from its timed mallocs (one in the period);
    // one that only frees has none, so its flushes arm them, about one free in the period.
    // (Every flush armed one before: in a churn of random sizes, a free in 100 was timed, a
    // clock read each, 1.3% of the run's time, and the samples were mostly frees.)
    let requested = UInt32(truncatingIfNeeded: cache.pointee.calls.requestedBytes)
    let period = cache.pointee.pool.pointee.stats.instrumentPeriod
    if requested == cache.pointee.calls.requestedAtFlush && period != Int.max {
        cache.pointee.calls.flushedUntilTimed &-= (cache.bins + bin).pointee.limit
        if cache.pointee.calls.flushedUntilTimed <= 0 {
            cache.setFreeSampleDue(cache.pointee.calls.freeSampleDue | CallCounters.timedFree)
            cache.pointee.calls.flushedUntilTimed = Int32(truncatingIfNeeded: period)
        }
    }
    cache.pointee.calls.requestedAtFlush = requested
    buddy_thread_leave()
}

@inline(never)
private func freeSlow(_ pointer: UnsafeMutableRawPointer) {
    if reentered() {
        // Re-entered while this thread may hold the pool lock: release it at the next outer call.
        pointer.storeBytes(of: buddy_thread_deferred(), as: UnsafeMutableRawPointer?.self)
        buddy_thread_set_deferred(pointer)
        return
    }
    defer { buddy_thread_leave() }
    if buddy_report_pending() != 0 { ReportTriggers.servicePending() }
    guard let pool = ProcessPool.existing else { return releaseToPool(pointer, function: "free()") }
    // A thread that only frees (a consumer of blocks other threads allocate) gets its cache at
    // its first free, as a thread that allocates does at its first malloc: its next frees take
    // the fast path instead of the pool lock, one call at a time.
    _ = pool.threadCache()
    pool.countCall(.free)
    releaseToPool(pointer, function: "free()")
}
