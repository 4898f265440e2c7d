import BuddyEngine
import CBuddySupport

// The explicit-use API: private pools, each an instance of the engine with its own segments and
// lock, and no thread caches. Two clients: the Swift module BuddyPool (through the public
// extension below) and C (the @_cdecl functions, declared in BuddyMallocAPI/include/buddy.h
// and exported by libBuddyMalloc.so).
//
// The C functions run in programs whose malloc is this library, and may be called from inside
// it (a C++ allocator, a signal-free hot loop): like malloc, they never allocate and never call
// the Swift runtime (tools/check-malloc-path.py walks from every export, these included).
// Messages are StaticStrings written with LineBuffer; the structs of buddy.h are read and
// written through raw pointers at the offsets of their Swift mirrors (checked by a test).

// MARK: - Engine additions for the pool APIs

extension BuddyEngine {
    /// The shape of the pool's blocks (sizes, orders, the largest block).
    public var blockGeometry: Geometry { geometry }

    /// Writes the pool's report to `fd`, text or JSON, with the same allocation-free writer as
    /// the exit report (BUDDY_REPORT). Takes the pool lock itself: call it without holding it.
    public func writeReport(to fd: Int32, json: Bool = false) {
        Report.write(self, to: fd, format: json ? Int32(BUDDY_REPORT_JSON.rawValue) : Int32(BUDDY_REPORT_TEXT.rawValue))
    }

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

// MARK: - buddy.h's constants and structs, mirrored

/// The error codes of buddy.h (the design document's table 12.2, plus BUDDY_INVALID_ARGUMENT).
enum PoolCode {
    static let ok: Int32 = 0
    static let outOfMemory: Int32 = 1
    static let invalidPointer: Int32 = 2
    static let poolFull: Int32 = 3
    static let invalidAlignment: Int32 = 4
    static let invalidArgument: Int32 = 5
}

/// `buddy_pool_config.on_error`.
enum PoolOnError {
    static let returnCode: Int32 = 0
    static let log: Int32 = 1
    static let abort: Int32 = 2
}

/// `buddy_pool_config`, field for field (version 1).
struct CPoolConfig {
    var version: UInt32
    var threadSafe: Int32
    var initialSize: UInt
    var minBlock: UInt
    var maxBlock: UInt
    var maxSize: UInt
    var growthFactor: Double
    var releaseDelay: Double
    var onError: Int32
    var reserved: Int32

    static let version: UInt32 = 1
}

/// `buddy_pool_stats` up to its `free_blocks` array (version 1), field for field.
struct CPoolStatsHead {
    var version: UInt32
    var segmentCount: UInt32
    var totalBytes: UInt64
    var allocatedBytes: UInt64
    var freeBytes: UInt64
    var peakAllocatedBytes: UInt64
    var largestFreeBlock: UInt64
    var allocations: UInt64
    var frees: UInt64
    var failedAllocations: UInt64
    var invalidPointers: UInt64
    var doubleFrees: UInt64
    var splits: UInt64
    var coalesces: UInt64
    var segmentsAdded: UInt64
    var segmentsReleased: UInt64
    var minBlock: UInt64
    var maxBlock: UInt64
    // Followed by `uint64_t free_blocks[BUDDY_POOL_ORDERS]`.

    static let version: UInt32 = 1
    /// BUDDY_POOL_ORDERS: one count per order an engine can have (Geometry.orderLimit + 1; a
    /// literal, since a computed static would be initialized through swift_once).
    static let orders = 41
}

/// What a `buddy_pool *` points at: a page of its own, so that the pool's C-only settings live
/// beside the engine without changing it, and a stale or foreign handle is likely caught.
struct CPoolHandle {
    var magic: UInt64
    var engine: BuddyEngine
    var onError: Int32

    /// "buddypol" in ASCII.
    static let magic: UInt64 = 0x6275_6464_7970_6F6C
}

private let ENOMEM_: Int32 = 12
private let EINVAL_: Int32 = 22

/// The handle behind a `buddy_pool *`, or nil for NULL or something that is not a live pool.
@inline(__always)
private func handle(_ raw: UnsafeMutableRawPointer?) -> UnsafeMutablePointer<CPoolHandle>? {
    guard let raw else { return nil }
    let pool = raw.assumingMemoryBound(to: CPoolHandle.self)
    return pool.pointee.magic == CPoolHandle.magic ? pool : nil
}

// MARK: - Error lines (on_error = BUDDY_ON_ERROR_LOG or BUDDY_ON_ERROR_ABORT)

/// What went wrong, for the one-line message: each case names the remedy.
private enum PoolProblem {
    case tooLarge(size: UInt, maxBlock: Int)
    case systemRefused(size: UInt)
    case full(size: UInt, poolBytes: Int, limit: Int)
    case alignment(UInt, maxBlock: Int)
    case pointer(UnsafeRawPointer, BuddyEngine.ReleaseOutcome)
}

/// Writes the error line (allocation-free) and aborts when the pool says so. Called without the
/// pool lock held.
@inline(never)
private func report(_ pool: UnsafeMutablePointer<CPoolHandle>, _ function: StaticString, _ problem: PoolProblem) {
    let onError = pool.pointee.onError
    if onError == PoolOnError.returnCode { return }
    var line = LineBuffer()
    line.append("buddy: ")
    line.append(function)
    line.append(": ")
    switch problem {
    case .tooLarge(let size, let maxBlock):
        line.append("out of memory: ")
        line.append(decimal: UInt64(size))
        line.append(" bytes is more than the pool's largest block (")
        line.append(bytes: UInt64(maxBlock))
        line.append("); raise max_block, or use malloc for it")
    case .systemRefused(let size):
        line.append("out of memory: the system refused a new segment for ")
        line.append(decimal: UInt64(size))
        line.append(" bytes; free blocks you no longer need, or lower growth_factor")
    case .full(let size, let poolBytes, let limit):
        line.append("pool full: ")
        line.append(decimal: UInt64(size))
        line.append(" bytes requested, the pool holds ")
        line.append(bytes: UInt64(poolBytes))
        line.append(" of its max_size ")
        line.append(bytes: UInt64(limit))
        line.append("; raise max_size, or free blocks")
    case .alignment(let alignment, let maxBlock):
        line.append("invalid alignment ")
        line.append(decimal: UInt64(alignment))
        line.append(": use 0 or a power of two up to the largest block (")
        line.append(bytes: UInt64(maxBlock))
        line.append(")")
    case .pointer(let pointer, let outcome):
        switch outcome {
        case .doubleFree:
            line.append("double free of ")
            line.append(hex: UInt(bitPattern: pointer))
            line.append(" (already free: freed twice, or used after free)")
        case .otherPool:
            line.append("pointer ")
            line.append(hex: UInt(bitPattern: pointer))
            line.append(" belongs to another pool (free it with that pool, or free() for malloc's)")
        case .foreign:
            line.append("pointer ")
            line.append(hex: UInt(bitPattern: pointer))
            line.append(" is not from any pool (free it with free())")
        default:
            line.append("invalid pointer ")
            line.append(hex: UInt(bitPattern: pointer))
            line.append(" (inside the pool, not the start of an allocated block)")
        }
    }
    if onError == PoolOnError.abort {
        line.append("; aborting (on_error = BUDDY_ON_ERROR_ABORT)\n")
        line.write(to: 2)
        buddy_os_abort()
    }
    line.append(byte: 10)
    line.write(to: 2)
}

// MARK: - Exported entry points (declared in buddy.h)

/// Why a configuration cannot be used, or NULL when it can.
@_cdecl("buddy_pool_config_problem")
public func buddy_pool_config_problem(_ rawConfig: UnsafeRawPointer?) -> UnsafePointer<CChar>? {
    guard let rawConfig else { return nil }
    var config = PoolConfig()
    var onError: Int32 = 0
    if let problem = engineConfig(rawConfig, &config, &onError) {
        return UnsafeRawPointer(problem.utf8Start).assumingMemoryBound(to: CChar.self)
    }
    return nil
}

/// Reads a buddy_pool_config into the engine's configuration; returns what is wrong with it.
private func engineConfig(_ raw: UnsafeRawPointer, _ config: inout PoolConfig, _ onError: inout Int32) -> StaticString? {
    let c = raw.load(as: CPoolConfig.self)
    if c.version != CPoolConfig.version { return "unknown config version (set it with buddy_pool_config_default())" }
    if c.onError < PoolOnError.returnCode || c.onError > PoolOnError.abort { return "on_error must be BUDDY_ON_ERROR_RETURN, _LOG or _ABORT" }
    config.initialSize = Int(bitPattern: c.initialSize)
    config.minBlock = Int(bitPattern: c.minBlock)
    config.maxBlock = Int(bitPattern: c.maxBlock)
    config.maxPoolSize = Int(bitPattern: c.maxSize)
    config.growthFactor = c.growthFactor
    config.releaseDelay = c.releaseDelay
    config.threadSafety = c.threadSafe != 0 ? .automatic : .off
    onError = c.onError
    return BuddyEngine.problem(with: config)
}

/// Creates a private pool (NULL config: the defaults); NULL with errno EINVAL (invalid config)
/// or ENOMEM (no memory for its first segment).
@_cdecl("buddy_pool_create")
public func buddy_pool_create(_ rawConfig: UnsafeRawPointer?) -> UnsafeMutableRawPointer? {
    var config = PoolConfig()
    var onError = PoolOnError.returnCode
    if let rawConfig, let problem = engineConfig(rawConfig, &config, &onError) {
        if onError != PoolOnError.returnCode {
            var line = LineBuffer()
            line.append("buddy: buddy_pool_create(): ")
            line.append(problem)
            line.append(byte: 10)
            line.write(to: 2)
        }
        buddy_errno_set(EINVAL_)
        return nil
    }
    let page = buddy_os_page_size()
    guard let engine = BuddyEngine.create(config) else {
        buddy_errno_set(ENOMEM_)
        return nil
    }
    engine.reportCorruptionToMalloc()
    guard let memory = buddy_os_map_aligned(page, page) else {
        engine.destroy()
        buddy_errno_set(ENOMEM_)
        return nil
    }
    let pool = memory.bindMemory(to: CPoolHandle.self, capacity: 1)
    pool.initialize(to: CPoolHandle(magic: CPoolHandle.magic, engine: engine, onError: onError))
    return memory
}

/// Returns every segment of the pool to the OS; every pointer into it dies. NULL is a no-op.
@_cdecl("buddy_pool_destroy")
public func buddy_pool_destroy(_ raw: UnsafeMutableRawPointer?) {
    guard let pool = handle(raw) else { return }
    pool.pointee.engine.destroy()
    pool.pointee.magic = 0
    buddy_os_unmap(UnsafeMutableRawPointer(pool), buddy_os_page_size())
}

/// Allocates `size` bytes aligned to `alignment`: the shared path of buddy_pool_alloc and
/// buddy_pool_alloc_ex. Returns an error code; writes `result` only on success.
@inline(__always)
private func allocate(_ raw: UnsafeMutableRawPointer?, _ size: Int, _ alignment: Int,
                      _ result: inout UnsafeMutableRawPointer?, _ function: StaticString) -> Int32 {
    guard let pool = handle(raw) else { return PoolCode.invalidArgument }
    let engine = pool.pointee.engine
    let geometry = engine.geometry
    let request = UInt(bitPattern: size), align = UInt(bitPattern: alignment)
    let maxBlock = UInt(geometry.maxBlock)
    var problem: PoolProblem? = nil
    var code = PoolCode.ok
    // Every block is aligned to its own size, so an alignment is served by a block at least
    // that large: alignment must be 0 (the minimum block's) or a power of two <= maxBlock.
    if align & (align &- 1) != 0 || align > maxBlock {
        problem = .alignment(align, maxBlock: geometry.maxBlock)
        code = PoolCode.invalidAlignment
    } else if request > maxBlock {
        // A private pool has no system fallback: more than its largest block is out of memory.
        problem = .tooLarge(size: request, maxBlock: geometry.maxBlock)
        code = PoolCode.outOfMemory
    }
    let locked = engine.lock()
    if problem != nil {
        engine.countRefusedAllocation()
        engine.unlock(locked)
    } else {
        let order = max(geometry.order(forSize: Int(request)), geometry.order(forSize: Int(align)))
        if let block = engine.allocate(order: order) {
            engine.unlock(locked)
            result = block
            return PoolCode.ok
        }
        if engine.isAtSizeLimit {
            let usage = engine.usage
            problem = .full(size: request, poolBytes: usage.segmentBytes, limit: engine.config.maxPoolSize)
            code = PoolCode.poolFull
        } else {
            problem = .systemRefused(size: request)
            code = PoolCode.outOfMemory
        }
        engine.unlock(locked)
    }
    if let problem { report(pool, function, problem) }
    return code
}

/// Allocates from the pool; NULL with errno ENOMEM (out of memory, pool full) or EINVAL
/// (invalid alignment).
@_cdecl("buddy_pool_alloc")
public func buddy_pool_alloc(_ raw: UnsafeMutableRawPointer?, _ size: Int, _ alignment: Int) -> UnsafeMutableRawPointer? {
    var result: UnsafeMutableRawPointer? = nil
    let code = allocate(raw, size, alignment, &result, "buddy_pool_alloc()")
    if code == PoolCode.invalidAlignment || code == PoolCode.invalidArgument {
        buddy_errno_set(EINVAL_)
    } else if code != PoolCode.ok {
        buddy_errno_set(ENOMEM_)
    }
    return result
}

/// As buddy_pool_alloc, returning the error code; `*result` is written only on success.
@_cdecl("buddy_pool_alloc_ex")
public func buddy_pool_alloc_ex(_ raw: UnsafeMutableRawPointer?, _ size: Int, _ alignment: Int,
                                _ result: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int32 {
    guard let result else { return PoolCode.invalidArgument }
    var block: UnsafeMutableRawPointer? = nil
    let code = allocate(raw, size, alignment, &block, "buddy_pool_alloc_ex()")
    if code == PoolCode.ok { result.pointee = block }
    return code
}

/// Frees a block of this pool; BUDDY_INVALID_POINTER (the pool untouched) for anything else.
@_cdecl("buddy_pool_free")
public func buddy_pool_free(_ raw: UnsafeMutableRawPointer?, _ pointer: UnsafeMutableRawPointer?) -> Int32 {
    guard let pool = handle(raw) else { return PoolCode.invalidArgument }
    guard let pointer else { return PoolCode.ok }
    let engine = pool.pointee.engine
    let locked = engine.lock()
    let outcome = engine.release(pointer)
    switch outcome {
    case .released:
        engine.unlock(locked)
        return PoolCode.ok
    case .foreign:
        // The engine counts only pointers inside some pool; this one is still a bad free here.
        engine.countBadPointer(.invalidPointer)
    default:
        break
    }
    engine.unlock(locked)
    report(pool, "buddy_pool_free()", .pointer(UnsafeRawPointer(pointer), outcome))
    return PoolCode.invalidPointer
}

/// Frees every block at once, keeping the first segment.
@_cdecl("buddy_pool_reset")
public func buddy_pool_reset(_ raw: UnsafeMutableRawPointer?) -> Int32 {
    guard let pool = handle(raw) else { return PoolCode.invalidArgument }
    let engine = pool.pointee.engine
    let locked = engine.lock()
    engine.reset()
    engine.unlock(locked)
    return PoolCode.ok
}

/// 1 when `pointer` is the start of a block allocated from this pool, else 0.
@_cdecl("buddy_pool_owns")
public func buddy_pool_owns(_ raw: UnsafeMutableRawPointer?, _ pointer: UnsafeRawPointer?) -> Int32 {
    buddy_pool_block_size(raw, pointer) != 0 ? 1 : 0
}

/// The size of the allocated block at `pointer` (every byte usable), or 0.
@_cdecl("buddy_pool_block_size")
public func buddy_pool_block_size(_ raw: UnsafeMutableRawPointer?, _ pointer: UnsafeRawPointer?) -> Int {
    guard let pool = handle(raw), let pointer else { return 0 }
    let engine = pool.pointee.engine
    // Under the lock: a segment released by another thread takes its order map with it.
    let locked = engine.lock()
    let size = engine.blockSize(of: pointer) ?? 0
    engine.unlock(locked)
    return size
}

/// Fills a buddy_pool_stats snapshot (one lock hold); `stats->version` says which layout the
/// caller has and is set to the layout written.
@_cdecl("buddy_pool_stats")
public func buddy_pool_stats(_ raw: UnsafeMutableRawPointer?, _ out: UnsafeMutableRawPointer?) -> Int32 {
    guard let pool = handle(raw), let out else { return PoolCode.invalidArgument }
    // Every layout starts with version 1's, so any caller has room for it (0: a zeroed struct,
    // whose caller did not say: the oldest layout). A newer caller gets version 1's fields.
    let engine = pool.pointee.engine
    let geometry = engine.geometry
    let counts = out + MemoryLayout<CPoolStatsHead>.stride
    let locked = engine.lock()
    let usage = engine.usage
    let c = engine.counters
    let largest = engine.largestFreeBlock
    // The segments' untouched tails count as free top-order blocks (Figures.swift).
    for order in 0..<CPoolStatsHead.orders {
        let count = order <= geometry.maxOrder ? engine.freeBlockCountWithTails(order: order) : 0
        counts.storeBytes(of: UInt64(count), toByteOffset: order &* 8, as: UInt64.self)
    }
    engine.unlock(locked)
    out.storeBytes(of: CPoolStatsHead(
        version: CPoolStatsHead.version, segmentCount: UInt32(truncatingIfNeeded: usage.segmentCount),
        totalBytes: UInt64(usage.segmentBytes), allocatedBytes: UInt64(usage.allocatedBytes),
        freeBytes: UInt64(usage.freeBytes), peakAllocatedBytes: c.peakAllocatedBytes,
        largestFreeBlock: UInt64(largest), allocations: c.allocations, frees: c.frees,
        failedAllocations: c.failedAllocations, invalidPointers: c.invalidPointers, doubleFrees: c.doubleFrees,
        splits: c.splits, coalesces: c.coalesces, segmentsAdded: c.segmentsAdded,
        segmentsReleased: c.segmentsReleased, minBlock: UInt64(geometry.minBlock), maxBlock: UInt64(geometry.maxBlock)),
        as: CPoolStatsHead.self)
    return PoolCode.ok
}

/// Writes the pool's report to `fd`: BUDDY_POOL_REPORT_TEXT (0) or BUDDY_POOL_REPORT_JSON (1),
/// the formats of the process report (BUDDY_REPORT).
@_cdecl("buddy_pool_report")
public func buddy_pool_report(_ raw: UnsafeMutableRawPointer?, _ fd: Int32, _ format: Int32) -> Int32 {
    guard let pool = handle(raw), format == 0 || format == 1, fd >= 0 else { return PoolCode.invalidArgument }
    pool.pointee.engine.writeReport(to: fd, json: format == 1)
    return PoolCode.ok
}
