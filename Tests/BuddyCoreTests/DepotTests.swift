import CBuddySupport
import Testing
@testable import BuddyEngine
@testable import BuddyMallocCore

/// The depot (Depot.swift) on a private pool with two thread caches that the test thread takes
/// turns at (its cache pointer switched between them): a producer's blocks freed by a consumer
/// come back to the producer as whole batches, neither coalesced nor split on the way.
@Suite struct DepotTests {
    /// Splits plus coalesces so far, over the orders: the pool's own work.
    private func poolWork(_ pool: BuddyEngine) -> UInt64 {
        var work: UInt64 = 0
        for order in 0...pool.geometry.maxOrder { work += pool.state.pointee.stats.splits[order] + pool.state.pointee.stats.coalesces[order] }
        return work
    }

    @Test func batchesMoveFromAConsumerBackToTheProducerWithoutThePool() throws {
        let arena = Arena(size: 1 << 20)
        let pool = try makePool(arena: arena, maxBlock: 64 * 1024)
        try enableThreadCachesForTest(pool)
        try #require(Depot.create(pool))
        buddy_thread_set_cache(nil)
        defer { buddy_thread_set_cache(nil); buddy_thread_key_set(nil); pool.destroy() }
        let producer = try #require(pool.threadCache())
        buddy_thread_set_cache(nil)
        let consumer = try #require(pool.threadCache())
        let code = 2, bin = 2 // 64-byte blocks: a bin of 64, batches of 32
        let batch = Int(pool.shelf(bin).pointee.batchBlocks)
        #expect(batch == Int((producer.bins + bin).pointee.limit) / 2)

        // The producer allocates 4 batches' worth (refills from the pool: splits).
        var blocks: [UnsafeMutableRawPointer] = []
        for _ in 0..<(4 * batch) {
            if let (block, tag) = producer.pop(bin) {
                tag.pointee = Tag.used | UInt8(code)
                blocks.append(block)
            } else {
                blocks.append(try #require(pool.refill(producer, code: code)))
            }
        }
        expectInvariants(pool)

        // The consumer frees them all: each full bin hands its top half to the depot.
        let before = poolWork(pool)
        for block in blocks {
            let tag = pool.tagAddress(block)
            tag.pointee = Tag.cached | UInt8(code)
            if consumer.push(block, bin, tag: tag) {
                #expect(pool.stashBatch(consumer, bin: bin))
            }
        }
        // Two overflows: the first batch became the bin's spare, the second pushed it to the depot.
        let totals = pool.depotTotals()
        #expect(totals.puts == 1 && totals.full == 0)
        #expect(Int((consumer.bins + bin).pointee.spareCount) == batch)
        #expect(totals.bytes == UInt64(pool.depotBlocks(bin: bin) * 64) && totals.bytes > 0)
        #expect(poolWork(pool) == before) // nothing coalesced
        expectInvariants(pool)

        // The producer, its bin empty, takes a whole batch back: no split.
        while let (block, tag) = producer.pop(bin) { tag.pointee = Tag.used | UInt8(code); blocks.append(block) }
        let onShelf = Int(pool.shelf(bin).pointee.count)
        let again = try #require(pool.refill(producer, code: code))
        #expect(pool.classify(again) == .allocated(order: code))
        #expect(Int(pool.shelf(bin).pointee.count) == onShelf - 1)
        #expect(Int((producer.bins + bin).pointee.count) == batch - 1)
        #expect(pool.depotTotals().takes == 1)
        #expect(poolWork(pool) == before)
        expectInvariants(pool)

        // The shelf is empty again; the consumer's bin and spare go to the pool, where they
        // coalesce.
        #expect(pool.drainDepot() == 0 && onShelf == 1)
        #expect(pool.depotTotals().bytes == 0)
        buddy_thread_set_cache(UnsafeMutableRawPointer(consumer))
        pool.flushAll(consumer)
        #expect((consumer.bins + bin).pointee.spare == nil && (consumer.bins + bin).pointee.count == 0)
        #expect(poolWork(pool) > before)
        expectInvariants(pool)
        buddy_thread_set_cache(UnsafeMutableRawPointer(producer))

        pool.retire(producer)
        buddy_thread_set_cache(UnsafeMutableRawPointer(consumer))
        pool.retire(consumer)
        expectInvariants(pool)
    }

    /// A full shelf turns batches away (they go to the pool), and the invariant sees a batch
    /// whose links were overwritten after their free.
    @Test func aFullShelfAndABrokenBatchAreSeen() throws {
        let arena = Arena(size: 4 << 20)
        let pool = try makePool(arena: arena, maxBlock: 64 * 1024)
        try enableThreadCachesForTest(pool)
        try #require(Depot.create(pool))
        buddy_thread_set_cache(nil)
        defer { buddy_thread_set_cache(nil); buddy_thread_key_set(nil); pool.destroy() }
        let cache = try #require(pool.threadCache())
        let code = 11, bin = 11 // 32 KiB blocks: a bin of one, batches of one
        let shelf = pool.shelf(bin)
        let capacity = Int(shelf.pointee.capacity)
        #expect(shelf.pointee.batchBlocks == 1)
        #expect(capacity * 32 * 1024 <= max(Depot.bytesPerShelf, 2 * 32 * 1024))

        // As free does it: a push over the bin's limit (one block) makes a batch of one the
        // spare; the spare before it goes to the depot, or to the pool when the shelf is full.
        var blocks: [UnsafeMutableRawPointer] = []
        for _ in 0..<(capacity + 8) { blocks.append(try #require(pool.refill(cache, code: code))) }
        for block in blocks {
            let tag = pool.tagAddress(block)
            tag.pointee = Tag.cached | UInt8(code)
            if cache.push(block, bin, tag: tag) { #expect(pool.stashBatch(cache, bin: bin)) }
        }
        // capacity + 8 pushes: capacity + 7 overflows, the first into the spare.
        #expect(Int(shelf.pointee.count) == capacity)
        #expect(pool.depotTotals().puts == UInt64(capacity))
        #expect(pool.depotTotals().full == 6)
        #expect((cache.bins + bin).pointee.count == 1 && (cache.bins + bin).pointee.spareCount == 1)
        expectInvariants(pool)

        let head = try #require(shelf.pointee.slots[0])
        let saved = head.load(fromByteOffset: 8, as: UInt.self)
        head.storeBytes(of: 0x4141_4141_4141_4141, toByteOffset: 8, as: UInt.self)
        #expect(pool.checkInvariantsWithCaches() != nil)
        head.storeBytes(of: saved, toByteOffset: 8, as: UInt.self)
        expectInvariants(pool)
        #expect(pool.drainDepot() == capacity)
        pool.retire(cache)
        #expect(pool.usage.allocatedBytes == 0)
        expectInvariants(pool)
    }
}
