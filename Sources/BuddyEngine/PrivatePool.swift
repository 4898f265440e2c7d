import CBuddySupport

// The private-pool core: what the C API (buddy.h, BuddyMallocCore/PoolAPI.swift) and the Swift
// API (BuddyPool's MemoryPool and PoolArray) share. Each call checks its arguments, takes the
// pool's lock, calls the engine, counts what went wrong and says it as one `PoolProblem`; one
// function words every problem. The front ends keep only their own conventions: C's error codes,
// errno and on_error; Swift's throwing calls, PoolError, error strategies and timings.
//
// The C functions run inside malloc (a program whose malloc is this library calls them, maybe
// from its own allocator), so everything here is allocation-free and runtime-free: no String,
// Array, class, capturing closure or existential (tools/check-malloc-path.py walks from the C
// exports through this file). Enums are compared with `if case`/`switch`, never `==`.

/// Which API a pool is used through: the problems are the same, their wording names the API's
/// own settings (`max_block` or `maxBlockSize`), and C accepts alignment 0 (the smallest block's).
package enum PoolInterface: Sendable {
    case c
    case swift
}

/// Everything a private-pool call can refuse, for both APIs. `code` is the error's number in
/// both (buddy.h's BUDDY_*, PoolError's raw value).
package enum PoolProblem {
    /// The configuration cannot be used (BuddyEngine.problem(with:) says why).
    case invalidConfiguration(StaticString)
    /// The system refused the first segment of a new pool (`size` bytes).
    case systemRefusedPool(size: UInt)
    /// The alignment is not a power of two up to the largest block (C: or 0).
    case invalidAlignment(UInt, maxBlock: Int)
    /// More than the largest block: a private pool has no fallback allocator.
    case tooLarge(size: UInt, maxBlock: Int)
    /// The system refused a new segment.
    case systemRefused(size: UInt)
    /// The pool may not grow past its size limit.
    case full(size: UInt, poolBytes: Int, limit: Int)
    /// Not the start of a block this pool allocated (the pool is unchanged).
    case badPointer(UnsafeRawPointer, BuddyEngine.ReleaseOutcome)

    /// BUDDY_OUT_OF_MEMORY (1), BUDDY_INVALID_POINTER (2), BUDDY_POOL_FULL (3),
    /// BUDDY_INVALID_ALIGNMENT (4), BUDDY_INVALID_ARGUMENT (5, a configuration).
    package var code: Int32 {
        switch self {
        case .tooLarge, .systemRefused, .systemRefusedPool: return 1
        case .badPointer: return 2
        case .full: return 3
        case .invalidAlignment: return 4
        case .invalidConfiguration: return 5
        }
    }

    /// Appends what went wrong and what to do (no prefix, no newline), naming the settings as
    /// `interface` spells them. The one wording of every private-pool problem.
    package func describe(to line: inout TextBuffer, for interface: PoolInterface) {
        let c: Bool
        if case .c = interface { c = true } else { c = false }
        switch self {
        case .invalidConfiguration(let problem):
            line.append(problem)
        case .systemRefusedPool(let size):
            line.append("out of memory: the system refused the pool's first segment (")
            line.append(bytes: UInt64(size))
            line.append("); lower ")
            line.append(c ? "initial_size" : "initialSize")
        case .invalidAlignment(let alignment, let maxBlock):
            line.append("invalid alignment ")
            if c { line.append(decimal: UInt64(alignment)) } else { line.append(decimal: Int(bitPattern: alignment)) }
            line.append(c ? ": use 0 or a power of two" : ": use a power of two")
            line.append(" up to the pool's largest block (")
            line.append(bytes: UInt64(maxBlock))
            line.append(")")
        case .tooLarge(let size, let maxBlock):
            line.append("out of memory: ")
            line.append(decimal: UInt64(size))
            line.append(" bytes is more than the pool's largest block (")
            line.append(bytes: UInt64(maxBlock))
            line.append("); raise ")
            line.append(c ? "max_block" : "maxBlockSize")
            line.append(", or allocate it elsewhere")
        case .systemRefused(let size):
            line.append("out of memory: the system refused a new segment for ")
            line.append(decimal: UInt64(size))
            line.append(" bytes; free blocks you no longer need, or lower ")
            line.append(c ? "growth_factor" : "growthFactor")
        case .full(let size, let poolBytes, let limit):
            line.append("pool full: ")
            line.append(decimal: UInt64(size))
            line.append(" bytes requested, the pool holds ")
            line.append(bytes: UInt64(poolBytes))
            line.append(c ? " of its max_size " : " of its maxSize ")
            line.append(bytes: UInt64(limit))
            line.append(c ? "; raise max_size, or free blocks" : "; raise maxSize, or free blocks")
        case .badPointer(let pointer, let outcome):
            var what: StaticString = "invalid pointer "
            var why: StaticString = ": inside the pool, but not the start of an allocated block; pass the pointer the allocation returned"
            if case .doubleFree = outcome {
                what = "double free of "
                why = ": the block is already free (freed twice, or used after free)"
            } else if case .otherPool = outcome {
                why = ": it belongs to another pool; release it with the pool that allocated it"
            } else if case .foreign = outcome {
                why = ": it is not from any pool; release it with whatever allocated it"
            }
            line.append(what)
            line.append(hex: UInt(bitPattern: pointer))
            line.append(why)
        }
    }
}

/// A private pool: an engine with no thread caches, and the calls both APIs make on it. A value
/// handle (the engine's state lives in mapped memory); `destroy()` ends it.
package struct PrivatePool {
    package let engine: BuddyEngine
    package let interface: PoolInterface

    package init(engine: BuddyEngine, interface: PoolInterface) {
        self.engine = engine
        self.interface = interface
    }

    /// Why a configuration cannot be used, or nil when it can (the engine's one validator).
    package static func problem(with config: PoolConfig) -> StaticString? {
        BuddyEngine.problem(with: config)
    }

    /// Creates a pool, mapping its first segment: the pool, or why there is none.
    package static func create(_ config: PoolConfig, interface: PoolInterface) -> (pool: PrivatePool?, problem: PoolProblem?) {
        if let problem = problem(with: config) { return (nil, .invalidConfiguration(problem)) }
        guard let engine = BuddyEngine.create(config) else {
            return (nil, .systemRefusedPool(size: UInt(bitPattern: config.initialSize)))
        }
        return (PrivatePool(engine: engine, interface: interface), nil)
    }

    /// Returns every segment to the OS; every pointer into the pool dies.
    package func destroy() { engine.destroy() }

    /// Allocates `size` bytes aligned to `alignment` (C: 0 is the smallest block's): the block,
    /// or why there is none (counted as a failed allocation).
    package func allocate(size: UInt, alignment: UInt) -> (block: UnsafeMutableRawPointer?, problem: PoolProblem?) {
        let geometry = engine.geometry
        let maxBlock = UInt(geometry.maxBlock)
        var problem: PoolProblem? = nil
        // Every block is aligned to its own size, so an alignment is served by a block at least
        // that large: a power of two <= maxBlock (or, in C, 0: the minimum block's).
        var zeroRefused = false
        if case .swift = interface { zeroRefused = alignment == 0 }
        if zeroRefused || alignment & (alignment &- 1) != 0 || alignment > maxBlock {
            problem = .invalidAlignment(alignment, maxBlock: geometry.maxBlock)
        } else if size > maxBlock {
            problem = .tooLarge(size: size, maxBlock: geometry.maxBlock)
        }
        let locked = engine.lock()
        if problem != nil {
            engine.countRefusedAllocation()
            engine.unlock(locked)
            return (nil, problem)
        }
        let order = max(geometry.order(forSize: Int(size)), geometry.order(forSize: Int(alignment)))
        if let block = engine.allocate(order: order) {
            engine.unlock(locked)
            return (block, nil)
        }
        if engine.isAtSizeLimit {
            problem = .full(size: size, poolBytes: Int(engine.state.pointee.segmentBytes), limit: engine.config.maxPoolSize)
        } else {
            problem = .systemRefused(size: size)
        }
        engine.unlock(locked)
        return (nil, problem)
    }

    /// Frees a block of this pool; anything else leaves the pool unchanged, counted as a bad
    /// pointer, and is the problem returned.
    package func free(_ pointer: UnsafeMutableRawPointer) -> PoolProblem? {
        let locked = engine.lock()
        let outcome = engine.release(pointer)
        // The engine counts only pointers inside some pool; a foreign one is still a bad free here.
        if case .foreign = outcome { engine.countBadPointer(.invalidPointer) }
        engine.unlock(locked)
        if case .released = outcome { return nil }
        return .badPointer(UnsafeRawPointer(pointer), outcome)
    }

    /// Bytes in the allocated block at `pointer` (every one usable), or nil when `pointer` is
    /// not the start of a block this pool allocated. Under the lock: a segment released by
    /// another thread takes its order map with it.
    package func blockSize(of pointer: UnsafeRawPointer) -> Int? {
        let locked = engine.lock()
        let size = engine.blockSize(of: pointer)
        engine.unlock(locked)
        return size
    }

    /// Grows the allocated block at `pointer` to hold `size` bytes without moving it, when the
    /// buddies above it are free; false (nothing changed) otherwise.
    package func resizeInPlace(_ pointer: UnsafeMutableRawPointer, toSize size: UInt) -> Bool {
        let geometry = engine.geometry
        guard size <= UInt(geometry.maxBlock) else { return false }
        let locked = engine.lock()
        var resized = false
        if case .allocated(let order) = engine.classify(pointer) {
            resized = engine.resizeInPlace(pointer, from: order, to: max(order, geometry.order(forSize: Int(size))))
        }
        engine.unlock(locked)
        return resized
    }

    /// Frees every block at once, keeping the first segment. The caller holds the lock
    /// (`engine.lock()`), so that it can do its own bookkeeping in the same hold.
    package func resetLocked() { engine.reset() }

    /// Frees every block at once, keeping the first segment.
    package func reset() {
        let locked = engine.lock()
        engine.reset()
        engine.unlock(locked)
    }
}

extension BuddyEngine {
    /// The shape of the pool's blocks (sizes, orders, the largest block).
    public var blockGeometry: Geometry { geometry }

    /// Zeroes the event counters; the peaks restart at the bytes and blocks allocated now. The
    /// caller holds the lock.
    public func resetCounters() {
        let peak = UInt64(state.pointee.allocatedBytes)
        state.pointee.counters = PoolCounters()
        state.pointee.counters.peakAllocatedBytes = peak
        state.pointee.stats.peakEngineBlocks = state.pointee.stats.engineBlocks
    }

    /// Counts an allocation refused before it reached the engine (an invalid alignment, a size
    /// above the largest block). The caller holds the lock.
    public func countRefusedAllocation() {
        state.pointee.counters.failedAllocations &+= 1
    }
}
