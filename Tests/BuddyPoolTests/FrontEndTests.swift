import Foundation
import Testing
@testable import BuddyEngine
@testable import BuddyMallocCore
@testable import BuddyPool

// The two private-pool front ends (C's buddy_pool_*, Swift's MemoryPool) are layers over one
// core (BuddyEngine/PrivatePool.swift), and the report and MemoryPool.healthReport read one
// health policy (BuddyEngine/Health.swift): the same misuse gets the same outcome and message
// from both APIs, and the same pool state the same health from both views.

@Suite("One core, one policy")
struct FrontEndTests {
    /// The report's verdict on `pool` (the library's writer, JSON).
    private func reportStatus(_ pool: MemoryPool) throws -> String {
        let json = pool.detailedReport(format: .json)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], "\(json)")
        let health = try #require(object["health"] as? [String: Any], "\(json)")
        return try #require(health["status"] as? String)
    }

    /// Both views of `pool` say `expected`.
    private func expectHealth(_ pool: MemoryPool, _ expected: MemoryPool.HealthStatus, _ what: String,
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        let report = try reportStatus(pool)
        let health = pool.healthReport
        let names: [MemoryPool.HealthStatus: String] = [.healthy: "HEALTHY", .warning: "WARNING", .critical: "CRITICAL"]
        #expect(report == names[health.status], "\(what): report \(report), healthReport \(health.message)", sourceLocation: sourceLocation)
        #expect(health.status == expected, "\(what): \(health.message)", sourceLocation: sourceLocation)
    }

    @Test("the report and MemoryPool.healthReport agree on the same pool state, check by check")
    func healthAgrees() throws {
        // The size limit (90% warning, 98% critical), and a bad pointer.
        let limited = try MemoryPool(.init(initialSize: 64 << 10, maxBlockSize: 16 << 10, maxSize: 64 << 10))
        try expectHealth(limited, .healthy, "new")
        var blocks: [UnsafeMutableRawPointer] = []
        for _ in 0..<3 { blocks.append(try limited.allocate(byteCount: 16 << 10)) }
        blocks.append(try limited.allocate(byteCount: 8 << 10))
        try expectHealth(limited, .healthy, "87.5% of maxSize (the two policies used to disagree here)")
        blocks.append(try limited.allocate(byteCount: 4 << 10))
        try expectHealth(limited, .warning, "93.75% of maxSize")
        for size in [2 << 10, 1 << 10, 512] { blocks.append(try limited.allocate(byteCount: size)) }
        try expectHealth(limited, .critical, "99.2% of maxSize")
        for block in blocks { try limited.deallocate(block) }
        try expectHealth(limited, .healthy, "all freed")
        let p = try limited.allocate(byteCount: 64)
        try limited.deallocate(p)
        _ = limited.tryDeallocate(p)
        try expectHealth(limited, .critical, "a double free")

        // Failed allocations: any is a warning, 1% critical.
        let failing = try MemoryPool(.init(initialSize: 64 << 10, maxBlockSize: 16 << 10))
        for _ in 0..<200 { try failing.deallocate(try failing.allocate(byteCount: 32)) }
        _ = failing.tryAllocate(byteCount: 8, alignment: 3)
        try expectHealth(failing, .warning, "1 failed allocation in 201")
        for _ in 0..<3 { _ = failing.tryAllocate(byteCount: 32 << 10) }
        try expectHealth(failing, .critical, "4 failed allocations in 204")

        // External fragmentation: 50% warning, 90% critical (32 KiB free of 64 KiB, in pieces).
        for (size, expected) in [(2048, MemoryPool.HealthStatus.warning), (256, .critical)] {
            let pool = try MemoryPool(.init(initialSize: 64 << 10, maxBlockSize: 4 << 10, maxSize: 64 << 10))
            var pieces: [UnsafeMutableRawPointer] = []
            for _ in 0..<(64 << 10) / size { pieces.append(try pool.allocate(byteCount: size)) }
            pieces.sort { UInt(bitPattern: $0) < UInt(bitPattern: $1) }
            for (i, piece) in pieces.enumerated() where i % 2 == 1 { try pool.deallocate(piece) }
            try expectHealth(pool, expected, "every other \(size)-byte block free")
            #expect(pool.healthReport.message.contains("fragmented"), "\(pool.healthReport.message)")
        }

        // Idle: less than 10% of 64 MiB or more used.
        let idle = try MemoryPool(.init(initialSize: 64 << 20, maxBlockSize: 1 << 20))
        let small = try idle.allocate(byteCount: 16)
        try expectHealth(idle, .warning, "16 bytes used of 64 MiB")
        try idle.deallocate(small)
    }

    @Test("the C and Swift APIs give the same outcome and message for the same misuse")
    func sameProblemSameWords() async throws {
        let result = await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) {
            @Sendable func say(_ text: String) {
                let bytes = Array((text + "\n").utf8)
                _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
            }
            // The C pool writes its own line (on_error = BUDDY_ON_ERROR_LOG); Swift's logger says
            // the error and its line. Both pools: blocks of 16 B to 16 KiB, at most 64 KiB.
            var config = CPoolConfig(version: 1, threadSafe: 1, initialSize: 64 << 10, minBlock: 16, maxBlock: 16 << 10,
                                     maxSize: 64 << 10, growthFactor: 2.0, releaseDelay: 1.0, onError: 1, reserved: 0)
            let c = withUnsafeBytes(of: &config) { buddy_pool_create($0.baseAddress) }!
            let cOther = buddy_pool_create(nil)!
            let swift = try! MemoryPool(.init(initialSize: 64 << 10, maxBlockSize: 16 << 10, maxSize: 64 << 10,
                                              errorStrategy: .log),
                                        errorLogger: { error, line in say("swift \(error.code) \(line)") })
            let swiftOther = MemoryPool()
            func both(_ misuse: String, _ inC: () -> Int32, _ inSwift: () -> Void) {
                say("# \(misuse)")
                say("c \(inC())")
                inSwift()
            }
            func cAllocate(_ size: Int, _ alignment: Int = 0) -> Int32 {
                var block: UnsafeMutableRawPointer? = nil
                return buddy_pool_alloc_ex(c, size, alignment, &block)
            }

            let cFreed = buddy_pool_alloc(c, 100, 0)!, swiftFreed = try! swift.allocate(byteCount: 100)
            _ = buddy_pool_free(c, cFreed)
            try! swift.deallocate(swiftFreed)
            both("double free", { buddy_pool_free(c, cFreed) }, { _ = swift.tryDeallocate(swiftFreed) })
            let cBlock = buddy_pool_alloc(c, 100, 0)!, swiftBlock = try! swift.allocate(byteCount: 100)
            both("inside a block", { buddy_pool_free(c, cBlock + 16) }, { _ = swift.tryDeallocate(swiftBlock + 16) })
            let cTheirs = buddy_pool_alloc(cOther, 100, 0)!, swiftTheirs = try! swiftOther.allocate(byteCount: 100)
            both("another pool's block", { buddy_pool_free(c, cTheirs) }, { _ = swift.tryDeallocate(swiftTheirs) })
            let glibc = malloc(64)!
            both("malloc's block (glibc's here)", { buddy_pool_free(c, glibc) }, { _ = swift.tryDeallocate(glibc) })
            both("alignment 48", { cAllocate(16, 48) }, { _ = swift.tryAllocate(byteCount: 16, alignment: 48) })
            both("more than the largest block", { cAllocate(1 << 20) }, { _ = swift.tryAllocate(byteCount: 1 << 20) })
            _ = buddy_pool_free(c, cBlock)
            try! swift.deallocate(swiftBlock)
            for _ in 0..<4 {
                _ = buddy_pool_alloc(c, 16 << 10, 0)!
                _ = try! swift.allocate(byteCount: 16 << 10)
            }
            both("a full pool", { cAllocate(16) }, { _ = swift.tryAllocate(byteCount: 16) })
            free(glibc)
        }
        let text = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        // Addresses differ between the pools; C names its settings as buddy_pool_config does and
        // accepts alignment 0 (its smallest block's), Swift as MemoryPool.Configuration does.
        func normalized(_ message: String, fromC: Bool) -> String {
            var m = message.replacingOccurrences(of: "0x[0-9a-f]+", with: "0x…", options: .regularExpression)
            if fromC {
                for (c, swift) in [("max_block", "maxBlockSize"), ("max_size", "maxSize"), ("growth_factor", "growthFactor"),
                                   ("use 0 or a power of two", "use a power of two")] {
                    m = m.replacingOccurrences(of: c, with: swift)
                }
            }
            return m
        }
        let groups = text.components(separatedBy: "# ").dropFirst()
        #expect(groups.count == 7, "\(text)")
        for group in groups {
            let lines = group.split(separator: "\n").map(String.init)
            let misuse = lines[0]
            let cLine = try #require(lines.first { $0.hasPrefix("buddy: buddy_pool_") }, "\(misuse): \(group)")
            let cCode = try #require(lines.first { $0.hasPrefix("c ") }.flatMap { Int32($0.dropFirst(2)) }, "\(misuse): \(group)")
            let swiftLine = try #require(lines.first { $0.hasPrefix("swift ") }, "\(misuse): \(group)")
            let swiftParts = swiftLine.split(separator: " ", maxSplits: 2).map(String.init)
            let error = try #require(Int32(swiftParts[1]).flatMap(PoolError.init(rawValue:)), "\(misuse): \(swiftLine)")
            #expect(cCode == error.code, "\(misuse): C \(cCode), Swift \(error)")
            let cMessage = String(try #require(cLine.range(of: "(): ").map { cLine[$0.upperBound...] }))
            let prefix = "BuddyPool: \(error.name): "
            #expect(swiftParts[2].hasPrefix(prefix), "\(misuse): \(swiftLine)")
            let swiftMessage = String(swiftParts[2].dropFirst(prefix.count))
            #expect(normalized(cMessage, fromC: true) == normalized(swiftMessage, fromC: false),
                    "\(misuse):\n  C:     \(cMessage)\n  Swift: \(swiftMessage)")
        }
    }
}
