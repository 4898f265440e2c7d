#if !BUDDY_ONE_MODULE
import BuddyEngine
#endif
import CBuddySupport

// The C-semantics layer: glibc's documented rules on top of the engine, exported under the
// project's own names. The libc names themselves are one-line forwards in BuddyMallocExports.
//
// Every entry point:
//   - goes straight to the system allocator when the thread is already inside the allocator
//     (re-entry through libc, the runtime, or a signal handler), so the pool lock is never
//     taken twice;
//   - maps requests larger than the maximum block itself (Oversize.swift), and hands pointers
//     no pool or oversize block owns to glibc.

/// errno values (Linux), for the C rules here and the private-pool C API.
let ENOMEM_: Int32 = 12
let EINVAL_: Int32 = 22
/// glibc's MALLOC_ALIGNMENT on x86-64: every pointer is at least this aligned.
let minimumAlignment: UInt = 16

// MARK: - Shared paths

/// Allocates `size` bytes aligned to `alignment` (a power of two); sets ENOMEM on failure.
/// Counts the block for `entry`, and the call itself when `call` (see Stats.swift).
/// With `dirtyBytes` (set to Int.max by the caller), a block from the pool's free areas lowers it
/// to the bytes at its start that may be non-zero (BuddyEngine.allocate): calloc's clearing.
/// The caller has entered the allocator.
@inline(__always)
func allocate(_ size: UInt, alignment: UInt, entry: Entry, call: Bool,
                      dirtyBytes: UnsafeMutablePointer<Int>? = nil) -> UnsafeMutableRawPointer? {
    guard let pool = ProcessPool.get() else { return systemAllocate(size, alignment: alignment) }
    if call { pool.countCall(entry) }
    if entry.aligned { pool.countAlignment(alignment) }
    let geometry = pool.geometry
    let limit = UInt(geometry.maxBlock)
    if size > limit || alignment > limit { return allocateOversize(size, alignment: alignment, pool: pool, entry: entry) }
    if buddy_thread_deferred() != nil { drainDeferredFrees(pool) }
    // A block's order, or a slab class's code (Slab.swift).
    let order = pool.code(forSize: size, alignment: alignment)
    // Fast path: the thread's cache, no lock. (Any block of the order is aligned enough.)
    if let cache = pool.threadCache(), case let bin = cache.bin(ofCode: order), bin >= 0 {
        if let (block, _) = cache.pop(bin) {
            pool.countSlowAllocation(order: order, size: size, alignment: alignment, block: block, entry: entry)
            return block
        }
        if let block = pool.refill(cache, code: order) {
            pool.countSlowAllocation(order: order, size: size, alignment: alignment, block: block, entry: entry)
            pool.stampActivity()
            pool.decayDepotIfDue(now: pool.state.pointee.stats.lastActivityMonotonicNs)
            return block
        }
        pool.countFailure(entry)
        buddy_errno_set(ENOMEM_)
        return nil
    }
    // (BUDDY_HARDEN: the process pool has no thread caches, so only this path tests the flag.)
    if pool.hardened { return allocateHardened(size, alignment: alignment, pool: pool, entry: entry, dirtyBytes: dirtyBytes) }
    var locked = false
    let block = pool.allocateBeforeGrowing(code: order, cache: nil, bin: -1, dirtyBytes: dirtyBytes, locked: &locked).block
    pool.unlock(locked)
    if block == nil {
        pool.countFailure(entry)
        buddy_errno_set(ENOMEM_)
    } else {
        pool.countSlowAllocation(order: order, size: size, alignment: alignment, block: block!, entry: entry)
        pool.stampActivity()
    }
    return block
}

/// allocate's path under BUDDY_HARDEN (Hardening.swift): a block with room for the canary after
/// the request, the canary armed. When the pool is full, the quarantine is emptied first.
@inline(never)
func allocateHardened(_ size: UInt, alignment: UInt, pool: BuddyEngine, entry: Entry,
                              dirtyBytes: UnsafeMutablePointer<Int>?) -> UnsafeMutableRawPointer? {
    let (padded, overflow) = size.addingReportingOverflow(UInt(Hardening.canaryBytes))
    // (Oversize blocks need no canary: their guard page does its work.)
    if overflow || padded > UInt(pool.geometry.maxBlock) { return allocateOversize(size, alignment: alignment, pool: pool, entry: entry) }
    let code = pool.code(forSize: padded, alignment: alignment)
    let locked = pool.lock()
    var block = pool.allocate(code: code, mayGrow: true, dirtyBytes: dirtyBytes)
    while block == nil && pool.process.pointee.quarantineCount > 0 {
        pool.evictQuarantined(function: "malloc()")
        block = pool.allocate(code: code, mayGrow: true, dirtyBytes: dirtyBytes)
    }
    if let block { pool.armCanary(block, code: code) }
    pool.unlock(locked)
    guard let block else {
        pool.countFailure(entry)
        buddy_errno_set(ENOMEM_)
        return nil
    }
    pool.countSlowAllocation(order: code, size: size, alignment: alignment, block: block, entry: entry)
    pool.stampActivity()
    return block
}

extension BuddyEngine {
    /// How long freed oversize blocks stay mapped for reuse: BUDDY_RELEASE_DELAY.
    var oversizeKeepNs: UInt64 { UInt64(config.releaseDelay * 1e9) }
}

/// The system allocator, while the process has no pool (glibc sets errno itself).
@inline(never)
func systemAllocate(_ size: UInt, alignment: UInt) -> UnsafeMutableRawPointer? {
    alignment <= minimumAlignment ? __libc_malloc(Int(bitPattern: size))
        : __libc_memalign(Int(bitPattern: alignment), Int(bitPattern: size))
}

/// A block larger than the maximum block (or more aligned): a mapping of its own, recorded in
/// the oversize table (Oversize.swift); fresh from mmap, so already zeroed. Sets ENOMEM on failure.
@inline(never)
func allocateOversize(_ size: UInt, alignment: UInt, pool: BuddyEngine, entry: Entry) -> UnsafeMutableRawPointer? {
    pool.countSystemRequest(size)
    var zeroed = false
    if case .calloc = entry { zeroed = true }
    let callerErrno = buddy_errno_get() // (a refused mapping sets ENOMEM; glibc may then serve)
    let mapped = Oversize.withinMappingBudget() ? Oversize.allocate(size, alignment: alignment, zeroed: zeroed, keepNs: pool.oversizeKeepNs) : nil
    guard let block = mapped ?? systemFallback(size, alignment: alignment, zeroed: zeroed, pool: pool) else {
        pool.countFailure(entry)
        buddy_errno_set(ENOMEM_)
        return nil
    }
    buddy_errno_set(callerErrno)
    // (malloc's blocks are profiled by its instrumented path, as in countSlowAllocation.)
    if case .malloc = entry {} else if pool.state.pointee.stats.profileSampleBytes != 0, let cache = BuddyEngine.threadCounters() {
        AllocationProfile.allocated(block, size: size, counted: false, cache: cache)
    }
    pool.stampActivity()
    return block
}

/// An oversize block from glibc's malloc, when the oversize blocks' mappings reached their
/// budget (Oversize.withinMappingBudget) or the OS refused one. Each oversize block is two
/// mappings (the block and its guard page), so a program that kept about 32,000 of them live
/// reached vm.max_map_count (65,530), and then every mmap failed while memory was plenty, glibc's
/// too: with BUDDY_MAX_BLOCK=4K, sqlite's pages are oversize, and a 200 MB page cache failed with
/// "out of memory". glibc's heap holds such blocks without a mapping each. They are glibc's from
/// then on: free, realloc and malloc_usable_size find no pool segment and no oversize entry for
/// them, and hand them back to glibc, as for the calls made before the pool existed. Said once
/// on stderr, with what to do.
@inline(never)
func systemFallback(_ size: UInt, alignment: UInt, zeroed: Bool, pool: BuddyEngine) -> UnsafeMutableRawPointer? {
    let block: UnsafeMutableRawPointer?
    if zeroed && alignment <= minimumAlignment {
        block = __libc_calloc(1, Int(bitPattern: size))
    } else {
        block = systemAllocate(size, alignment: alignment)
        if zeroed, let block { block.initializeMemory(as: UInt8.self, repeating: 0, count: Int(bitPattern: size)) }
    }
    guard let block else { return nil }
    if buddy_atomic_cas_u64_relaxed(&systemFallbackWarned, 0, 1) != 0 {
        var line = TextBuffer()
        line.append("buddy: no mapping of its own for a block of ")
        line.append(decimal: UInt64(size))
        line.append(" bytes above the maximum block (")
        line.append(decimal: pool.geometry.maxBlock)
        line.append(" bytes): the process's mappings are near vm.max_map_count (each such block is two); glibc's malloc serves these blocks while they are. Raise BUDDY_MAX_BLOCK so that they come from the pool\n")
        line.write(to: 2)
    }
    return block
}

/// Whether systemFallback has said so on stderr (0: not yet).
nonisolated(unsafe) var systemFallbackWarned: UInt64 = 0

/// Frees a pointer no pool segment covers: a live oversize block (unmapped), a bad pointer
/// (inside one, or a recently freed one's: reported), else glibc's. The caller has counted the call.
@inline(never)
func freeOutside(_ pointer: UnsafeMutableRawPointer, _ pool: BuddyEngine, function: StaticString) {
    let outer = buddy_thread_depth() == 0
    buddy_thread_enter()
    defer { buddy_thread_leave() }
    switch Oversize.find(pointer, wait: outer) {
    case .none: __libc_free(pointer)
    case .busy:
        // Re-entered while the table's lock is busy (maybe held by this thread): the free waits
        // for the thread's next outer call, like a re-entrant free of a pool block.
        pointer.storeBytes(of: buddy_thread_deferred(), as: UnsafeMutableRawPointer?.self)
        buddy_thread_set_deferred(pointer)
    case .block:
        // A sampled block leaves the profile before its address can be mapped again.
        if pool.state.pointee.stats.profileSampleBytes != 0 { AllocationProfile.freed(pointer) }
        if Oversize.release(pointer, keepNs: pool.oversizeKeepNs) {
            pool.stampActivity()
        } else {
            // Another thread freed it meanwhile.
            pool.countMisuse(.doubleFree)
            reportMisuse(function, pointer, .doubleFree, strategy: pool.config.errorStrategy)
        }
    case .bad(let misuse):
        pool.countMisuse(misuse)
        reportMisuse(function, pointer, misuse, strategy: pool.config.errorStrategy)
    }
}

/// realloc of a pointer no pool segment covers: an oversize block's (back into the pool when
/// the new size fits a block, else resized with mremap), a bad pointer, or glibc's.
@inline(never)
func reallocOutside(_ pointer: UnsafeMutableRawPointer, _ size: Int) -> UnsafeMutableRawPointer? {
    guard let pool = ProcessPool.existing, Oversize.mayKnow() else { return __libc_realloc(pointer, size) }
    let outer = buddy_thread_depth() == 0
    buddy_thread_enter()
    defer { buddy_thread_leave() }
    switch Oversize.find(pointer, wait: outer) {
    case .none: return __libc_realloc(pointer, size)
    case .busy:
        buddy_errno_set(ENOMEM_)
        return nil
    case .bad(let found):
        let misuse = found.notFreeing
        pool.countMisuse(misuse)
        reportMisuse("realloc()", pointer, misuse, strategy: pool.config.errorStrategy)
        buddy_errno_set(EINVAL_)
        return nil
    case .block(let bytes, _):
        let newSize = UInt(bitPattern: size)
        let profiled = pool.state.pointee.stats.profileSampleBytes != 0
        if outer, newSize <= UInt(pool.geometry.maxBlock),
           let moved = allocate(newSize, alignment: minimumAlignment, entry: .realloc, call: false) {
            // Back into the pool: a block of its size, and the mapping goes back to the OS.
            moved.copyMemory(from: pointer, byteCount: Int(min(newSize, bytes)))
            if profiled { AllocationProfile.freed(pointer) }
            _ = Oversize.release(pointer, keepNs: pool.oversizeKeepNs)
            return moved
        }
        pool.countSystemRequest(newSize)
        var assembled = false
        let resized = Oversize.resize(pointer, to: newSize, wait: outer, assembled: &assembled)
        if assembled && outer, let moved = Oversize.allocate(newSize, alignment: minimumAlignment, zeroed: false, keepNs: pool.oversizeKeepNs) {
            // Pieces of freed blocks: copied into a new block (its pages, too, may be reused).
            moved.copyMemory(from: pointer, byteCount: Int(min(newSize, bytes)))
            if profiled { AllocationProfile.freed(pointer) }
            _ = Oversize.release(pointer, keepNs: pool.oversizeKeepNs)
            pool.stampActivity()
            return moved
        } else if assembled {
            buddy_errno_set(ENOMEM_)
        }
        guard let resized else {
            if outer { pool.countFailure(.realloc) }
            return nil
        }
        if resized != pointer, profiled { AllocationProfile.freed(pointer) }
        pool.stampActivity()
        return resized
    }
}

/// malloc_usable_size of a pointer no pool segment covers: an oversize block's mapping (whole
/// pages, all the caller's), 0 for a bad pointer (reported), else glibc's answer.
@inline(never)
func usableOutside(_ pointer: UnsafeMutableRawPointer) -> Int {
    guard let pool = ProcessPool.existing, Oversize.mayKnow() else { return buddy_system_usable_size(pointer) }
    let outer = buddy_thread_depth() == 0
    buddy_thread_enter()
    defer { buddy_thread_leave() }
    switch Oversize.find(pointer, wait: outer) {
    case .none: return buddy_system_usable_size(pointer)
    case .busy: return 0
    case .block(let bytes, _): return Int(bitPattern: bytes)
    case .bad(let found):
        let misuse = found.notFreeing
        pool.countMisuse(misuse)
        reportMisuse("malloc_usable_size()", pointer, misuse, strategy: pool.config.errorStrategy)
        return 0
    }
}

/// free_sized and free_aligned_sized: a size the block cannot have been allocated with is a
/// misuse, counted and reported with the error strategy (under log the block is freed all the
/// same). The rule never rejects a correct program: the size must be at most the block's usable
/// size, and 0 only for a block a zero-byte request gets (the smallest block, one of the
/// alignment's size, or an oversize block asked for with 0). Pointers of glibc's are not checked.
@inline(never)
func checkFreedSize(_ pointer: UnsafeMutableRawPointer, _ size: UInt, alignment: UInt, function: StaticString) {
    guard buddy_thread_depth() == 0, let pool = ProcessPool.existing else { return }
    buddy_thread_enter()
    defer { buddy_thread_leave() }
    let usable: UInt, smallest: UInt
    if isPoolPointer(pointer) {
        // Not an allocated block: free reports it.
        guard case .allocated(let code) = pool.classify(pointer) else { return }
        usable = UInt(pool.usableSize(ofCode: code))
        smallest = max(UInt(pool.geometry.minBlock), alignment)
    } else {
        guard case .block(let bytes, let requested) = Oversize.find(pointer, wait: true) else { return }
        usable = bytes
        smallest = requested == 0 ? bytes : 0
    }
    if size <= usable && (size != 0 || usable <= smallest) { return }
    pool.countMisuse(.wrongSize)
    reportMisuse(function, pointer, .wrongSize, strategy: pool.config.errorStrategy, size: size, usable: usable)
}

/// Frees a pointer some pool segment covers. The caller has entered the allocator.
func releaseToPool(_ pointer: UnsafeMutableRawPointer, function: StaticString) {
    guard let pool = ProcessPool.existing else {
        // Only private pools exist in this process: the pointer is one of theirs.
        reportBadPointer(function, pointer, .otherPool, strategy: .abort)
        return
    }
    if buddy_thread_deferred() != nil { drainDeferredFrees(pool) }
    // A sampled block leaves the profile before it can be handed out again.
    if pool.state.pointee.stats.profileSampleBytes != 0 { AllocationProfile.freed(pointer) }
    let locked = pool.lock()
    // pool.release(pointer), keeping the block's order for the statistics.
    let kind = pool.classify(pointer)
    if case .allocated(let order) = kind {
        let address = UInt(bitPattern: pointer)
        if pool.hardened {
            pool.releaseHardened(address, code: order, segment: SegmentMap.lookup(address)!, function: function)
        } else {
            pool.release(address, code: order, segment: SegmentMap.lookup(address)!)
        }
        pool.unlock(locked)
        pool.countSlowFree(order: order)
        return
    }
    let outcome = BuddyEngine.outcome(for: kind)
    pool.countBadPointer(outcome)
    pool.unlock(locked)
    switch outcome {
    case .released: break
    case .foreign: freeOutside(pointer, pool, function: function) // the segment went away meanwhile, or a deferred oversize free
    default: reportBadPointer(function, pointer, outcome, strategy: pool.config.errorStrategy)
    }
}

/// Frees that arrived while the thread was inside the allocator wait on a per-thread list
/// (linked through the blocks themselves) until its next outer call.
@inline(never)
func drainDeferredFrees(_ pool: BuddyEngine) {
    var next = buddy_thread_deferred()
    buddy_thread_set_deferred(nil)
    while let block = next {
        next = block.load(as: UnsafeMutableRawPointer?.self)
        releaseToPool(block, function: "free()")
    }
}

@inline(__always)
func isPoolPointer(_ pointer: UnsafeRawPointer) -> Bool {
    SegmentMap.lookup(UInt(bitPattern: pointer)) != nil
}

/// Counts a call of an entry point without a fast path (not when re-entered: those are glibc's).
@inline(__always)
func countEntry(_ entry: Entry) {
    if buddy_thread_depth() == 0, let pool = ProcessPool.existing { pool.countCall(entry) }
}

/// Counts a failed call (the pool exists: the call was counted).
@inline(__always)
func countFailure(_ entry: Entry) {
    if buddy_thread_depth() == 0, let pool = ProcessPool.existing { pool.countFailure(entry) }
}

/// C23 `free_sized`: the pool does not need the size (the order map knows), but checks it
/// (checkFreedSize). (Counted as free_sized, and as free.)
@_cdecl("buddy_free_sized")
public func buddy_free_sized(_ pointer: UnsafeMutableRawPointer?, _ size: Int) {
    countEntry(.freeSized)
    if let pointer { checkFreedSize(pointer, UInt(bitPattern: size), alignment: 0, function: "free_sized()") }
    buddy_free(pointer)
}

/// C23 `free_aligned_sized`, the size checked likewise. (Counted as free_aligned_sized, and as free.)
@_cdecl("buddy_free_aligned_sized")
public func buddy_free_aligned_sized(_ pointer: UnsafeMutableRawPointer?, _ alignment: Int, _ size: Int) {
    countEntry(.freeAlignedSized)
    if let pointer { checkFreedSize(pointer, UInt(bitPattern: size), alignment: UInt(bitPattern: alignment), function: "free_aligned_sized()") }
    buddy_free(pointer)
}

/// calloc: ENOMEM when count * size overflows; the memory is zeroed.
@_cdecl("buddy_calloc")
public func buddy_calloc(_ count: Int, _ size: Int) -> UnsafeMutableRawPointer? {
    let (total, overflow) = UInt(bitPattern: count).multipliedReportingOverflow(by: UInt(bitPattern: size))
    if overflow {
        countEntry(.calloc)
        countFailure(.calloc)
        buddy_errno_set(ENOMEM_)
        return nil
    }
    // A cached block holds old data and its links: clear what was asked for.
    if let block = allocateCached(total, alignment: minimumAlignment, entry: .calloc) {
        block.initializeMemory(as: UInt8.self, repeating: 0, count: Int(total))
        return block
    }
    if reentered() { return __libc_calloc(count, size) }
    defer { buddy_thread_leave() }
    guard let pool = ProcessPool.get() else { return __libc_calloc(count, size) }
    pool.countCall(.calloc)
    if total <= UInt(pool.geometry.maxBlock) {
        // Recycled blocks hold old data (and free-list links): clear what was asked for, except
        // what the pool knows reads as zero (an untouched segment tail, pages given back).
        var dirty = Int.max
        guard let block = allocate(total, alignment: minimumAlignment, entry: .calloc, call: false, dirtyBytes: &dirty) else { return nil }
        block.initializeMemory(as: UInt8.self, repeating: 0, count: min(Int(total), dirty))
        return block
    }
    // A fresh mapping reads as zero: nothing to clear.
    return allocateOversize(total, alignment: minimumAlignment, pool: pool, entry: .calloc)
}

/// realloc, by glibc's rules:
///   realloc(NULL, n) is malloc(n);
///   realloc(p, 0) frees p and returns NULL;
///   on failure it returns NULL with ENOMEM and p is left intact;
///   a block that already fits (or whose free buddies above it make it fit) stays in place.
@_cdecl("buddy_realloc")
public func buddy_realloc(_ pointer: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer? {
    // Every realloc counts as one; realloc(NULL, n) and realloc(p, 0) also count as malloc / free.
    countEntry(.realloc)
    guard let pointer else { return buddy_malloc(size) }
    if size == 0 {
        buddy_free(pointer)
        return nil
    }
    let newSize = UInt(bitPattern: size)
    if let kept = reallocCached(pointer, newSize) { return kept }
    guard isPoolPointer(pointer) else { return reallocOutside(pointer, size) }
    if reentered() {
        // Re-entered: the block is the caller's, so its tag is stable; move it to the system.
        guard let moved = __libc_malloc(size) else { return nil }
        let old = ProcessPool.existing?.blockSize(of: pointer) ?? 0
        moved.copyMemory(from: pointer, byteCount: min(old, size))
        buddy_free(pointer)
        return moved
    }
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
        let misuse = Misuse(BuddyEngine.outcome(for: kind), freeing: false)
        pool.countMisuse(misuse)
        reportMisuse("realloc()", pointer, misuse, strategy: pool.config.errorStrategy)
        buddy_errno_set(EINVAL_)
        return nil
    }
    if pool.hardened {
        // In place while the size fits the usable bytes (glibc's rule; the canary stays where
        // it is); else a new block (with its canary), the old one checked and quarantined.
        if newSize <= UInt(pool.usableSize(ofCode: order)) {
            pool.unlock(locked)
            return pointer
        }
        pool.unlock(locked)
        return reallocByMoving(pointer, to: newSize, keeping: pool.usableSize(ofCode: order), code: order, pool)
    }
    if order > geometry.maxOrder {
        // A slab object stays while the new size has its class; else it moves (a class is one
        // size: no neighbour to grow into, and a smaller class frees memory).
        if newSize <= UInt(geometry.maxBlock), pool.code(forSize: newSize, alignment: minimumAlignment) == order {
            pool.unlock(locked)
            pool.stampActivity()
            return pointer
        }
    } else if newSize <= UInt(geometry.maxBlock),
       pool.resizeInPlace(pointer, from: order, to: geometry.order(forSize: size)) {
        pool.countResize(from: order, to: geometry.order(forSize: size))
        pool.unlock(locked)
        pool.stampActivity()
        return pointer
    }
    pool.unlock(locked)
    return reallocByMoving(pointer, to: newSize, keeping: pool.size(ofCode: order), code: order, pool)
}

/// realloc's move: a new block, the first `keeping` bytes that fit copied, the old block freed;
/// nil with ENOMEM, the old block intact, when the pool has no block for `size`. The old block
/// (of allocation code `code`, classified by the caller) goes to the thread's cache when its
/// code has a bin, as free's fast path puts it: a program that grows its buffers a step at a
/// time gets it back at its next allocation of that size, not after a coalesce and a split in
/// the pool. (A hardened pool has no caches: its blocks go through the quarantine.)
private func reallocByMoving(_ pointer: UnsafeMutableRawPointer, to size: UInt, keeping bytes: Int,
                             code: Int, _ pool: BuddyEngine) -> UnsafeMutableRawPointer? {
    guard let moved = allocate(size, alignment: minimumAlignment, entry: .realloc, call: false) else { return nil }
    moved.copyMemory(from: pointer, byteCount: min(bytes, Int(bitPattern: size)))
    if let cache = pool.threadCache(), case let bin = cache.bin(ofCode: code), bin >= 0 {
        if pool.state.pointee.stats.profileSampleBytes != 0 { AllocationProfile.freed(pointer) }
        // A free of realloc's, not of the program's: counted with the slow paths' frees.
        cache.pointee.calls.slowFrees &+= 1
        keepCached(pointer, pool.tagAddress(pointer), code: code, cache.slot(bin), cache, idle: false)
        return moved
    }
    releaseToPool(pointer, function: "realloc()")
    return moved
}

/// reallocarray: ENOMEM when count * size overflows (p untouched), else realloc.
@_cdecl("buddy_reallocarray")
public func buddy_reallocarray(_ pointer: UnsafeMutableRawPointer?, _ count: Int, _ size: Int) -> UnsafeMutableRawPointer? {
    // Counted as reallocarray, and as the realloc it becomes.
    countEntry(.reallocarray)
    let (total, overflow) = UInt(bitPattern: count).multipliedReportingOverflow(by: UInt(bitPattern: size))
    if overflow {
        countFailure(.reallocarray)
        buddy_errno_set(ENOMEM_)
        return nil
    }
    return buddy_realloc(pointer, Int(bitPattern: total))
}

/// posix_memalign: EINVAL unless alignment is a power of two and a multiple of sizeof(void *)
/// (errno untouched); ENOMEM when out of memory, also in errno, as glibc sets it (programs read
/// errno: glibc's tst-malloc-thread-fail); `*result` is written only on success.
@_cdecl("buddy_posix_memalign")
public func buddy_posix_memalign(_ result: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, _ alignment: Int, _ size: Int) -> Int32 {
    let a = UInt(bitPattern: alignment)
    guard a != 0, a & (a - 1) == 0, a % UInt(MemoryLayout<UnsafeRawPointer>.size) == 0 else {
        countEntry(.posixMemalign)
        countFailure(.posixMemalign)
        return EINVAL_
    }
    let saved = buddy_errno_get()
    guard let block = alignedAllocate(UInt(bitPattern: size), alignment: a, entry: .posixMemalign) else {
        buddy_errno_set(ENOMEM_)
        return ENOMEM_
    }
    buddy_errno_set(saved)
    result?.pointee = block
    return 0
}

/// aligned_alloc: EINVAL (and NULL) unless alignment is a power of two.
@_cdecl("buddy_aligned_alloc")
public func buddy_aligned_alloc(_ alignment: Int, _ size: Int) -> UnsafeMutableRawPointer? {
    let a = UInt(bitPattern: alignment)
    guard a != 0, a & (a - 1) == 0 else {
        countEntry(.alignedAlloc)
        countFailure(.alignedAlloc)
        buddy_errno_set(EINVAL_)
        return nil
    }
    return alignedAllocate(UInt(bitPattern: size), alignment: a, entry: .alignedAlloc)
}

/// memalign, as glibc implements it: an alignment that is not a power of two is rounded up to
/// one; an alignment above SIZE_MAX / 2 + 1 is EINVAL.
@_cdecl("buddy_memalign")
public func buddy_memalign(_ alignment: Int, _ size: Int) -> UnsafeMutableRawPointer? {
    var a = UInt(bitPattern: alignment)
    if a > UInt.max / 2 + 1 {
        countEntry(.memalign)
        countFailure(.memalign)
        buddy_errno_set(EINVAL_)
        return nil
    }
    if a & (a &- 1) != 0 { a = 1 << UInt(ceilLog2(a)) }
    return alignedAllocate(UInt(bitPattern: size), alignment: a, entry: .memalign)
}

/// valloc: aligned to the page.
@_cdecl("buddy_valloc")
public func buddy_valloc(_ size: Int) -> UnsafeMutableRawPointer? {
    alignedAllocate(UInt(bitPattern: size), alignment: UInt(buddy_os_page_size()), entry: .valloc)
}

/// pvalloc: aligned to the page, the size rounded up to whole pages (ENOMEM on overflow).
@_cdecl("buddy_pvalloc")
public func buddy_pvalloc(_ size: Int) -> UnsafeMutableRawPointer? {
    let page = UInt(buddy_os_page_size())
    let (padded, overflow) = UInt(bitPattern: size).addingReportingOverflow(page - 1)
    if overflow {
        countEntry(.pvalloc)
        countFailure(.pvalloc)
        buddy_errno_set(ENOMEM_)
        return nil
    }
    let rounded = max(padded & ~(page - 1), page)
    return alignedAllocate(rounded, alignment: page, entry: .pvalloc)
}

func alignedAllocate(_ size: UInt, alignment: UInt, entry: Entry) -> UnsafeMutableRawPointer? {
    let a = max(alignment, minimumAlignment)
    if let block = allocateCached(size, alignment: a, entry: entry) { return block }
    if reentered() { return systemAllocate(size, alignment: a) }
    defer { buddy_thread_leave() }
    return allocate(size, alignment: a, entry: entry, call: true)
}

/// malloc_usable_size: exactly the block's size (every byte of it is the caller's to write);
/// 0 for NULL; glibc's answer for a pointer the system allocator owns.
@_cdecl("buddy_malloc_usable_size")
public func buddy_malloc_usable_size(_ pointer: UnsafeMutableRawPointer?) -> Int {
    countEntry(.mallocUsableSize)
    guard let pointer else { return 0 }
    guard isPoolPointer(pointer) else { return usableOutside(pointer) }
    guard let pool = ProcessPool.existing else { return 0 }
    // An allocated block's tag only changes when its owner frees it: no lock needed to read it.
    let kind = pool.classify(pointer)
    switch kind {
    case .allocated(let order): return pool.usableSize(ofCode: order)
    case .foreign: return buddy_system_usable_size(pointer)
    default:
        let misuse = Misuse(BuddyEngine.outcome(for: kind), freeing: false)
        pool.countMisuse(misuse)
        reportMisuse("malloc_usable_size()", pointer, misuse, strategy: pool.config.errorStrategy)
        return 0
    }
}

/// malloc_trim: this thread's cached blocks go back to the pool, then the pages of every free
/// block of two pages or more, and every empty segment, go back to the OS (BuddyEngine.trim()).
/// Returns 1 when memory was released, like glibc. `pad` is ignored (the pool keeps no top pad).
@_cdecl("buddy_malloc_trim")
public func buddy_malloc_trim(_ pad: Int) -> Int32 {
    if buddy_thread_depth() != 0 { return 0 }
    buddy_thread_enter()
    defer { buddy_thread_leave() }
    guard let pool = ProcessPool.existing else { return 0 }
    if let cache = BuddyEngine.threadCounters() { pool.flushAll(cache) }
    pool.drainDepot()
    let locked = pool.lock()
    let released = pool.trim()
    pool.unlock(locked)
    let unmapped = Oversize.releaseRetained()
    pool.stampActivity()
    return released > 0 || unmapped > 0 ? 1 : 0
}
