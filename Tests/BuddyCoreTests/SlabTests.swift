import CBuddySupport
import Testing
@testable import BuddyEngine
@testable import BuddyMallocCore

/// A pool with slab classes over an arena (as malloc's pool has them).
private func makeSlabPool(arena: Arena, maxBlock: Int = 1 << 20) throws -> BuddyEngine {
    var config = PoolConfig()
    config.maxBlock = maxBlock
    config.maxPoolSize = arena.size
    config.releaseDelay = 0
    config.slabs = true
    return try #require(BuddyEngine.create(config, arena: arena.base, size: arena.size))
}

@Suite struct SlabClassTests {
    /// The classes from 1 KiB up: 7 per doubling, each a multiple of 128 bytes (so objects after
    /// the 64-byte header are 64-byte aligned). Those under 1 KiB: multiples of 16 (objects
    /// start on 16-byte slots). Each in size order, none a power of two, each slab holding 8 or
    /// more objects with slack under one object.
    @Test func classTable() {
        var previous = 1024
        for c in 0..<SlabClass.count {
            if c == SlabClass.largeCount { previous = 32 }
            let size = SlabClass.objectSize(c), slab = SlabClass.slabBytes(c)
            let unit = c < SlabClass.largeCount ? 128 : 16
            #expect(size > previous && size % unit == 0, "class \(c): \(size)")
            #expect(c < SlabClass.largeCount || size < Int(SlabClass.floor), "class \(c): \(size)")
            #expect(size & (size - 1) != 0, "class \(c) is a power of two: a block serves it")
            #expect(slab & (slab - 1) == 0, "class \(c): a slab is a block")
            let capacity = SlabClass.capacity(c)
            #expect(capacity >= 8 && SlabClass.headerBytes + capacity * size <= slab, "class \(c): \(capacity) objects")
            #expect(slab - SlabClass.headerBytes - capacity * size < size, "class \(c): slack")
            previous = size
        }
        #expect(SlabClass.objectSize(SlabClass.largeCount - 1) < Int(SlabClass.ceiling))
        #expect(SlabClass.objectSize(SlabClass.count - 1) < Int(SlabClass.floor))
        // malloc's table of small sizes ends where the classes from 1 KiB up begin.
        #expect(SlabClass.floor == SmallSizeTable.limit)
    }

    /// code(forSize:) picks the smallest of the classes and the powers of two that holds the
    /// request:  size(ofCode: code(forSize: r)) == min { s in classes + powers of two : s >= r }.
    @Test func everyRequestGetsTheTightestSize() throws {
        let arena = Arena(size: 1 << 22)
        let pool = try makeSlabPool(arena: arena)
        defer { pool.destroy() }
        #expect(pool.state.pointee.slabClassCount == SlabClass.count)
        var candidates = (0..<SlabClass.count).map(SlabClass.objectSize)
        for k in 4...20 { candidates.append(1 << k) }
        candidates.sort()
        var wrong = 0
        for r in 1...40_000 {
            let code = pool.code(forSize: UInt(r), alignment: 16)
            if pool.size(ofCode: code) != candidates.first(where: { $0 >= r })! { wrong += 1 }
            // Over-aligned requests are blocks (a block is aligned to its size).
            if pool.code(forSize: UInt(r), alignment: 32) > pool.geometry.maxOrder { wrong += 1 }
        }
        #expect(wrong == 0)
    }

    /// The classes under 1 KiB take the tag's last eight codes: a pool with one order more than
    /// the default (a 16 MiB largest block) has no room for them and serves those requests with
    /// blocks, the classes from 1 KiB up as before; so does a pool of 32-byte slots (48-byte
    /// objects would straddle them).
    @Test(arguments: [(16, 16 << 20), (32, 1 << 20)])
    func noCodesLeftMeansBlocksUnder1K(minBlock: Int, maxBlock: Int) throws {
        let arena = Arena(size: 16 << 20)
        var config = PoolConfig()
        config.minBlock = minBlock
        config.maxBlock = maxBlock
        config.maxPoolSize = arena.size
        config.slabs = true
        let pool = try #require(BuddyEngine.create(config, arena: arena.base, size: arena.size))
        defer { pool.destroy() }
        #expect(pool.state.pointee.slabClassCount == SlabClass.largeCount)
        #expect(pool.size(ofCode: pool.code(forSize: 40, alignment: 16)) == max(64, minBlock))
        #expect(pool.size(ofCode: pool.code(forSize: 700, alignment: 16)) == 1024)
        #expect(pool.size(ofCode: pool.code(forSize: 1100, alignment: 16)) == 1152)
        let object = try #require(pool.allocate(code: pool.code(forSize: 1100, alignment: 16), mayGrow: true))
        #expect(pool.release(object) == .released)
        expectInvariants(pool)
    }

    /// Slabs fit in blocks: a pool whose largest block is 64 KiB keeps the classes whose slab fits.
    @Test func smallMaximumBlockLimitsTheClasses() throws {
        let arena = Arena(size: 1 << 20)
        let pool = try makeSlabPool(arena: arena, maxBlock: 64 << 10)
        defer { pool.destroy() }
        #expect(pool.state.pointee.slabCeiling == 8192)
        #expect(pool.size(ofCode: pool.code(forSize: 4200, alignment: 16)) == 4608)
        #expect(pool.size(ofCode: pool.code(forSize: 9000, alignment: 16)) == 16384)
    }
}

@Suite struct SlabTests {
    /// Random allocations of 1 B to 40 KiB and frees, each object filled with a pattern that is
    /// checked when it is freed; the invariants after every step; at the end, only the kept
    /// empty slabs (one per class at most) remain allocated.
    @Test func randomObjectsKeepTheInvariantsAndTheirContents() throws {
        let arena = Arena(size: 1 << 23)
        let pool = try makeSlabPool(arena: arena)
        defer { pool.destroy() }
        var generator = SplitMix64(state: 42)
        var live: [(UnsafeMutableRawPointer, Int, UInt8)] = []
        for step in 0..<3000 {
            if live.count < 100 && (live.isEmpty || generator.next() % 3 != 0) {
                let size = 1 + Int(generator.next() % 40_000)
                let code = pool.code(forSize: UInt(size), alignment: 16)
                let p = try #require(pool.allocate(code: code, mayGrow: true), "step \(step): no memory for \(size)")
                #expect(pool.classify(p) == .allocated(order: code))
                #expect(pool.blockSize(of: p)! >= size && UInt(bitPattern: p) % 16 == 0)
                let fill = UInt8(truncatingIfNeeded: step)
                p.initializeMemory(as: UInt8.self, repeating: fill, count: pool.blockSize(of: p)!)
                live.append((p, size, fill))
            } else {
                let (p, _, fill) = live.remove(at: Int(generator.next() % UInt64(live.count)))
                let bytes = UnsafeRawBufferPointer(start: p, count: pool.blockSize(of: p)!)
                #expect(bytes.allSatisfy { $0 == fill }, "step \(step): an object's bytes changed while it was live")
                #expect(pool.release(p) == .released)
            }
            if step % 50 == 0 { expectInvariants(pool, "step \(step)") }
        }
        for (p, _, _) in live { #expect(pool.release(p) == .released) }
        expectInvariants(pool)
        // Nothing lost: each class keeps at most one empty slab; everything else went back.
        var kept = 0
        for c in 0..<SlabClass.count {
            let k = pool.state.pointee.slabClasses![c]
            #expect(k.slabs <= 1 && k.objectsOut == 0)
            kept += k.slabs * SlabClass.slabBytes(c)
        }
        #expect(pool.usage.allocatedBytes == kept)
        #expect(pool.state.pointee.slabSpareBytes == UInt(kept))
    }

    /// Bad pointers into a slab are caught as for blocks, and leave the pool untouched.
    @Test func doubleInteriorAndHeaderFreesAreCaught() throws {
        let arena = Arena(size: 1 << 22)
        let pool = try makeSlabPool(arena: arena)
        defer { pool.destroy() }
        let code = pool.code(forSize: 4200, alignment: 16)
        let a = try #require(pool.allocate(code: code, mayGrow: true))
        let b = try #require(pool.allocate(code: code, mayGrow: true))
        #expect(b - a == 4608, "objects are packed")
        let slab = a - SlabClass.headerBytes
        #expect(pool.release(slab) == .invalidPointer, "the slab block itself is not the program's")
        #expect(pool.release(a + 16) == .invalidPointer)
        #expect(pool.release(b + 4608) == .invalidPointer, "an object never handed out")
        #expect(pool.release(a) == .released)
        #expect(pool.release(a) == .doubleFree)
        #expect(pool.counters.doubleFrees == 1 && pool.counters.invalidPointers == 3)
        expectInvariants(pool)
        // The freed object comes back first (the slab's free list), then carving goes on.
        #expect(pool.allocate(code: code, mayGrow: true) == a)
        #expect(pool.allocate(code: code, mayGrow: true) == b + 4608)
        expectInvariants(pool)
    }

    /// A full slab leaves the partial list; an empty one goes back unless it is the last with room.
    @Test func slabsFillEmptyAndGoBack() throws {
        let arena = Arena(size: 1 << 22)
        let pool = try makeSlabPool(arena: arena)
        defer { pool.destroy() }
        let code = pool.code(forSize: 5000, alignment: 16)
        let c = code - pool.state.pointee.slabFirstCode
        let capacity = SlabClass.capacity(c)
        var objects: [UnsafeMutableRawPointer] = []
        for _ in 0..<(2 * capacity + 1) { objects.append(try #require(pool.allocate(code: code, mayGrow: true))) }
        var k = pool.state.pointee.slabClasses![c]
        #expect(k.slabs == 3 && k.partialCount == 1 && k.objectsOut == 2 * capacity + 1)
        expectInvariants(pool)
        for p in objects { #expect(pool.release(p) == .released) }
        k = pool.state.pointee.slabClasses![c]
        #expect(k.slabs == 1 && k.partialCount == 1 && k.objectsOut == 0)
        #expect(pool.usage.allocatedBytes == SlabClass.slabBytes(c))
        expectInvariants(pool)
        // malloc_trim gives the kept one back too.
        pool.trim()
        #expect(pool.state.pointee.slabClasses![c].slabs == 0 && pool.usage.allocatedBytes == 0)
        expectInvariants(pool)
    }

    /// A refill's objects (allocateObjects) come from one slab, linked through their first
    /// words: the objects single allocations would take, in the same order, with the same
    /// counts in the class and the slab.
    @Test func aSlabsObjectsComeTogetherAsSingleAllocationsWould() throws {
        let arenaRun = Arena(size: 1 << 22), arenaSingles = Arena(size: 1 << 22)
        let run = try makeSlabPool(arena: arenaRun), singles = try makeSlabPool(arena: arenaSingles)
        defer { run.destroy(); singles.destroy() }
        let code = run.code(forSize: 40, alignment: 16)
        let c = code - run.state.pointee.slabFirstCode
        let capacity = SlabClass.capacity(c)
        // Some objects out and back, so the slab has a free list and uncarved objects.
        var out: [[UnsafeMutableRawPointer]] = [[], []]
        for (i, pool) in [run, singles].enumerated() {
            for _ in 0..<10 { out[i].append(try #require(pool.allocate(code: code, mayGrow: true))) }
            for p in out[i][2..<6] { #expect(pool.release(p) == .released) }
        }
        let taken = try #require(run.allocateObjects(code: code, count: capacity, mayCarve: true))
        #expect(taken.objects == capacity - 6, "the slab's room: its 4 freed objects and its uncarved ones")
        var linked: [UInt] = []
        var object: UnsafeMutableRawPointer? = taken.head
        while let o = object {
            linked.append(UInt(bitPattern: o) - UInt(bitPattern: arenaRun.base))
            #expect(run.classify(o) == .allocated(order: code))
            object = o.load(as: UnsafeMutableRawPointer?.self)
        }
        let single = try (0..<(capacity - 6)).map { _ in
            UInt(bitPattern: try #require(singles.allocate(code: code, mayGrow: true))) - UInt(bitPattern: arenaSingles.base)
        }
        #expect(linked == single)
        let k = run.state.pointee.slabClasses![c], twin = singles.state.pointee.slabClasses![c]
        #expect(k.objectsOut == capacity && k.objectsOut == twin.objectsOut && k.partialCount == 0 && twin.partialCount == 0)
        #expect(run.state.pointee.slabSpareBytes == singles.state.pointee.slabSpareBytes)
        expectInvariants(run)
        // The next call starts a new slab.
        let more = try #require(run.allocateObjects(code: code, count: 3, mayCarve: true))
        #expect(more.objects == 3 && run.state.pointee.slabClasses![c].slabs == 2)
        expectInvariants(run)
    }

    /// Slab objects in a thread cache: refill takes a batch of objects, flush puts them back.
    @Test func threadCacheBinsHoldObjects() throws {
        let arena = Arena(size: 1 << 22)
        let pool = try makeSlabPool(arena: arena)
        try enableThreadCachesForTest(pool)
        buddy_thread_set_cache(nil)
        defer { buddy_thread_set_cache(nil); buddy_thread_key_set(nil); pool.destroy() }
        let cache = try #require(pool.threadCache())
        #expect(cache.pointee.slabBinCount == SlabClass.count)
        // free's table: binWords(used | code) == binOfCode(code) x wordsPerBin, none for every
        // other tag, and the words address the bin's slot; every bin's code leads back to it
        // (codeOfBin(binOfCode(code)) == code), every bin once.
        #expect(ThreadCache.wordsPerBin * 8 == MemoryLayout<CacheBin>.stride)
        #expect(cache.totalBins * ThreadCache.wordsPerBin < TagBinTable.none)
        var wrongTags = 0, binsSeen = Set<Int>()
        for tag in 0..<256 {
            let value = UInt8(tag), words = cache.pointee.tagBins.binWords(value)
            let code = Int(value & Tag.orderMask)
            let expected = value & Tag.stateMask == Tag.used ? pool.binOfCode(code) : -1
            if words != (expected < 0 ? TagBinTable.none : expected * ThreadCache.wordsPerBin) { wrongTags += 1 }
            if expected >= 0 {
                if pool.codeOfBin(expected) != code || !binsSeen.insert(expected).inserted { wrongTags += 1 }
                if cache.slot(words: words) != cache.slot(expected) || cache.bin(of: cache.slot(words: words)) != expected { wrongTags += 1 }
            }
        }
        #expect(wrongTags == 0)
        #expect(binsSeen.count == cache.totalBins)
        let code = pool.code(forSize: 4200, alignment: 16)
        let bin = cache.bin(ofCode: code)
        #expect(bin >= cache.pointee.binCount && cache.code(ofBin: bin) == code)
        let first = try #require(pool.refill(cache, code: code))
        #expect(pool.classify(first) == .allocated(order: code))
        let held = Int((cache.bins + bin).pointee.count)
        #expect(held == max(1, Int((cache.bins + bin).pointee.limit) / 2) - 1)
        #expect(pool.cachedBytes == UInt(held * 4608))
        expectInvariants(pool)
        if held > 0 {
            let (cached, _) = try #require(cache.pop(bin))
            _ = cache.push(cached, bin, tag: pool.tagAddress(cached))
            #expect(pool.classify(cached) == .free, "a cached object is free to the program")
        }
        pool.flush(cache, bin: bin, keep: 0)
        #expect(pool.release(first) == .released)
        pool.retire(cache)
        expectInvariants(pool)
        #expect(pool.state.pointee.slabClasses![code - pool.state.pointee.slabFirstCode].objectsOut == 0)
    }
}

/// At the pool's limit, the empty slabs the classes keep go back before a request fails:
///     allocate(order) at the limit == allocate(order) after malloc_trim's releaseEmptySlabs
@Suite struct SlabsAtThePoolLimitTests {
    @Test func keptEmptySlabsGoBackBeforeARequestFails() throws {
        let arena = Arena(size: 256 << 10)
        let pool = try makeSlabPool(arena: arena, maxBlock: 256 << 10)
        defer { pool.destroy() }
        // One object of each of three classes, freed: each class keeps its (now empty) slab, and
        // the three slabs (16, 32 and 64 KiB) split the arena's only 256 KiB block.
        for size: UInt in [1100, 2200, 4400] {
            let code = pool.code(forSize: size, alignment: 16)
            #expect(code > pool.geometry.maxOrder)
            let object = try #require(pool.allocate(code: code, mayGrow: true))
            #expect(pool.release(object) == .released)
        }
        #expect(pool.state.pointee.slabSpareBytes == UInt((16 + 32 + 64) << 10))
        expectInvariants(pool)
        // The whole arena, with no room to grow: served once the spare slabs are given back.
        let whole = pool.allocate(order: pool.geometry.maxOrder)
        #expect(whole == arena.base, "a free pool refused its only top-order block")
        #expect(pool.counters.failedAllocations == 0)
        #expect(pool.state.pointee.slabSpareBytes == 0)
        expectInvariants(pool)
        if let whole { #expect(pool.release(whole) == .released) }
        // A request that cannot fit even then still fails cleanly, counted once.
        let blocker = try #require(pool.allocate(order: 0))
        #expect(pool.allocate(order: pool.geometry.maxOrder) == nil)
        #expect(pool.counters.failedAllocations == 1)
        #expect(pool.release(blocker) == .released)
        expectInvariants(pool)
    }
}

@Suite struct SmallSizeTableTests {
    /// malloc's fast path reads a request's bin and code from a table: for every minimum block,
    /// with and without slabs, and every request of 0 ... 1024 bytes (and, by the medium table,
    /// every one up to 32 KiB; above, LargeSizes at each order's edges and middle up to 1 MiB),
    ///     table code == code(forSize:),  codeOfBin(table bin) == table code
    @Test(arguments: [(16, false, 64), (16, true, 64), (32, false, 64), (32, true, 64), (64, true, 64), (2048, false, 64),
                      (16, true, 16), (16, true, 2048), (64, false, 2048)])
    func tableMatchesTheCodes(minBlock: Int, slabs: Bool, maxKiB: Int) throws {
        try #require(testCacheKeyCreated)
        let arena = Arena(size: max(1 << 20, maxKiB << 11))
        var config = PoolConfig()
        config.minBlock = minBlock
        config.maxBlock = maxKiB << 10
        config.maxPoolSize = arena.size
        config.slabs = slabs
        let pool = try #require(BuddyEngine.create(config, arena: arena.base, size: arena.size))
        defer { pool.destroy() }
        try #require(ProcessState.attach(to: pool))
        pool.allowThreadCaches()
        var wrong = 0
        for size in 0...Int(pool.process.pointee.orderPathLimit) {
            let (words, code) = pool.process.pointee.smallSizes.entry(UInt(size))
            let bin = words / ThreadCache.wordsPerBin
            if code != pool.code(forSize: UInt(size), alignment: 16) || words % ThreadCache.wordsPerBin != 0 || pool.codeOfBin(bin) != code { wrong += 1 }
        }
        #expect(wrong == 0, "minimum block \(minBlock): \(wrong) sizes with the wrong bin or code")
        // The medium table, above 1 KiB: the same for every cached request; none above them.
        let cached = pool.process.pointee.cachedSizeLimit
        var wrongMedium = 0, none = 0
        for size in Int(MediumSizeTable.floor) + 1...Int(MediumSizeTable.limit) {
            let (words, code) = pool.process.pointee.mediumSizes.entry(UInt(size))
            if UInt(size) > cached {
                if words != MediumSizeTable.none { wrongMedium += 1 }
                continue
            }
            let bin = pool.binOfCode(pool.code(forSize: UInt(size), alignment: 16))
            if words == MediumSizeTable.none { none += 1; if bin >= 0 { wrongMedium += 1 }; continue }
            if code != pool.code(forSize: UInt(size), alignment: 16) || words != bin * ThreadCache.wordsPerBin { wrongMedium += 1 }
        }
        #expect(wrongMedium == 0, "minimum block \(minBlock): \(wrongMedium) sizes above 1 KiB with the wrong bin or code")
        // Above the medium table, orders (LargeSizes): at each order's edges and middle.
        var wrongLarge = 0, large = 0
        var order = pool.geometry.order(forSize: Int(MediumSizeTable.limit)) + 1
        while pool.geometry.size(ofOrder: order) <= Int(cached) {
            let top = UInt(pool.geometry.size(ofOrder: order))
            for size in [top / 2 + 1, top / 2 + top / 4, top - 1, top] {
                let (words, code) = LargeSizes.entry(size, minShift: UInt(pool.geometry.minShift))
                let expected = pool.code(forSize: size, alignment: 16)
                if code != expected || words != pool.binOfCode(expected) * ThreadCache.wordsPerBin || pool.binOfCode(expected) < 0 { wrongLarge += 1 }
                large += 1
            }
            order += 1
        }
        #expect(wrongLarge == 0, "minimum block \(minBlock): \(wrongLarge) of \(large) sizes above 32 KiB with the wrong bin or code")
        // (Bins hold blocks up to the maximum block, and at most 1 MiB.)
        #expect(cached == UInt(min(maxKiB, 1024)) << 10 && none == 0, "every cached request has a bin: \(none) without")
        #expect(pool.state.pointee.minBlockMask == UInt(minBlock - 1))
        #expect((slabs && minBlock == 16) == (pool.size(ofCode: pool.code(forSize: 40, alignment: 16)) == 48))
    }
}
