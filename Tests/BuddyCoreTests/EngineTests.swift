import CBuddySupport
import Glibc
import Testing
@testable import BuddyEngine
@testable import BuddyMallocCore

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

@Suite struct GeometryTests {
    @Test func conversionsArePairs() {
        let g = Geometry(minBlock: 16, maxBlock: 1 << 20)
        #expect(g.maxOrder == 16)
        for order in 0...g.maxOrder {
            #expect(g.order(forSize: g.size(ofOrder: order)) == order)
            #expect(g.order(forSize: g.size(ofOrder: order) + 1) == min(order + 1, 17))
        }
        for size in [0, 1, 15, 16, 17, 100, 128, 129, 4095, 4096, 1 << 20] {
            let order = g.order(forSize: size)
            #expect(g.size(ofOrder: order) >= size)
            #expect(order == 0 || g.size(ofOrder: order - 1) < size)
        }
        #expect(g.order(forSize: 100) == 3) // the worked example in Geometry's comment
    }
}

@Suite struct ExactAddressTests {
    /// A free block the program never held (an upper half split off) is not a double free: the
    /// segment's handed-out bits tell it from a block the program freed.
    @Test func aFreeBlockNeverHandedOutIsAnInvalidPointer() throws {
        let arena = Arena(size: 64 * 1024)
        let pool = try makePool(arena: arena)
        defer { pool.destroy() }
        let a = try #require(pool.allocate(order: 0))
        // Splitting for `a` left a free block at every power of two from 16 to 32K.
        #expect(pool.classify(arena.at(4096)) == .interior, "free since the split, never handed out")
        #expect(pool.release(arena.at(4096)) == .invalidPointer)
        let b = try #require(pool.allocate(order: 0))
        #expect(b == arena.at(16))
        #expect(pool.release(b) == .released)
        #expect(pool.classify(b) == .free, "handed out, then freed")
        #expect(pool.release(b) == .doubleFree)
        #expect(pool.release(a) == .released)
        expectInvariants(pool)
        // After reset the pool holds nothing: nothing can be freed twice.
        pool.reset()
        #expect(pool.release(a) == .invalidPointer)
    }

    @Test func splitsHandOutLowerHalvesFirst() throws {
        let arena = Arena(size: 64 * 1024)
        let pool = try makePool(arena: arena)
        defer { pool.destroy() }
        #expect(pool.geometry.maxOrder == 12)
        // The first 16-byte block is the arena's base; splitting left one free block per order.
        let a = try #require(pool.allocate(order: 0))
        #expect(a == arena.at(0))
        #expect(buddyinfo(pool) == [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0])
        expectInvariants(pool)
        // Its buddy comes next: base ^ 16.
        let b = try #require(pool.allocate(order: 0))
        #expect(b == arena.at(16))
        // A 64-byte block takes the free order-2 block at 64; the order-1 block at 32 stays.
        let c = try #require(pool.allocate(order: 2))
        #expect(c == arena.at(64))
        #expect(buddyinfo(pool) == [0, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0])
        expectInvariants(pool)
        // Freeing a and b coalesces them with the 32-byte block at 32 into one order-2 block at 0.
        #expect(pool.release(a) == .released)
        #expect(buddyinfo(pool)[0] == 1)
        #expect(pool.release(b) == .released)
        #expect(buddyinfo(pool) == [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0])
        expectInvariants(pool)
        // Freeing c coalesces all the way up: one free block of the top order.
        #expect(pool.release(c) == .released)
        #expect(buddyinfo(pool) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
        #expect(pool.usage.allocatedBytes == 0)
        expectInvariants(pool)
    }

    @Test func everyBlockIsAlignedToItsSize() throws {
        let arena = Arena(size: 1 << 20)
        let pool = try makePool(arena: arena)
        defer { pool.destroy() }
        var blocks: [UnsafeMutableRawPointer] = []
        for order in 0...pool.geometry.maxOrder - 1 {
            let p = try #require(pool.allocate(order: order))
            #expect(UInt(bitPattern: p) % UInt(pool.geometry.size(ofOrder: order)) == 0)
            #expect(pool.blockSize(of: p) == pool.geometry.size(ofOrder: order))
            blocks.append(p)
        }
        expectInvariants(pool)
        for p in blocks { #expect(pool.release(p) == .released) }
        expectInvariants(pool)
        #expect(pool.usage.allocatedBytes == 0)
    }

    @Test func badPointersAreDetectedAndLeaveThePoolUnchanged() throws {
        let arena = Arena(size: 64 * 1024)
        let pool = try makePool(arena: arena)
        defer { pool.destroy() }
        let p = try #require(pool.allocate(order: 2))
        let q = try #require(pool.allocate(order: 2))
        let before = buddyinfo(pool)
        #expect(pool.release(p + 16) == .invalidPointer)   // interior
        #expect(pool.release(p + 1) == .invalidPointer)    // unaligned
        #expect(pool.release(arena.at(60 * 1024)) == .invalidPointer) // free space, not a block start
        #expect(buddyinfo(pool) == before)
        expectInvariants(pool)
        #expect(pool.release(p) == .released)
        #expect(pool.release(p) == .doubleFree)
        #expect(pool.counters.doubleFrees == 1)
        #expect(pool.counters.invalidPointers == 3)
        var local = 0
        #expect(pool.release(&local) == .foreign)
        expectInvariants(pool)
        #expect(pool.release(q) == .released)
        expectInvariants(pool)
    }

    @Test func aPointerOfAnotherPoolIsNotFreedHere() throws {
        let arenaA = Arena(size: 64 * 1024), arenaB = Arena(size: 64 * 1024)
        let a = try makePool(arena: arenaA), b = try makePool(arena: arenaB)
        defer { a.destroy(); b.destroy() }
        let p = try #require(b.allocate(order: 3))
        #expect(a.classify(p) == .otherPool)
        #expect(a.release(p) == .otherPool)
        #expect(b.release(p) == .released)
        expectInvariants(a)
        expectInvariants(b)
    }

    @Test func resizeInPlaceGrowsIntoFreeBuddiesAndShrinksByFreeingUpperHalves() throws {
        let arena = Arena(size: 64 * 1024)
        let pool = try makePool(arena: arena)
        defer { pool.destroy() }
        let p = try #require(pool.allocate(order: 0))
        #expect(pool.resizeInPlace(p, from: 0, to: 4))      // absorbs the free 16, 32, 64, 128 blocks
        #expect(pool.blockSize(of: p) == 256)
        expectInvariants(pool)
        let q = try #require(pool.allocate(order: 8))        // 4 KiB block right above the 256... at 4096
        #expect(!pool.resizeInPlace(q, from: 8, to: 12))     // its lower buddy is in use: cannot grow
        #expect(pool.blockSize(of: q) == 4096)
        #expect(pool.resizeInPlace(p, from: 4, to: 1))       // shrink: 32 bytes stay, the rest is free
        #expect(pool.blockSize(of: p) == 32)
        #expect(pool.usage.allocatedBytes == 32 + 4096)
        expectInvariants(pool)
        #expect(pool.release(p) == .released)
        #expect(pool.release(q) == .released)
        #expect(buddyinfo(pool).last == 1)
        expectInvariants(pool)
    }

    @Test func resetReleasesEveryBlockAtOnce() throws {
        let arena = Arena(size: 64 * 1024)
        let pool = try makePool(arena: arena, maxPoolSize: 0)
        defer { pool.destroy() }
        for _ in 0..<10 { _ = try #require(pool.allocate(order: 10)) } // 10 x 16 KiB > the 64 KiB arena
        #expect(pool.usage.segmentCount >= 2)                // grew beyond the arena
        pool.reset()
        expectInvariants(pool)
        #expect(pool.usage.allocatedBytes == 0)
        #expect(pool.usage.segmentCount == 1)
        #expect(pool.allocate(order: 0) == arena.at(0))
    }
}

@Suite struct GrowthTests {
    @Test func segmentsGrowByTheFactorAndEmptyOnesGoBack() throws {
        var config = PoolConfig()
        config.maxBlock = 64 * 1024
        config.initialSize = 64 * 1024
        config.growthFactor = 2.0
        config.releaseDelay = 0
        let pool = try #require(BuddyEngine.create(config))
        defer { pool.destroy() }
        var sizes: [Int] = [pool.usage.segmentBytes]
        var blocks: [UnsafeMutableRawPointer] = []
        for _ in 0..<16 {
            blocks.append(try #require(pool.allocate(order: pool.geometry.maxOrder)))
            if pool.usage.segmentBytes != sizes.last { sizes.append(pool.usage.segmentBytes) }
            expectInvariants(pool)
        }
        // 64K, then a segment of (S * (2.0 - 1)) each time: 128K, 256K, 512K, 1M in total.
        #expect(sizes == [65536, 131072, 262144, 524288, 1048576])
        #expect(pool.counters.segmentsAdded == 5)
        for p in blocks { #expect(pool.release(p) == .released) }
        expectInvariants(pool)
        // With no release delay, every segment but the first went back to the OS.
        #expect(pool.usage.segmentCount == 1)
        #expect(pool.counters.segmentsReleased == 4)
        #expect(pool.usage.segmentBytes == 65536)
    }

    @Test func theMaximumPoolSizeIsAHardLimit() throws {
        var config = PoolConfig()
        config.maxBlock = 64 * 1024
        config.initialSize = 64 * 1024
        config.maxPoolSize = 256 * 1024
        let pool = try #require(BuddyEngine.create(config))
        defer { pool.destroy() }
        var blocks: [UnsafeMutableRawPointer] = []
        while let p = pool.allocate(order: pool.geometry.maxOrder) { blocks.append(p) }
        #expect(blocks.count == 4)
        #expect(pool.usage.segmentBytes <= 256 * 1024)
        #expect(pool.counters.failedAllocations == 1)
        expectInvariants(pool)
        #expect(pool.release(blocks.removeLast()) == .released)
        #expect(pool.allocate(order: 0) != nil)
        expectInvariants(pool)
    }

    @Test func aRefusedMapLeavesThePoolIntact() throws {
        var config = PoolConfig()
        config.maxBlock = 64 * 1024
        config.initialSize = 64 * 1024
        let pool = try #require(BuddyEngine.create(config))
        defer { pool.destroy() }
        let p = try #require(pool.allocate(order: pool.geometry.maxOrder))
        buddy_os_fail_map_after(1)                         // the next mmap fails
        #expect(pool.allocate(order: 0) == nil)
        buddy_os_fail_map_after(0)
        expectInvariants(pool)
        #expect(pool.usage.segmentCount == 1)
        #expect(pool.allocate(order: 0) != nil)              // and the pool grows again afterwards
        #expect(pool.release(p) == .released)
        expectInvariants(pool)
    }

    /// A refused segment: half the size is tried, down to the minimum segment. For a second
    /// after a refusal (or until the pool unmaps a segment) growth starts below the refused size,
    /// so a failing request costs one failed mapping, not the whole halving again.
    @Test func aRefusedSegmentFallsBackToSmallerOnesAndIsNotRetried() throws {
        var config = PoolConfig()
        config.maxBlock = 64 * 1024
        config.initialSize = 1 << 20
        config.releaseDelay = 3600
        let pool = try #require(BuddyEngine.create(config))
        defer { pool.destroy() }
        var blocks: [UnsafeMutableRawPointer] = []
        for _ in 0..<16 { blocks.append(try #require(pool.allocate(order: pool.geometry.maxOrder))) }
        #expect(pool.usage.segmentBytes == 1 << 20)
        // The pool wants a 1 MiB segment; the OS refuses it: a 512 KiB one serves instead.
        buddy_os_fail_map_after(1)
        blocks.append(try #require(pool.allocate(order: pool.geometry.maxOrder)))
        buddy_os_fail_map_after(0)
        #expect(pool.usage.segmentBytes == (1 << 20) + (512 << 10))
        #expect(pool.state.pointee.refusedSegmentSize == 1 << 20)
        expectInvariants(pool)
        // The next growth does not try 1 MiB (or more) again within the second: 512 KiB again.
        for _ in 0..<8 { blocks.append(try #require(pool.allocate(order: pool.geometry.maxOrder))) }
        #expect(pool.usage.segmentBytes == (1 << 20) + 2 * (512 << 10))
        for _ in 0..<7 { blocks.append(try #require(pool.allocate(order: pool.geometry.maxOrder))) }
        // Within one request, each refused size is followed by half of it: 512 KiB refused,
        // 256 KiB mapped.
        buddy_os_fail_map_after(1)
        blocks.append(try #require(pool.allocate(order: pool.geometry.maxOrder)))
        buddy_os_fail_map_after(0)
        #expect(pool.usage.segmentBytes == (1 << 20) + 2 * (512 << 10) + (256 << 10))
        #expect(pool.state.pointee.refusedSegmentSize == 512 << 10)
        for _ in 0..<3 { blocks.append(try #require(pool.allocate(order: pool.geometry.maxOrder))) }
        // The minimum segment refused: the request fails cleanly, counted once...
        pool.state.pointee.refusedSegmentSize = 128 << 10
        let failed = pool.counters.failedAllocations
        buddy_os_fail_map_after(1)
        #expect(pool.allocate(order: pool.geometry.maxOrder) == nil)
        buddy_os_fail_map_after(0)
        #expect(pool.state.pointee.refusedSegmentSize == 64 << 10)
        #expect(pool.counters.failedAllocations == failed + 1)
        expectInvariants(pool)
        // ...and the next request tries the minimum segment again (the address space may have
        // come back): a mapping each failing request, as glibc's malloc makes.
        blocks.append(try #require(pool.allocate(order: pool.geometry.maxOrder)))
        #expect(pool.usage.segmentBytes == (1 << 20) + 2 * (512 << 10) + (256 << 10) + (64 << 10))
        expectInvariants(pool)
        // Unmapping a segment forgets the refusal at once.
        pool.state.pointee.refusedSegmentSize = 64 << 10
        pool.state.pointee.refusedAt = buddy_os_monotonic_ns()
        for p in blocks.suffix(8) { #expect(pool.release(p) == .released) }
        pool.trim()
        #expect(pool.state.pointee.refusedSegmentSize == 0)
        expectInvariants(pool)
    }

    @Test func invalidConfigurationsAreRefused() {
        var c = PoolConfig()
        c.minBlock = 8
        #expect(BuddyEngine.problem(with: c) != nil)
        c = PoolConfig(); c.maxBlock = 3000
        #expect(BuddyEngine.problem(with: c) != nil)
        c = PoolConfig(); c.growthFactor = 0.5
        #expect(BuddyEngine.problem(with: c) != nil)
        c = PoolConfig(); c.maxPoolSize = 1000
        #expect(BuddyEngine.problem(with: c) != nil)
        #expect(BuddyEngine.create(c) == nil)
        #expect(BuddyEngine.problem(with: PoolConfig()) == nil)
    }
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

@Suite struct RandomSequenceTests {
    /// Random allocate / free / resize sequences checked against a model (live blocks by
    /// address), with the invariant checker after every step.
    @Test(arguments: [1, 2, 3, 42, 2024] as [UInt64])
    func matchesTheModel(seed: UInt64) throws {
        var rng = SplitMix64(state: seed)
        let arena = Arena(size: 256 * 1024)
        let pool = try makePool(arena: arena, maxBlock: 64 * 1024, maxPoolSize: 1 << 20)
        defer { pool.destroy() }
        var live: [UInt: Int] = [:]       // address -> order
        var failures = 0
        for step in 0..<3000 {
            let choice = Int.random(in: 0..<10, using: &rng)
            if choice < 5 || live.isEmpty {
                // Small orders are common, large ones rare (log-uniform-ish).
                let order = Int.random(in: 0...Int.random(in: 0...pool.geometry.maxOrder, using: &rng), using: &rng)
                if let p = pool.allocate(order: order) {
                    let a = UInt(bitPattern: p)
                    let size = UInt(pool.geometry.size(ofOrder: order))
                    #expect(a % size == 0)
                    // No overlap with any live block.
                    for (b, o) in live {
                        let bs = UInt(pool.geometry.size(ofOrder: o))
                        #expect(a + size <= b || b + bs <= a, "overlap at step \(step), seed \(seed)")
                    }
                    live[a] = order
                    p.storeBytes(of: a, as: UInt.self)
                } else {
                    failures += 1
                }
            } else if choice < 9 {
                let a = live.keys.randomElement(using: &rng)!
                let p = UnsafeMutableRawPointer(bitPattern: a)!
                #expect(p.load(as: UInt.self) == a, "block content overwritten at step \(step)")
                #expect(pool.release(p) == .released)
                live[a] = nil
            } else {
                let a = live.keys.randomElement(using: &rng)!
                let p = UnsafeMutableRawPointer(bitPattern: a)!
                let order = live[a]!
                let target = Int.random(in: 0...pool.geometry.maxOrder, using: &rng)
                if pool.resizeInPlace(p, from: order, to: target) { live[a] = target }
                #expect(pool.blockSize(of: p) == pool.geometry.size(ofOrder: live[a]!))
            }
            let broken = pool.checkInvariants()
            #expect(broken == nil, "seed \(seed) step \(step): \(broken.map { "\($0)" } ?? "")")
            if broken != nil { return }
            let modelBytes = live.values.reduce(0) { $0 + pool.geometry.size(ofOrder: $1) }
            #expect(pool.usage.allocatedBytes == modelBytes)
        }
        for a in live.keys { #expect(pool.release(UnsafeMutableRawPointer(bitPattern: a)!) == .released) }
        expectInvariants(pool)
        #expect(pool.usage.allocatedBytes == 0)
        #expect(pool.usage.segmentCount == 1)
        _ = failures
    }
}

@Suite struct OptionParsingTests {
    func parse(_ text: String) -> Int? { text.withCString { OptionReader.parseSize($0) } }

    @Test func sizes() {
        #expect(parse("16") == 16)
        #expect(parse("64K") == 65536)
        #expect(parse("64kb") == 65536)
        #expect(parse("1M") == 1 << 20)
        #expect(parse("2GiB") == 2 << 30)
        #expect(parse("0") == 0)
        #expect(parse("") == nil)
        #expect(parse("abc") == nil)
        #expect(parse("12Q") == nil)
        #expect(parse("-5") == nil)
        #expect(parse("99999999999999999999") == nil)
    }

    @Test func decimalsAndWords() {
        #expect("2.0".withCString { OptionReader.parseDecimal($0) } == 2.0)
        #expect("1.5".withCString { OptionReader.parseDecimal($0) } == 1.5)
        #expect("3".withCString { OptionReader.parseDecimal($0) } == 3.0)
        #expect("zero".withCString { OptionReader.parseDecimal($0) } == nil)
        #expect("1.5x".withCString { OptionReader.parseDecimal($0) } == nil)
        #expect("LOG".withCString { OptionReader.matches($0, "log") })
        #expect(!"logs".withCString { OptionReader.matches($0, "log") })
        #expect(!"lo".withCString { OptionReader.matches($0, "log") })
    }
}

@Suite struct ReleaseTests {
    /// Resident pages of [base, base + size), from mincore.
    func residentPages(_ base: UnsafeMutableRawPointer, _ size: Int) -> Int {
        let page = Int(buddy_os_page_size())
        var vector = [UInt8](repeating: 0, count: size / page)
        _ = mincore(base, size, &vector)
        return vector.reduce(0) { $0 + Int($1 & 1) }
    }

    @Test func trimGivesFreePagesBackAndKeepsTheFreeLists() throws {
        var config = PoolConfig()
        config.initialSize = 4 << 20
        let pool = try #require(BuddyEngine.create(config))
        defer { pool.destroy() }
        var blocks: [UnsafeMutableRawPointer] = []
        for _ in 0..<4 {
            let p = try #require(pool.allocate(order: pool.geometry.maxOrder))
            p.initializeMemory(as: UInt8.self, repeating: 0xAB, count: pool.geometry.maxBlock)   // touch every page
            blocks.append(p)
        }
        let before = residentPages(blocks[0], 4 << 20)
        #expect(before == 1024)
        for p in blocks { #expect(pool.release(p) == .released) }
        let released = pool.trim()
        #expect(released == 4 * (pool.geometry.maxBlock - Int(buddy_os_page_size())))
        // Each free block keeps only its first page (its free-list links).
        #expect(residentPages(blocks[0], 4 << 20) == 4)
        expectInvariants(pool)
        // The blocks are still there to be allocated, and their memory reads as zero.
        let again = try #require(pool.allocate(order: pool.geometry.maxOrder))
        #expect(again.load(fromByteOffset: 8192, as: UInt8.self) == 0)
        expectInvariants(pool)
    }

    /// The delayed pass: free blocks of at least releaseMinBlock give their pages back, except the
    /// first releaseKeepBytes met; a block already given back is skipped (its released mark), so
    ///     releasedBytes == (blocks released once) * (block size - page)
    /// however many passes ran.
    @Test func theDelayedPassKeepsABudgetAndReleasesEachBlockOnce() throws {
        var config = PoolConfig()
        config.initialSize = 16 << 20
        config.releaseDelay = 0   // a pass after every free of a large block
        let pool = try #require(BuddyEngine.create(config))
        defer { pool.destroy() }
        let top = pool.geometry.maxBlock, page = Int(buddy_os_page_size())
        var blocks: [UnsafeMutableRawPointer] = []
        for _ in 0..<16 {
            let p = try #require(pool.allocate(order: pool.geometry.maxOrder))
            p.initializeMemory(as: UInt8.self, repeating: 0xAB, count: top)
            blocks.append(p)
        }
        for p in blocks { #expect(pool.release(p) == .released) }
        expectInvariants(pool)
        let kept = BuddyEngine.releaseKeepBytes / top
        #expect(pool.counters.releasedBytes == UInt64((16 - kept) * (top - page)))
        // The most recently freed blocks (taken first by the next allocations) kept their pages.
        for (i, p) in blocks.enumerated() {
            #expect(residentPages(p, top) == (i >= 16 - kept ? top / page : 1), "block \(i)")
        }
        // A split of a released block leaves released halves: trim has nothing more to give back
        // from them, and after the small block is freed, the merged block is dirty again.
        _ = pool.trim()
        let before = pool.counters.releasedBytes
        let small = try #require(pool.allocate(order: pool.geometry.order(forSize: 64 * 1024)))
        #expect(pool.trim() == 0)
        #expect(pool.counters.releasedBytes == before)
        #expect(pool.release(small) == .released)
        #expect(pool.trim() == top - page)
        expectInvariants(pool)
    }

    @Test func emptySegmentsWaitForTheDelay() throws {
        var config = PoolConfig()
        config.maxBlock = 64 * 1024
        config.initialSize = 64 * 1024
        config.releaseDelay = 3600   // never due during the test
        let pool = try #require(BuddyEngine.create(config))
        defer { pool.destroy() }
        var blocks: [UnsafeMutableRawPointer] = []
        for _ in 0..<4 { blocks.append(try #require(pool.allocate(order: pool.geometry.maxOrder))) }
        #expect(pool.usage.segmentCount == 3)
        for p in blocks { #expect(pool.release(p) == .released) }
        // Not due yet: the empty segments stay mapped (no unmap/map thrash at a boundary)...
        #expect(pool.usage.segmentCount == 3)
        expectInvariants(pool)
        // ...and malloc_trim's path releases them at once.
        pool.trim()
        #expect(pool.usage.segmentCount == 1)
        #expect(pool.counters.segmentsReleased == 2)
        expectInvariants(pool)
    }
}

/// What calloc must clear (allocate's dirtyBytes): the bytes at a block's start that may be
/// non-zero, the rest reading as zero:
///     carved from a pool-mapped segment's untouched tail: 0
///     taken from blocks whose pages went back to the OS: min(page, block)
///     anything else (reused, a caller's arena, after reset): the whole block
@Suite struct ZeroedMemoryTests {
    func allocate(_ pool: BuddyEngine, _ order: Int) throws -> (UnsafeMutableRawPointer, Int) {
        var dirty = Int.max
        let p = try #require(pool.allocate(order: order, mayGrow: true, dirtyBytes: &dirty))
        return (p, dirty)
    }

    func isZero(_ p: UnsafeMutableRawPointer, from: Int, to: Int) -> Bool {
        (from..<to).allSatisfy { p.load(fromByteOffset: $0, as: UInt8.self) == 0 }
    }

    @Test func freshReleasedAndReusedBlocks() throws {
        var config = PoolConfig()
        config.maxBlock = 1 << 20
        config.initialSize = 4 << 20
        config.releaseDelay = 3600
        let pool = try #require(BuddyEngine.create(config))
        defer { pool.destroy() }
        let top = pool.geometry.maxOrder, size = pool.geometry.maxBlock, page = Int(buddy_os_page_size())
        // Carved from the untouched tail: nothing to clear, and it does read as zero.
        let (a, dirtyA) = try allocate(pool, top)
        #expect(dirtyA == 0)
        #expect(isZero(a, from: 0, to: size))
        // A half of a carved block: the lower half is untouched too.
        let (b, dirtyB) = try allocate(pool, top - 1)
        #expect(dirtyB == 0 && isZero(b, from: 0, to: size / 2))
        // Reused: the whole block may hold the program's data.
        a.initializeMemory(as: UInt8.self, repeating: 0xA5, count: size)
        #expect(pool.release(a) == .released)
        let (a2, dirtyA2) = try allocate(pool, top)
        #expect(a2 == a && dirtyA2 == size)
        // Pages given back (trim): only the first page (links, mark, old data) may be dirty.
        #expect(pool.release(a2) == .released)
        pool.trim()
        let (a3, dirtyA3) = try allocate(pool, top)
        #expect(a3 == a && dirtyA3 == page)
        #expect(isZero(a3, from: page, to: size))
        // Blocks split from a released one: zero beyond their first page.
        #expect(pool.release(a3) == .released)
        pool.trim()
        for order in [0, 3, top - 4, top - 1] {
            let (p, dirty) = try allocate(pool, order)
            let bytes = pool.geometry.size(ofOrder: order)
            #expect(dirty <= page && isZero(p, from: min(dirty, bytes), to: bytes), "order \(order): dirty \(dirty)")
            p.initializeMemory(as: UInt8.self, repeating: 0x5A, count: bytes)
        }
        expectInvariants(pool)
        // After reset, the carved blocks are the program's old memory.
        pool.reset()
        for _ in 0..<4 {
            let (p, dirty) = try allocate(pool, top)
            #expect(dirty == size)
            _ = p
        }
        let (f, dirtyF) = try allocate(pool, top)       // a new segment: untouched again
        #expect(dirtyF == 0 && isZero(f, from: 0, to: size))
        expectInvariants(pool)
        _ = b
    }

    @Test func aCallersArenaIsNeverAssumedZero() throws {
        let arena = Arena(size: 64 * 1024)
        arena.base.initializeMemory(as: UInt8.self, repeating: 0xEE, count: arena.size)
        let pool = try makePool(arena: arena)
        defer { pool.destroy() }
        let (p, dirty) = try allocate(pool, pool.geometry.maxOrder)
        #expect(p == arena.base && dirty == arena.size)
    }
}

/// Segments by size class (the process pool's configuration): each class's blocks come from
/// segments of that class, so
///     segment(block).sizeClass == sizeClass(order(block))
/// for every block, unless the pool may not grow (then any segment serves).
@Suite struct SizeClassTests {
    func segregatedPool(maxPoolSize: Int = 0) throws -> BuddyEngine {
        var config = PoolConfig()
        config.smallBlocksBelow = 2 << 10
        config.largeBlocksFrom = 32 << 10
        config.maxPoolSize = maxPoolSize
        config.releaseDelay = 3600
        return try #require(BuddyEngine.create(config))
    }

    @Test func eachClassHasItsOwnSegments() throws {
        let pool = try segregatedPool()
        defer { pool.destroy() }
        let g = pool.geometry
        let small = try #require(pool.allocate(order: 0))
        let medium = try #require(pool.allocate(order: g.order(forSize: 4096)))
        let largeOrder = g.order(forSize: 64 << 10)
        let large = try #require(pool.allocate(order: largeOrder))
        let segments = [small, medium, large].map { SegmentMap.lookup(UInt(bitPattern: $0))! }
        #expect(segments.map { $0.pointee.sizeClass } == [0, 1, 2])
        #expect(Set(segments.map { UInt(bitPattern: $0) }).count == 3)
        expectInvariants(pool)
        // Resizing in place stays within the class; a block that would change class must move.
        #expect(!pool.resizeInPlace(large, from: largeOrder, to: g.order(forSize: 1024)))
        #expect(pool.resizeInPlace(large, from: largeOrder, to: largeOrder - 1))
        #expect(!pool.resizeInPlace(small, from: 0, to: g.order(forSize: 4096)))
        expectInvariants(pool)
        for p in [small, medium, large] { #expect(pool.release(p) == .released) }
        expectInvariants(pool)
        #expect(pool.usage.allocatedBytes == 0)
    }

    @Test func atThePoolLimitAnySegmentServes() throws {
        // One segment allowed (1 MiB, class 0): a large block still fits in it, no ENOMEM.
        let pool = try segregatedPool(maxPoolSize: 1 << 20)
        defer { pool.destroy() }
        let small = try #require(pool.allocate(order: 0))
        let large = try #require(pool.allocate(order: pool.geometry.order(forSize: 64 << 10)))
        #expect(SegmentMap.lookup(UInt(bitPattern: small)) == SegmentMap.lookup(UInt(bitPattern: large)))
        #expect(pool.usage.segmentCount == 1)
        expectInvariants(pool)
    }
}
