import Testing
@testable import BuddyEngine

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

    /// A refill's run (allocateRun) hands out 2^j contiguous blocks, 2^j <= count, tagged used,
    /// and leaves the pool as the same blocks taken one at a time leave a twin pool: the same
    /// free areas, bytes, allocations and splits per order (a run stands for the splits of
    /// the blocks it cuts: splits of order m = 2^(order + j - m)).
    @Test func aRunIsWhatSingleAllocationsWouldBe() throws {
        let arenaRuns = Arena(size: 64 * 1024), arenaSingles = Arena(size: 64 * 1024)
        let runs = try makePool(arena: arenaRuns), singles = try makePool(arena: arenaSingles)
        defer { runs.destroy(); singles.destroy() }
        // 100 blocks of 64 bytes (order 2): runs of 64, 32 and 4, in address order from the
        // arena's base, as single allocations take them.
        var left = 100, next = 0, sizes: [Int] = []
        while left > 0 {
            let run = try #require(runs.allocateRun(order: 2, count: left, mayCarve: true))
            sizes.append(run.blocks)
            #expect(run.first == UInt(bitPattern: arenaRuns.at(next * 64)))
            for i in 0..<run.blocks {
                let block = try #require(UnsafeMutableRawPointer(bitPattern: run.first + UInt(i * 64)))
                #expect(run.tag + (i << 2) == runs.tagAddress(block))
                #expect(runs.classify(block) == .allocated(order: 2))
            }
            left -= run.blocks
            next += run.blocks
        }
        #expect(sizes == [64, 32, 4])
        for i in 0..<100 { #expect(singles.allocate(order: 2) == arenaSingles.at(i * 64)) }
        #expect(buddyinfo(runs) == buddyinfo(singles))
        #expect(runs.usage.allocatedBytes == 100 * 64 && runs.usage == singles.usage)
        #expect(runs.counters.allocations == 100 && runs.counters.splits == singles.counters.splits)
        #expect((0...12).map { runs.state.pointee.stats.splits[$0] } == (0...12).map { singles.state.pointee.stats.splits[$0] })
        #expect(runs.state.pointee.stats.engineBlocks == 100 && runs.state.pointee.stats.peakEngineBlocks == 100)
        expectInvariants(runs)
        // A run cuts the smallest free block that fits, as a single allocation takes it, and
        // never more than that block: of the blocks left free (1 KiB at 7 KiB, 512 bytes at
        // 6.5 KiB, 256 bytes at 6.25 KiB), the 256-byte one, in 16 blocks of 16 bytes.
        let small = try #require(runs.allocateRun(order: 0, count: 1000, mayCarve: true))
        #expect(small.blocks == 16 && small.first == UInt(bitPattern: arenaRuns.at(6 * 1024 + 256)))
        #expect(buddyinfo(runs) == [0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0])
        expectInvariants(runs)
        // Nothing but free blocks serve: a full pool gives no run (and does not grow).
        while runs.allocateRun(order: 0, count: 1 << 20, mayCarve: true) != nil {}
        #expect(runs.usage.freeBytes == 0 && runs.usage.segmentCount == 1)
        expectInvariants(runs)
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
