import CBuddySupport
import Testing
@testable import BuddyEngine
@testable import BuddyMallocCore

/// The pthread key threadCache() stores a new cache under (support.c's cache_key). Production
/// creates it before it enables caches (ProcessPool); a test that enabled them without it stored
/// its cache under key 0, which is someone else's: under AddressSanitizer, ASan's own per-thread
/// state, so the process crashed in ASan's next call (tools/sanitize.sh). The destructor does
/// nothing: the tests retire their caches themselves.
let testCacheKeyCreated: Bool = buddy_thread_key_create { _ in } == 0

/// Lets a private pool make thread caches, as enableThreadCaches() does once the key exists
/// (without the depot: DepotTests add it). Pair it with `buddy_thread_key_set(nil)` when the
/// test is done with the cache.
func enableThreadCachesForTest(_ pool: BuddyEngine) throws {
    try #require(testCacheKeyCreated)
    try #require(ProcessState.attach(to: pool))
    pool.allowThreadCaches()
}

/// The lazy buddy on a private pool: the test thread's cache pointer is pointed at this pool's
/// cache for the test's duration and cleared afterwards.
@Suite struct ThreadCacheTests {
    @Test func refillFlushAndRetireKeepTheInvariants() throws {
        let arena = Arena(size: 256 * 1024)
        let pool = try makePool(arena: arena, maxBlock: 64 * 1024, maxPoolSize: 1 << 20)
        try enableThreadCachesForTest(pool)
        buddy_thread_set_cache(nil)
        defer { buddy_thread_set_cache(nil); buddy_thread_key_set(nil); pool.destroy() }

        let cache = try #require(pool.threadCache())
        #expect(cache.pointee.binCount == pool.cachedOrderCount)
        expectInvariants(pool)
        // A cache built in place (ThreadCache.initialize) is byte for byte the value its memberwise
        // initializer builds (a field with a new non-zero default that initialize misses fails here).
        let inPlace = UnsafeMutablePointer<ThreadCache>.allocate(capacity: 1)
        defer { inPlace.deallocate() }
        ThreadCache.initialize(inPlace, pool: pool.state, next: cache, binCount: 3, slabBinCount: 5)
        let value = ThreadCache(pool: pool.state, next: cache, prev: nil, calls: CallCounters(), binCount: 3, slabBinCount: 5)
        let same = withUnsafeBytes(of: value) { v in UnsafeRawBufferPointer(start: inPlace, count: MemoryLayout<ThreadCache>.size).elementsEqual(v) }
        #expect(same)
        // The bins start on a cache line (the cache itself is a pool block or a mapping, aligned
        // to at least a line), so each bin's head, count and limit share one line:
        //     stride(ThreadCache) % 64 == 0,  64 % stride(CacheBin) == 0
        #expect(MemoryLayout<ThreadCache>.stride % 64 == 0, "ThreadCache is \(MemoryLayout<ThreadCache>.stride) bytes: keep it whole cache lines (see the end of ThreadCache)")
        #expect(64 % MemoryLayout<CacheBin>.stride == 0)
        #expect(UInt(bitPattern: cache.bins) % 64 == 0)
        let cacheBytes = pool.usage.allocatedBytes

        // An empty bin refills half its limit (128 blocks of 16 B: 64, one 1 KiB block split
        // whole: one cache line of tags) under one lock.
        let first = try #require(pool.refill(cache, code: 0))
        #expect(pool.classify(first) == .allocated(order: 0))
        #expect((cache.bins + 0).pointee.count == 63)
        #expect(pool.cachedBytes == 63 * 16)
        expectInvariants(pool)
        // The bin hands them out in the order one allocation at a time gave: the block after
        // the first last, the one just above the 1 KiB block's first... the last block first.
        var popped: [(UnsafeMutableRawPointer, UnsafeMutablePointer<UInt8>)] = []
        while let entry = cache.pop(0) { popped.append(entry) }
        #expect(popped.map { $0.0 } == (1...63).reversed().map { first + $0 * 16 })
        for (block, tag) in popped.reversed() { _ = cache.push(block, 0, tag: tag) }
        expectInvariants(pool)

        // A cached block is free to the program: freeing it again is a double free.
        let (cached, tag) = try #require(cache.pop(0))
        #expect(tag == pool.tagAddress(cached))
        _ = cache.push(cached, 0, tag: tag)
        #expect(pool.classify(cached) == .free)
        #expect(pool.release(cached) == .doubleFree)
        expectInvariants(pool)

        // Flushing gives the blocks back; the pool coalesces them.
        pool.flush(cache, bin: 0, keep: 0)
        #expect((cache.bins + 0).pointee.count == 0)
        #expect(pool.usage.allocatedBytes == cacheBytes + 16)
        expectInvariants(pool)

        #expect(pool.release(first) == .released)
        pool.retire(cache)
        #expect(pool.usage.allocatedBytes == 0)
        #expect(pool.process.pointee.caches == nil)
        expectInvariants(pool)
    }

    /// The cache invariant is executable: each way of breaking it is caught by the checker.
    @Test func theCacheInvariantCatchesEachBreak() throws {
        // (A maximum block above the largest cached one: the pool has an order no bin keeps.)
        let arena = Arena(size: 4 << 20)
        let pool = try makePool(arena: arena, maxBlock: 2 * ThreadCache.largestCachedBlock, maxPoolSize: 4 << 20)
        try enableThreadCachesForTest(pool)
        buddy_thread_set_cache(nil)
        defer { buddy_thread_set_cache(nil); buddy_thread_key_set(nil); pool.destroy() }
        let cache = try #require(pool.threadCache())
        let first = try #require(pool.refill(cache, code: 1)) // order 1: 32-byte blocks
        #expect(pool.checkInvariantsWithCaches() == nil)
        let head = try #require((cache.bins + 1).pointee.head)
        let tag = pool.tagAddress(head)

        // A cached block keeps its used tag (the fast paths never write the order map) and
        // carries the cache mark, its encoded tag link.
        #expect(tag.pointee == Tag.used | 1)
        #expect(CacheMark.isSet(UInt(bitPattern: head), tag: tag, key: pool.state.pointee.cacheMarkKey))
        // Retagged free (or anything but used | k): on a bin of code k, not tagged used | k.
        tag.pointee = Tag.free | 1
        #expect(pool.checkInvariantsWithCaches() != nil)
        tag.pointee = Tag.used | 1
        #expect(pool.checkInvariantsWithCaches() == nil)

        // A bin's count that disagrees with its list.
        (cache.bins + 1).pointee.count &+= 1
        #expect(pool.checkInvariantsWithCaches() != nil)
        (cache.bins + 1).pointee.count &-= 1

        // A block the program holds carries no mark; one that carries it with no bin holding it
        // breaks the count (and the pool would call its free a double free).
        let stray = pool.tagAddress(first)
        #expect(!CacheMark.isSet(UInt(bitPattern: first), tag: stray, key: pool.state.pointee.cacheMarkKey))
        first.storeBytes(of: CacheMark.value(tag: stray, key: pool.state.pointee.cacheMarkKey), toByteOffset: 8, as: UInt.self)
        #expect(pool.checkInvariantsWithCaches() != nil)
        #expect(pool.classify(first) == .free)
        CacheMark.clear(first)
        #expect(pool.classify(first) == .allocated(order: 1))
        // A block of an order no bin keeps cannot be cached: its words are the program's, even
        // one that happens to read as a mark.
        let big = try #require(pool.allocate(order: pool.cachedOrderCount))
        big.storeBytes(of: CacheMark.value(tag: pool.tagAddress(big), key: pool.state.pointee.cacheMarkKey), toByteOffset: 8, as: UInt.self)
        #expect(pool.classify(big) == .allocated(order: pool.cachedOrderCount))
        #expect(pool.release(big) == .released)

        // A cached block whose links were overwritten (a write after free).
        let saved = head.load(as: UInt.self)
        head.storeBytes(of: 0x4141_4141_4141_4141, as: UInt.self)
        #expect(pool.checkInvariantsWithCaches() != nil)
        head.storeBytes(of: saved, as: UInt.self)
        #expect(pool.checkInvariantsWithCaches() == nil)

        // A free sample due while free's segment copy still covers a range: the range test would
        // let frees skip the sample. setFreeSampleDue clears the copy's size with it.
        cache.pointee.lastBase = UInt(bitPattern: head) & ~0xFFFF
        cache.pointee.lastSize = 0x10000
        cache.pointee.calls.freeSampleDue = CallCounters.timedFree
        #expect(pool.checkInvariantsWithCaches() != nil)
        cache.setFreeSampleDue(CallCounters.timedFree)
        #expect(cache.pointee.lastSize == 0)
        #expect(pool.checkInvariantsWithCaches() == nil)
        cache.setFreeSampleDue(0)

        #expect(pool.release(first) == .released)
        pool.retire(cache)
        #expect(pool.checkInvariantsWithCaches() == nil)
    }

    /// The live-count bound the README states (README, "The figures"; Stats.swift):
    /// C = 1 + sum over the bins of (limit + 1), with malloc's default geometry (16 B to 8 MiB),
    /// with and without slabs.
    @Test func theLiveCountBoundIsTheDocumentedOne() throws {
        for (slabs, documented) in [(true, 1671), (false, 790)] {
            let arena = Arena(size: 8 << 20)
            var config = PoolConfig()
            config.minBlock = 16
            config.maxBlock = 8 << 20
            config.maxPoolSize = 8 << 20
            config.slabs = slabs
            let pool = try #require(BuddyEngine.create(config, arena: arena.base, size: arena.size))
            defer { pool.destroy() }
            let c = 1 + (0..<pool.binsPerCache).reduce(0) { $0 + pool.binLimit($1) + 1 }
            #expect(c == documented, "slabs \(slabs)")
        }
    }

    @Test func binLimitsBoundWhatAThreadHolds() throws {
        let arena = Arena(size: 1 << 20)
        let pool = try makePool(arena: arena)
        try enableThreadCachesForTest(pool)
        buddy_thread_set_cache(nil)
        defer { buddy_thread_set_cache(nil); buddy_thread_key_set(nil); pool.destroy() }
        let cache = try #require(pool.threadCache())
        var total = 0
        for order in 0..<cache.pointee.binCount {
            let limit = Int((cache.bins + order).pointee.limit)
            #expect(limit >= 1 && limit <= ThreadCache.maxBlocksPerBin)
            #expect(limit * pool.geometry.size(ofOrder: order) <= max(ThreadCache.bytesPerBin, pool.geometry.size(ofOrder: order)))
            total += limit * pool.geometry.size(ofOrder: order)
        }
        // Every bin full at once: the most one thread can hold back from the pool (README,
        // Limits): bytesPerBin for each order up to 32 KiB, one block of each larger cached order
        //     total <= 32 KiB x (orders up to 32 KiB) + (2 x cachedSizeLimit - 64 KiB)
        let small = pool.geometry.order(forSize: ThreadCache.bytesPerBin) + 1
        let cachedLimit = Int(pool.process.pointee.cachedSizeLimit)
        #expect(cachedLimit == min(ThreadCache.largestCachedBlock, pool.geometry.maxBlock))
        #expect(total <= small * ThreadCache.bytesPerBin + max(0, 2 * cachedLimit - 2 * ThreadCache.bytesPerBin))
        pool.retire(cache)
        expectInvariants(pool)
    }
}
