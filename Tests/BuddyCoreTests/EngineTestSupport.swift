import CBuddySupport
import Testing
@testable import BuddyEngine
@testable import BuddyMallocCore

// Helpers the BuddyCoreTests suites share: a private arena, a pool over it, the invariant check.

/// A private arena, aligned to its size as the engine requires, unmapped by the test's end.
final class Arena {
    let base: UnsafeMutableRawPointer
    let size: Int
    init(size: Int) {
        base = buddy_os_map_aligned(size, size)!
        self.size = size
    }
    deinit { buddy_os_unmap(base, size) }
    func at(_ offset: Int) -> UnsafeMutableRawPointer { base + offset }
}

func makePool(arena: Arena, minBlock: Int = 16, maxBlock: Int? = nil, maxPoolSize: Int? = nil) throws -> BuddyEngine {
    var config = PoolConfig()
    config.minBlock = minBlock
    config.maxBlock = maxBlock ?? arena.size
    config.maxPoolSize = maxPoolSize ?? arena.size
    // Release at once: the model checks that empty segments go, and madvise runs on every step.
    config.releaseDelay = 0
    return try #require(BuddyEngine.create(config, arena: arena.base, size: arena.size))
}

/// Free blocks per order, lowest first: the pool's /proc/buddyinfo row.
func buddyinfo(_ pool: BuddyEngine) -> [Int] {
    (0...pool.geometry.maxOrder).map { pool.freeBlockCount(order: $0) }
}

func expectInvariants(_ pool: BuddyEngine, _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
    let broken = pool.checkInvariantsWithCaches()
    #expect(broken == nil, "\(broken.map { "\($0)" } ?? "") \(comment.map { "\($0)" } ?? "")", sourceLocation: sourceLocation)
}

/// A seeded generator, so a failing sequence can be replayed from its seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
