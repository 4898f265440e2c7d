internal import BuddyEngine
internal import BuddyMallocCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A private buddy-system pool: blocks of `minBlockSize << k` bytes, each aligned to its own
/// size, carved from segments the pool maps for itself and returns when it is deinitialized.
/// Independent of `malloc` and of every other pool (its own segments, lock and statistics).
///
///     let pool = MemoryPool()                       // 1 MiB, blocks of 16 B to 1 MiB, thread safe
///     let p = try pool.allocate(byteCount: 100)     // a 128-byte block
///     try pool.deallocate(p)
///
/// Thread safety: with `isThreadSafe` (the default) every call takes the pool's lock (skipped
/// while the process has a single thread), so any thread may use the pool. Without it the pool
/// takes no lock and must be used by one thread at a time.
///
/// Lifetime: the pool returns all its memory to the OS when it is deinitialized (C++:
/// `~MemoryPool()`); every pointer into it dies then. `PoolArray`s keep their pool alive.
/// Private pools have no fork handlers: a child forked while another thread is inside a call
/// of a thread-safe pool inherits that pool's lock held.
///
/// Performance metrics: the pool always counts calls (exactly, under its lock). With
/// `Configuration.measuresTiming` it also times every allocation and deallocation with
/// `CLOCK_MONOTONIC`, from entry to return (the wait for the lock included), and keeps the
/// total and the maximum; without it the times read 0. Timing costs two clock reads per call.
///
/// C++: `class MemoryPool` (design document section 3.1).
public final class MemoryPool: @unchecked Sendable {
    // @unchecked: the engine's state is guarded by the engine's own lock (or used by one thread
    // when `isThreadSafe` is off); the Swift-side state is atomics and a Mutex.

    /// How a pool is set up. The defaults are the design document's: 1 MiB initial size, blocks
    /// of 16 B to 1 MiB, thread safe, growth factor 2.0.
    ///
    /// C++: the `MemoryPool` constructor's parameters, `set_error_handling_strategy`.
    public struct Configuration: Sendable, Equatable {
        /// Bytes mapped when the pool is created, rounded up to a power of two of at least
        /// max(64 KiB, `maxBlockSize`). C++: `initial_size`.
        public var initialSize: Int
        /// The smallest block, a power of two >= 16; every pointer is aligned to it.
        /// C++: `min_block_size`.
        public var minBlockSize: Int
        /// The largest block, a power of two <= 1 GiB. A larger request fails with
        /// `PoolError.outOfMemory`: a private pool has no fallback allocator. C++: `max_block_size`.
        public var maxBlockSize: Int
        /// Whether calls take the pool's lock. C++: `thread_safe`.
        public var isThreadSafe: Bool
        /// A full pool maps a segment that grows it from S to about S x factor bytes (1.0 to 64).
        /// C++: `growth_factor`.
        public var growthFactor: Double
        /// Upper bound on the bytes of all segments; past it, allocations fail with
        /// `PoolError.poolFull`. 0: no limit. C++: `max_memory_limit`.
        public var maxSize: Int
        /// What a failed call does besides reporting the error. C++: `error_strategy`.
        public var errorStrategy: ErrorStrategy
        /// Whether every allocation and deallocation is timed (see `performanceMetrics`).
        public var measuresTiming: Bool
        /// Seconds before free top-order blocks and empty segments go back to the OS (0: at once).
        public var releaseDelay: Double

        public init(initialSize: Int = 1 << 20, minBlockSize: Int = 16, maxBlockSize: Int = 1 << 20,
                    isThreadSafe: Bool = true, growthFactor: Double = 2.0, maxSize: Int = 0,
                    errorStrategy: ErrorStrategy = .throw, measuresTiming: Bool = false,
                    releaseDelay: Double = 1.0) {
            self.initialSize = initialSize
            self.minBlockSize = minBlockSize
            self.maxBlockSize = maxBlockSize
            self.isThreadSafe = isThreadSafe
            self.growthFactor = growthFactor
            self.maxSize = maxSize
            self.errorStrategy = errorStrategy
            self.measuresTiming = measuresTiming
            self.releaseDelay = releaseDelay
        }

        /// Why the configuration cannot be used, or nil when it can.
        public var problem: String? {
            PrivatePool.problem(with: engineConfig).map { "\($0)" }
        }

        var engineConfig: PoolConfig {
            var config = PoolConfig()
            config.initialSize = initialSize
            config.minBlock = minBlockSize
            config.maxBlock = maxBlockSize
            config.growthFactor = growthFactor
            config.maxPoolSize = maxSize
            config.releaseDelay = releaseDelay
            config.threadSafety = isThreadSafe ? .automatic : .off
            return config
        }
    }

    /// What a failed call does, besides counting the error in `errorStats`.
    ///
    /// | strategy | `allocate`, `allocate(_:capacity:)` | `deallocate` | `tryAllocate` / `tryDeallocate` |
    /// |---|---|---|---|
    /// | `.throw` | throws | throws | nil / false |
    /// | `.returnNil` | throws (it has no nil to return) | returns, the pointer ignored | nil / false |
    /// | `.log` | logs, then throws | logs, then returns | logs, then nil / false |
    /// | `.terminate` | logs, then stops the process | same | same |
    ///
    /// The logger is `errorLogger` (standard error when it is nil). It is always called after the
    /// pool lock is released, so it may use the pool.
    ///
    /// C++: `ErrorHandlingStrategy` (`THROW_EXCEPTION`, `RETURN_NULLPTR`, `LOG_ERROR`, `TERMINATE`).
    public enum ErrorStrategy: UInt8, Sendable, CaseIterable {
        case `throw`
        case returnNil
        case log
        case terminate
    }

    /// Receives the error and a line saying what happened and what to do.
    /// C++: `std::function<void(const std::string&)> error_logger`.
    public typealias ErrorLogger = @Sendable (PoolError, String) -> Void

    /// The alignment every block has at least (the smallest block): `allocate`'s default.
    public static let defaultAlignment = 16

    /// The private-pool core this API shares with C's buddy_pool_* (BuddyEngine/PrivatePool.swift).
    let core: PrivatePool
    let engine: BuddyEngine
    let geometry: Geometry
    /// The configuration the pool was created with (`isThreadSafe` and `errorStrategy` may
    /// have changed since: read the properties).
    public let configuration: Configuration
    private let strategy: Atomic<UInt8>
    private let logger: Mutex<ErrorLogger?>
    /// Bumped by every `reset()`: storage allocated before it is gone (see PoolArray).
    let generation = Atomic<UInt64>(0)
    let tally = Tally()
    let created = ContinuousClock.now

    /// Creates a pool. Throws `PoolError.outOfMemory` when the system refuses the first segment.
    /// An invalid configuration (see `Configuration.problem`) is a programming error and stops
    /// the process.
    ///
    /// C++: `MemoryPool(size_t initial_size, size_t min_block_size, size_t max_block_size,
    /// bool thread_safe, double growth_factor)`, `set_error_logger`.
    public init(_ configuration: Configuration, errorLogger: ErrorLogger? = nil) throws(PoolError) {
        let created = PrivatePool.create(configuration.engineConfig, interface: .swift)
        guard let core = created.pool, let engine = created.pool?.engine else {
            let problem = created.problem.unsafelyUnwrapped
            if case .invalidConfiguration = problem {
                preconditionFailure("BuddyPool: invalid configuration: \(MemoryPool.message(problem))")
            }
            throw PoolError(problem)
        }
        self.core = core
        self.engine = engine
        self.geometry = engine.blockGeometry
        self.configuration = configuration
        self.strategy = Atomic(configuration.errorStrategy.rawValue)
        self.logger = Mutex(errorLogger)
    }

    /// A pool with the design document's defaults (1 MiB, blocks of 16 B to 1 MiB, thread safe,
    /// growth factor 2.0). Stops the process if the system refuses the first megabyte, as Swift's
    /// own allocations do. C++: `MemoryPool()`.
    public convenience init() {
        do {
            try self.init(Configuration())
        } catch {
            fatalError("BuddyPool: the system refused the pool's first segment: \(error)")
        }
    }

    /// Returns every segment to the OS. C++: `~MemoryPool()`.
    deinit { core.destroy() }

    // MARK: Settings

    /// Whether calls take the pool's lock; may be switched at run time, while no other thread
    /// uses the pool. C++: `set_thread_safe`, `is_thread_safe`.
    public var isThreadSafe: Bool {
        get { engine.config.threadSafety != .off }
        set { engine.setThreadSafety(newValue ? .automatic : .off) }
    }

    /// What failed calls do. C++: `set_error_handling_strategy`.
    public var errorStrategy: ErrorStrategy {
        get { ErrorStrategy(rawValue: strategy.load(ordering: .relaxed)) ?? .throw }
        set { strategy.store(newValue.rawValue, ordering: .relaxed) }
    }

    /// Receives failures under `.log` and `.terminate` (nil: standard error).
    /// C++: `set_error_logger`.
    public var errorLogger: ErrorLogger? {
        get { logger.withLock { $0 } }
        set { logger.withLock { $0 = newValue } }
    }

    /// Bytes in the pool's largest block.
    public var maxBlockSize: Int { geometry.maxBlock }
    /// Bytes in the pool's smallest block.
    public var minBlockSize: Int { geometry.minBlock }

    // MARK: Allocation

    /// Allocates `byteCount` bytes (uninitialized) aligned to `alignment`, in a block of the next
    /// power of two (at least `minBlockSize`); `blockSize(of:)` says how many bytes are usable.
    /// Throws `.invalidAlignment`, `.outOfMemory` (also for a request above `maxBlockSize`) or
    /// `.poolFull`, after applying the error strategy.
    ///
    /// C++: `void* allocate(size_t size, size_t alignment)`.
    public func allocate(byteCount: Int, alignment: Int = MemoryPool.defaultAlignment) throws(PoolError) -> UnsafeMutableRawPointer {
        switch reserve(byteCount: byteCount, alignment: alignment) {
        case .block(let block): return block
        case .failed(let error, let message): throw fail(error, message)
        }
    }

    /// Allocates uninitialized memory for `capacity` values of `T`, aligned for `T`.
    /// Free it with `deallocate(_:)` after deinitializing what you initialized.
    ///
    /// C++: `template<typename T> T* allocate_type(size_t count)`.
    public func allocate<T: ~Copyable>(_ type: T.Type, capacity: Int = 1) throws(PoolError) -> UnsafeMutablePointer<T> {
        precondition(capacity >= 0, "BuddyPool: negative capacity")
        let (bytes, overflow) = MemoryLayout<T>.stride.multipliedReportingOverflow(by: capacity)
        if overflow {
            throw fail(.outOfMemory, "out of memory: \(capacity) values of \(T.self) need more bytes than an Int holds")
        }
        let raw = try allocate(byteCount: bytes, alignment: MemoryLayout<T>.alignment)
        return raw.bindMemory(to: T.self, capacity: capacity)
    }

    /// As `allocate(byteCount:alignment:)`, returning nil instead of throwing (the strategy's
    /// `.log` and `.terminate` still apply). C++: `void* safe_allocate(size_t, size_t)`.
    public func tryAllocate(byteCount: Int, alignment: Int = MemoryPool.defaultAlignment) -> UnsafeMutableRawPointer? {
        switch reserve(byteCount: byteCount, alignment: alignment) {
        case .block(let block): return block
        case .failed(let error, let message):
            _ = fail(error, message)
            return nil
        }
    }

    /// Frees a block this pool allocated. Anything else (a pointer from another pool or from
    /// elsewhere, inside a block, already freed) leaves the pool unchanged and is an
    /// `.invalidPointer` error: thrown under `.throw`, ignored under `.returnNil`, logged under
    /// `.log`.
    ///
    /// C++: `void deallocate(void* ptr)`.
    public func deallocate(_ pointer: UnsafeMutableRawPointer) throws(PoolError) {
        guard let (error, message) = release(pointer) else { return }
        let reported = fail(error, message)
        if errorStrategy == .throw { throw reported }
    }

    /// Frees typed memory this pool allocated (deinitialize its values first).
    public func deallocate<T: ~Copyable>(_ pointer: UnsafeMutablePointer<T>) throws(PoolError) {
        try deallocate(UnsafeMutableRawPointer(pointer))
    }

    /// As `deallocate(_:)`, returning false instead of throwing. C++: `bool safe_deallocate(void*)`.
    @discardableResult
    public func tryDeallocate(_ pointer: UnsafeMutableRawPointer) -> Bool {
        guard let (error, message) = release(pointer) else { return true }
        _ = fail(error, message)
        return false
    }

    // MARK: Management

    /// Frees every block at once: the pool returns to its state after creation (keeping its
    /// first segment). Every pointer into the pool dies; `PoolArray`s of this pool become empty.
    /// C++: `void reset()`.
    public func reset() {
        let locked = engine.lock()
        core.resetLocked()
        generation.add(1, ordering: .releasing)
        engine.unlock(locked)
    }

    /// Whether `pointer` is the start of a block allocated from this pool (what `deallocate`
    /// accepts). C++: `bool is_valid_pointer(void* ptr) const`.
    public func isValidPointer(_ pointer: UnsafeRawPointer) -> Bool {
        blockSize(of: pointer) != nil
    }

    /// Bytes in the allocated block at `pointer`, every one usable; nil when `pointer` is not
    /// an allocated block of this pool. C++: `size_t get_block_size(void* ptr) const`.
    public func blockSize(of pointer: UnsafeRawPointer) -> Int? {
        core.blockSize(of: pointer)
    }

    // MARK: The engine calls

    enum Reservation {
        case block(UnsafeMutableRawPointer)
        case failed(PoolError, String)
    }

    /// Allocates a block, or says why it could not, without applying the strategy.
    func reserve(byteCount: Int, alignment: Int) -> Reservation {
        precondition(byteCount >= 0, "BuddyPool: negative byte count")
        let start = configuration.measuresTiming ? Tally.now() : 0
        let allocation = core.allocate(size: UInt(byteCount), alignment: UInt(bitPattern: alignment))
        if let block = allocation.block {
            if start != 0 { tally.recordAllocation(since: start) }
            return .block(block)
        }
        let problem = allocation.problem.unsafelyUnwrapped
        return .failed(PoolError(problem), MemoryPool.message(problem))
    }

    /// Frees a block, or says why it could not, without applying the strategy.
    func release(_ pointer: UnsafeMutableRawPointer) -> (PoolError, String)? {
        let start = configuration.measuresTiming ? Tally.now() : 0
        guard let problem = core.free(pointer) else {
            if start != 0 { tally.recordDeallocation(since: start) }
            return nil
        }
        if case .badPointer(_, .doubleFree) = problem { tally.doubleFrees.add(1, ordering: .relaxed) }
        return (PoolError(problem), MemoryPool.message(problem))
    }

    /// The core's wording of a problem, as Swift names the settings.
    static func message(_ problem: PoolProblem) -> String {
        var line = TextBuffer()
        problem.describe(to: &line, for: .swift)
        return line.text
    }

    /// Counts the error and applies the strategy (never with the lock held); returns the error
    /// for the caller to throw when it throws.
    func fail(_ error: PoolError, _ message: String) -> PoolError {
        tally.count(error)
        let strategy = errorStrategy
        switch strategy {
        case .throw, .returnNil: return error
        case .log, .terminate:
            let line = "BuddyPool: \(error.name): \(message)"
            if let logger = errorLogger {
                logger(error, line)
            } else if strategy == .log {
                let bytes = Array((line + "\n").utf8)
                _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
            }
            if strategy == .terminate { fatalError(line) }
            return error
        }
    }
}

/// The pool's Swift-side counters: errors by kind, and call timings. Atomics, so no lock is
/// needed to update them.
final class Tally: Sendable {
    let outOfMemory = Atomic<UInt64>(0)
    let poolFull = Atomic<UInt64>(0)
    let invalidAlignment = Atomic<UInt64>(0)
    let invalidPointer = Atomic<UInt64>(0)
    let doubleFrees = Atomic<UInt64>(0)
    let timedAllocations = Atomic<UInt64>(0)
    let allocationNanoseconds = Atomic<UInt64>(0)
    let maxAllocationNanoseconds = Atomic<UInt64>(0)
    let timedDeallocations = Atomic<UInt64>(0)
    let deallocationNanoseconds = Atomic<UInt64>(0)
    let maxDeallocationNanoseconds = Atomic<UInt64>(0)

    /// CLOCK_MONOTONIC in nanoseconds (never 0).
    static func now() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return UInt64(t.tv_sec) &* 1_000_000_000 &+ UInt64(t.tv_nsec) | 1
    }

    func count(_ error: PoolError) {
        switch error {
        case .outOfMemory: outOfMemory.add(1, ordering: .relaxed)
        case .poolFull: poolFull.add(1, ordering: .relaxed)
        case .invalidAlignment: invalidAlignment.add(1, ordering: .relaxed)
        case .invalidPointer: invalidPointer.add(1, ordering: .relaxed)
        }
    }

    func recordAllocation(since start: UInt64) {
        record(Tally.now() &- start, timedAllocations, allocationNanoseconds, maxAllocationNanoseconds)
    }

    func recordDeallocation(since start: UInt64) {
        record(Tally.now() &- start, timedDeallocations, deallocationNanoseconds, maxDeallocationNanoseconds)
    }

    private func record(_ elapsed: UInt64, _ count: borrowing Atomic<UInt64>, _ total: borrowing Atomic<UInt64>,
                        _ maximum: borrowing Atomic<UInt64>) {
        count.add(1, ordering: .relaxed)
        total.add(elapsed, ordering: .relaxed)
        var seen = maximum.load(ordering: .relaxed)
        while elapsed > seen {
            let (exchanged, original) = maximum.compareExchange(expected: seen, desired: elapsed, ordering: .relaxed)
            if exchanged { break }
            seen = original
        }
    }

    func reset() {
        outOfMemory.store(0, ordering: .relaxed)
        poolFull.store(0, ordering: .relaxed)
        invalidAlignment.store(0, ordering: .relaxed)
        invalidPointer.store(0, ordering: .relaxed)
        doubleFrees.store(0, ordering: .relaxed)
        timedAllocations.store(0, ordering: .relaxed)
        allocationNanoseconds.store(0, ordering: .relaxed)
        maxAllocationNanoseconds.store(0, ordering: .relaxed)
        timedDeallocations.store(0, ordering: .relaxed)
        deallocationNanoseconds.store(0, ordering: .relaxed)
        maxDeallocationNanoseconds.store(0, ordering: .relaxed)
    }
}
