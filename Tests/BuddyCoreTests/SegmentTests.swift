import CBuddySupport
import Glibc
import Testing
@testable import BuddyEngine

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
/// segments of that class, but the pool's first segment serves every class below the large
/// blocks', so
///     serves(segment(block), sizeClass(order(block))),
///     serves(s, c) = s.sizeClass == c || (s.pinned && c < large)
/// for every block, unless the pool may not grow (then any segment serves).
@Suite struct SizeClassTests {
    func segregatedPool(maxPoolSize: Int = 0, slabs: Bool = false) throws -> BuddyEngine {
        var config = PoolConfig()
        config.smallBlocksBelow = 2 << 10
        config.largeBlocksFrom = 32 << 10
        config.maxPoolSize = maxPoolSize
        config.releaseDelay = 3600
        config.slabs = slabs
        return try #require(BuddyEngine.create(config))
    }

    @Test func eachClassHasItsOwnSegmentsButTheFirst() throws {
        let pool = try segregatedPool()
        defer { pool.destroy() }
        let g = pool.geometry
        let mediumOrder = g.order(forSize: 4096)
        let small = try #require(pool.allocate(order: 0))
        let medium = try #require(pool.allocate(order: mediumOrder))
        let largeOrder = g.order(forSize: 64 << 10)
        let large = try #require(pool.allocate(order: largeOrder))
        let first = try #require(pool.state.pointee.segments)
        #expect(first.pointee.pinned)
        // The first segment serves the small and the medium block; the large one has its own.
        #expect(SegmentMap.lookup(UInt(bitPattern: small)) == first)
        #expect(SegmentMap.lookup(UInt(bitPattern: medium)) == first)
        let largeSegment = try #require(SegmentMap.lookup(UInt(bitPattern: large)))
        #expect(largeSegment != first && largeSegment.pointee.sizeClass == BuddyEngine.largeSizeClass)
        expectInvariants(pool)
        /// Blocks of `order` until one comes from another segment than the first: the blocks,
        /// and that segment.
        func allocateBeyondFirst(order: Int) throws -> ([UnsafeMutableRawPointer], UnsafeMutablePointer<Segment>) {
            var blocks: [UnsafeMutableRawPointer] = []
            var segment = first
            while segment == first, blocks.count < 10_000 {
                let block = try #require(pool.allocate(order: order))
                blocks.append(block)
                segment = try #require(SegmentMap.lookup(UInt(bitPattern: block)))
            }
            return (blocks, segment)
        }
        // Once the first segment is full, medium blocks get a segment of their class, and small
        // blocks one of theirs.
        var (mediums, mediumSegment) = try allocateBeyondFirst(order: mediumOrder)
        #expect(mediumSegment != first && mediumSegment != largeSegment && mediumSegment.pointee.sizeClass == 1)
        // 1 KiB blocks (small) take what the first segment has left, then a segment of their
        // class: not the medium one.
        let (smalls, smallSegment) = try allocateBeyondFirst(order: g.order(forSize: 1024))
        #expect(smallSegment != first && smallSegment != mediumSegment && smallSegment.pointee.sizeClass == 0)
        expectInvariants(pool)
        // Resizing in place stays within what the segment serves; a block that would leave it
        // must move.
        #expect(!pool.resizeInPlace(large, from: largeOrder, to: g.order(forSize: 1024)))
        #expect(pool.resizeInPlace(large, from: largeOrder, to: largeOrder - 1))
        #expect(!pool.resizeInPlace(small, from: 0, to: largeOrder), "the first segment serves no large block")
        let last = mediums.removeLast()
        #expect(!pool.resizeInPlace(last, from: mediumOrder, to: mediumOrder - 3), "a medium segment serves no small block")
        mediums.append(last)
        expectInvariants(pool)
        for p in [small, medium, large] + mediums + smalls { #expect(pool.release(p) == .released) }
        expectInvariants(pool)
        #expect(pool.usage.allocatedBytes == 0)
    }

    /// A slab comes from the segments of its objects' size class, not of the slab block's:
    ///     serves(segment(object), sizeClass(order(forSize: object size)))
    /// so a 48-byte object (in a 4 KiB slab) shares segments with 64-byte blocks, and free's copy
    /// of the thread's last segment holds for both. (When slabs took the 2-16 KiB segments, a
    /// program freeing 48- and 64-byte allocations in turn switched segments on most frees: the
    /// single-threaded larson shape with 8 to 256 bytes ran 336.8M instructions instead of
    /// 311.1M under callgrind, and 1.13 s instead of 0.76 s.)
    @Test(arguments: [40, 700, 1100, 3000])
    func slabsLiveWithTheirObjectsSizeClass(size: Int) throws {
        let pool = try segregatedPool(slabs: true)
        defer { pool.destroy() }
        let code = pool.code(forSize: UInt(size), alignment: 16)
        #expect(code > pool.geometry.maxOrder, "\(size) bytes: a slab object")
        let object = try #require(pool.allocate(code: code, mayGrow: true))
        let segment = try #require(SegmentMap.lookup(UInt(bitPattern: object)))
        let objectClass = pool.sizeClass(ofOrder: pool.geometry.order(forSize: pool.size(ofCode: code)))
        #expect(pool.serves(segment, sizeClass: objectClass))
        // Not the slab block's own class, where it differs (a 40-byte object's slab is 4 KiB,
        // medium; a 3000-byte object's is 32 KiB, large).
        let slabBytes = SlabClass.slabBytes(code - pool.state.pointee.slabFirstCode)
        let slabClass = pool.sizeClass(ofOrder: pool.geometry.order(forSize: slabBytes))
        #expect(slabClass == objectClass || segment.pointee.sizeClass != slabClass)
        expectInvariants(pool)
        #expect(pool.release(object) == .released)
    }

    /// A segment that holds no block goes to the class that needs one before the pool maps a
    /// new segment (its class changes; with no block in it, serves() still holds for every
    /// block); a segment that holds one block keeps its class.
    @Test func anEmptySegmentGoesToTheClassThatNeedsOne() throws {
        let pool = try segregatedPool()
        defer { pool.destroy() }
        let g = pool.geometry
        let first = try #require(pool.state.pointee.segments)
        let smallOrder = g.order(forSize: 1024), mediumOrder = g.order(forSize: 4096)
        let largeOrder = g.order(forSize: 64 << 10)
        // Small blocks until one lands beyond the first segment: it is alone in a small segment.
        var smalls: [UnsafeMutableRawPointer] = []
        var smallSegment = first
        while smallSegment == first, smalls.count < 20_000 {
            smalls.append(try #require(pool.allocate(order: smallOrder)))
            smallSegment = try #require(SegmentMap.lookup(UInt(bitPattern: smalls.last!)))
        }
        #expect(smallSegment != first && smallSegment.pointee.sizeClass == 0)
        let segments = pool.usage.segmentCount
        // While its block lives, a medium block (the first segment is full) gets a new segment.
        let medium = try #require(pool.allocate(order: mediumOrder))
        let mediumSegment = try #require(SegmentMap.lookup(UInt(bitPattern: medium)))
        #expect(mediumSegment != first && mediumSegment != smallSegment && mediumSegment.pointee.sizeClass == 1)
        #expect(pool.usage.segmentCount == segments + 1)
        #expect(smallSegment.pointee.sizeClass == 0, "a segment that holds a block keeps its class")
        // Both emptied: the large block takes the older one, which becomes a large segment.
        #expect(pool.release(medium) == .released)
        let lastSmall = smalls.removeLast()
        #expect(pool.release(lastSmall) == .released)
        #expect(smallSegment.pointee.freeBytes == smallSegment.pointee.size)
        let large = try #require(pool.allocate(order: largeOrder))
        #expect(SegmentMap.lookup(UInt(bitPattern: large)) == smallSegment, "the emptied small segment serves the large block")
        #expect(smallSegment.pointee.sizeClass == BuddyEngine.largeSizeClass)
        #expect(pool.usage.segmentCount == segments + 1, "no segment mapped")
        expectInvariants(pool)
        for p in smalls + [large] { #expect(pool.release(p) == .released) }
        expectInvariants(pool)
        #expect(pool.usage.allocatedBytes == 0)
    }

    /// The empty slab a class keeps would hold its segment from ever being empty: before the
    /// pool maps a segment, the kept empty slabs go back, and a segment they leave empty takes
    /// the wanted class.
    @Test func keptEmptySlabsGoBackBeforeASegmentIsMapped() throws {
        let pool = try segregatedPool(slabs: true)
        defer { pool.destroy() }
        let g = pool.geometry
        let first = try #require(pool.state.pointee.segments)
        // Fill the first segment with small blocks, then 48-byte objects until one lands in a
        // segment of its own (the small class's).
        var smalls: [UnsafeMutableRawPointer] = []
        while smalls.count < 20_000 {
            let block = try #require(pool.allocate(order: g.order(forSize: 1024)))
            if SegmentMap.lookup(UInt(bitPattern: block)) != first { #expect(pool.release(block) == .released); break }
            smalls.append(block)
        }
        let code = pool.code(forSize: 48, alignment: 16)
        #expect(code > g.maxOrder, "48 bytes: a slab object")
        var objects: [UnsafeMutableRawPointer] = []
        var slabSegment = first
        while slabSegment == first, objects.count < 100_000 {
            objects.append(try #require(pool.allocate(code: code, mayGrow: true)))
            slabSegment = try #require(SegmentMap.lookup(UInt(bitPattern: objects.last!)))
        }
        #expect(slabSegment != first && slabSegment.pointee.sizeClass == 0)
        // Its objects freed, the slab is empty and kept: the segment is not empty.
        let beyond = objects.filter { SegmentMap.lookup(UInt(bitPattern: $0)) == slabSegment }
        for o in beyond { #expect(pool.release(o) == .released) }
        #expect(slabSegment.pointee.freeBytes < slabSegment.pointee.size, "the class keeps its empty slab")
        let segments = pool.usage.segmentCount
        // A large block (no segment of its class yet): the kept slab goes back, and the emptied
        // segment serves the block instead of a new one.
        let large = try #require(pool.allocate(order: g.order(forSize: 64 << 10)))
        #expect(SegmentMap.lookup(UInt(bitPattern: large)) == slabSegment, "the segment the empty slab held serves the large block")
        #expect(pool.usage.segmentCount == segments, "no segment mapped")
        expectInvariants(pool)
        for p in smalls + [large] { #expect(pool.release(p) == .released) }
        for o in objects where SegmentMap.lookup(UInt(bitPattern: o)) != slabSegment { #expect(pool.release(o) == .released) }
        _ = pool.releaseEmptySlabs()
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

/// The segment table hands out descriptors from a mapped chunk, writing each only when it hands
/// it out: the chunk's pages above the next fresh descriptor stay untouched (mincore), so a
/// process's first malloc faults in one page of the table, not all 16 of its 64 KiB chunk.
@Suite struct SegmentTableTests {
    @Test func descriptorsNotHandedOutAreNotTouched() throws {
        // (At least one chunk is mapped once a descriptor has been handed out.)
        let descriptor = try #require(SegmentTable.acquire())
        defer { SegmentTable.release(descriptor) }
        // (Other tests share the table: read its state under the lock it is guarded by.)
        buddy_lock(buddy_map_lock())
        let fresh = buddy_segment_table_fresh()!
        let next = UInt(bitPattern: fresh[0]), end = UInt(bitPattern: fresh[1])
        buddy_unlock(buddy_map_lock())
        #expect(next != 0 && next <= end)
        let page = UInt(getpagesize())
        // From the page after the one holding the next descriptor to the chunk's end.
        let first = (next + page) & ~(page - 1)
        let chunkEnd = (end + page - 1) & ~(page - 1)
        guard first < chunkEnd else { return }  // the chunk's last page: nothing untouched to check
        let pages = Int((chunkEnd - first) / page)
        var vector = [UInt8](repeating: 0, count: pages)
        #expect(mincore(UnsafeMutableRawPointer(bitPattern: first), Int(chunkEnd - first), &vector) == 0)
        let resident = vector.filter { $0 & 1 != 0 }.count
        #expect(resident == 0, "\(resident) of the \(pages) pages of unused descriptors are resident")
    }
}
