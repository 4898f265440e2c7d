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

    /// A private pool (largest block 64 KiB) with thread caches and a depot; the test thread
    /// holds no cache yet.
    private func makeDepotPool(_ arena: Arena) throws -> BuddyEngine {
        let pool = try makePool(arena: arena, maxBlock: 64 * 1024)
        try enableThreadCachesForTest(pool)
        try #require(Depot.create(pool))
        buddy_thread_set_cache(nil)
        return pool
    }

    /// The test thread forgets its cache, and the pool goes.
    private func closeDepotPool(_ pool: BuddyEngine) {
        buddy_thread_set_cache(nil)
        buddy_thread_key_set(nil)
        pool.destroy()
    }

    @Test func batchesMoveFromAConsumerBackToTheProducerWithoutThePool() throws {
        let arena = Arena(size: 1 << 20)
        let pool = try makeDepotPool(arena)
        defer { closeDepotPool(pool) }
        let producer = try #require(pool.threadCache())
        buddy_thread_set_cache(nil)
        let consumer = try #require(pool.threadCache())
        let code = 2, bin = 2 // 64-byte blocks: a bin of 128, batches of at most 128
        let batch = Int(pool.shelf(bin).pointee.batchBlocks)
        #expect(batch == Int((producer.bins + bin).pointee.limit) && batch == 128)

        // The producer allocates two batches' worth and two blocks (refills from the pool: splits).
        var blocks: [UnsafeMutableRawPointer] = []
        for _ in 0..<(2 * batch + 2) {
            if let (block, tag) = producer.pop(bin) {
                tag.pointee = Tag.used | UInt8(code)
                blocks.append(block)
            } else {
                blocks.append(try #require(pool.refill(producer, code: code)))
            }
        }
        expectInvariants(pool)

        // The consumer frees them all: each overflowing bin keeps its newest block, and the rest,
        // a batch, goes to the depot at once: the consumer allocates nothing of this size, so it
        // keeps no spare (a spare would hold the batch back from the producer), and, as it frees
        // what it did not allocate, from its first overflow on its bin holds half its limit
        // (Depot.consumerLimit): its next batches are half batches.
        let before = poolWork(pool)
        for block in blocks {
            let tag = pool.tagAddress(block) // tagged used: the push marks it (CacheMark)
            consumer.pointee.calls.freed.add(code) // as free counts it
            if consumer.push(block, bin, tag: tag) {
                #expect(pool.stashBatch(consumer, bin: bin))
            }
        }
        // Three overflows (after 129, 64 and 64 frees): batches of 128, 64 and 64 on the shelf,
        // no spare, two blocks left on the bin.
        let totals = pool.depotTotals()
        #expect(totals.puts == 3 && totals.full == 0)
        #expect((0..<3).map { pool.shelf(bin).pointee.counts[pool.shelf(bin).pointee.slot(Int32($0))] } == [128, 64, 64])
        #expect((consumer.bins + bin).pointee.spare == nil && (consumer.bins + bin).pointee.spareCount == 0)
        #expect(Int((consumer.bins + bin).pointee.count) == 2 && Int((consumer.bins + bin).pointee.limit) == batch / 2)
        #expect(totals.bytes == UInt64(pool.depotBlocks(bin: bin) * 64) && totals.bytes > 0)
        #expect(poolWork(pool) == before) // nothing coalesced
        expectInvariants(pool)

        // The producer, its bin empty, takes the newest batch back whole: no split.
        while let (block, tag) = producer.pop(bin) { tag.pointee = Tag.used | UInt8(code); blocks.append(block) }
        let onShelf = Int(pool.shelf(bin).pointee.count)
        let again = try #require(pool.refill(producer, code: code))
        #expect(pool.classify(again) == .allocated(order: code))
        #expect(Int(pool.shelf(bin).pointee.count) == onShelf - 1)
        #expect(Int((producer.bins + bin).pointee.count) == batch / 2 - 1)
        #expect(pool.depotTotals().takes == 1)
        #expect(poolWork(pool) == before)
        expectInvariants(pool)

        // The other batches go to the pool from the shelf, and the consumer's bin with them: they
        // coalesce.
        #expect(pool.drainDepot() == batch + batch / 2 && onShelf == 3)
        #expect(pool.depotTotals().bytes == 0)
        buddy_thread_set_cache(UnsafeMutableRawPointer(consumer))
        pool.flushAll(consumer)
        #expect((consumer.bins + bin).pointee.spare == nil && (consumer.bins + bin).pointee.count == 0)
        #expect(poolWork(pool) > before)
        expectInvariants(pool)
        // The consumer allocates this size: its bin's whole limit comes back with the refill.
        let own = try #require(pool.refill(consumer, code: code))
        #expect(Int((consumer.bins + bin).pointee.limit) == batch)
        #expect(pool.release(own) == .released)
        expectInvariants(pool)
        buddy_thread_set_cache(UnsafeMutableRawPointer(producer))

        pool.retire(producer)
        buddy_thread_set_cache(UnsafeMutableRawPointer(consumer))
        pool.retire(consumer)
        expectInvariants(pool)
    }

    /// A bin keeps its overflow as a spare batch when the thread allocated its size since the
    /// bin's last overflow (its use swings around the limit: the spare comes back to it without
    /// the depot), and sends it to the depot, with the spare before it, when it did not (a
    /// consumer, or the free phase of a batch: the producers get it while it is warm).
    @Test func aBinKeepsASpareOnlyWhileItsThreadAllocatesItsSize() throws {
        let arena = Arena(size: 1 << 20)
        let pool = try makeDepotPool(arena)
        defer { closeDepotPool(pool) }
        let cache = try #require(pool.threadCache())
        let code = 2, bin = 2 // 64-byte blocks
        let batch = Int(pool.shelf(bin).pointee.batchBlocks)
        let slot = cache.bins + bin
        // As malloc does it: each block handed out counted as an allocation of its code.
        func allocate() throws -> UnsafeMutableRawPointer {
            cache.pointee.calls.allocated.add(code)
            if let (block, tag) = cache.pop(bin) { tag.pointee = Tag.used | UInt8(code); return block }
            return try #require(pool.refill(cache, code: code))
        }
        func free(_ block: UnsafeMutableRawPointer) {
            cache.pointee.calls.freed.add(code)
            if cache.push(block, bin, tag: pool.tagAddress(block)) { #expect(pool.stashBatch(cache, bin: bin)) }
        }
        // Enough blocks for three overflows, and an empty bin to start from.
        var blocks: [UnsafeMutableRawPointer] = []
        for _ in 0..<(3 * batch + 2) { blocks.append(try allocate()) }
        while slot.pointee.count > 0 { blocks.append(try allocate()) }
        // The first overflow follows allocations: a spare, nothing on the shelf.
        for block in blocks[0...batch] { free(block) }
        #expect(Int(slot.pointee.spareCount) == batch && pool.depotTotals().puts == 0)
        // The second follows none: the batch and the spare go to the depot. The thread freed
        // less than it allocated of this size (it frees its own batch): its bin keeps its whole
        // limit (a consumer's would drop to half, Depot.consumerLimit).
        for block in blocks[(batch + 1)...(2 * batch)] { free(block) }
        #expect(slot.pointee.spare == nil && slot.pointee.spareCount == 0 && pool.depotTotals().puts == 2)
        #expect(Int(slot.pointee.count) == 1 && Int(slot.pointee.limit) == batch)
        expectInvariants(pool)
        // One allocation (the bin's block) and its free, then frees up to the third overflow:
        // a spare again, the shelf as it was.
        free(try allocate())
        for block in blocks[(2 * batch + 1)...(3 * batch)] { free(block) }
        #expect(Int(slot.pointee.spareCount) == batch && pool.depotTotals().puts == 2)
        expectInvariants(pool)
        for block in blocks[(3 * batch + 1)...] { free(block) }
        #expect(pool.drainDepot() == 2 * batch)
        pool.retire(cache)
        #expect(pool.usage.allocatedBytes == 0)
        expectInvariants(pool)
    }

    /// A shelf that overflows after a bin found it empty doubles its capacity; without such a
    /// miss a full shelf turns batches away (they go to the pool); and the invariant sees a
    /// batch whose links were overwritten after their free.
    @Test func aShelfGrowsAfterAMissTurnsBatchesAwayOtherwiseAndABrokenBatchIsSeen() throws {
        let arena = Arena(size: 4 << 20)
        let pool = try makeDepotPool(arena)
        defer { closeDepotPool(pool) }
        let cache = try #require(pool.threadCache())
        let code = 11, bin = 11 // 32 KiB blocks: a bin of one, batches of one
        let shelf = pool.shelf(bin)
        let capacity = Int(shelf.pointee.capacity)
        #expect(shelf.pointee.batchBlocks == 1)
        #expect(capacity * 32 * 1024 <= max(Depot.bytesPerShelf, 2 * 32 * 1024))
        #expect(Int(shelf.pointee.slotCount) >= 2 * capacity)

        // As free does it: a push over the bin's limit (one block) makes a batch of one, which
        // goes to the depot (the thread allocated nothing since the bin's last overflow: no
        // spare), or to the pool when the shelf is full (nothing was reused from it yet: it does
        // not grow). (The test's refills are not malloc calls: no allocation is counted.)
        var blocks: [UnsafeMutableRawPointer] = []
        for _ in 0..<(capacity + 8) { blocks.append(try #require(pool.refill(cache, code: code))) }
        #expect(shelf.pointee.missed != 0)
        func freeAll() {
            for block in blocks {
                let tag = pool.tagAddress(block) // tagged used: the push marks it (CacheMark)
                if cache.push(block, bin, tag: tag) { #expect(pool.stashBatch(cache, bin: bin)) }
            }
            blocks.removeAll()
        }
        freeAll()
        // capacity + 8 pushes: capacity + 7 overflows, capacity onto the shelf, 7 to the pool.
        #expect(Int(shelf.pointee.count) == capacity && Int(shelf.pointee.capacity) == capacity)
        #expect(pool.depotTotals().puts == UInt64(capacity) && pool.depotTotals().full == 7)
        #expect((cache.bins + bin).pointee.count == 1 && (cache.bins + bin).pointee.spareCount == 0)
        expectInvariants(pool)

        // The program takes it all back and more (a miss), then frees it all again: the shelf
        // was reused and ran dry, so the first batch that finds it full doubles its capacity.
        for _ in 0..<(capacity + 10) {
            if let (block, tag) = cache.pop(bin) { tag.pointee = Tag.used | UInt8(code); blocks.append(block) }
            else { blocks.append(try #require(pool.refill(cache, code: code))) }
        }
        #expect(shelf.pointee.count == 0 && shelf.pointee.missed != 0)
        freeAll()
        #expect(Int(shelf.pointee.capacity) == 2 * capacity && shelf.pointee.grown == 1 && shelf.pointee.missed == 0)
        #expect(Int(shelf.pointee.count) == capacity + 9 && pool.depotTotals().full == 7)
        expectInvariants(pool)

        // No miss since: once full, the shelf turns batches away, to the pool.
        let room = 2 * capacity - Int(shelf.pointee.count)
        for _ in 0..<(room + 3) {
            let block = try #require(pool.allocate(order: code))
            let tag = pool.tagAddress(block) // tagged used: the push marks it (CacheMark)
            if cache.push(block, bin, tag: tag) { #expect(pool.stashBatch(cache, bin: bin)) }
        }
        #expect(Int(shelf.pointee.count) == 2 * capacity && Int(shelf.pointee.capacity) == 2 * capacity)
        #expect(pool.depotTotals().full == 10)
        expectInvariants(pool)

        let head = try #require(shelf.pointee.slots[shelf.pointee.slot(0)])
        let saved = head.load(fromByteOffset: 8, as: UInt.self)
        head.storeBytes(of: 0x4141_4141_4141_4141, toByteOffset: 8, as: UInt.self)
        #expect(pool.checkInvariantsWithCaches() != nil)
        head.storeBytes(of: saved, toByteOffset: 8, as: UInt.self)
        expectInvariants(pool)
        #expect(pool.drainDepot() == 2 * capacity)
        pool.retire(cache)
        #expect(pool.usage.allocatedBytes == 0)
        expectInvariants(pool)
    }

    /// Fills shelf `bin` (of `code`) with `batches` batches through the cache's bin, as frees do.
    private func fillShelf(_ pool: BuddyEngine, _ cache: UnsafeMutablePointer<ThreadCache>, code: Int, bin: Int, batches: Int) throws {
        let shelf = pool.shelf(bin)
        while Int(shelf.pointee.count) < batches {
            let block = try #require(pool.allocate(order: code))
            let tag = pool.tagAddress(block) // tagged used: the push marks it (CacheMark)
            cache.pointee.calls.freed.add(code) // as free counts it
            if cache.push(block, bin, tag: tag) { #expect(pool.stashBatch(cache, bin: bin)) }
        }
    }

    /// Decay gives the pool 3/4 of what a shelf held all through a period (its low-water mark),
    /// the oldest batches first; the next period starts from what is left.
    @Test func decayGivesBackWhatSatUnused() throws {
        let arena = Arena(size: 4 << 20)
        let pool = try makeDepotPool(arena)
        defer { closeDepotPool(pool) }
        let cache = try #require(pool.threadCache())
        let code = 2, bin = 2
        let shelf = pool.shelf(bin)
        try fillShelf(pool, cache, code: code, bin: bin, batches: 8)
        pool.flushAll(cache) // the bin and its spare: only the shelf holds blocks now
        let newest = shelf.pointee.slots[shelf.pointee.slot(7)]
        // The first pass measured nothing yet (the low-water mark starts at 0).
        #expect(pool.decayDepot() == 0 && shelf.pointee.lowWater == 8)
        expectInvariants(pool)
        // A bin takes one batch during the period: 7 sat unused, 6 (3/4, rounded up) go back,
        // the oldest first.
        #expect(pool.takeSpareOrBatch(cache, bin: bin) && shelf.pointee.lowWater == 7)
        let kept = shelf.pointee.slots[shelf.pointee.slot(6)]
        #expect(kept != newest)
        // (The first batch is a whole one, the rest half batches: the cache only frees.)
        #expect(pool.decayDepot() == 6 * Int(shelf.pointee.batchBlocks) / 2 + Int(shelf.pointee.batchBlocks) / 2)
        #expect(shelf.pointee.count == 1 && shelf.pointee.decayed == 6 && shelf.pointee.lowWater == 1)
        #expect(shelf.pointee.slots[shelf.pointee.slot(0)] == kept)
        expectInvariants(pool)
        pool.flushAll(cache)
        pool.drainDepot()
        pool.retire(cache)
        #expect(pool.usage.allocatedBytes == 0)
        expectInvariants(pool)
    }

    /// Before the pool touches new pages, the fullest shelf gives back its oldest quarter at a
    /// time: here one quarter is enough, the rest stays on the shelf.
    @Test func aRequestThePoolCannotServeDrainsAQuarterAtATime() throws {
        let arena = Arena(size: 1 << 20)
        let pool = try makeDepotPool(arena)
        defer { closeDepotPool(pool) }
        let cache = try #require(pool.threadCache())
        let code = 2, bin = 2
        let shelf = pool.shelf(bin)
        try fillShelf(pool, cache, code: code, bin: bin, batches: 8)
        let count = Int(shelf.pointee.count)
        // A request of another size (a batch of its own size would be taken whole, not drained).
        let other = code + 1
        let block = try #require(pool.allocateDrainingDepot(code: other))
        #expect(Int(shelf.pointee.count) == count - max(1, count / 4))
        pool.releaseBlock(UInt(bitPattern: block), order: other, segment: SegmentMap.lookup(UInt(bitPattern: block))!)
        expectInvariants(pool)
        pool.flushAll(cache)
        pool.drainDepot()
        pool.retire(cache)
        #expect(pool.usage.allocatedBytes == 0)
        expectInvariants(pool)
    }
}
