#if !BUDDY_ONE_MODULE
import BuddyEngine
#endif
import CBuddySupport

/// The depot: full magazines between the thread caches and the pool (Bonwick's magazine layer,
/// the shape of tcmalloc's transfer cache). A bin that overflows cuts off all its blocks but the
/// newest as one linked batch and keeps it as its spare (Bonwick's "previous magazine"); the
/// spare it had before goes to the depot's shelf of that allocation code. (A bin whose thread
/// allocated nothing of its code since its last overflow keeps no spare: stashBatch.) A bin
/// that runs dry takes its spare back first, else a whole batch from the shelf. So a thread
/// whose bin swings around its limit gets its own blocks back (they stay on its cache lines, and on its order-map lines), and only
/// a thread that frees more than it allocates (a consumer) feeds the depot. The blocks keep their
/// used tags, cache marks and encoded links (FreeLinks: one key per process), so a batch moves between
/// threads with two stores under the shelf's own lock, and is neither coalesced nor split on the
/// way: a producer's blocks reach its consumer's frees, and come back to the producer, without
/// the pool lock. Only when a shelf is full (or empty) does a bin fall through to the pool.
///
/// Each shelf has its own lock (one per code: no lock is shared by all threads on the steady
/// path), held for a push or a pop of one pointer. The depot keeps a bounded amount of memory
/// from coalescing, sized to the demand it sees (issue 12: a program that builds and frees
/// trees or batches of thousands of blocks overflowed fixed shelves of 512 KiB into the pool,
/// which coalesced every block and split it again for the next tree: `trees` spent a third of
/// its time in the engine). Two rules, borrowed from tcmalloc and jemalloc:
///
///   - Growth on misses (tcmalloc's transfer cache grows a size class's capacity when it
///     misses): a shelf starts with `bytesPerShelf` worth of batches; a batch that finds it full
///     after a bin found it empty, and after bins took a whole capacity's worth since it was last
///     full (it was reused, ran dry and then overflowed: the program's working set of that size
///     swings over more than the shelf holds), doubles its capacity, up to `maxBytesPerShelf`
///     (its slots). A size freed in one burst and not reused does not grow its shelf.
///   - Decay of what sat unused (jemalloc's tcache GC by low-water mark): every decay period
///     (BUDDY_RELEASE_DELAY, at least 1 ms) the thread that notices it is due gives the pool 3/4
///     of the fewest batches the shelf held during the period (batches no one needed in that
///     time), oldest first; there they coalesce and the release policy may give their pages back.
///
/// The depot never makes the pool larger: before the pool maps a segment, shelves are drained
/// (largest first, retrying the allocation after each), so what it holds is memory the program
/// freed and that the pool would otherwise hold as free blocks; malloc_trim drains it all.
///
/// Invariants (checkInvariantsWithCaches):
///
///     0 <= shelf.count <= shelf.capacity <= shelf.slotCount <= Depot.maxBatches
///     shelf.slotCount is a power of two; the batches are slots[(first + i) mod slotCount], i < count
///     each batch on shelf s is a list of exactly batchBlocks(s) blocks tagged used | code(s),
///         each with the cache mark (Segment.swift)
///     a bin's spare is nil, or a list of exactly batchBlocks blocks of its code
///     blocks with the cache mark == blocks on all bins and spares + batchBlocks x batches, over all shelves
struct DepotShelf {
    var lock = buddy_mutex()
    /// Batches on the shelf now, and at most for now (grows on misses, see above).
    var count: Int32 = 0
    var capacity: Int32 = 0
    /// The most blocks in a batch: the limit of the bin of this code (every cache's bins have
    /// the same limits), so an overflowing bin's blocks but the newest are one batch, and a batch
    /// fills an empty bin. A consumer's bin overflows at half of it (consumerLimit), so batches
    /// carry their own counts.
    var batchBlocks: Int32 = 0
    /// Blocks in all the shelf's batches (written under the lock, read without it: statistics).
    var blocks: Int32 = 0
    /// The slots (a power of two): the most batches the shelf may ever hold.
    var slotCount: Int32 = 0
    /// The ring's oldest batch: slots[first]; the newest, the one a bin takes, is
    /// slots[(first + count - 1) mod slotCount]. Decay takes the oldest.
    var first: Int32 = 0
    /// The fewest batches on the shelf since the last decay pass (under the lock).
    var lowWater: Int32 = 0
    /// Non-zero when a bin found the shelf empty since its capacity last grew: written without
    /// the lock (a flag: the race between two setters is harmless), cleared under it.
    var missed: Int32 = 0
    /// `takes` when a batch last found the shelf full: growth needs a whole capacity's worth of
    /// batches taken since (the shelf's contents were reused, not only parked).
    var takesAtFull: UInt64 = 0
    /// Batches put on the shelf and taken from it, and batches that found it full (those went
    /// to the pool): the report's depot line. Updated under the shelf's lock.
    var puts: UInt64 = 0
    var takes: UInt64 = 0
    var full: UInt64 = 0
    /// Times the capacity doubled, and batches decay gave to the pool (under the lock; tests).
    var grown: UInt64 = 0
    var decayed: UInt64 = 0
    /// The batches' first blocks (`slotCount` slots, after the shelves' array), and their
    /// blocks (`counts[i]` for `slots[i]`, after all the slots).
    var slots: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    var counts: UnsafeMutablePointer<Int32>

    /// A shelf's stride: cache lines of its own (its lock is written by every thread that
    /// exchanges a batch of this code; a neighbour's lock must not share the line).
    static let stride = (MemoryLayout<DepotShelf>.stride + 63) & ~63

    /// The slot of the i-th batch from the oldest.
    @inline(__always) func slot(_ i: Int32) -> Int { Int((first &+ i) & (slotCount &- 1)) }
}

enum Depot {
    /// A shelf's first capacity: at most this many batches and bytes (a producer/consumer pair
    /// of threads has many batches in flight: xmalloc-test with 64 batches a shelf took 8.7 s,
    /// with 256 and 512 KiB 6.2-7.1 s; glibc 6.5 s).
    static let initialBatches = 256
    static let bytesPerShelf = 512 * 1024
    /// How far a shelf's capacity may grow: its slots (virtual memory; only the slots used are
    /// touched), at most this many batches and this many bytes. 16 MiB holds the 131,071 nodes
    /// of a binary tree of depth 16 (32-byte blocks), or 10,000 blocks of 1 KiB.
    static let maxBatches = 16384
    static let maxBytesPerShelf = 16 << 20
    /// The shortest decay period (BUDDY_RELEASE_DELAY 0 would otherwise scan at every flush).
    static let minimumDecayNs: UInt64 = 1_000_000

    /// The limit of a consumer's bin (stashBatch), for a bin whose limit is `full`: its batches
    /// reach the producers twice as often, and it holds half the memory back from them. (A
    /// quarter of the limit gained the pipeline as much at 64 threads and lost 14% at 4.)
    @inline(__always) static func consumerLimit(_ full: Int32) -> Int32 { max(1, full / 2) }

    /// Maps the depot for `pool`'s thread caches: one shelf per bin (bins are numbered alike in
    /// every cache), with batch sizes from the bins' limits. False when the OS refuses memory.
    static func create(_ pool: BuddyEngine) -> Bool {
        let bins = pool.binsPerCache
        let page = buddy_os_page_size()
        let shelvesBytes = bins * DepotShelf.stride
        var totalSlots = 0
        for bin in 0..<bins { totalSlots += slotCount(pool, bin: bin) }
        let slotsBytes = totalSlots * MemoryLayout<UnsafeMutableRawPointer?>.stride
        let bytes = (shelvesBytes + slotsBytes + totalSlots * MemoryLayout<Int32>.stride + page - 1) & ~(page - 1)
        guard let memory = buddy_os_map_aligned(bytes, page) else { return false }
        var slots = (memory + shelvesBytes).bindMemory(to: UnsafeMutableRawPointer?.self, capacity: totalSlots)
        var counts = (memory + shelvesBytes + slotsBytes).bindMemory(to: Int32.self, capacity: totalSlots)
        for bin in 0..<bins {
            let batch = max(1, pool.binLimit(bin))
            let batchBytes = batch * pool.size(ofCode: pool.codeOfBin(bin))
            let slotCount = slotCount(pool, bin: bin)
            let capacity = min(initialBatches, slotCount, max(2, bytesPerShelf / batchBytes))
            (memory + bin * DepotShelf.stride).bindMemory(to: DepotShelf.self, capacity: 1).initialize(to: DepotShelf(
                count: 0, capacity: Int32(capacity), batchBlocks: Int32(batch), slotCount: Int32(slotCount), slots: slots, counts: counts))
            slots += slotCount
            counts += slotCount
        }
        pool.process.pointee.depot = memory
        pool.process.pointee.depotShelves = bins
        pool.process.pointee.depotMappedBytes = bytes
        let period = UInt64(max(0, pool.config.releaseDelay) * 1e9)
        pool.process.pointee.depotDecayPeriodNs = max(period, minimumDecayNs)
        pool.process.pointee.depotDecayNs = buddy_os_monotonic_ns()
        return true
    }

    /// Slots of shelf `bin`: maxBytesPerShelf worth of batches, at most maxBatches, at least 2,
    /// rounded down to a power of two (the ring's index is a mask).
    static func slotCount(_ pool: BuddyEngine, bin: Int) -> Int {
        let batchBytes = max(1, pool.binLimit(bin) / 2) * pool.size(ofCode: pool.codeOfBin(bin))
        let wanted = min(maxBatches, max(2, maxBytesPerShelf / batchBytes))
        return 1 << (Int.bitWidth - 1 - wanted.leadingZeroBitCount)
    }
}

extension BuddyEngine {
    /// Shelf `bin` of the depot (the caller knows the depot exists).
    @inline(__always) func shelf(_ bin: Int) -> UnsafeMutablePointer<DepotShelf> {
        (process.pointee.depot.unsafelyUnwrapped + bin &* DepotShelf.stride).assumingMemoryBound(to: DepotShelf.self)
    }

    /// A full bin's bottom `batchBlocks` blocks, cut off as one batch: the batch's first block,
    /// or nil when the bin holds too few or a link does not decode (the caller then flushes to
    /// the pool, whose pops check every link again). The bin keeps its newest blocks, the ones
    /// above the batch: one at an overflow (batchBlocks is the bin's limit), so the cut follows
    /// one link, checked as a pop checks it. (Cutting the top half walked 64 links through
    /// blocks the program had long left: 5.6% of `trees`, 3% of xmalloc-test.) A bin's list ends
    /// in a nil link, so the batch is the rest of it.
    private func cutBatch(_ cache: UnsafeMutablePointer<ThreadCache>, bin: Int, blocks batch: Int) -> UnsafeMutableRawPointer? {
        let slot = cache.bins + bin
        let keep = Int(slot.pointee.count) &- batch
        guard keep >= 1, let head = slot.pointee.head else { return nil }
        let key = cache.pointee.linkKey
        var last = head
        for _ in 1..<keep {
            let next = FreeLinks.decode(last.load(as: UInt.self), key: key)
            let tag = FreeLinks.decode(last.load(fromByteOffset: MemoryLayout<UInt>.stride, as: UInt.self), key: key)
            guard FreeLinks.valid(next: next, tag: tag), next != 0 else { return nil }
            last = UnsafeMutableRawPointer(bitPattern: next).unsafelyUnwrapped
        }
        let rest = FreeLinks.decode(last.load(as: UInt.self), key: key)
        let tag = FreeLinks.decode(last.load(fromByteOffset: MemoryLayout<UInt>.stride, as: UInt.self), key: key)
        guard FreeLinks.valid(next: rest, tag: tag), rest != 0 else { return nil }
        last.storeBytes(of: FreeLinks.encode(0, key: key), as: UInt.self)
        slot.pointee.count = Int32(keep)
        return UnsafeMutableRawPointer(bitPattern: rest)
    }

    /// A full bin's blocks but its newest become its spare batch; the spare it had goes to the
    /// depot (or, when the depot's shelf is full, to the pool). False when the bin could not be
    /// cut (the caller flushes it to the pool).
    ///
    /// A bin that allocated nothing since its last overflow (a consumer's, or a thread's freeing
    /// a batch it built) keeps no spare: the batch goes to the depot at once, after the spare
    /// before it. A spare serves a thread whose bin swings around its limit; a consumer's would
    /// only hold a bin's worth of blocks back from the producers until they are cold.
    ///
    /// A consumer's full bin would too (the scaling benchmark's pipeline: 32 consumers x 14
    /// sizes x 127 blocks, 16 MB cached for 2 MB of messages), so a bin whose thread has also
    /// freed more than twice what it allocated of this code (it frees what other threads
    /// allocate) holds `consumerLimit` until the thread allocates this size again
    /// (takeSpareOrBatch, or its next overflow). A thread freeing its own batch has freed about
    /// what it allocated, and keeps its whole limit (halving it cost smallbatch's shape 6% more
    /// instructions: twice the batches).
    func stashBatch(_ cache: UnsafeMutablePointer<ThreadCache>, bin: Int) -> Bool {
        guard process.pointee.depot != nil else { return false }
        let slot = cache.bins + bin
        let batch = Int(slot.pointee.count) &- 1
        guard let head = cutBatch(cache, bin: bin, blocks: batch) else { return false }
        let code = codeOfBin(bin)
        let allocatedInAll = cache.pointee.calls.allocated.load(code)
        let allocated = UInt32(truncatingIfNeeded: allocatedInAll)
        let freeOnly = allocated == slot.pointee.allocatedAtOverflow
        slot.pointee.allocatedAtOverflow = allocated
        if let spare = slot.pointee.spare { shelve(spare, blocks: Int(slot.pointee.spareCount), bin: bin, code: code) }
        if freeOnly { shelve(head, blocks: batch, bin: bin, code: code) }
        slot.pointee.spare = freeOnly ? nil : head
        slot.pointee.spareCount = freeOnly ? 0 : Int32(batch)
        let full = shelf(bin).pointee.batchBlocks
        let consumer = freeOnly && cache.pointee.calls.freed.load(code) > 2 &* allocatedInAll
        slot.pointee.limit = consumer ? Depot.consumerLimit(full) : full
        return true
    }

    /// A batch onto its shelf, or to the pool when the shelf is full.
    private func shelve(_ head: UnsafeMutableRawPointer, blocks: Int, bin: Int, code: Int) {
        if !putBatch(head, blocks: blocks, bin: bin) { releaseBatch(head, blocks: blocks, code: code) }
    }

    /// The spare batch of a bin goes to the pool (flushAll).
    func releaseSpare(_ cache: UnsafeMutablePointer<ThreadCache>, bin: Int) {
        let slot = cache.bins + bin
        guard let spare = slot.pointee.spare else { return }
        let blocks = Int(slot.pointee.spareCount)
        slot.pointee.spare = nil
        slot.pointee.spareCount = 0
        releaseBatch(spare, blocks: blocks, code: cache.code(ofBin: bin))
    }

    /// A batch of `blocks` blocks onto its shelf: false when the shelf is full (and may not grow).
    private func putBatch(_ head: UnsafeMutableRawPointer, blocks: Int, bin: Int) -> Bool {
        let shelf = self.shelf(bin)
        buddy_lock(&shelf.pointee.lock)
        if shelf.pointee.count == shelf.pointee.capacity {
            // Full after a bin found it empty, with all it held reused since it was last full:
            // the demand swings over more than it holds.
            let reused = shelf.pointee.takes &- shelf.pointee.takesAtFull >= UInt64(shelf.pointee.capacity)
            shelf.pointee.takesAtFull = shelf.pointee.takes
            guard reused, buddy_atomic_load_i32_relaxed(&shelf.pointee.missed) != 0, shelf.pointee.capacity < shelf.pointee.slotCount else {
                buddy_atomic_store_u64_relaxed(&shelf.pointee.full, shelf.pointee.full &+ 1)
                buddy_unlock(&shelf.pointee.lock)
                return false
            }
            shelf.pointee.capacity = min(shelf.pointee.capacity &* 2, shelf.pointee.slotCount)
            buddy_atomic_store_i32_relaxed(&shelf.pointee.missed, 0)
            shelf.pointee.grown &+= 1
        }
        let i = shelf.pointee.slot(shelf.pointee.count)
        shelf.pointee.slots[i] = head
        shelf.pointee.counts[i] = Int32(blocks)
        buddy_atomic_store_i32_relaxed(&shelf.pointee.blocks, shelf.pointee.blocks &+ Int32(blocks))
        buddy_atomic_store_i32_relaxed(&shelf.pointee.count, shelf.pointee.count &+ 1)
        buddy_atomic_store_u64_relaxed(&shelf.pointee.puts, shelf.pointee.puts &+ 1)
        buddy_unlock(&shelf.pointee.lock)
        return true
    }

    /// An empty bin takes its spare batch back, else a batch from the depot: true when it did.
    /// (The thread allocates this size: its bin gets its whole limit back, see stashBatch.)
    func takeSpareOrBatch(_ cache: UnsafeMutablePointer<ThreadCache>, bin: Int) -> Bool {
        let slot = cache.bins + bin
        if process.pointee.depot != nil { slot.pointee.limit = shelf(bin).pointee.batchBlocks }
        if let spare = slot.pointee.spare {
            slot.pointee.head = spare
            slot.pointee.count = slot.pointee.spareCount
            slot.pointee.spare = nil
            slot.pointee.spareCount = 0
            return true
        }
        return takeBatch(cache, bin: bin)
    }

    /// An empty bin takes a batch from the depot: true when it did (the bin then holds it).
    private func takeBatch(_ cache: UnsafeMutablePointer<ThreadCache>, bin: Int) -> Bool {
        guard process.pointee.depot != nil else { return false }
        let shelf = self.shelf(bin)
        // A look without the lock first: an empty shelf (the common case for a thread that
        // allocates alone) costs no atomic operation, and no store once its miss is noted.
        guard buddy_atomic_load_i32_relaxed(&shelf.pointee.count) > 0 else {
            noteMiss(shelf)
            return false
        }
        buddy_lock(&shelf.pointee.lock)
        guard let (head, blocks) = popNewest(shelf) else {
            buddy_unlock(&shelf.pointee.lock)
            noteMiss(shelf)
            return false
        }
        buddy_atomic_store_u64_relaxed(&shelf.pointee.takes, shelf.pointee.takes &+ 1)
        buddy_unlock(&shelf.pointee.lock)
        let slot = cache.bins + bin
        slot.pointee.head = head
        slot.pointee.count = Int32(blocks)
        return true
    }

    @inline(__always) private func noteMiss(_ shelf: UnsafeMutablePointer<DepotShelf>) {
        if buddy_atomic_load_i32_relaxed(&shelf.pointee.missed) == 0 { buddy_atomic_store_i32_relaxed(&shelf.pointee.missed, 1) }
    }

    /// The newest batch off `shelf` and its blocks (nil when empty); the caller holds the
    /// shelf's lock.
    @inline(__always) private func popNewest(_ shelf: UnsafeMutablePointer<DepotShelf>) -> (UnsafeMutableRawPointer, Int)? {
        guard shelf.pointee.count > 0 else { return nil }
        let count = shelf.pointee.count &- 1
        buddy_atomic_store_i32_relaxed(&shelf.pointee.count, count)
        if count < shelf.pointee.lowWater { shelf.pointee.lowWater = count }
        return takeSlot(shelf, shelf.pointee.slot(count))
    }

    /// Slot `i`'s batch and its blocks, counted off the shelf's blocks (the lock held).
    @inline(__always) private func takeSlot(_ shelf: UnsafeMutablePointer<DepotShelf>, _ i: Int) -> (UnsafeMutableRawPointer, Int) {
        let blocks = shelf.pointee.counts[i]
        buddy_atomic_store_i32_relaxed(&shelf.pointee.blocks, shelf.pointee.blocks &- blocks)
        return (shelf.pointee.slots[i].unsafelyUnwrapped, Int(blocks))
    }

    /// Takes the newest batch off shelf `bin` and its blocks (nil when empty), for the pool.
    private func takeNewest(_ bin: Int) -> (UnsafeMutableRawPointer, Int)? {
        let shelf = self.shelf(bin)
        buddy_lock(&shelf.pointee.lock)
        defer { buddy_unlock(&shelf.pointee.lock) }
        return popNewest(shelf)
    }

    /// Every batch of shelf `bin` goes back to the pool (lock not held). Returns the blocks.
    private func drainShelf(_ bin: Int) -> Int {
        let shelf = self.shelf(bin)
        guard buddy_atomic_load_i32_relaxed(&shelf.pointee.count) > 0 else { return 0 }
        let code = codeOfBin(bin)
        var released = 0
        while let (head, blocks) = takeNewest(bin) {
            released &+= releaseBatch(head, blocks: blocks, code: code)
        }
        return released
    }

    /// Every batch on every shelf goes back to the pool, where its blocks coalesce (lock not
    /// held: it takes the shelves' locks, then the pool's). Returns the blocks released.
    @discardableResult
    func drainDepot() -> Int {
        guard let _ = processIfAny?.pointee.depot else { return 0 }
        var released = 0
        for bin in 0..<process.pointee.depotShelves { released &+= drainShelf(bin) }
        return released
    }

    /// Before the pool touches new pages (lock not held): the oldest quarter (at least one
    /// batch) of the shelf holding the most bytes goes back to the pool, then the allocation of
    /// `code` is tried from free blocks alone, and again, until it succeeds (the block is
    /// returned) or the depot is empty (nil). So what the program freed in one size serves a
    /// request of another before the pool's resident memory grows, and a program whose sizes
    /// change keeps most of its other sizes' batches when a part was enough.
    func allocateDrainingDepot(code: Int, dirtyBytes: UnsafeMutablePointer<Int>? = nil) -> UnsafeMutableRawPointer? {
        guard let process = processIfAny, process.pointee.depot != nil else { return nil }
        while true {
            var largest = -1
            var largestBytes = 0
            // (Not the request's own shelf: a batch there is taken whole by the refill, never
            // coalesced to be split again.)
            for bin in 0..<process.pointee.depotShelves where codeOfBin(bin) != code {
                let bytes = depotBlocks(bin: bin) &* size(ofCode: codeOfBin(bin))
                if bytes > largestBytes { largest = bin; largestBytes = bytes }
            }
            if largest < 0 { return nil }
            let shelf = self.shelf(largest)
            let shelfCode = codeOfBin(largest)
            var batches = max(1, buddy_atomic_load_i32_relaxed(&shelf.pointee.count) / 4)
            while batches > 0, let (head, blocks) = takeOldest(largest) {
                releaseBatch(head, blocks: blocks, code: shelfCode)
                batches &-= 1
            }
            let locked = lock()
            let block = allocate(code: code, mayGrow: false, mayCarve: false, dirtyBytes: dirtyBytes)
            unlock(locked)
            if block != nil { return block }
        }
    }

    /// Takes the oldest batch off shelf `bin` and its blocks (nil when empty), for the pool.
    private func takeOldest(_ bin: Int) -> (UnsafeMutableRawPointer, Int)? {
        let shelf = self.shelf(bin)
        buddy_lock(&shelf.pointee.lock)
        defer { buddy_unlock(&shelf.pointee.lock) }
        guard shelf.pointee.count > 0 else { return nil }
        let oldest = takeSlot(shelf, shelf.pointee.slot(0))
        shelf.pointee.first = (shelf.pointee.first &+ 1) & (shelf.pointee.slotCount &- 1)
        let count = shelf.pointee.count &- 1
        buddy_atomic_store_i32_relaxed(&shelf.pointee.count, count)
        if count < shelf.pointee.lowWater { shelf.pointee.lowWater = count }
        return oldest
    }

    /// The decay pass when its period has passed (`now`: the monotonic clock; lock not held):
    /// one thread wins the period, and gives the pool 3/4 of each shelf's low-water mark, oldest
    /// batches first (see the top of this file).
    @inline(__always) func decayDepotIfDue(now: UInt64) {
        guard let process = processIfAny, process.pointee.depot != nil else { return }
        let last = buddy_atomic_load_u64_relaxed(&process.pointee.depotDecayNs)
        if now &- last < process.pointee.depotDecayPeriodNs { return }
        if buddy_atomic_cas_u64_relaxed(&process.pointee.depotDecayNs, last, now) == 0 { return }
        decayDepot()
    }

    /// One decay pass (tests call it directly). Returns the blocks given to the pool.
    @discardableResult
    @inline(never)
    func decayDepot() -> Int {
        guard let process = processIfAny, process.pointee.depot != nil else { return 0 }
        var released = 0
        for bin in 0..<process.pointee.depotShelves {
            let shelf = self.shelf(bin)
            if buddy_atomic_load_i32_relaxed(&shelf.pointee.count) == 0 && shelf.pointee.lowWater == 0 { continue }
            let code = codeOfBin(bin)
            buddy_lock(&shelf.pointee.lock)
            var excess = (shelf.pointee.lowWater &* 3 &+ 3) / 4
            buddy_unlock(&shelf.pointee.lock)
            var batches: UInt64 = 0
            while excess > 0, let (head, blocks) = takeOldest(bin) {
                released &+= releaseBatch(head, blocks: blocks, code: code)
                batches &+= 1
                excess &-= 1
            }
            buddy_lock(&shelf.pointee.lock)
            shelf.pointee.decayed &+= batches
            shelf.pointee.lowWater = shelf.pointee.count
            buddy_unlock(&shelf.pointee.lock)
        }
        return released
    }

    /// A batch's blocks go to the pool under its lock, each link checked before it is followed.
    @discardableResult
    private func releaseBatch(_ head: UnsafeMutableRawPointer?, blocks: Int, code: Int) -> Int {
        let key = process.pointee.linkKey
        let expected = Tag.used | UInt8(truncatingIfNeeded: code)
        let locked = lock()
        defer { unlock(locked) }
        var block = head
        var released = 0
        while let b = block, released < blocks {
            let next = FreeLinks.decode(b.load(as: UInt.self), key: key)
            let tag = FreeLinks.decode(b.load(fromByteOffset: MemoryLayout<UInt>.stride, as: UInt.self), key: key)
            let address = UInt(bitPattern: b)
            guard FreeLinks.valid(next: next, tag: tag), let segment = self.segment(containing: address),
                  UInt(bitPattern: segment.pointee.orderMap + slot(address, in: segment)) == tag,
                  segment.pointee.orderMap[slot(address, in: segment)] == expected else {
                // The rest of the batch is abandoned (free to the program, never handed out).
                unlock(locked)
                countMisuse(.heapCorruption)
                reportCorruption("malloc()", b, strategy: config.errorStrategy)
                _ = lock()
                return released
            }
            // Out of the cache: no mark (a slab object's free link is its first word only).
            CacheMark.clear(b)
            release(address, code: code, segment: segment)
            released &+= 1
            block = UnsafeMutableRawPointer(bitPattern: next)
        }
        return released
    }

    /// Blocks on the depot's shelf of bin `bin` (0 without a depot), for statistics: read
    /// without the shelf's lock (a signal handler's snapshot may run).
    func depotBlocks(bin: Int) -> Int {
        guard let process = processIfAny, process.pointee.depot != nil, bin < process.pointee.depotShelves else { return 0 }
        let shelf = self.shelf(bin)
        return Int(buddy_atomic_load_i32_relaxed(&shelf.pointee.blocks))
    }
}

// MARK: - fork

extension BuddyEngine {
    /// fork's prepare handler: takes every shelf's lock this thread does not hold already (see
    /// ProcessPool's fork handlers) and remembers which, for the parent and child handlers.
    func depotPrepareFork() {
        guard let process = processIfAny, process.pointee.depot != nil else { return }
        var taken: UInt64 = 0
        for bin in 0..<min(process.pointee.depotShelves, 64) where buddy_fork_take(&shelf(bin).pointee.lock) != 0 {
            taken |= 1 << UInt64(bin)
        }
        pushDepotForkMask(taken)
    }

    /// After fork: the parent gives back the shelves its prepare handler took; the child frees
    /// them (their holders, other threads, do not exist there).
    func depotAfterFork(child: Bool) {
        guard let process = processIfAny, process.pointee.depot != nil else { return }
        let taken = popDepotForkMask()
        for bin in 0..<min(process.pointee.depotShelves, 64) where taken & (1 << UInt64(bin)) != 0 {
            if child { buddy_lock_init(&shelf(bin).pointee.lock) } else { buddy_unlock(&shelf(bin).pointee.lock) }
        }
    }

    // The masks of nested forks (a signal handler forking inside fork): four levels; a deeper
    // level finds every shelf held by an outer one and takes none.
    private func pushDepotForkMask(_ mask: UInt64) {
        let level = process.pointee.depotForkLevel
        if level < 4 { withUnsafeMutableBytes(of: &process.pointee.depotForkMasks) { $0.storeBytes(of: mask, toByteOffset: level &* 8, as: UInt64.self) } }
        process.pointee.depotForkLevel = level &+ 1
    }

    private func popDepotForkMask() -> UInt64 {
        let level = process.pointee.depotForkLevel &- 1
        guard level >= 0 else { return 0 }
        process.pointee.depotForkLevel = level
        if level >= 4 { return 0 }
        return withUnsafeBytes(of: &process.pointee.depotForkMasks) { $0.load(fromByteOffset: level &* 8, as: UInt64.self) }
    }
}

// MARK: - Statistics

/// The depot's counts over all shelves (the report's locks line).
struct DepotTotals {
    var puts: UInt64 = 0
    var takes: UInt64 = 0
    var full: UInt64 = 0
    var contended: UInt64 = 0
    var bytes: UInt64 = 0
}

extension BuddyEngine {
    /// Sums the shelves' counts, read without their locks (a signal handler's snapshot may run:
    /// each value is exact, the sums a few batches behind threads that run meanwhile).
    func depotTotals() -> DepotTotals {
        var totals = DepotTotals()
        guard let process = processIfAny, process.pointee.depot != nil else { return totals }
        for bin in 0..<process.pointee.depotShelves {
            let shelf = self.shelf(bin)
            totals.puts &+= buddy_atomic_load_u64_relaxed(&shelf.pointee.puts)
            totals.takes &+= buddy_atomic_load_u64_relaxed(&shelf.pointee.takes)
            totals.full &+= buddy_atomic_load_u64_relaxed(&shelf.pointee.full)
            totals.contended &+= buddy_lock_contended(&shelf.pointee.lock)
            totals.bytes &+= UInt64(depotBlocks(bin: bin)) &* UInt64(size(ofCode: codeOfBin(bin)))
        }
        return totals
    }
}
