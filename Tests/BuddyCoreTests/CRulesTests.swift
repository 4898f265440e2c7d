import CBuddySupport
import Glibc
import Testing
@testable import BuddyEngine
@testable import BuddyMallocCore

/// glibc's rules (CSemantics.swift, FastPaths.swift) called in-process, over a private heap the
/// test configures (ProcessPool.install): exact errno, pointers and pool state, no preloaded
/// library. The preload tests (ConformanceTests, GlibcSuiteTests) run the same rules in real
/// programs. Serialized: the rules use one installed heap at a time.
@Suite(.serialized) struct CRulesTests {
    /// Runs `body` with a private pool (blocks up to `maxBlock`, at most `maxPool` bytes)
    /// installed as the heap the C rules use, then takes it out and destroys it.
    func withHeap(maxBlock: Int = 1 << 20, maxPool: Int = 8 << 20, _ body: (BuddyEngine) throws -> Void) throws {
        var config = PoolConfig.process
        config.maxBlock = maxBlock
        config.initialSize = maxBlock
        config.maxPoolSize = maxPool
        let pool = try #require(BuddyEngine.create(config))
        try #require(testCacheKeyCreated)
        try #require(ProcessPool.install(pool, threadCaches: true))
        defer {
            if let cache = BuddyEngine.threadCounters(), cache.pointee.pool == pool.state { pool.retire(cache) }
            ProcessPool.uninstall()
            pool.destroy()
        }
        try body(pool)
        expectInvariants(pool)
    }

    @Test func callocChecksTheProductAndClearsRecycledBlocks() throws {
        try withHeap { pool in
            buddy_errno_set(0)
            #expect(buddy_calloc(Int.max, 2) == nil)
            #expect(buddy_errno_get() == ENOMEM)
            buddy_errno_set(0)
            #expect(buddy_calloc(1 << 33, 1 << 33) == nil)
            #expect(buddy_errno_get() == ENOMEM)
            // A block recycled through the thread cache holds old data and links: cleared.
            for size in [24, 100, 3000, 70_000] {
                let dirty = try #require(buddy_malloc(size))
                memset(dirty, 0xAB, buddy_malloc_usable_size(dirty))
                buddy_free(dirty)
                let clean = try #require(buddy_calloc(1, size))
                let bytes = clean.assumingMemoryBound(to: UInt8.self)
                #expect((0..<size).allSatisfy { bytes[$0] == 0 }, "calloc(1, \(size)) returned old bytes")
                buddy_free(clean)
            }
        }
    }

    @Test func reallocarrayOverflowLeavesTheBlockIntact() throws {
        try withHeap { _ in
            let p = try #require(buddy_malloc(64))
            memset(p, 0x5A, 64)
            buddy_errno_set(0)
            #expect(buddy_reallocarray(p, Int.max / 2, 3) == nil)
            #expect(buddy_errno_get() == ENOMEM)
            #expect((0..<64).allSatisfy { p.load(fromByteOffset: $0, as: UInt8.self) == 0x5A })
            let q = try #require(buddy_reallocarray(p, 10, 100))
            #expect(buddy_malloc_usable_size(q) >= 1000)
            buddy_free(q)
        }
    }

    @Test func posixMemalignRejectsBadAlignmentsAndLeavesTheOutputAlone() throws {
        try withHeap { _ in
            let sentinel = UnsafeMutableRawPointer(bitPattern: 0xdead0)
            for alignment in [0, 3, 4, 24, 48] {
                var out = sentinel
                buddy_errno_set(1234)
                #expect(buddy_posix_memalign(&out, alignment, 16) == EINVAL, "alignment \(alignment)")
                #expect(out == sentinel)
                #expect(buddy_errno_get() == 1234, "EINVAL is returned, not set in errno")
            }
            for alignment in [8, 16, 64, 4096, 1 << 20, 4 << 20] {
                var out = sentinel
                buddy_errno_set(1234)
                #expect(buddy_posix_memalign(&out, alignment, 100) == 0)
                let block = try #require(out)
                #expect(UInt(bitPattern: block) % UInt(alignment) == 0)
                #expect(buddy_errno_get() == 1234, "a success leaves errno alone")
                buddy_free(block)
            }
        }
    }

    @Test func aFullPoolFailsWithEnomemAndTouchesNothing() throws {
        try withHeap(maxBlock: 256 << 10, maxPool: 1 << 20) { _ in
            let small = try #require(buddy_malloc(64))
            memset(small, 0x77, 64)
            var held: [UnsafeMutableRawPointer] = []
            buddy_errno_set(0)
            while held.count < 64, let block = buddy_malloc(200 << 10) { held.append(block) }
            #expect(held.count >= 1 && held.count < 64, "BUDDY_MAX_POOL bounds the pool")
            #expect(buddy_errno_get() == ENOMEM)
            // posix_memalign: ENOMEM, the output untouched.
            let sentinel = UnsafeMutableRawPointer(bitPattern: 0xbeef0)
            var out = sentinel
            #expect(buddy_posix_memalign(&out, 64, 200 << 10) == ENOMEM)
            #expect(out == sentinel)
            // realloc that needs a block the pool cannot give: NULL and ENOMEM, the block and
            // its bytes intact.
            buddy_errno_set(0)
            #expect(buddy_realloc(small, 200 << 10) == nil)
            #expect(buddy_errno_get() == ENOMEM)
            #expect((0..<64).allSatisfy { small.load(fromByteOffset: $0, as: UInt8.self) == 0x77 })
            for block in held { buddy_free(block) }
            buddy_free(small)
        }
    }

    @Test func reallocFollowsGlibcsRules() throws {
        try withHeap { pool in
            // realloc(NULL, n) is malloc(n).
            let p = try #require(buddy_realloc(nil, 40))
            #expect(buddy_malloc_usable_size(p) >= 40)
            memset(p, 0x11, 40)
            // A larger size keeps the bytes.
            let q = try #require(buddy_realloc(p, 5000))
            #expect((0..<40).allSatisfy { q.load(fromByteOffset: $0, as: UInt8.self) == 0x11 })
            // realloc(p, 0) frees p and returns NULL.
            #expect(buddy_realloc(q, 0) == nil)
            #expect(pool.classify(q) != .allocated(order: 0) && pool.blockSize(of: q) == nil)
        }
    }

    @Test func freePreservesErrno() throws {
        try withHeap { _ in
            for size in [16, 2000, 40_000, 2 << 20] { // cached, slab, block, oversize
                let p = try #require(buddy_malloc(size))
                buddy_errno_set(77)
                buddy_free(p)
                #expect(buddy_errno_get() == 77, "free of a \(size)-byte block changed errno")
            }
            buddy_errno_set(78)
            buddy_free(nil)
            #expect(buddy_errno_get() == 78)
        }
    }

    @Test func everyPointerIsAlignedAndItsUsableSizeIsExactAndWritable() throws {
        try withHeap(maxPool: 0) { pool in
            var held: [UnsafeMutableRawPointer] = []
            for size in stride(from: 0, through: 70_000, by: 97) {
                let p = try #require(buddy_malloc(size))
                #expect(UInt(bitPattern: p) % 16 == 0)
                let usable = buddy_malloc_usable_size(p)
                #expect(usable >= size)
                #expect(usable == pool.blockSize(of: p), "malloc_usable_size(\(size)) is not the block's size")
                memset(p, 0xEE, usable) // every usable byte is the caller's: no neighbour is harmed
                held.append(p)
            }
            expectInvariants(pool)
            for p in held { buddy_free(p) }
        }
    }

    @Test func alignedEntryPointsFollowGlibc() throws {
        try withHeap { _ in
            // memalign rounds an alignment that is not a power of two up to one.
            let m = try #require(buddy_memalign(48, 10))
            #expect(UInt(bitPattern: m) % 64 == 0)
            buddy_free(m)
            // aligned_alloc: EINVAL for an alignment that is not a power of two.
            buddy_errno_set(0)
            #expect(buddy_aligned_alloc(48, 10) == nil)
            #expect(buddy_errno_get() == EINVAL)
            // pvalloc: ENOMEM when rounding the size up to pages overflows.
            buddy_errno_set(0)
            #expect(buddy_pvalloc(Int(bitPattern: UInt.max - 10)) == nil)
            #expect(buddy_errno_get() == ENOMEM)
            let v = try #require(buddy_valloc(10))
            #expect(UInt(bitPattern: v) % UInt(getpagesize()) == 0)
            buddy_free(v)
        }
    }
}
