import CBuddySupport

// The C-semantics layer: glibc's documented rules on top of the engine, exported under the
// project's own names. The libc names themselves are one-line forwards in BuddyMallocExports.
//
// Every entry point:
//   - goes straight to the system allocator when the thread is already inside the allocator
//     (re-entry through libc, the runtime, or a signal handler), so the pool lock is never
//     taken twice;
//   - hands requests larger than the maximum block, and pointers no pool owns, to glibc.

private let ENOMEM_: Int32 = 12
private let EINVAL_: Int32 = 22
/// glibc's MALLOC_ALIGNMENT on x86-64: every pointer is at least this aligned.
private let minimumAlignment: UInt = 16

// MARK: - Shared paths

/// Allocates `size` bytes aligned to `alignment` (a power of two); sets ENOMEM on failure.
/// The caller has entered the allocator.
@inline(__always)
private func allocate(_ size: UInt, alignment: UInt) -> UnsafeMutableRawPointer? {
    guard let pool = ProcessPool.get() else { return systemAllocate(size, alignment: alignment) }
    let geometry = pool.geometry
    let limit = UInt(geometry.maxBlock)
    if size > limit || alignment > limit { return systemAllocate(size, alignment: alignment, pool: pool) }
    if buddy_thread_deferred() != nil { drainDeferredFrees(pool) }
    let order = max(geometry.order(forSize: Int(size)), geometry.order(forSize: Int(alignment)))
    // Fast path: the thread's cache, no lock. (Any block of the order is aligned enough.)
    if let cache = pool.threadCache(), order < cache.pointee.binCount {
        cache.pointee.calls.allocations &+= 1
        if let (block, tag) = cache.pop(order) {
            tag.pointee = Tag.used | UInt8(truncatingIfNeeded: order)
            return block
        }
        if let block = pool.refill(cache, order: order) { return block }
        buddy_errno_set(ENOMEM_)
        return nil
    }
    buddy_atomic_add_u64_relaxed(&pool.state.pointee.directCalls.allocations, 1)
    var locked = pool.lock()
    var block = pool.allocate(order: order, mayGrow: false)
    if block == nil {
        // Before mapping a segment, give back this thread's cached blocks (see refill).
        pool.unlock(locked)
        if let cache = pool.threadCache() {
            for cached in 0..<cache.pointee.binCount { pool.flush(cache, order: cached, keep: 0) }
        }
        locked = pool.lock()
        block = pool.allocate(order: order, mayGrow: true)
    }
    pool.unlock(locked)
    if block == nil { buddy_errno_set(ENOMEM_) }
    return block
}

/// The system allocator for what the pool does not serve (glibc sets errno itself).
@inline(never)
private func systemAllocate(_ size: UInt, alignment: UInt, pool: BuddyEngine? = nil) -> UnsafeMutableRawPointer? {
    if let pool {
        buddy_atomic_add_u64_relaxed(&pool.state.pointee.counters.systemCalls, 1)
        buddy_atomic_add_u64_relaxed(&pool.state.pointee.counters.systemBytes, UInt64(size))
    }
    if alignment <= minimumAlignment { return __libc_malloc(Int(bitPattern: size)) }
    return __libc_memalign(Int(bitPattern: alignment), Int(bitPattern: size))
}

/// Frees a pointer some pool segment covers. The caller has entered the allocator.
private func releaseToPool(_ pointer: UnsafeMutableRawPointer, function: StaticString) {
    guard let pool = ProcessPool.existing else {
        // Only private pools exist in this process: the pointer is one of theirs.
        reportBadPointer(function, pointer, .otherPool, strategy: .abort)
        return
    }
    if buddy_thread_deferred() != nil { drainDeferredFrees(pool) }
    let locked = pool.lock()
    let outcome = pool.release(pointer)
    pool.unlock(locked)
    switch outcome {
    case .released: buddy_atomic_add_u64_relaxed(&pool.state.pointee.directCalls.frees, 1)
    case .foreign: __libc_free(pointer) // the segment was released while we looked it up
    default: reportBadPointer(function, pointer, outcome, strategy: pool.config.errorStrategy)
    }
}

/// Frees that arrived while the thread was inside the allocator wait on a per-thread list
/// (linked through the blocks themselves) until its next outer call.
@inline(never)
private func drainDeferredFrees(_ pool: BuddyEngine) {
    var next = buddy_thread_deferred()
    buddy_thread_set_deferred(nil)
    while let block = next {
        next = block.load(as: UnsafeMutableRawPointer?.self)
        releaseToPool(block, function: "free()")
    }
}

@inline(__always)
private func isPoolPointer(_ pointer: UnsafeRawPointer) -> Bool {
    SegmentMap.lookup(UInt(bitPattern: pointer)) != nil
}

// MARK: - Exported entry points

@_cdecl("buddy_malloc")
public func buddy_malloc(_ size: Int) -> UnsafeMutableRawPointer? {
    // Fast path: a cached size, a thread with a cache, a bin with a block: one size test (the
    // limit is 0 until the pool exists with caches on), then pop and retag; no lock, no call.
    // The depth is still raised around the pop, so a signal handler's malloc cannot interleave.
    let request = UInt(bitPattern: size)
    if buddy_thread_depth() == 0, let raw = buddy_process_pool_get(), buddy_thread_deferred() == nil {
        let state = raw.assumingMemoryBound(to: PoolState.self)
        let cache = UInt(bitPattern: buddy_thread_cache())
        if request <= state.pointee.cachedSizeLimit, cache > 1 {
            let shift = UInt(state.pointee.geometry.minShift)
            let order = request <= 1 &<< shift ? 0 : Int(truncatingIfNeeded: UInt(UInt.bitWidth) &- UInt((request &- 1).leadingZeroBitCount) &- shift)
            let threadCache = UnsafeMutablePointer<ThreadCache>(bitPattern: cache)!
            buddy_thread_enter()
            if let (block, tag) = threadCache.pop(order) {
                threadCache.pointee.calls.allocations &+= 1
                tag.pointee = Tag.used | UInt8(truncatingIfNeeded: order)
                buddy_thread_leave()
                return block
            }
            buddy_thread_leave()
        }
    }
    return mallocSlow(size)
}

@inline(never)
private func mallocSlow(_ size: Int) -> UnsafeMutableRawPointer? {
    if buddy_thread_depth() != 0 { return __libc_malloc(size) }
    buddy_thread_enter()
    defer { buddy_thread_leave() }
    return allocate(UInt(bitPattern: size), alignment: minimumAlignment)
}

@_cdecl("buddy_free")
public func buddy_free(_ pointer: UnsafeMutableRawPointer?) {
    guard let pointer else { return }
    let address = UInt(bitPattern: pointer)
    // Pointers no pool owns go back to glibc (which preserves errno itself).
    guard let segment = SegmentMap.lookup(address) else { return __libc_free(pointer) }
    // Fast path: an allocated block of a cached order, freed by a thread with a cache, goes on
    // its bin: no lock, no call. (The segment map covers exactly the live segments, so a hit
    // whose pool is ours contains the address.) Anything else takes the checked path.
    if buddy_thread_depth() == 0, let raw = buddy_process_pool_get(), segment.pointee.pool == raw {
        let state = raw.assumingMemoryBound(to: PoolState.self)
        let cache = UInt(bitPattern: buddy_thread_cache())
        let shift = UInt(state.pointee.geometry.minShift)
        if cache > 1, address & ((1 &<< shift) &- 1) == 0 {
            let tag = segment.pointee.orderMap + Int(truncatingIfNeeded: (address &- segment.pointee.base) &>> shift)
            let value = tag.pointee
            let order = Int(value & Tag.orderMask)
            let threadCache = UnsafeMutablePointer<ThreadCache>(bitPattern: cache)!
            if value & Tag.stateMask == Tag.used, order < threadCache.pointee.binCount {
                buddy_thread_enter()
                threadCache.pointee.calls.frees &+= 1
                tag.pointee = Tag.cached | UInt8(truncatingIfNeeded: order)
                let full = threadCache.push(pointer, order, tag: tag)
                buddy_thread_leave()
                if full { flushFullBin(threadCache, order: order) }
                return
            }
        }
    }
    freeSlow(pointer)
}

@inline(never)
private func flushFullBin(_ cache: UnsafeMutablePointer<ThreadCache>, order: Int) {
    buddy_thread_enter()
    BuddyEngine(state: cache.pointee.pool).flush(cache, order: order, keep: Int((cache.bins + order).pointee.limit) / 2)
    buddy_thread_leave()
}

@inline(never)
private func freeSlow(_ pointer: UnsafeMutableRawPointer) {
    if buddy_thread_depth() != 0 {
        // Re-entered while this thread may hold the pool lock: release it at the next outer call.
        pointer.storeBytes(of: buddy_thread_deferred(), as: UnsafeMutableRawPointer?.self)
        buddy_thread_set_deferred(pointer)
        return
    }
    buddy_thread_enter()
    defer { buddy_thread_leave() }
    releaseToPool(pointer, function: "free()")
}

/// C23 `free_sized`: the size is a hint the pool does not need (the order map knows).
@_cdecl("buddy_free_sized")
public func buddy_free_sized(_ pointer: UnsafeMutableRawPointer?, _ size: Int) {
    buddy_free(pointer)
}

/// C23 `free_aligned_sized`.
@_cdecl("buddy_free_aligned_sized")
public func buddy_free_aligned_sized(_ pointer: UnsafeMutableRawPointer?, _ alignment: Int, _ size: Int) {
    buddy_free(pointer)
}

/// calloc: ENOMEM when count * size overflows; the memory is zeroed.
@_cdecl("buddy_calloc")
public func buddy_calloc(_ count: Int, _ size: Int) -> UnsafeMutableRawPointer? {
    let (total, overflow) = UInt(bitPattern: count).multipliedReportingOverflow(by: UInt(bitPattern: size))
    if overflow {
        buddy_errno_set(ENOMEM_)
        return nil
    }
    if buddy_thread_depth() != 0 { return __libc_calloc(count, size) }
    buddy_thread_enter()
    defer { buddy_thread_leave() }
    if let pool = ProcessPool.get(), total <= UInt(pool.geometry.maxBlock) {
        guard let block = allocate(total, alignment: minimumAlignment) else { return nil }
        // Recycled blocks hold old data (and free-list links): always clear what was asked for.
        block.initializeMemory(as: UInt8.self, repeating: 0, count: Int(total))
        return block
    }
    if let pool = ProcessPool.existing {
        buddy_atomic_add_u64_relaxed(&pool.state.pointee.counters.systemCalls, 1)
        buddy_atomic_add_u64_relaxed(&pool.state.pointee.counters.systemBytes, UInt64(total))
    }
    return __libc_calloc(count, size)
}

/// realloc, by glibc's rules:
///   realloc(NULL, n) is malloc(n);
///   realloc(p, 0) frees p and returns NULL;
///   on failure it returns NULL with ENOMEM and p is left intact;
///   a block that already fits (or whose free buddies above it make it fit) stays in place.
@_cdecl("buddy_realloc")
public func buddy_realloc(_ pointer: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer? {
    guard let pointer else { return buddy_malloc(size) }
    if size == 0 {
        buddy_free(pointer)
        return nil
    }
    guard isPoolPointer(pointer) else { return __libc_realloc(pointer, size) }
    let newSize = UInt(bitPattern: size)
    if buddy_thread_depth() != 0 {
        // Re-entered: the block is the caller's, so its tag is stable; move it to the system.
        guard let moved = __libc_malloc(size) else { return nil }
        let old = ProcessPool.existing?.blockSize(of: pointer) ?? 0
        moved.copyMemory(from: pointer, byteCount: min(old, size))
        buddy_free(pointer)
        return moved
    }
    buddy_thread_enter()
    defer { buddy_thread_leave() }
    guard let pool = ProcessPool.existing else {
        reportBadPointer("realloc()", pointer, .otherPool, strategy: .abort)
        return nil
    }
    let geometry = pool.geometry
    let locked = pool.lock()
    let kind = pool.classify(pointer)
    guard case .allocated(let order) = kind else {
        pool.unlock(locked)
        if case .foreign = kind { return __libc_realloc(pointer, size) }
        let outcome = BuddyEngine.outcome(for: kind)
        pool.countBadPointer(outcome)
        reportBadPointer("realloc()", pointer, outcome, strategy: pool.config.errorStrategy)
        buddy_errno_set(EINVAL_)
        return nil
    }
    if newSize <= UInt(geometry.maxBlock),
       pool.resizeInPlace(pointer, from: order, to: geometry.order(forSize: size)) {
        pool.unlock(locked)
        return pointer
    }
    pool.unlock(locked)
    guard let moved = allocate(newSize, alignment: minimumAlignment) else { return nil }
    moved.copyMemory(from: pointer, byteCount: min(geometry.size(ofOrder: order), size))
    releaseToPool(pointer, function: "realloc()")
    return moved
}

/// reallocarray: ENOMEM when count * size overflows (p untouched), else realloc.
@_cdecl("buddy_reallocarray")
public func buddy_reallocarray(_ pointer: UnsafeMutableRawPointer?, _ count: Int, _ size: Int) -> UnsafeMutableRawPointer? {
    let (total, overflow) = UInt(bitPattern: count).multipliedReportingOverflow(by: UInt(bitPattern: size))
    if overflow {
        buddy_errno_set(ENOMEM_)
        return nil
    }
    return buddy_realloc(pointer, Int(bitPattern: total))
}

/// posix_memalign: EINVAL unless alignment is a power of two and a multiple of sizeof(void *);
/// ENOMEM when out of memory; `*result` is written only on success.
@_cdecl("buddy_posix_memalign")
public func buddy_posix_memalign(_ result: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, _ alignment: Int, _ size: Int) -> Int32 {
    let a = UInt(bitPattern: alignment)
    guard a != 0, a & (a - 1) == 0, a % UInt(MemoryLayout<UnsafeRawPointer>.size) == 0 else { return EINVAL_ }
    let saved = buddy_errno_get()
    let block = alignedAllocate(UInt(bitPattern: size), alignment: a)
    buddy_errno_set(saved)
    guard let block else { return ENOMEM_ }
    result?.pointee = block
    return 0
}

/// aligned_alloc: EINVAL (and NULL) unless alignment is a power of two.
@_cdecl("buddy_aligned_alloc")
public func buddy_aligned_alloc(_ alignment: Int, _ size: Int) -> UnsafeMutableRawPointer? {
    let a = UInt(bitPattern: alignment)
    guard a != 0, a & (a - 1) == 0 else {
        buddy_errno_set(EINVAL_)
        return nil
    }
    return alignedAllocate(UInt(bitPattern: size), alignment: a)
}

/// memalign, as glibc implements it: an alignment that is not a power of two is rounded up to
/// one; an alignment above SIZE_MAX / 2 + 1 is EINVAL.
@_cdecl("buddy_memalign")
public func buddy_memalign(_ alignment: Int, _ size: Int) -> UnsafeMutableRawPointer? {
    var a = UInt(bitPattern: alignment)
    if a > UInt.max / 2 + 1 {
        buddy_errno_set(EINVAL_)
        return nil
    }
    if a & (a &- 1) != 0 { a = 1 << UInt(UInt.bitWidth - a.leadingZeroBitCount) }
    return alignedAllocate(UInt(bitPattern: size), alignment: a)
}

/// valloc: aligned to the page.
@_cdecl("buddy_valloc")
public func buddy_valloc(_ size: Int) -> UnsafeMutableRawPointer? {
    alignedAllocate(UInt(bitPattern: size), alignment: UInt(buddy_os_page_size()))
}

/// pvalloc: aligned to the page, the size rounded up to whole pages (ENOMEM on overflow).
@_cdecl("buddy_pvalloc")
public func buddy_pvalloc(_ size: Int) -> UnsafeMutableRawPointer? {
    let page = UInt(buddy_os_page_size())
    let (padded, overflow) = UInt(bitPattern: size).addingReportingOverflow(page - 1)
    if overflow {
        buddy_errno_set(ENOMEM_)
        return nil
    }
    let rounded = max(padded & ~(page - 1), page)
    return alignedAllocate(rounded, alignment: page)
}

private func alignedAllocate(_ size: UInt, alignment: UInt) -> UnsafeMutableRawPointer? {
    let a = max(alignment, minimumAlignment)
    if buddy_thread_depth() != 0 {
        return a <= minimumAlignment ? __libc_malloc(Int(bitPattern: size)) : __libc_memalign(Int(bitPattern: a), Int(bitPattern: size))
    }
    buddy_thread_enter()
    defer { buddy_thread_leave() }
    return allocate(size, alignment: a)
}

/// malloc_usable_size: exactly the block's size (every byte of it is the caller's to write);
/// 0 for NULL; glibc's answer for a pointer the system allocator owns.
@_cdecl("buddy_malloc_usable_size")
public func buddy_malloc_usable_size(_ pointer: UnsafeMutableRawPointer?) -> Int {
    guard let pointer else { return 0 }
    guard isPoolPointer(pointer) else { return buddy_system_usable_size(pointer) }
    guard let pool = ProcessPool.existing else { return 0 }
    // An allocated block's tag only changes when its owner frees it: no lock needed to read it.
    let kind = pool.classify(pointer)
    switch kind {
    case .allocated(let order): return pool.geometry.size(ofOrder: order)
    case .foreign: return buddy_system_usable_size(pointer)
    default:
        let outcome = BuddyEngine.outcome(for: kind)
        pool.countBadPointer(outcome)
        reportBadPointer("malloc_usable_size()", pointer, outcome, strategy: pool.config.errorStrategy)
        return 0
    }
}
