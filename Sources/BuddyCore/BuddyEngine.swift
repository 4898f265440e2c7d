import CBuddySupport

/// How a pool is configured. The defaults are the design document's (initial size 1 MiB,
/// blocks 16 B to 1 MiB, growth factor 2.0, no limit).
public struct PoolConfig: Equatable, Sendable {
    /// Smallest block, a power of two >= 16.
    public var minBlock = 16
    /// Largest block, a power of two >= minBlock; larger requests are not the pool's.
    public var maxBlock = 1 << 20
    /// Bytes mapped when the pool is created (rounded up to a power of two >= the minimum segment).
    public var initialSize = 1 << 20
    /// A new segment grows the pool from `S` to about `S * growthFactor` bytes (>= 1.0).
    public var growthFactor = 2.0
    /// Upper bound on the bytes of all segments; 0 means no limit.
    public var maxPoolSize = 0
    /// When the pool takes its lock.
    public var threadSafety = ThreadSafety.automatic
    /// What happens after a bad pointer has been counted and reported.
    public var errorStrategy = ErrorStrategy.abort
    /// Seconds a free top-order block keeps its pages, and an empty segment its mapping, before
    /// they go back to the OS (checked when blocks are freed; 0: at once).
    public var releaseDelay = 1.0
    /// Size classes of segments: blocks smaller than `smallBlocksBelow` come from segments of
    /// their own, blocks from there up to `largeBlocksFrom` from others, larger ones from a third
    /// kind (0: no such boundary). See "Segments by size class" in BuddyEngine.
    public var smallBlocksBelow = 0
    public var largeBlocksFrom = 0
    /// Slab classes for requests from 1 KiB to 32 KiB (Slab.swift): malloc's pool only.
    public var slabs = false
    /// BUDDY_HARDEN (Hardening.swift): canaries and a quarantine, no thread caches. malloc's
    /// pool only.
    public var hardened = false

    public init() {}

    /// The process-wide pool's defaults (what malloc uses): the design document's, but with blocks
    /// up to 8 MiB. Buffers of 1 to 8 MiB are common (I/O, images, big arrays); below glibc's
    /// largest mmap threshold (32 MiB) they would otherwise cost an mmap, a page fault per page
    /// and an munmap each time (the `large` benchmark: 0.57 s with 1 MiB, 0.08 s with 8 MiB).
    /// A block's unused tail costs address space, not memory, until it is touched.
    public static var process: PoolConfig {
        var config = PoolConfig()
        config.maxBlock = 8 << 20
        config.initialSize = 8 << 20
        // Blocks under 2 KiB, 2 to 16 KiB, and 32 KiB up come from separate segments (measured on
        // the realloc benchmark: peak RSS 224M -> 66M, glibc 45M; 1 KiB/64 KiB gave 73M).
        config.smallBlocksBelow = 2 << 10
        config.largeBlocksFrom = 32 << 10
        config.slabs = true
        return config
    }

    /// The smallest segment: a multiple of the segment map's granule and of the largest block.
    public var minSegment: Int { max(1 << SegmentMap.granuleShift, maxBlock) }
}

public enum ThreadSafety: UInt8, Sendable {
    /// Lock, but skip the lock while the process has a single thread.
    case automatic
    /// Always lock.
    case always
    /// Never lock: the pool is used from one thread at a time.
    case off
}

public enum ErrorStrategy: UInt8, Sendable {
    /// Report, then abort like glibc's "free(): invalid pointer".
    case abort
    /// Report and carry on, leaving the pool untouched.
    case log
}

/// What a pointer is to a pool.
public enum PointerKind: Equatable, Sendable {
    /// No pool owns this address: it belongs to the system allocator (or to nobody).
    case foreign
    /// Inside another pool's segment.
    case otherPool
    /// The start of an allocated block of this order, or of a slab object whose class has this
    /// code (`order > maxOrder`: see Slab.swift; `size(ofCode:)` gives the bytes of either).
    case allocated(order: Int)
    /// The start of a free block: freeing it again is a double free.
    case free
    /// Inside a segment, but not the start of any block the program was given (inside a block,
    /// or the start of a free block it never held).
    case interior
}

/// Event counters of a pool. Updated under the pool lock (or by its single thread).
public struct PoolCounters: Equatable, Sendable {
    public var allocations: UInt64 = 0
    public var frees: UInt64 = 0
    public var failedAllocations: UInt64 = 0
    public var invalidPointers: UInt64 = 0
    public var doubleFrees: UInt64 = 0
    public var splits: UInt64 = 0
    public var coalesces: UInt64 = 0
    public var segmentsAdded: UInt64 = 0
    public var segmentsReleased: UInt64 = 0
    public var reallocInPlace: UInt64 = 0
    public var peakAllocatedBytes: UInt64 = 0
    /// Bytes given back to the OS (pages advised away, segments unmapped).
    public var releasedBytes: UInt64 = 0
    /// Calls handed to the system allocator, and their bytes (updated atomically, lock-free).
    public var systemCalls: UInt64 = 0
    public var systemBytes: UInt64 = 0
    public init() {}
}

/// A free block's list links, stored in the free block itself (every block holds >= 16 bytes).
struct FreeLink {
    var next: UnsafeMutablePointer<FreeLink>?
    var prev: UnsafeMutablePointer<FreeLink>?
}

/// The free area of one order: a doubly linked list (so a buddy leaves it in O(1)) and its length.
struct FreeArea {
    var head: UnsafeMutablePointer<FreeLink>?
    var count: Int
}

/// A pool's state, in memory the pool maps for itself (never Swift-allocated). The free areas
/// live in the segments (see Segment).
///
/// Invariants (checked by `checkInvariants()`):
///
///     every free block is on exactly one free list: that of its order, in its own segment
///     no free block has a free buddy of the same order (below maxOrder)
///     freeBytes + allocatedBytes == segmentBytes
///     segment.nonEmpty bit k == (segment.freeAreas[k].count > 0)
struct PoolState {
    /// The project's futex lock (buddy_support.h), not a pthread mutex: the report signal
    /// handler tries it, and only atomics and raw system calls are async-signal-safe there.
    var lock: buddy_mutex
    var config: PoolConfig
    var geometry: Geometry
    /// The segments, oldest first.
    var segments: UnsafeMutablePointer<Segment>?
    var segmentCount: Int
    var segmentBytes: UInt
    var freeBytes: UInt
    var allocatedBytes: UInt
    /// Bytes of segments above their frontier (counted in freeBytes, on no free list yet).
    var uncarvedBytes: UInt
    var counters: PoolCounters
    /// Per-order and sampling statistics (Stats.swift).
    var stats: PoolStats
    var stateBytes: Int
    /// The process pool's thread caches (see ThreadCache.swift); nil for private pools.
    var caches: UnsafeMutablePointer<ThreadCache>?
    /// Calls served by thread caches that have since been flushed (threads that exited).
    var retiredCacheCalls: CallCounters
    /// Calls served without a thread cache (updated atomically).
    var directCalls: CallCounters
    /// When the free top-order blocks and empty segments were last given back (monotonic ns).
    var lastRelease: UInt64
    /// Whether threads get caches (the process pool, once its thread-exit key exists).
    var cachesEnabled: Bool
    /// Requests up to this many bytes are served by thread caches (0 while caches are off):
    /// the malloc fast path's single size test.
    var cachedSizeLimit: UInt
    /// Requests up to this many bytes (at most `smallOrderLimit`) take malloc's fast path by
    /// order, read from `smallOrders`; from there up to cachedSizeLimit, mallocMedium's (by slab
    /// class, or by order). 0 while caches are off.
    var orderPathLimit: UInt = 0
    /// The order of a request of up to 1 KiB: byte i is order(forSize: 16 * i), so a request of
    /// n bytes has order byte (n + 15) / 16 (one load instead of a bit scan and its corrections).
    var smallOrders: SmallOrderTable = SmallOrderTable()
    /// minBlock - 1: the bits a block's address has clear (free's alignment test).
    var minBlockMask: UInt = 15
    /// Slabs (Slab.swift): the classes' state (nil: no slabs), the code of class 0 (64: none),
    /// and the requests they serve, slabFloor < size <= slabCeiling (0: none).
    var slabClasses: UnsafeMutablePointer<SlabClassState>? = nil
    var slabFirstCode: Int = 64
    var slabFloor: UInt = 0
    var slabCeiling: UInt = 0
    /// Bytes in slabs that no object out of them covers (headers, free and uncarved objects,
    /// slack): allocated to the pool, free to the program.
    var slabSpareBytes: UInt = 0
    /// The key that the links stored in free memory are encoded with (see FreeLinks).
    var linkKey: UInt = 0
    /// The smallest segment the OS refused to map, and when (monotonic ns); 0: none. For a
    /// second, or until the pool unmaps a segment, growth starts below it (down to the minimum
    /// segment, always tried) and any segment with room serves first (see grow, allocate), so
    /// a request at the end of the address space costs at most one failed mmap.
    var refusedSegmentSize: Int = 0
    var refusedAt: UInt64 = 0
    /// BUDDY_HARDEN's quarantine (Hardening.swift): a ring of freed block addresses, its oldest
    /// entry, its length, and the bytes of its blocks. nil: none.
    var quarantine: UnsafeMutablePointer<UInt>? = nil
    var quarantineFirst: Int = 0
    var quarantineCount: Int = 0
    var quarantineBytes: UInt = 0
}

/// A buddy-system pool over segments: the engine. A value handle to state in mapped memory, so
/// the process-wide allocator and private pools are instances of the same code.
///
/// The engine's operations do not lock; callers hold `lock()` when the pool is shared.
public struct BuddyEngine: Equatable {
    let state: UnsafeMutablePointer<PoolState>

    init(state: UnsafeMutablePointer<PoolState>) { self.state = state }

    @inline(__always) var geometry: Geometry { state.pointee.geometry }
    public var config: PoolConfig { state.pointee.config }
    public var counters: PoolCounters { state.pointee.counters }
    public var identity: UnsafeMutableRawPointer { UnsafeMutableRawPointer(state) }

    // MARK: Life cycle

    /// Validates a configuration: nil when usable, else what is wrong with it.
    public static func problem(with config: PoolConfig) -> StaticString? {
        if !powerOfTwo(config.minBlock) || config.minBlock < 16 { return "minimum block must be a power of two >= 16" }
        if !powerOfTwo(config.maxBlock) || config.maxBlock < config.minBlock { return "maximum block must be a power of two >= the minimum block" }
        if config.maxBlock > 1 << 30 { return "maximum block must be <= 1 GiB" }
        if config.maxBlock.trailingZeroBitCount - config.minBlock.trailingZeroBitCount > Geometry.orderLimit { return "too many orders between minimum and maximum block" }
        if !(config.growthFactor >= 1.0 && config.growthFactor <= 64.0) { return "growth factor must be between 1.0 and 64.0" }
        if config.initialSize < 0 || config.maxPoolSize < 0 { return "sizes must not be negative" }
        if config.maxPoolSize != 0 && config.maxPoolSize < config.minSegment { return "maximum pool size must be 0 (no limit) or >= the minimum segment" }
        if !(config.releaseDelay >= 0 && config.releaseDelay <= 86400) { return "release delay must be 0 to 86400 seconds" }
        return nil
    }

    /// Creates a pool that maps its own segments; its first segment holds `config.initialSize`.
    /// Returns nil when the configuration is invalid or the OS refuses memory.
    public static func create(_ config: PoolConfig) -> BuddyEngine? {
        guard let pool = makeState(config) else { return nil }
        if config.initialSize > 0 {
            let size = min(roundUpToPowerOfTwo(max(config.initialSize, config.minSegment)),
                           config.maxPoolSize == 0 ? Int.max : config.maxPoolSize)
            if size >= config.minSegment, pool.mapSegment(size: size) == nil {
                pool.destroy()
                return nil
            }
        }
        return pool
    }

    /// Creates a pool over memory the caller owns: `size` is a power of two >= `config.minSegment`
    /// and `base` is aligned to `size`. The arena is never unmapped by the pool; the pool still
    /// grows with mapped segments when the arena is full (unless `maxPoolSize` forbids it).
    public static func create(_ config: PoolConfig, arena base: UnsafeMutableRawPointer, size: Int) -> BuddyEngine? {
        let address = UInt(bitPattern: base)
        guard size >= config.minSegment, size & (size - 1) == 0, address & UInt(size - 1) == 0,
              let pool = makeState(config) else { return nil }
        guard pool.addSegment(base: address, size: UInt(size), orderMap: nil, ownsMemory: false) != nil else {
            pool.destroy()
            return nil
        }
        return pool
    }

    private static func powerOfTwo(_ v: Int) -> Bool { v > 0 && v & (v - 1) == 0 }

    private static func makeState(_ config: PoolConfig) -> BuddyEngine? {
        guard problem(with: config) == nil else { return nil }
        let geometry = Geometry(minBlock: config.minBlock, maxBlock: config.maxBlock)
        let page = buddy_os_page_size()
        let bytes = (MemoryLayout<PoolState>.stride + page - 1) & ~(page - 1)
        guard let memory = buddy_os_map_aligned(bytes, page) else { return nil }
        let state = memory.bindMemory(to: PoolState.self, capacity: 1)
        state.initialize(to: PoolState(
            lock: buddy_mutex(), config: config, geometry: geometry, segments: nil,
            segmentCount: 0, segmentBytes: 0, freeBytes: 0, allocatedBytes: 0, uncarvedBytes: 0,
            counters: PoolCounters(), stats: PoolStats(), stateBytes: bytes, caches: nil, retiredCacheCalls: CallCounters(),
            directCalls: CallCounters(), lastRelease: buddy_os_monotonic_ns(), cachesEnabled: false, cachedSizeLimit: 0))
        buddy_lock_init(&state.pointee.lock)
        state.pointee.minBlockMask = UInt(config.minBlock - 1)
        state.pointee.linkKey = UInt(buddy_os_random_key())
        for i in 0...SmallOrderTable.entries - 1 {
            state.pointee.smallOrders.set(i, UInt8(geometry.order(forSize: min(16 * i, geometry.maxBlock))))
        }
        let engine = BuddyEngine(state: state)
        if config.slabs { engine.enableSlabs() }
        return engine
    }

    /// Returns every segment the pool mapped to the OS and forgets the rest. Every pointer into
    /// the pool dies with it.
    public func destroy() {
        while let segment = state.pointee.segments {
            removeSegment(segment, unlinkFreeBlocks: false)
        }
        if let classes = state.pointee.slabClasses { buddy_os_unmap(classes, SlabClass.stateBytes) }
        buddy_os_unmap(state, state.pointee.stateBytes)
    }

    /// Frees every block at once: the pool returns to its state just after creation, keeping
    /// its first segment (if it mapped one) and the user's arena.
    public func reset() {
        var segment = state.pointee.segments
        while let current = segment {
            segment = current.pointee.next
            if !current.pointee.pinned { removeSegment(current, unlinkFreeBlocks: false) }
        }
        state.pointee.allocatedBytes = 0
        state.pointee.slabSpareBytes = 0
        state.pointee.slabClasses?.update(repeating: SlabClassState(partial: nil, slabs: 0, partialCount: 0), count: SlabClass.count)
        state.pointee.stats.countEngineBlocksReset()
        state.pointee.freeBytes = 0
        state.pointee.uncarvedBytes = 0
        segment = state.pointee.segments
        while let current = segment {
            current.pointee.orderMap.update(repeating: 0, count: Int(current.pointee.size >> UInt(geometry.minShift)))
            current.pointee.handedOut?.update(repeating: 0, count: (Int(current.pointee.size >> UInt(geometry.minShift)) + 63) / 64)
            current.pointee.freeAreas.update(repeating: FreeArea(head: nil, count: 0), count: geometry.maxOrder + 1)
            current.pointee.nonEmpty = 0
            current.pointee.frontier = 0
            current.pointee.tailIsZero = false // the program wrote to it: carved blocks are dirty
            current.pointee.freeBytes = current.pointee.size
            state.pointee.freeBytes &+= current.pointee.size
            state.pointee.uncarvedBytes &+= current.pointee.size
            segment = current.pointee.next
        }
    }

    // MARK: Locking

    /// Takes the pool's lock if its thread-safety mode asks for one now; pass the result to unlock.
    @inline(__always) public func lock() -> Bool {
        switch state.pointee.config.threadSafety {
        case .off: return false
        case .automatic: if buddy_process_is_single_threaded() != 0 { return false }
        case .always: break
        }
        buddy_lock(&state.pointee.lock)
        return true
    }

    @inline(__always) public func unlock(_ locked: Bool) {
        if locked { buddy_unlock(&state.pointee.lock) }
    }

    /// Takes the lock without waiting, if the pool needs one now: (taken or not needed, locked).
    /// Atomics only: the report signal handler's snapshot uses it.
    func tryLock() -> (ok: Bool, locked: Bool) {
        switch state.pointee.config.threadSafety {
        case .off: return (true, false)
        case .automatic: if buddy_process_is_single_threaded() != 0 { return (true, false) }
        case .always: break
        }
        return buddy_try_lock(&state.pointee.lock) != 0 ? (true, true) : (false, false)
    }

    /// Takes the lock whatever the thread-safety mode, unless this thread holds it already (fork's
    /// prepare handler, which may run in a signal handler inside the allocator): true if taken.
    func forkTakeLock() -> Bool { buddy_fork_take(&state.pointee.lock) != 0 }
    func forceUnlock() { buddy_unlock(&state.pointee.lock) }
    /// Frees the lock in a forked child, where the parent's holder no longer exists.
    func reinitializeLock() { buddy_lock_init(&state.pointee.lock) }

    public func setThreadSafety(_ mode: ThreadSafety) { state.pointee.config.threadSafety = mode }
    public func setErrorStrategy(_ strategy: ErrorStrategy) { state.pointee.config.errorStrategy = strategy }

    // MARK: Pointers

    /// The segment of this pool that covers `address`, or nil.
    @inline(__always) func segment(containing address: UInt) -> UnsafeMutablePointer<Segment>? {
        guard let segment = SegmentMap.lookup(address),
              segment.pointee.pool == UnsafeMutableRawPointer(state),
              segment.pointee.contains(address) else { return nil }
        return segment
    }

    @inline(__always) func slot(_ address: UInt, in segment: UnsafeMutablePointer<Segment>) -> Int {
        Int((address &- segment.pointee.base) >> UInt(geometry.minShift))
    }

    /// What `pointer` is to this pool, from the order map alone.
    public func classify(_ pointer: UnsafeRawPointer) -> PointerKind {
        let address = UInt(bitPattern: pointer)
        guard let segment = SegmentMap.lookup(address), segment.pointee.contains(address) else { return .foreign }
        guard segment.pointee.pool == UnsafeMutableRawPointer(state) else {
            return segment.pointee.pool == nil ? .foreign : .otherPool
        }
        if address & UInt(geometry.minBlock - 1) != 0 || address &- segment.pointee.base >= segment.pointee.frontier {
            return .interior
        }
        let tag = segment.pointee.orderMap[slot(address, in: segment)]
        switch tag & Tag.stateMask {
        case Tag.used:
            // A slab block is the pool's: the program holds its objects, never the slab itself.
            return tag & Tag.orderMask == Tag.slabBlock ? .interior : .allocated(order: Int(tag & Tag.orderMask))
        case Tag.cached: return .free
        // A free block the program was never given (an upper half split off): not a double free.
        case Tag.free: return wasHandedOut(address, in: segment) ? .free : .interior
        default: return .interior
        }
    }

    /// Bytes in the allocated block that starts at `pointer`, or nil if there is none.
    public func blockSize(of pointer: UnsafeRawPointer) -> Int? {
        if case .allocated(let code) = classify(pointer) { return size(ofCode: code) }
        return nil
    }

    // MARK: Allocation

    /// Allocates a block of `order`, splitting a larger one, carving a segment's untouched tail,
    /// or mapping a new segment. Nil when the pool may not grow (or the OS says no).
    public func allocate(order: Int) -> UnsafeMutableRawPointer? {
        allocate(order: order, mayGrow: true)
    }

    /// As `allocate(order:)`; with `mayGrow` false it fails (without counting a failure) rather
    /// than map a segment, so a caller can first give back what it holds (its thread cache).
    /// With `dirtyBytes`, it says how many bytes at the block's start may be non-zero: the rest
    /// reads as zero (calloc clears only those). 0 for a block carved from a segment's tail that
    /// no one has touched since mmap; a page for a block whose pages went back to the OS (its
    /// first page keeps the free-list links and the released mark); else the whole block.
    public func allocate(order: Int, mayGrow: Bool, dirtyBytes: UnsafeMutablePointer<Int>? = nil) -> UnsafeMutableRawPointer? {
        let geometry = self.geometry
        // The oldest segment of the order's size class that can serve the request serves it
        // (newer segments drain); then a new segment of that class; then, when the pool may not
        // grow (BUDDY_MAX_POOL, or the OS said no), any segment. While the OS refuses segments,
        // any segment comes before a new one: no mmap that is likely to fail.
        let wanted = sizeClass(ofOrder: order)
        var found = take(order: order, sizeClass: wanted)
        if found == nil, mayGrow, segregated, mapRecentlyRefused { found = take(order: order, sizeClass: BuddyEngine.anySizeClass) }
        if found == nil, mayGrow {
            found = growOrTakeAny(order: order, sizeClass: wanted)
            // At the limit (BUDDY_MAX_POOL, or the OS refused): the empty slabs the classes keep
            // go back first (they coalesce with their buddies), then one more try; growing again
            // only if that unmapped a segment. (The callers flushed their thread's cache before
            // asking to grow.)
            let segmentBytes = state.pointee.segmentBytes
            if found == nil, releaseEmptySlabs() > 0 {
                found = take(order: order, sizeClass: wanted)
                    ?? (state.pointee.segmentBytes < segmentBytes ? growOrTakeAny(order: order, sizeClass: wanted)
                        : segregated ? take(order: order, sizeClass: BuddyEngine.anySizeClass) : nil)
            }
        }
        guard let (block, takenOrder, segment, carved) = found else {
            if mayGrow { state.pointee.counters.failedAllocations &+= 1 }
            return nil
        }
        var blockOrder = takenOrder
        let address = UInt(bitPattern: block)
        // A carved block was never touched (if the pool mapped it: an arena, or a segment after
        // reset, may hold anything); a free one says whether its pages went back.
        let pristine = carved && segment.pointee.tailIsZero
        let released = pristine || (!carved && isReleased(UnsafeMutableRawPointer(block), order: blockOrder))
        if let dirtyBytes {
            let bytes = geometry.size(ofOrder: order)
            dirtyBytes.pointee = pristine ? 0 : released ? min(buddy_os_page_size(), bytes) : bytes
        }
        // Split: keep the lower half, put each upper half on the free area one order down (an
        // upper half of a released block lies in its released pages: released too).
        while blockOrder > order {
            blockOrder &-= 1
            let upper = address &+ UInt(geometry.size(ofOrder: blockOrder))
            segment.pointee.orderMap[slot(upper, in: segment)] = Tag.free | UInt8(truncatingIfNeeded: blockOrder)
            push(UnsafeMutablePointer(bitPattern: upper)!, order: blockOrder, in: segment, released: released)
            state.pointee.counters.splits &+= 1
            state.pointee.stats.splits.add(blockOrder &+ 1)
        }
        segment.pointee.orderMap[slot(address, in: segment)] = Tag.used | UInt8(truncatingIfNeeded: order)
        markHandedOut(address, in: segment)
        let bytes = UInt(geometry.size(ofOrder: order))
        segment.pointee.freeBytes &-= bytes
        state.pointee.freeBytes &-= bytes
        state.pointee.allocatedBytes &+= bytes
        state.pointee.counters.allocations &+= 1
        state.pointee.stats.countEngineBlockAllocated()
        if UInt64(state.pointee.allocatedBytes) > state.pointee.counters.peakAllocatedBytes {
            state.pointee.counters.peakAllocatedBytes = UInt64(state.pointee.allocatedBytes)
        }
        return UnsafeMutableRawPointer(block)
    }

    /// A new segment's first top-order block; when the pool may not grow, a block of any size
    /// class's segments.
    private func growOrTakeAny(order: Int, sizeClass wanted: UInt8)
        -> (block: UnsafeMutablePointer<FreeLink>, order: Int, segment: UnsafeMutablePointer<Segment>, carved: Bool)? {
        if let grown = grow(sizeClass: wanted), let top = carveTopBlock(from: grown) { return (top, geometry.maxOrder, grown, true) }
        return segregated ? take(order: order, sizeClass: BuddyEngine.anySizeClass) : nil
    }

    /// Matches a segment of any size class in `take`.
    static let anySizeClass: UInt8 = 0xFF

    /// A free block for `order` from the oldest segment of `sizeClass` that has one: from its free
    /// areas (the smallest order that fits), else from its uncarved tail (`carved`).
    @inline(__always)
    private func take(order: Int, sizeClass: UInt8)
        -> (block: UnsafeMutablePointer<FreeLink>, order: Int, segment: UnsafeMutablePointer<Segment>, carved: Bool)? {
        var candidate = state.pointee.segments
        while let current = candidate {
            if sizeClass == BuddyEngine.anySizeClass || current.pointee.sizeClass == sizeClass {
                let fitting = current.pointee.nonEmpty & (~0 &<< UInt64(order))
                if fitting != 0 {
                    let blockOrder = fitting.trailingZeroBitCount
                    let block = current.pointee.freeAreas[blockOrder].head!
                    remove(block, order: blockOrder, in: current)
                    return (block, blockOrder, current, false)
                }
                if let top = carveTopBlock(from: current) { return (top, geometry.maxOrder, current, true) }
            }
            candidate = current.pointee.next
        }
        return nil
    }

    /// Outcome of a release.
    public enum ReleaseOutcome: Equatable, Sendable {
        case released
        case doubleFree
        case invalidPointer
        case foreign
        case otherPool
    }

    /// Frees the allocated block at `pointer`, coalescing it with its free buddy repeatedly.
    /// Any other pointer is classified and the pool is left untouched.
    public func release(_ pointer: UnsafeMutableRawPointer) -> ReleaseOutcome {
        switch classify(pointer) {
        case .allocated(let code):
            let address = UInt(bitPattern: pointer)
            release(address, code: code, segment: SegmentMap.lookup(address)!)
            return .released
        case .free:
            countBadPointer(.doubleFree)
            return .doubleFree
        case .interior:
            countBadPointer(.invalidPointer)
            return .invalidPointer
        case .foreign: return .foreign
        case .otherPool:
            countBadPointer(.otherPool)
            return .otherPool
        }
    }

    /// Counts a bad pointer; atomic, since some callers (malloc_usable_size) hold no lock.
    public func countBadPointer(_ outcome: ReleaseOutcome) {
        // A switch, not ==: Equatable's == is a generic call the debug build does not specialise.
        switch outcome {
        case .doubleFree: buddy_atomic_add_u64_relaxed(&state.pointee.counters.doubleFrees, 1)
        case .invalidPointer, .otherPool: buddy_atomic_add_u64_relaxed(&state.pointee.counters.invalidPointers, 1)
        case .released, .foreign: break
        }
    }

    /// The outcome a release of a pointer of this kind would have.
    public static func outcome(for kind: PointerKind) -> ReleaseOutcome {
        switch kind {
        case .allocated: return .released
        case .free: return .doubleFree
        case .interior: return .invalidPointer
        case .foreign: return .foreign
        case .otherPool: return .otherPool
        }
    }

    func releaseBlock(_ start: UInt, order startOrder: Int, segment: UnsafeMutablePointer<Segment>) {
        let geometry = self.geometry
        let bytes = UInt(geometry.size(ofOrder: startOrder))
        segment.pointee.freeBytes &+= bytes
        state.pointee.freeBytes &+= bytes
        state.pointee.allocatedBytes &-= bytes
        state.pointee.counters.frees &+= 1
        state.pointee.stats.countEngineBlockReleased()
        let map = segment.pointee.orderMap
        map[slot(start, in: segment)] = 0
        var address = start
        var order = startOrder
        // Coalesce: buddy = block ^ size(order); parent = block & ~size(order).
        while order < geometry.maxOrder {
            let size = UInt(geometry.size(ofOrder: order))
            let buddy = address ^ size
            let buddySlot = slot(buddy, in: segment)
            guard map[buddySlot] == Tag.free | UInt8(truncatingIfNeeded: order) else { break }
            remove(UnsafeMutablePointer(bitPattern: buddy)!, order: order, in: segment)
            map[buddySlot] = 0
            address &= ~size
            state.pointee.stats.coalesces.add(order)
            order &+= 1
            state.pointee.counters.coalesces &+= 1
        }
        map[slot(address, in: segment)] = Tag.free | UInt8(truncatingIfNeeded: order)
        push(UnsafeMutablePointer(bitPattern: address)!, order: order, in: segment)
        checkFreeNeighbour(at: address &+ UInt(geometry.size(ofOrder: order)), in: segment)
        if geometry.size(ofOrder: order) >= BuddyEngine.releaseMinBlock || order == geometry.maxOrder { releaseMemoryIfDue() }
    }

    // MARK: Returning memory to the OS
    //
    // Policy: when a free leaves a block of at least `releaseMinBlock` (or of the top order) and
    // `releaseDelay` has passed since the last release, (1) every segment that is entirely free is
    // unmapped, except the pool's first one, and (2) the pages of the free blocks of at least
    // `releaseMinBlock` go back with MADV_DONTNEED, all but the first `releaseKeepBytes` met in
    // the order the next allocations take them (oldest segment first, smallest order first, most
    // recently freed first). A free block keeps its first page, which holds its free-list links
    // and the released mark: a block already given back is skipped, so a pass costs one system
    // call per block that was used since. `trim()` does the same at once, for all free blocks of
    // two pages or more, keeping nothing.

    /// Free blocks smaller than this keep their pages on the delayed pass: they are the ones the
    /// program reuses soonest, and each would cost a system call for little memory.
    static let releaseMinBlock = 64 * 1024
    /// Resident free bytes the delayed pass keeps, so that a program cycling through big buffers
    /// does not fault all of them in again after every pass.
    static let releaseKeepBytes = 4 << 20
    /// A free block of at least releaseMinBlock whose pages (after its first) went back to the OS
    /// holds this word after its free-list links; push writes 0 there otherwise.
    static let releasedMark: UInt64 = 0x4445_5341_454C_4552 // "RELEASED"
    static let releasedMarkOffset = MemoryLayout<FreeLink>.stride

    @inline(__always) func isReleased(_ block: UnsafeMutableRawPointer, order: Int) -> Bool {
        geometry.size(ofOrder: order) >= BuddyEngine.releaseMinBlock
            && block.load(fromByteOffset: BuddyEngine.releasedMarkOffset, as: UInt64.self) == BuddyEngine.releasedMark
    }

    @inline(__always) func releaseMemoryIfDue() {
        let delay = state.pointee.config.releaseDelay
        if delay > 0 {
            let now = buddy_os_monotonic_ns()
            if Double(now &- state.pointee.lastRelease) < delay * 1e9 { return }
            state.pointee.lastRelease = now
        }
        let minimumOrder = min(geometry.maxOrder, geometry.order(forSize: BuddyEngine.releaseMinBlock))
        releaseMemory(minimumOrder: minimumOrder, keepBytes: BuddyEngine.releaseKeepBytes)
    }

    /// Returns free memory to the OS now: `malloc_trim`. The caller holds the lock. Returns the
    /// bytes whose pages were given back or unmapped.
    @discardableResult
    public func trim() -> Int {
        releaseEmptySlabs()
        state.pointee.lastRelease = buddy_os_monotonic_ns()
        let page = buddy_os_page_size()
        return releaseMemory(minimumOrder: max(0, geometry.order(forSize: 2 * page)), keepBytes: 0)
    }

    @discardableResult
    func releaseMemory(minimumOrder: Int, keepBytes: Int) -> Int {
        var released = 0
        var segment = state.pointee.segments
        while let current = segment {
            segment = current.pointee.next
            if current.pointee.freeBytes == current.pointee.size && !current.pointee.pinned {
                released &+= Int(current.pointee.size)
                removeSegment(current, unlinkFreeBlocks: true)
            }
        }
        let page = buddy_os_page_size()
        guard minimumOrder <= geometry.maxOrder, geometry.size(ofOrder: minimumOrder) >= 2 * page else { return released }
        var keep = keepBytes
        segment = state.pointee.segments
        while let current = segment {
            for order in minimumOrder...geometry.maxOrder where current.pointee.nonEmpty & (1 &<< UInt64(order)) != 0 {
                let size = geometry.size(ofOrder: order)
                var block = current.pointee.freeAreas[order].head
                while let b = block {
                    block = b.pointee.next
                    let raw = UnsafeMutableRawPointer(b)
                    if isReleased(raw, order: order) { continue }
                    if keep >= size { keep &-= size; continue }
                    buddy_os_release_pages(raw + page, size &- page)
                    released &+= size &- page
                    if size >= BuddyEngine.releaseMinBlock {
                        raw.storeBytes(of: BuddyEngine.releasedMark, toByteOffset: BuddyEngine.releasedMarkOffset, as: UInt64.self)
                    }
                }
            }
            segment = current.pointee.next
        }
        state.pointee.counters.releasedBytes &+= UInt64(released)
        return released
    }

    /// Resizes the allocated block at `pointer` (of `order`) to `newOrder` without moving it:
    /// a shrink frees the upper halves; a growth absorbs free buddies above it, and fails
    /// (returning false, changing nothing) unless each of them is free.
    public func resizeInPlace(_ pointer: UnsafeMutableRawPointer, from order: Int, to newOrder: Int) -> Bool {
        let geometry = self.geometry
        let address = UInt(bitPattern: pointer)
        let segment = SegmentMap.lookup(address)!
        let map = segment.pointee.orderMap
        if newOrder == order { return true }
        // A block that changes size class moves, so that it does not stay behind among blocks
        // of another class (see "Segments by size class").
        if segregated && sizeClass(ofOrder: newOrder) != segment.pointee.sizeClass { return false }
        if newOrder < order {
            map[slot(address, in: segment)] = Tag.used | UInt8(truncatingIfNeeded: newOrder)
            var upperOrder = order
            while upperOrder > newOrder {
                upperOrder &-= 1
                let upper = address &+ UInt(geometry.size(ofOrder: upperOrder))
                map[slot(upper, in: segment)] = Tag.free | UInt8(truncatingIfNeeded: upperOrder)
                push(UnsafeMutablePointer(bitPattern: upper)!, order: upperOrder, in: segment)
                state.pointee.counters.splits &+= 1
                state.pointee.stats.splits.add(upperOrder &+ 1)
            }
        } else {
            var level = order
            while level < newOrder {
                let size = UInt(geometry.size(ofOrder: level))
                guard address & size == 0, map[slot(address &+ size, in: segment)] == Tag.free | UInt8(truncatingIfNeeded: level) else {
                    return false
                }
                level &+= 1
            }
            level = order
            while level < newOrder {
                let buddy = address &+ UInt(geometry.size(ofOrder: level))
                remove(UnsafeMutablePointer(bitPattern: buddy)!, order: level, in: segment)
                map[slot(buddy, in: segment)] = 0
                state.pointee.counters.coalesces &+= 1
                state.pointee.stats.coalesces.add(level)
                level &+= 1
            }
            map[slot(address, in: segment)] = Tag.used | UInt8(truncatingIfNeeded: newOrder)
        }
        let old = UInt(geometry.size(ofOrder: order)), new = UInt(geometry.size(ofOrder: newOrder))
        segment.pointee.freeBytes = segment.pointee.freeBytes &+ old &- new
        state.pointee.freeBytes = state.pointee.freeBytes &+ old &- new
        state.pointee.allocatedBytes = state.pointee.allocatedBytes &- old &+ new
        state.pointee.counters.reallocInPlace &+= 1
        if UInt64(state.pointee.allocatedBytes) > state.pointee.counters.peakAllocatedBytes {
            state.pointee.counters.peakAllocatedBytes = UInt64(state.pointee.allocatedBytes)
        }
        return true
    }

    // MARK: Free areas

    @inline(__always) func push(_ block: UnsafeMutablePointer<FreeLink>, order: Int, in segment: UnsafeMutablePointer<Segment>,
                                released: Bool = false) {
        let area = segment.pointee.freeAreas + order
        block.pointee = FreeLink(next: area.pointee.head, prev: nil)
        if geometry.size(ofOrder: order) >= BuddyEngine.releaseMinBlock {
            // Written on every push, so a program's old data never passes for the mark.
            UnsafeMutableRawPointer(block).storeBytes(of: released ? BuddyEngine.releasedMark : 0,
                                                      toByteOffset: BuddyEngine.releasedMarkOffset, as: UInt64.self)
        }
        area.pointee.head?.pointee.prev = block
        area.pointee.head = block
        area.pointee.count &+= 1
        segment.pointee.nonEmpty |= 1 &<< UInt64(order)
    }

    @inline(__always) func remove(_ block: UnsafeMutablePointer<FreeLink>, order: Int, in segment: UnsafeMutablePointer<Segment>) {
        let area = segment.pointee.freeAreas + order
        let link = block.pointee
        // Safe unlinking (glibc's "corrupted double-linked list" check): a free block's links
        // live in the block, where a program writing after free can reach them. Each must lie in
        // this segment, on a block boundary, and link back to this block, before either is
        // followed for a write:
        //     next == nil || next.prev == block,    prev == nil ? head == block : prev.next == block
        if _slowPath(!linksValid(block, order: order, in: segment)) { freeListCorrupted(block) }
        if let prev = link.prev { prev.pointee.next = link.next } else { area.pointee.head = link.next }
        link.next?.pointee.prev = link.prev
        area.pointee.count &-= 1
        if area.pointee.count == 0 { segment.pointee.nonEmpty &= ~(1 &<< UInt64(order)) }
    }

    /// Records that the block (or slab object) at `address` is handed out (Segment.handedOut).
    @inline(__always) func markHandedOut(_ address: UInt, in segment: UnsafeMutablePointer<Segment>) {
        let s = slot(address, in: segment)
        segment.pointee.handedOut.unsafelyUnwrapped[s &>> 6] |= 1 &<< UInt64(s & 63)
    }

    @inline(__always) func wasHandedOut(_ address: UInt, in segment: UnsafeMutablePointer<Segment>) -> Bool {
        let s = slot(address, in: segment)
        return segment.pointee.handedOut.unsafelyUnwrapped[s &>> 6] & (1 &<< UInt64(s & 63)) != 0
    }

    /// Whether the links of `block`, free on the list of `order`, can be followed (see remove).
    @inline(__always) func linksValid(_ block: UnsafeMutablePointer<FreeLink>, order: Int, in segment: UnsafeMutablePointer<Segment>) -> Bool {
        let link = block.pointee
        let mask = UInt(geometry.minBlock &- 1)
        if let next = link.next {
            let a = UInt(bitPattern: next)
            if !segment.pointee.contains(a) || a & mask != 0 || next.pointee.prev != block { return false }
        }
        if let prev = link.prev {
            let a = UInt(bitPattern: prev)
            if !segment.pointee.contains(a) || a & mask != 0 || prev.pointee.next != block { return false }
        } else if (segment.pointee.freeAreas + order).pointee.head != block {
            return false
        }
        return true
    }

    /// A block was freed and ends at `end`: when the block that follows it is free, its links
    /// (at its start, where an overflow of the freed block lands first) must still be valid.
    /// Catches an overflow into a free neighbour at the free that follows it, rather than at
    /// the allocation that would unlink the neighbour (which may never come). On the release
    /// path only (lock held): a tag load, and a few more loads when the neighbour is free.
    @inline(__always) func checkFreeNeighbour(at end: UInt, in segment: UnsafeMutablePointer<Segment>) {
        guard end &- segment.pointee.base < segment.pointee.frontier else { return }
        let tag = segment.pointee.orderMap[slot(end, in: segment)]
        guard tag & Tag.stateMask == Tag.free, Int(tag & Tag.orderMask) <= geometry.maxOrder else { return }
        let neighbour = UnsafeMutablePointer<FreeLink>(bitPattern: end)!
        if _slowPath(!linksValid(neighbour, order: Int(tag & Tag.orderMask), in: segment)) { freeListCorrupted(neighbour, overflow: true) }
    }

    /// A free area's list is broken at `block` (see remove): the pool cannot trust its free lists
    /// any more, whatever the error strategy, so this stops the program with a message.
    @inline(never)
    func freeListCorrupted(_ block: UnsafeMutablePointer<FreeLink>, overflow: Bool = false) -> Never {
        countMisuse(.heapCorruption)
        reportCorruption(overflow ? "free()" : "malloc()", UnsafeRawPointer(block), strategy: nil,
                         cause: overflow ? .freeNeighbourOverwritten : .writtenAfterFree)
        buddy_os_abort()
    }

    // MARK: Segments

    /// Hands out the segment's next untouched top-order block, if it has one.
    @inline(__always)
    func carveTopBlock(from segment: UnsafeMutablePointer<Segment>) -> UnsafeMutablePointer<FreeLink>? {
        guard segment.pointee.frontier < segment.pointee.size else { return nil }
        let address = segment.pointee.base &+ segment.pointee.frontier
        let bytes = UInt(geometry.maxBlock)
        segment.pointee.frontier &+= bytes
        state.pointee.uncarvedBytes &-= bytes
        return UnsafeMutablePointer(bitPattern: address)!
    }

    /// Maps a new segment: the pool grows from S to about S * growthFactor bytes, in a power of
    /// two >= the minimum segment, capped by maxPoolSize (falling back to the minimum segment).
    /// When the OS refuses (ulimit -v, overcommit), half the size is tried, down to the minimum
    /// segment (the smallest that holds a top-order block, so any request). For a second after
    /// a refusal (or until the pool unmaps a segment), growth starts below the refused size, so
    /// a failing request costs one failed mmap (as glibc's does), not the whole halving again;
    /// the minimum segment is always tried (the address space may have come back meanwhile).
    func grow(sizeClass: UInt8 = 0) -> UnsafeMutablePointer<Segment>? {
        let config = state.pointee.config
        let current = Int(state.pointee.segmentBytes)
        let minimum = config.minSegment
        var size = minimum
        let wanted = Double(current) * (config.growthFactor - 1.0)
        if wanted > Double(size) { size = roundUpToPowerOfTwo(wanted >= 0x1p40 ? 1 << 40 : Int(wanted)) }
        if config.maxPoolSize != 0 && current + size > config.maxPoolSize {
            size = minimum
            if current + size > config.maxPoolSize { return nil }
        }
        if mapRecentlyRefused { size = max(minimum, min(size, state.pointee.refusedSegmentSize / 2)) }
        while true {
            if let segment = mapSegment(size: size) {
                segment.pointee.sizeClass = sizeClass
                return segment
            }
            state.pointee.refusedSegmentSize = size
            state.pointee.refusedAt = buddy_os_monotonic_ns()
            if size <= minimum { return nil }
            size /= 2
        }
    }

    /// How long a refused segment size is not tried again (unless the pool unmaps a segment).
    static let refusalMemoryNs: UInt64 = 1_000_000_000

    /// Whether the OS refused a segment less than refusalMemoryNs ago (and the pool has not
    /// unmapped one since); forgets an older refusal.
    var mapRecentlyRefused: Bool {
        if state.pointee.refusedSegmentSize == 0 { return false }
        if buddy_os_monotonic_ns() &- state.pointee.refusedAt < BuddyEngine.refusalMemoryNs { return true }
        state.pointee.refusedSegmentSize = 0
        return false
    }

    // MARK: Segments by size class
    //
    // A buddy pool's enemy is the small block that sits alone in a large free region: one live
    // 16-byte block keeps its 64 KiB (and 1 MiB ...) ancestor from ever being whole again, so a
    // program that mixes sizes ends up with free memory in many small blocks and no block for a
    // large request (the pool grows although most of it is free). With size classes, small,
    // medium and large blocks come from different segments, so small ones crowd together
    // and the large ones' segments stay made of large blocks.

    var segregated: Bool { state.pointee.config.smallBlocksBelow != 0 || state.pointee.config.largeBlocksFrom != 0 }

    @inline(__always) func sizeClass(ofOrder order: Int) -> UInt8 {
        let size = geometry.size(ofOrder: order)
        let config = state.pointee.config
        if config.smallBlocksBelow != 0 && size < config.smallBlocksBelow { return 0 }
        if config.largeBlocksFrom != 0 && size >= config.largeBlocksFrom { return 2 }
        return config.smallBlocksBelow != 0 ? 1 : 0
    }

    @discardableResult
    func mapSegment(size: Int) -> UnsafeMutablePointer<Segment>? {
        guard let memory = buddy_os_map_aligned(size, size) else { return nil }
        guard let segment = addSegment(base: UInt(bitPattern: memory), size: UInt(size), orderMap: nil, ownsMemory: true) else {
            buddy_os_unmap(memory, size)
            return nil
        }
        return segment
    }

    func addSegment(base: UInt, size: UInt, orderMap: UnsafeMutablePointer<UInt8>?, ownsMemory: Bool) -> UnsafeMutablePointer<Segment>? {
        let page = buddy_os_page_size()
        // One mapping holds the order map (a byte per minimum block) and the free areas.
        let tagBytes = (Int(size >> UInt(geometry.minShift)) + 15) & ~15
        let areaBytes = (geometry.maxOrder + 1) * MemoryLayout<FreeArea>.stride
        let handedOutBytes = (tagBytes / 8 + 7) & ~7
        let mapBytes = (tagBytes + areaBytes + handedOutBytes + page - 1) & ~(page - 1)
        guard let map = buddy_os_map_aligned(mapBytes, page) else { return nil }
        guard let descriptor = SegmentTable.acquire() else {
            buddy_os_unmap(map, mapBytes)
            return nil
        }
        let areas = (map + tagBytes).bindMemory(to: FreeArea.self, capacity: geometry.maxOrder + 1)
        areas.initialize(repeating: FreeArea(head: nil, count: 0), count: geometry.maxOrder + 1)
        descriptor.pointee = Segment(
            base: base, size: size, pool: UnsafeMutableRawPointer(state),
            orderMap: map.bindMemory(to: UInt8.self, capacity: tagBytes), orderMapBytes: mapBytes,
            frontier: 0, freeBytes: size, freeAreas: areas, nonEmpty: 0, next: nil, ownsMemory: ownsMemory,
            pinned: state.pointee.segments == nil)
        // Memory the pool mapped reads as zero until a block carved from it is used (a caller's
        // arena may hold anything).
        descriptor.pointee.tailIsZero = ownsMemory
        descriptor.pointee.handedOut = (map + tagBytes + areaBytes).bindMemory(to: UInt64.self, capacity: handedOutBytes / 8)
        guard SegmentMap.assign(base, size, descriptor) else {
            _ = SegmentMap.assign(base, size, nil)
            buddy_os_unmap(map, mapBytes)
            SegmentTable.release(descriptor)
            return nil
        }
        // Append: the list stays oldest first.
        if var last = state.pointee.segments {
            while let next = last.pointee.next { last = next }
            last.pointee.next = descriptor
        } else {
            state.pointee.segments = descriptor
        }
        state.pointee.segmentCount &+= 1
        state.pointee.segmentBytes &+= size
        state.pointee.freeBytes &+= size
        state.pointee.uncarvedBytes &+= size
        state.pointee.counters.segmentsAdded &+= 1
        return descriptor
    }

    /// Takes a segment out of the pool. With `unlinkFreeBlocks`, the segment is entirely free
    /// and its carved top-order blocks leave the free area first.
    func removeSegment(_ segment: UnsafeMutablePointer<Segment>, unlinkFreeBlocks: Bool) {
        let s = segment.pointee
        // The segment's free areas go with it: nothing to unlink elsewhere.
        if unlinkFreeBlocks {
            state.pointee.freeBytes &-= s.size
        } else {
            state.pointee.freeBytes &-= s.freeBytes
            state.pointee.allocatedBytes &-= s.size &- s.freeBytes
        }
        _ = SegmentMap.assign(s.base, s.size, nil)
        // No thread cache may keep a copy of the range (ThreadCache.lastBase). A thread that is
        // refreshing its copy meanwhile is freeing a pointer into a segment without a live block:
        // not a pointer this pool handed out.
        var cache = state.pointee.caches
        while let c = cache {
            if c.pointee.lastBase == s.base { c.pointee.lastSize = 0 }
            cache = c.pointee.next
        }
        // Unlink from the pool's list.
        if state.pointee.segments == segment {
            state.pointee.segments = s.next
        } else {
            var previous = state.pointee.segments
            while let p = previous, p.pointee.next != segment { previous = p.pointee.next }
            previous?.pointee.next = s.next
        }
        state.pointee.segmentCount &-= 1
        state.pointee.segmentBytes &-= s.size
        state.pointee.uncarvedBytes &-= s.size &- s.frontier
        state.pointee.counters.segmentsReleased &+= 1
        state.pointee.refusedSegmentSize = 0 // address space came back: a larger mapping may fit again
        if s.ownsMemory { buddy_os_unmap(UnsafeMutableRawPointer(bitPattern: s.base), Int(s.size)) }
        buddy_os_unmap(s.orderMap, s.orderMapBytes)
        SegmentTable.release(segment)
    }
}

/// 65 order bytes, for requests of 0 ... 1024 bytes in steps of 16 (see PoolState.smallOrders).
struct SmallOrderTable {
    static let entries = 65
    static let limit: UInt = 1024
    var storage: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0, 0)

    /// The order of a request of `size` <= limit bytes.
    @inline(__always) mutating func order(_ size: UInt) -> Int {
        withUnsafeMutableBytes(of: &storage) { raw in
            Int(raw.baseAddress.unsafelyUnwrapped.load(fromByteOffset: Int(truncatingIfNeeded: (size &+ 15) &>> 4), as: UInt8.self))
        }
    }

    mutating func set(_ i: Int, _ order: UInt8) {
        withUnsafeMutableBytes(of: &storage) { $0[i] = order }
    }
}

/// The smallest power of two >= value (value >= 1).
@inline(__always) func roundUpToPowerOfTwo(_ value: Int) -> Int {
    value <= 1 ? 1 : 1 &<< (Int.bitWidth &- (value &- 1).leadingZeroBitCount)
}
