#if !BUDDY_ONE_MODULE
import BuddyEngine
#endif
import CBuddySupport

// The private-pool API for C: the @_cdecl functions declared in BuddyMallocAPI/include/buddy.h
// and exported by libBuddyMalloc.so, a thin layer over the engine's private-pool core
// (BuddyEngine/PrivatePool.swift, which the Swift API BuddyPool shares): this file reads and
// writes buddy.h's structs, turns the core's problems into error codes and errno, and applies
// the pool's on_error. Also the report writer for BuddyPool's pools.
//
// The C functions run in programs whose malloc is this library, and may be called from inside
// it (a C++ allocator, a signal-free hot loop): like malloc, they never allocate and never call
// the Swift runtime (tools/check-malloc-path.py walks from every export, these included).
// Messages are written with TextBuffer; the structs of buddy.h are read and written through raw
// pointers at the offsets of their Swift mirrors (checked by a test).

// MARK: - The report for the pool APIs

extension BuddyEngine {
    /// Writes the pool's report to `fd`, text or JSON, with the same allocation-free writer as
    /// the exit report (BUDDY_REPORT). Takes the pool lock itself: call it without holding it.
    public func writeReport(to fd: Int32, json: Bool = false) {
        Report.write(self, to: fd, format: json ? Int32(BUDDY_REPORT_JSON.rawValue) : Int32(BUDDY_REPORT_TEXT.rawValue))
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
    var pool: PrivatePool
    var onError: Int32

    var engine: BuddyEngine { pool.engine }

    /// "buddypol" in ASCII.
    static let magic: UInt64 = 0x6275_6464_7970_6F6C
}


/// The handle behind a `buddy_pool *`, or nil for NULL or something that is not a live pool.
@inline(__always)
private func handle(_ raw: UnsafeMutableRawPointer?) -> UnsafeMutablePointer<CPoolHandle>? {
    guard let raw else { return nil }
    let pool = raw.assumingMemoryBound(to: CPoolHandle.self)
    return pool.pointee.magic == CPoolHandle.magic ? pool : nil
}

// MARK: - Error lines (on_error = BUDDY_ON_ERROR_LOG or BUDDY_ON_ERROR_ABORT)

/// Writes the error line of `problem`, worded by the core (allocation-free), and aborts when
/// `onError` says so. Called without the pool lock held.
@inline(never)
private func report(_ onError: Int32, _ function: StaticString, _ problem: PoolProblem) {
    if onError == PoolOnError.returnCode { return }
    var line = TextBuffer()
    line.append("buddy: ")
    line.append(function)
    line.append(": ")
    problem.describe(to: &line, for: .c)
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
    if let problem = engineConfig(rawConfig, &config, &onError) ?? PrivatePool.problem(with: config) {
        return UnsafeRawPointer(problem.utf8Start).assumingMemoryBound(to: CChar.self)
    }
    return nil
}

/// Reads a buddy_pool_config into the engine's configuration; returns what is wrong with the
/// C struct itself (its version, its on_error). The core validates the rest.
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
    return nil
}

/// Creates a private pool (NULL config: the defaults); NULL with errno EINVAL (invalid config)
/// or ENOMEM (no memory for its first segment).
@_cdecl("buddy_pool_create")
public func buddy_pool_create(_ rawConfig: UnsafeRawPointer?) -> UnsafeMutableRawPointer? {
    var config = PoolConfig()
    var onError = PoolOnError.returnCode
    var created: (pool: PrivatePool?, problem: PoolProblem?) = (nil, nil)
    if let rawConfig, let problem = engineConfig(rawConfig, &config, &onError) {
        created.problem = .invalidConfiguration(problem)
    } else {
        created = PrivatePool.create(config, interface: .c)
    }
    guard let pool = created.pool else {
        if case .invalidConfiguration? = created.problem {
            // Said on stderr (under _LOG and _ABORT), never aborted on: NULL with EINVAL says it.
            report(onError == PoolOnError.returnCode ? onError : PoolOnError.log, "buddy_pool_create()",
                   created.problem.unsafelyUnwrapped)
            buddy_errno_set(EINVAL_)
        } else {
            buddy_errno_set(ENOMEM_)
        }
        return nil
    }
    pool.engine.reportCorruptionToMalloc()
    let page = buddy_os_page_size()
    guard let memory = buddy_os_map_aligned(page, page) else {
        pool.destroy()
        buddy_errno_set(ENOMEM_)
        return nil
    }
    let handle = memory.bindMemory(to: CPoolHandle.self, capacity: 1)
    handle.initialize(to: CPoolHandle(magic: CPoolHandle.magic, pool: pool, onError: onError))
    return memory
}

/// Returns every segment of the pool to the OS; every pointer into it dies. NULL is a no-op.
@_cdecl("buddy_pool_destroy")
public func buddy_pool_destroy(_ raw: UnsafeMutableRawPointer?) {
    guard let handle = handle(raw) else { return }
    handle.pointee.pool.destroy()
    handle.pointee.magic = 0
    buddy_os_unmap(UnsafeMutableRawPointer(handle), buddy_os_page_size())
}

/// Allocates `size` bytes aligned to `alignment`: the shared path of buddy_pool_alloc and
/// buddy_pool_alloc_ex. Returns an error code; writes `result` only on success.
@inline(__always)
private func allocate(_ raw: UnsafeMutableRawPointer?, _ size: Int, _ alignment: Int,
                      _ result: inout UnsafeMutableRawPointer?, _ function: StaticString) -> Int32 {
    guard let handle = handle(raw) else { return PoolCode.invalidArgument }
    let allocation = handle.pointee.pool.allocate(size: UInt(bitPattern: size), alignment: UInt(bitPattern: alignment))
    if let problem = allocation.problem {
        report(handle.pointee.onError, function, problem)
        return problem.code
    }
    result = allocation.block
    return PoolCode.ok
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
    guard let handle = handle(raw) else { return PoolCode.invalidArgument }
    guard let pointer else { return PoolCode.ok }
    guard let problem = handle.pointee.pool.free(pointer) else { return PoolCode.ok }
    report(handle.pointee.onError, "buddy_pool_free()", problem)
    return problem.code
}

/// Frees every block at once, keeping the first segment.
@_cdecl("buddy_pool_reset")
public func buddy_pool_reset(_ raw: UnsafeMutableRawPointer?) -> Int32 {
    guard let handle = handle(raw) else { return PoolCode.invalidArgument }
    handle.pointee.pool.reset()
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
    guard let handle = handle(raw), let pointer else { return 0 }
    return handle.pointee.pool.blockSize(of: pointer) ?? 0
}

/// Fills a buddy_pool_stats snapshot (one lock hold); `stats->version` says which layout the
/// caller has and is set to the layout written.
@_cdecl("buddy_pool_stats")
public func buddy_pool_stats(_ raw: UnsafeMutableRawPointer?, _ out: UnsafeMutableRawPointer?) -> Int32 {
    guard let handle = handle(raw), let out else { return PoolCode.invalidArgument }
    // Every layout starts with version 1's, so any caller has room for it (0: a zeroed struct,
    // whose caller did not say: the oldest layout). A newer caller gets version 1's fields.
    let engine = handle.pointee.engine
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
