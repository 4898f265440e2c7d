import CBuddySupport
import Foundation
import Synchronization
import Testing
@testable import BuddyPool

/// A pool that fits in one 64 KiB segment and may not grow: small enough to fill.
func smallPool(strategy: MemoryPool.ErrorStrategy = .throw, logger: MemoryPool.ErrorLogger? = nil,
               threadSafe: Bool = true) throws -> MemoryPool {
    try MemoryPool(.init(initialSize: 64 << 10, maxBlockSize: 64 << 10, isThreadSafe: threadSafe,
                         maxSize: 64 << 10, errorStrategy: strategy), errorLogger: logger)
}

func expectIntact(_ pool: MemoryPool, sourceLocation: SourceLocation = #_sourceLocation) {
    let health = pool.healthReport
    #expect(health.brokenInvariant == nil, "\(health.message)", sourceLocation: sourceLocation)
}

/// Lines the logger received, in order.
final class LogLines: @unchecked Sendable {
    private let lines = Mutex<[(PoolError, String)]>([])
    func append(_ error: PoolError, _ line: String) { lines.withLock { $0.append((error, line)) } }
    var all: [(PoolError, String)] { lines.withLock { $0 } }
}

@Suite("MemoryPool")
struct MemoryPoolTests {
    @Test("MemoryPool() has the design document's defaults")
    func defaults() throws {
        let pool = MemoryPool()
        let c = pool.configuration
        #expect(c.initialSize == 1 << 20 && c.minBlockSize == 16 && c.maxBlockSize == 1 << 20)
        #expect(c.isThreadSafe && c.growthFactor == 2.0 && c.maxSize == 0 && c.errorStrategy == .throw)
        #expect(pool.isThreadSafe && pool.errorStrategy == .throw)
        #expect(pool.stats.totalBytes == 1 << 20 && pool.stats.usedBytes == 0 && pool.stats.segmentCount == 1)
        #expect(MemoryPool.Configuration().problem == nil)
        #expect(MemoryPool.Configuration(minBlockSize: 24).problem?.contains("power of two") == true)
        #expect(MemoryPool.Configuration(growthFactor: 0.5).problem?.contains("growth factor") == true)
    }

    @Test("an invalid configuration is a programming error that stops the process")
    func invalidConfiguration() async {
        await #expect(processExitsWith: .failure) {
            _ = try? MemoryPool(.init(minBlockSize: 24))
        }
    }

    @Test("allocate, blockSize, isValidPointer, deallocate")
    func allocateAndDeallocate() throws {
        let pool = MemoryPool()
        let p = try pool.allocate(byteCount: 100)
        #expect(pool.blockSize(of: p) == 128)
        #expect(pool.isValidPointer(p))
        #expect(!pool.isValidPointer(p + 16))
        #expect(pool.blockSize(of: p + 16) == nil)
        p.initializeMemory(as: UInt8.self, repeating: 0xAB, count: 128) // every byte of the block is usable
        let q = try pool.allocate(byteCount: 0)
        #expect(pool.blockSize(of: q) == 16 && q != p)
        let big = try pool.allocate(byteCount: 1 << 20)
        #expect(pool.blockSize(of: big) == 1 << 20)
        #expect(pool.stats.usedBytes == 128 + 16 + (1 << 20))
        try pool.deallocate(p)
        try pool.deallocate(q)
        try pool.deallocate(big)
        #expect(!pool.isValidPointer(p))
        #expect(pool.stats.usedBytes == 0)
        #expect(pool.stats.allocationCount == 3 && pool.stats.deallocationCount == 3)
        expectIntact(pool)
    }

    @Test("alignment: every power of two up to the largest block", arguments: [1, 2, 8, 16, 64, 4096, 65536, 1 << 20])
    func alignment(_ alignment: Int) throws {
        let pool = MemoryPool()
        let p = try pool.allocate(byteCount: 24, alignment: alignment)
        #expect(UInt(bitPattern: p) % UInt(alignment) == 0)
        #expect(UInt(bitPattern: p) % 16 == 0)
        #expect(pool.blockSize(of: p)! >= max(24, alignment))
        try pool.deallocate(p)
    }

    @Test("typed allocate: capacity, alignment, deallocate")
    func typedAllocate() throws {
        struct Wide { var a: SIMD8<Double> }
        let pool = MemoryPool()
        let values = try pool.allocate(Int.self, capacity: 100)
        values.initialize(repeating: 7, count: 100)
        #expect(values[99] == 7)
        #expect(pool.blockSize(of: values)! == 1024)
        let wide = try pool.allocate(Wide.self)
        #expect(UInt(bitPattern: wide) % UInt(MemoryLayout<Wide>.alignment) == 0)
        values.deinitialize(count: 100)
        try pool.deallocate(values)
        try pool.deallocate(wide)
        #expect(throws: PoolError.outOfMemory) { try pool.allocate(Int.self, capacity: Int.max / 4) }
        #expect(throws: PoolError.outOfMemory) { try pool.allocate(UInt8.self, capacity: (1 << 20) + 1) }
        #expect(pool.stats.usedBytes == 0)
    }

    @Test("the four errors carry the design document's codes and say what to do")
    func errorCodes() {
        #expect(PoolError.outOfMemory.code == 1 && PoolError.outOfMemory.name == "OUT_OF_MEMORY")
        #expect(PoolError.invalidPointer.code == 2 && PoolError.invalidPointer.name == "INVALID_POINTER")
        #expect(PoolError.poolFull.code == 3 && PoolError.poolFull.name == "POOL_FULL")
        #expect(PoolError.invalidAlignment.code == 4 && PoolError.invalidAlignment.name == "INVALID_ALIGNMENT")
        #expect(PoolError.poolFull.description.contains("raise maxSize"))
        #expect(PoolError.invalidAlignment.description.contains("power of two"))
        #expect(PoolError.allCases.map(\.code) == [1, 2, 3, 4])
    }

    @Test("throw: each error is thrown, counted, and leaves the pool intact")
    func throwStrategy() throws {
        let pool = try smallPool()
        #expect(throws: PoolError.invalidAlignment) { try pool.allocate(byteCount: 8, alignment: 3) }
        #expect(throws: PoolError.invalidAlignment) { try pool.allocate(byteCount: 8, alignment: 0) }
        #expect(throws: PoolError.invalidAlignment) { try pool.allocate(byteCount: 8, alignment: 128 << 10) }
        #expect(throws: PoolError.outOfMemory) { try pool.allocate(byteCount: (64 << 10) + 1) }
        let whole = try pool.allocate(byteCount: 64 << 10)
        #expect(throws: PoolError.poolFull) { try pool.allocate(byteCount: 16) }
        #expect(pool.tryAllocate(byteCount: 16) == nil)
        try pool.deallocate(whole)
        #expect(throws: PoolError.invalidPointer) { try pool.deallocate(whole) } // double free
        #expect(throws: PoolError.invalidPointer) { try pool.deallocate(whole + 16) } // interior
        let foreign = UnsafeMutableRawPointer.allocate(byteCount: 16, alignment: 16)
        defer { foreign.deallocate() }
        #expect(throws: PoolError.invalidPointer) { try pool.deallocate(foreign) }
        #expect(pool.tryDeallocate(foreign) == false)
        let errors = pool.errorStats
        #expect(errors.invalidAlignmentErrors == 3 && errors.outOfMemoryErrors == 1 && errors.poolFullErrors == 2)
        #expect(errors.allocationFailures == 6 && errors.invalidPointerErrors == 4 && errors.doubleFrees == 1)
        #expect(errors.deallocationFailures == 4)
        #expect(errors.allocationFailurePercent > 80 && errors.deallocationFailurePercent == 80)
        expectIntact(pool)
        // Still fully usable.
        let again = try pool.allocate(byteCount: 64 << 10)
        try pool.deallocate(again)
    }

    @Test("out of memory when the system refuses a segment (injected mmap failure)")
    func systemRefuses() throws {
        let pool = try MemoryPool(.init(initialSize: 64 << 10, maxBlockSize: 64 << 10))
        let whole = try pool.allocate(byteCount: 64 << 10)
        // The next map of this thread fails: the pool cannot grow, and it is not at a limit.
        buddy_os_fail_map_after(1)
        #expect(throws: PoolError.outOfMemory) { try pool.allocate(byteCount: 16) }
        buddy_os_fail_map_after(0)
        let grown = try pool.allocate(byteCount: 16)
        #expect(pool.stats.segmentCount == 2)
        try pool.deallocate(grown)
        try pool.deallocate(whole)
        expectIntact(pool)
    }

    @Test("returnNil: allocate still throws (it has no nil), deallocate ignores, try-variants return nil/false")
    func returnNilStrategy() throws {
        let lines = LogLines()
        let pool = try smallPool(strategy: .returnNil, logger: { lines.append($0, $1) })
        #expect(pool.tryAllocate(byteCount: 8, alignment: 3) == nil)
        #expect(throws: PoolError.invalidAlignment) { try pool.allocate(byteCount: 8, alignment: 3) }
        let p = try pool.allocate(byteCount: 32)
        try pool.deallocate(p)
        try pool.deallocate(p) // a double free, ignored without a throw
        #expect(pool.tryDeallocate(p) == false)
        #expect(pool.errorStats.invalidPointerErrors == 2 && pool.errorStats.invalidAlignmentErrors == 2)
        #expect(lines.all.isEmpty)
        expectIntact(pool)
    }

    @Test("log: the logger gets each error with a line saying what to do; deallocate does not throw")
    func logStrategy() throws {
        let lines = LogLines()
        let pool = try smallPool(strategy: .log, logger: { lines.append($0, $1) })
        #expect(pool.tryAllocate(byteCount: 8, alignment: 48) == nil)
        #expect(throws: PoolError.outOfMemory) { try pool.allocate(byteCount: 1 << 20) }
        let whole = try pool.allocate(byteCount: 64 << 10)
        #expect(pool.tryAllocate(byteCount: 1) == nil)
        try pool.deallocate(whole)
        try pool.deallocate(whole)
        let logged = lines.all
        #expect(logged.map(\.0) == [.invalidAlignment, .outOfMemory, .poolFull, .invalidPointer])
        #expect(logged[0].1.contains("invalid alignment 48") && logged[0].1.contains("power of two"))
        #expect(logged[1].1.contains("1048576 bytes") && logged[1].1.contains("raise maxBlockSize"))
        #expect(logged[2].1.contains("pool full") && logged[2].1.contains("raise maxSize"))
        #expect(logged[3].1.contains("double free"))
        #expect(logged.allSatisfy { $0.1.hasPrefix("BuddyPool: \($0.0.name): ") })
    }

    @Test("log: the logger runs without the pool lock held (another thread can use the pool meanwhile)")
    func loggerOutsideLock() throws {
        let done = Atomic<Int>(0)
        let box = PoolBox()
        let pool = try smallPool(strategy: .log, logger: { _, _ in
            // If this thread held the pool lock, the other thread would block until we return,
            // and the wait below would time out.
            let finished = DispatchSemaphore(value: 0)
            Thread {
                if let pool = box.pool {
                    _ = pool.stats
                    if let p = pool.tryAllocate(byteCount: 16) { pool.tryDeallocate(p) }
                }
                finished.signal()
            }.start()
            if finished.wait(timeout: .now() + 10) == .success { done.add(1, ordering: .relaxed) }
        })
        box.pool = pool
        defer { box.pool = nil }
        #expect(pool.isThreadSafe)
        let whole = try pool.allocate(byteCount: 32 << 10)
        #expect(pool.tryAllocate(byteCount: 8, alignment: 3) == nil)   // refused before the lock
        #expect(pool.tryAllocate(byteCount: 64 << 10) == nil)          // pool full: after the engine call
        try pool.deallocate(whole)
        try pool.deallocate(whole)                                     // double free: after the release
        #expect(done.load(ordering: .relaxed) == 3)
    }

    @Test("log without a logger writes the line on standard error")
    func logToStandardError() async throws {
        await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) {
            let pool = try! MemoryPool(.init(errorStrategy: .log))
            _ = pool.tryAllocate(byteCount: 8, alignment: 3)
        }.map { result in
            let text = String(decoding: result.standardErrorContent, as: UTF8.self)
            #expect(text.contains("BuddyPool: INVALID_ALIGNMENT: invalid alignment 3"), "\(text)")
        }
    }

    @Test("terminate: the first error stops the process, after the logger")
    func terminateStrategy() async throws {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let pool = try! MemoryPool(.init(errorStrategy: .terminate), errorLogger: { _, line in
                let bytes = Array(("logger: " + line + "\n").utf8)
                _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
            })
            let p = try! pool.allocate(byteCount: 64)
            try! pool.deallocate(p)
            pool.tryDeallocate(p)
            print("not reached")
        }
        let text = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(text.contains("logger: BuddyPool: INVALID_POINTER: double free"), "\(text)")
        #expect(text.contains("Fatal error"), "\(text)")
    }

    @Test("the strategy and the logger can change at run time")
    func changeStrategy() throws {
        let lines = LogLines()
        let pool = MemoryPool()
        #expect(throws: PoolError.invalidAlignment) { try pool.allocate(byteCount: 8, alignment: 5) }
        pool.errorStrategy = .log
        pool.errorLogger = { lines.append($0, $1) }
        #expect(pool.tryAllocate(byteCount: 8, alignment: 5) == nil)
        #expect(lines.all.count == 1)
        pool.errorLogger = nil
        pool.errorStrategy = .returnNil
        #expect(pool.errorStrategy == .returnNil && pool.errorLogger == nil)
    }

    @Test("growth: segments are added as the pool fills, and reset returns to the first")
    func growthAndReset() throws {
        let pool = try MemoryPool(.init(initialSize: 64 << 10, maxBlockSize: 64 << 10))
        var blocks: [UnsafeMutableRawPointer] = []
        for _ in 0..<8 { blocks.append(try pool.allocate(byteCount: 64 << 10)) }
        let grown = pool.stats
        #expect(grown.segmentCount > 1 && grown.totalBytes >= 8 * (64 << 10) && grown.usedBytes == 8 * (64 << 10))
        #expect(grown.peakUsedBytes == 8 * (64 << 10))
        expectIntact(pool)
        pool.reset()
        let after = pool.stats
        #expect(after.segmentCount == 1 && after.totalBytes == 64 << 10 && after.usedBytes == 0)
        #expect(blocks.allSatisfy { !pool.isValidPointer($0) })
        #expect(throws: PoolError.invalidPointer) { try pool.deallocate(blocks[1]) }
        expectIntact(pool)
        let again = try pool.allocate(byteCount: 100)
        #expect(pool.isValidPointer(again))
    }

    @Test("stats, memoryUsage, resetStats")
    func statistics() throws {
        let pool = MemoryPool()
        let a = try pool.allocate(byteCount: 100)
        let b = try pool.allocate(byteCount: 3000)
        let s = pool.stats
        #expect(s.usedBytes == 128 + 4096 && s.freeBytes == (1 << 20) - s.usedBytes && s.totalBytes == 1 << 20)
        #expect(s.allocationCount == 2 && s.deallocationCount == 0 && s.splits > 0)
        #expect(abs(s.usagePercent - 100 * Double(128 + 4096) / Double(1 << 20)) < 1e-9)
        let listed = s.freeBlocks.reduce(0) { $0 + $1.blockSize * $1.count }
        #expect(listed == s.freeBytes, "the free blocks per size add up to the free bytes")
        #expect(s.freeBlocks.first?.blockSize == 16 && s.freeBlocks.last?.blockSize == 1 << 20)
        #expect(s.fragmentCount == s.freeBlocks.reduce(0) { $0 + $1.count })
        #expect(s.largestFreeBlock == 512 << 10)
        #expect(s.fragmentationPercent > 0 && s.fragmentationPercent < 100)
        #expect(s.uptime > .zero)
        let usage = pool.memoryUsage
        #expect(usage.usedBytes == s.usedBytes && usage.totalBytes == s.totalBytes && usage.usagePercent == s.usagePercent)
        try pool.deallocate(a)
        try pool.deallocate(b)
        #expect(pool.stats.fragmentationPercent == 0 && pool.stats.largestFreeBlock == 1 << 20)
        #expect(pool.stats.peakUsedBytes == 128 + 4096)
        pool.resetStats()
        let reset = pool.stats
        #expect(reset.allocationCount == 0 && reset.deallocationCount == 0 && reset.peakUsedBytes == 0)
        #expect(pool.errorStats == MemoryPool.ErrorStats(
            allocationFailures: 0, deallocationFailures: 0, invalidPointerErrors: 0, doubleFrees: 0, outOfMemoryErrors: 0,
            poolFullErrors: 0, invalidAlignmentErrors: 0, allocationFailurePercent: 0, deallocationFailurePercent: 0))
    }

    @Test("performance metrics: counts always, times only when measured")
    func performanceMetrics() throws {
        let untimed = MemoryPool()
        try untimed.deallocate(try untimed.allocate(byteCount: 64))
        let m = untimed.performanceMetrics
        #expect(m.allocationCount == 1 && m.deallocationCount == 1 && !m.isTimed)
        #expect(m.averageAllocationNanoseconds == 0 && m.maxAllocationNanoseconds == 0)

        let timed = try MemoryPool(.init(measuresTiming: true))
        for _ in 0..<100 { try timed.deallocate(try timed.allocate(byteCount: 64)) }
        _ = timed.tryAllocate(byteCount: 1, alignment: 3) // failures are not timed
        let t = timed.performanceMetrics
        #expect(t.isTimed && t.allocationCount == 100 && t.deallocationCount == 100)
        #expect(t.averageAllocationNanoseconds > 0 && Double(t.maxAllocationNanoseconds) >= t.averageAllocationNanoseconds)
        #expect(t.averageDeallocationNanoseconds > 0 && Double(t.maxDeallocationNanoseconds) >= t.averageDeallocationNanoseconds)
        timed.resetStats()
        #expect(timed.performanceMetrics.maxAllocationNanoseconds == 0)
    }

    @Test("health: healthy, a warning near maxSize (90%), critical when almost full (98%): the README's thresholds")
    func health() throws {
        let pool = try MemoryPool(.init(initialSize: 64 << 10, maxBlockSize: 16 << 10, maxSize: 64 << 10))
        #expect(pool.healthReport.status == .healthy)
        #expect(pool.healthReport.message.hasPrefix("healthy"))
        var blocks: [UnsafeMutableRawPointer] = []
        for _ in 0..<3 { blocks.append(try pool.allocate(byteCount: 16 << 10)) }
        blocks.append(try pool.allocate(byteCount: 8 << 10))
        #expect(pool.healthReport.status == .healthy) // 87.5%
        let almost = try pool.allocate(byteCount: 4 << 10)   // 93.75%
        let warning = pool.healthReport
        #expect(warning.status == .warning && warning.message.contains("raise maxSize"), "\(warning.message)")
        #expect(warning.usagePercent == 93.75)
        blocks.append(try pool.allocate(byteCount: 4 << 10)) // 100%
        let critical = pool.healthReport
        #expect(critical.status == .critical && critical.message.contains("POOL_FULL"), "\(critical.message)")
        try pool.deallocate(almost)
        for block in blocks { try pool.deallocate(block) }
        #expect(pool.healthReport.status == .healthy)
        // A failed allocation is a warning; 1% of the allocations failing, critical.
        for _ in 0..<200 { try pool.deallocate(try pool.allocate(byteCount: 16)) }
        _ = pool.tryAllocate(byteCount: 8, alignment: 3)
        let failed = pool.healthReport
        #expect(failed.status == .warning && failed.message.contains("errorStats"), "\(failed.message)")
        for _ in 0..<5 { _ = pool.tryAllocate(byteCount: 8, alignment: 3) }
        let noisy = pool.healthReport
        #expect(noisy.status == .critical && noisy.errorPercent > 1 && noisy.message.contains("errorStats"), "\(noisy.message)")
    }

    @Test("the detailed report comes from the library's report writer, plus the pool's errors and times")
    func detailedReport() throws {
        let pool = try MemoryPool(.init(measuresTiming: true))
        let p = try pool.allocate(byteCount: 100)
        _ = pool.tryAllocate(byteCount: 1, alignment: 3)
        let report = pool.detailedReport()
        // The library's writer (its exact layout is the report's own business): the header, the
        // pool's size, its error line.
        #expect(report.hasPrefix("BuddyMalloc report"), "\(report)")
        #expect(report.contains("pid \(getpid())"), "\(report)")
        #expect(report.contains("1.0M in 1 segments"), "\(report)")
        #expect(report.contains("errors      invalid pointers 0, double frees 0"), "\(report)")
        #expect(report.contains("pool errors out of memory 0, pool full 0, invalid alignment 1"), "\(report)")
        #expect(report.contains("pool times  allocate avg"), "\(report)")
        try pool.deallocate(p)
    }

    @Test("the JSON report is the library's versioned document, with this pool's own counts")
    func detailedReportJSON() throws {
        let pool = try MemoryPool()
        var blocks: [UnsafeMutableRawPointer] = []
        for _ in 0..<10 { blocks.append(try pool.allocate(byteCount: 100)) }
        try pool.deallocate(blocks.removeLast())
        let json = pool.detailedReport(format: .json)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], "\(json)")
        #expect(object["format"] as? String == "buddymalloc-report")
        #expect(object["version"] as? Int == 1)
        #expect(object["pool"] as? String == "private")
        let memory = try #require(object["memory"] as? [String: Any])
        #expect(memory["used"] as? Int == 9 * 128, "\(memory)")
        let health = try #require(object["health"] as? [String: Any])
        #expect(health["status"] as? String == "HEALTHY", "\(health)")
        for p in blocks { try pool.deallocate(p) }
    }

    @Test("a thread-unsafe pool from one thread, and switching thread safety at run time")
    func threadUnsafe() throws {
        let pool = try MemoryPool(.init(isThreadSafe: false))
        #expect(!pool.isThreadSafe)
        var blocks: [UnsafeMutableRawPointer] = []
        var random = SystemRandomNumberGenerator()
        for i in 0..<5000 {
            if !blocks.isEmpty && Int.random(in: 0..<3, using: &random) == 0 {
                try pool.deallocate(blocks.remove(at: Int.random(in: 0..<blocks.count, using: &random)))
            } else {
                blocks.append(try pool.allocate(byteCount: 1 + (i * 37) % 5000))
            }
        }
        expectIntact(pool)
        pool.isThreadSafe = true
        #expect(pool.isThreadSafe)
        for block in blocks { try pool.deallocate(block) }
        #expect(pool.stats.usedBytes == 0)
        expectIntact(pool)
    }

    @Test("independence: a block of pool A freed into pool B is an invalid pointer; both stay intact")
    func independence() throws {
        let a = MemoryPool(), b = MemoryPool()
        let pa = try a.allocate(byteCount: 256)
        let pb = try b.allocate(byteCount: 256)
        #expect(throws: PoolError.invalidPointer) { try b.deallocate(pa) }
        #expect(!b.isValidPointer(pa) && a.isValidPointer(pa))
        #expect(b.blockSize(of: pa) == nil)
        #expect(b.errorStats.invalidPointerErrors == 1 && a.errorStats.invalidPointerErrors == 0)
        expectIntact(a)
        expectIntact(b)
        try a.deallocate(pa)
        try b.deallocate(pb)
        #expect(a.stats.usedBytes == 0 && b.stats.usedBytes == 0)
    }

    @Test("scoped buffers are freed on return and on throw")
    func scoped() throws {
        struct Oops: Error {}
        let pool = MemoryPool()
        let sum = try pool.withTemporaryBuffer(of: Int.self, capacity: 64) { buffer in
            #expect(pool.isValidPointer(buffer.baseAddress!))
            for i in buffer.indices { buffer.initializeElement(at: i, to: i) }
            return buffer.reduce(0, +)
        }
        #expect(sum == 64 * 63 / 2 && pool.stats.usedBytes == 0)
        #expect(throws: Oops.self) {
            try pool.withTemporaryAllocation(byteCount: 1000, alignment: 64) { raw in
                #expect(raw.count == 1000 && UInt(bitPattern: raw.baseAddress!) % 64 == 0)
                throw Oops()
            }
        }
        #expect(pool.stats.usedBytes == 0 && pool.stats.allocationCount == 2)
        #expect(throws: PoolError.outOfMemory) {
            try pool.withTemporaryBuffer(of: UInt8.self, capacity: 2 << 20) { _ in }
        }
    }
}

/// Lets a logger reach its pool without a reference cycle.
final class PoolBox: @unchecked Sendable {
    weak var pool: MemoryPool?
}
