import CBuddySupport

/// A buddy-system pool over segments: the engine. A value handle to state in mapped memory, so
/// the process-wide allocator and private pools are instances of the same code.
///
/// The engine's operations do not lock; callers hold `lock()` when the pool is shared.
public struct BuddyEngine: Equatable {
    @usableFromInline package let state: UnsafeMutablePointer<PoolState>

    @inlinable package init(state: UnsafeMutablePointer<PoolState>) { self.state = state }

    @inlinable @inline(__always) package var geometry: Geometry { state.pointee.geometry }
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
        // The state, then the residency walk's window (Engine+Residency.swift), in one mapping.
        let bytes = (residencyWindowOffset + buddy_residency_window_size() + page - 1) & ~(page - 1)
        guard let memory = buddy_os_map_aligned(bytes, page) else { return nil }
        let state = memory.bindMemory(to: PoolState.self, capacity: 1)
        state.initialize(to: PoolState(
            lock: buddy_mutex(), config: config, geometry: geometry, segments: nil,
            segmentCount: 0, segmentBytes: 0, freeBytes: 0, allocatedBytes: 0, uncarvedBytes: 0,
            counters: PoolCounters(), stats: PoolStats(), stateBytes: bytes, lastRelease: buddy_os_monotonic_ns()))
        buddy_lock_init(&state.pointee.lock)
        state.pointee.minBlockMask = UInt(config.minBlock - 1)
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
    package func tryLock() -> (ok: Bool, locked: Bool) {
        switch state.pointee.config.threadSafety {
        case .off: return (true, false)
        case .automatic: if buddy_process_is_single_threaded() != 0 { return (true, false) }
        case .always: break
        }
        return buddy_try_lock(&state.pointee.lock) != 0 ? (true, true) : (false, false)
    }

    /// Takes the lock whatever the thread-safety mode, unless this thread holds it already (fork's
    /// prepare handler, which may run in a signal handler inside the allocator): true if taken.
    package func forkTakeLock() -> Bool { buddy_fork_take(&state.pointee.lock) != 0 }
    package func forceUnlock() { buddy_unlock(&state.pointee.lock) }
    /// Frees the lock in a forked child, where the parent's holder no longer exists.
    package func reinitializeLock() { buddy_lock_init(&state.pointee.lock) }

    public func setThreadSafety(_ mode: ThreadSafety) { state.pointee.config.threadSafety = mode }
    public func setErrorStrategy(_ strategy: ErrorStrategy) { state.pointee.config.errorStrategy = strategy }

    // MARK: Pointers

    /// The segment of this pool that covers `address`, or nil.
    @inlinable @inline(__always) package func segment(containing address: UInt) -> UnsafeMutablePointer<Segment>? {
        guard let segment = SegmentMap.lookup(address),
              segment.pointee.pool == UnsafeMutableRawPointer(state),
              segment.pointee.contains(address) else { return nil }
        return segment
    }

    @inlinable @inline(__always) package func slot(_ address: UInt, in segment: UnsafeMutablePointer<Segment>) -> Int {
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
            if tag & Tag.orderMask == Tag.slabBlock { return .interior }
            // A block a cache holds is free to the program (a second free is a double free).
            if isCacheMarked(address, tag: tag, in: segment) { return .free }
            return .allocated(order: Int(tag & Tag.orderMask))
        case Tag.cached: return .free
        // A free block the program was never given (an upper half split off): not a double free.
        case Tag.free: return wasHandedOut(address, in: segment) ? .free : .interior
        default: return .interior
        }
    }

    /// Whether the used block (or slab object) at `address`, tagged `tag`, is held by a cache
    /// (CacheMark). Only a code a cache keeps can carry the mark: a larger block's word is not read.
    @inline(__always) package func isCacheMarked(_ address: UInt, tag: UInt8, in segment: UnsafeMutablePointer<Segment>) -> Bool {
        let code = Int(tag & Tag.orderMask)
        guard code < state.pointee.cacheMarkOrders || code > geometry.maxOrder else { return false }
        return CacheMark.isSet(address, tag: segment.pointee.orderMap + slot(address, in: segment), key: state.pointee.cacheMarkKey)
    }

    /// Bytes in the allocated block that starts at `pointer`, or nil if there is none.
    public func blockSize(of pointer: UnsafeRawPointer) -> Int? {
        if case .allocated(let code) = classify(pointer) { return size(ofCode: code) }
        return nil
    }
}
