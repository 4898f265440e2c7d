import Foundation
import Testing
@testable import BuddyEngine
@testable import BuddyMallocCore
@testable import BuddyPool

// The report and MemoryPool.healthReport read one health policy (BuddyEngine/Health.swift): the
// same pool state gets the same health from both views.

@Suite("One policy")
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
}
