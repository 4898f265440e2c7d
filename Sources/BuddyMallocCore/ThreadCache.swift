#if !BUDDY_ONE_MODULE
import BuddyEngine
#endif
import CBuddySupport

/// Calls of the C-semantics layer: per thread on the hot path, folded into totals when read or
/// when the thread exits (see Stats.swift for who counts what).
public struct CallCounters {
    /// Blocks handed to the program, and blocks it freed, per order (fast and slow paths).
    var allocated = CounterTable()
    var freed = CounterTable()
    /// Bytes the program asked for in the allocations counted by `allocated`.
    var requestedBytes: UInt64 = 0
    /// Of the blocks in `allocated` and `freed`, those the slow paths handed out or released, and
    /// those calloc's and the aligned entry points' fast path handed out (allocateCached): the
    /// rest are malloc and free calls served by their fast paths.
    var slowAllocations: UInt64 = 0
    var slowFrees: UInt64 = 0
    /// Calls that took a slow path (or have no fast path), per entry point; failed calls.
    var entries = CounterTable()
    var failures = CounterTable()
    /// Explicit alignments asked for, per power of two (Stats.countAlignment): per thread, as
    /// the entries are, since a shared atomic counter passes its line between cores on every
    /// aligned call (rpmalloc's benchmark asks for 8 or 16 on two calls in three).
    var alignments = CounterTable()
    /// Calls until the next instrumented one (a latency sample, the profile's check): the fast
    /// paths count it down; 1 so that a new thread's first call sets it from the pool's settings.
    var countdown: Int = 1
    /// The value `countdown` was last set to with the profile on (AllocationProfile.rearm): the
    /// calls since then are `countdownArmed - countdown`.
    var countdownArmed: Int = 1
    /// Non-zero when the thread's next free is instrumented: `timedFree` set by each timed malloc
    /// and by each flush of a full bin (so a thread that only frees is sampled too), cleared by
    /// the instrumented free, and always set when every call is instrumented; `profileFrees`
    /// always set while the profile is on (free then asks the profile's filter, FastPaths). free
    /// does not even read it on its fast path: set through ThreadCache.setFreeSampleDue, a
    /// non-zero value clears free's copy of its last segment, so the copy's range test sends
    /// the free to the check. (A countdown of free's own, or malloc's, cost the pair about 5%,
    /// README "Cost"; the separate test cost every free 3 instructions.)
    var freeSampleDue: Int = 0
    /// The low half of `requestedBytes` at this thread's last flush of a full bin: unchanged at
    /// the next flush means the thread allocated nothing in between (it only frees), and only
    /// such a thread's flushes arm timed frees (flushFullBin). (Half a word each, this and the
    /// next: they took the place of an 8-byte pad at the end of ThreadCache.)
    var requestedAtFlush: UInt32 = 0
    /// For a thread that only frees: blocks its flushes may still pass (each counted as its bin's
    /// limit, about the frees that filled it) before the next arms a timed free; 0 at first, so
    /// its first flush arms one.
    var flushedUntilTimed: Int32 = 0
    static let timedFree = 1
    static let profileFrees = 2
    /// Allocations minus frees of this thread since its last fold into the pool's live count,
    /// and the largest value that difference had just before a free since then (both 0 right
    /// after a fold; see CallCounters.countLiveFree). Plain adds by the owner; folded under the
    /// pool lock by the slow paths that take it (BuddyEngine.foldLiveDelta). Next to `countdown`:
    /// the fast paths touch that cache line anyway.
    var liveDelta: Int = 0
    var liveDeltaPeak: Int = 0
    /// With the profile on, the countdown also stops for the profile: mallocs until the next
    /// timed one (sampled latency), counted by AllocationProfile.latencyDue and rearm.
    var latencyCountdown: Int = 1
    var latency = LatencyCounters()
    /// The thread's next allocation-site sample point (BUDDY_PROFILE_SAMPLE), in the units of
    /// `requestedBytes`: the allocation that brings `requestedBytes` to it or past it is sampled.
    var profileTarget: UInt64 = 0
    /// The sampling intervals' random state (AllocationProfile.scheduleNextSample; 0: not seeded).
    var profileRandom: UInt64 = 0

    public init() {}

    /// Blocks handed to the program, and freed by it.
    public var allocations: UInt64 { allocated.total }
    public var frees: UInt64 { freed.total }

    /// Adds the counters at `other`, read where they are: a copy of these 2.6 KB on the stack of a
    /// thread at its exit (the fold of its cache) touched a page glibc had given back, one page
    /// fault per thread (mleak100).
    mutating func add(_ other: UnsafePointer<CallCounters>) {
        // (Each table's offset from the counters' own address: no key path, which Embedded Swift,
        // the library's build, does not have.)
        let base = UnsafeRawPointer(other)
        withUnsafeMutablePointer(to: &self) { me in
            let raw = UnsafeMutableRawPointer(me)
            func at(_ table: UnsafeMutablePointer<CounterTable>) -> UnsafeRawPointer { base + (UnsafeMutableRawPointer(table) - raw) }
            me.pointee.allocated.add(at(&me.pointee.allocated))
            me.pointee.freed.add(at(&me.pointee.freed))
            me.pointee.entries.add(at(&me.pointee.entries))
            me.pointee.failures.add(at(&me.pointee.failures))
            me.pointee.alignments.add(at(&me.pointee.alignments))
            me.pointee.requestedBytes &+= other.pointee.requestedBytes
            me.pointee.slowAllocations &+= other.pointee.slowAllocations
            me.pointee.slowFrees &+= other.pointee.slowFrees
            me.pointee.latency.add(other.pointee.latency)
        }
    }
}

/// One order's cached blocks: a LIFO stack linked through the blocks themselves.
///
///     count == limit - room;  0 <= count <= limit between calls
///
/// The bin keeps `room`, not its count: free's push decrements it and is full when it goes
/// below 0, one read-modify-write and a sign test instead of two loads, an increment, a store
/// and a compare (callgrind, the 64-byte malloc+free pair: 100.3 -> 98.3 instructions).
struct CacheBin {
    var head: UnsafeMutableRawPointer?
    /// Blocks the bin may still take before it overflows (negative: it is over its limit).
    var room: Int32
    /// The most blocks the bin holds (setting it keeps the count: room moves with it).
    var limit: Int32 {
        didSet { room &+= limit &- oldValue }
    }
    /// The bin's spare batch (Bonwick's "previous magazine", Depot.swift): all but the newest of
    /// the bin's last overflow, linked like the bin, `spareCount` blocks (0: none). An empty bin
    /// takes it back before it asks the depot, so a thread's own blocks return to it first.
    var spare: UnsafeMutableRawPointer? = nil
    var spareCount: Int32 = 0
    /// The thread's allocation count of the bin's code (low 32 bits) at its last overflow: the
    /// same at the next one means the thread only frees this size (Depot.stashBatch). In the
    /// padding after spareCount: the bin stays 32 bytes.
    var allocatedAtOverflow: UInt32 = 0

    init(head: UnsafeMutableRawPointer?, count: Int32, limit: Int32) {
        self.head = head
        self.room = limit &- count
        self.limit = limit
    }

    /// Blocks on the bin.
    var count: Int32 {
        get { limit &- room }
        set { room = limit &- newValue }
    }

    /// The bin holds more than its limit and must be flushed (count > limit).
    @inline(__always) var isOverLimit: Bool { room < 0 }
}

/// A thread's cache of blocks per order: the lazy buddy. A block the thread frees stays here,
/// still tagged used, with the cache mark (Segment.swift) and not coalesced, until the bin is
/// full; the next allocation of that order takes it back without the pool lock. Bins refill
/// from the pool in batches of half their limit, and overflow a bin's worth at a time into
/// their spare and the depot, so the lock is taken once per batch, not once per call.
///
/// The cache lives in a pool block (a mapping of its own when the maximum block is smaller than
/// the cache; no thread-local storage beyond one pointer), is listed in
/// the pool's registry (for statistics and fork), and is flushed by a pthread key destructor when
/// its thread exits. Invariant: every block on a bin of order k is tagged `Tag.used | k` and
/// carries the cache mark (its encoded tag link), and no block outside a cache carries one.
struct ThreadCache {
    var pool: UnsafeMutablePointer<PoolState>
    var next: UnsafeMutablePointer<ThreadCache>?
    var prev: UnsafeMutablePointer<ThreadCache>?
    var calls: CallCounters
    /// Bins of orders 0 ..< binCount (the fast paths' test), then one bin per slab class
    /// (`slabBinCount`: 0 when the pool has no slabs).
    var binCount: Int
    var slabBinCount: Int
    /// The segment of the thread's last free through the cache (see freeFast): a copy of its
    /// range and order map, so that free finds a tag with one load from the thread's own cache
    /// before the tag's (a pointer to the descriptor would add one more on that chain of loads).
    /// `lastSize` 0: none. Only segments of this cache's pool are copied, and removeSegment
    /// clears every cache's copy of a segment it takes out, under the pool lock.
    var lastBase: UInt = 0
    var lastSize: UInt = 0
    var lastOrderMap: UnsafeMutablePointer<UInt8>? = nil
    /// Copies of the pool's constants the fast paths read (PoolState's fields of these names, and
    /// the geometry's minShift; set before any cache exists and never changed): one load each
    /// from the cache, not two (the pool's address first). Measured in one process: pairs 8-12% faster with these copies.
    var minShift: UInt = 0
    var minBlockMask: UInt = 0
    var orderPathLimit: UInt = 0
    var cachedSizeLimit: UInt = 0
    var smallSizes = SmallSizeTable()
    var tagBins = TagBinTable()
    /// The pool's link key (FreeLinks).
    var linkKey: UInt = 0
    /// Bytes of the cache's own mapping when it did not fit in a pool block (a maximum block
    /// smaller than the cache: BUDDY_MAX_BLOCK of 16 B to 1 KiB); 0 when it is a pool block.
    var mappedBytes: Int = 0
    var mediumSizes = MediumSizeTable()
    // Followed by `binCount + slabBinCount` CacheBins. The cache is a whole number of cache lines,
    // so that the bins after it start on one and each 32-byte bin lies in one line. (Adding the
    // medium table moved them to 56 bytes into a line: half the bins then had their head in one
    // line and their count and limit in the next, two lines for every pop and push.) A test
    // checks the stride; a field added anywhere in the cache must keep it (the last one added,
    // CallCounters.requestedAtFlush and flushedUntilTimed, replaced an 8-byte pad here).

    /// Blocks up to this size are cached; larger ones go straight to the pool, where they
    /// coalesce at once (a cached block keeps its buddy, and every block above, from forming).
    /// 1 MiB (it was 32 KiB): a thread that frees and allocates a size up to 1 MiB again gets its
    /// block back without the pool lock. The orders above 32 KiB hold one block each (binLimit):
    /// about 2 MiB a thread at most.
    static let largestCachedBlock = 1024 * 1024
    /// Bins of larger blocks give their overflow to the pool, not to the depot (flushFullBin): a
    /// depot of them held the `large` workload's freed blocks from coalescing into the larger
    /// ones it asks for next (its peak RSS: 66.7 MB so, as before, 109.4 MB through the depot,
    /// 85.1 MB with their shelves capped at 512 KiB).
    static let largestDepotBlock = 32 * 1024
    /// Each bin holds at most this many bytes (and at most `maxBlocksPerBin` blocks).
    static let bytesPerBin = 32 * 1024
    static let maxBlocksPerBin = 128
    /// A slab class's bin holds at most this many bytes: 35 classes, each touched by fewer
    /// programs than the orders are.
    static let bytesPerSlabBin = 16 * 1024
    /// A bin's slot in 8-byte words: the fast paths' tables hold bin x wordsPerBin (at most 64
    /// bins: 252 fits their bytes, beside their "none", 0xFF).
    static let wordsPerBin = MemoryLayout<CacheBin>.stride / 8
}

extension ThreadCache {
    /// Initializes a cache in its own memory, field by field, equal to
    /// `ThreadCache(pool:next:prev: nil, calls: CallCounters(), binCount:slabBinCount:)` (a test
    /// compares the two byte for byte). The value is about 3 KB, and building it on the stack
    /// first touched a page of a new thread's stack
    /// that glibc had given back when the previous thread exited: one page fault per thread
    /// (mleak100's 50,000 threads: 90,400 minor faults against glibc's 60,300). Every field is
    /// a plain value, so zeroed memory plus the non-zero defaults is the whole value.
    static func initialize(_ cache: UnsafeMutablePointer<ThreadCache>, pool: UnsafeMutablePointer<PoolState>,
                           next: UnsafeMutablePointer<ThreadCache>?, binCount: Int, slabBinCount: Int) {
        UnsafeMutableRawPointer(cache).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<ThreadCache>.stride)
        cache.pointee.pool = pool
        cache.pointee.next = next
        cache.pointee.binCount = binCount
        cache.pointee.slabBinCount = slabBinCount
        CallCounters.initializeDefaults(&cache.pointee.calls)
        cache.pointee.tagBins = TagBinTable()
        cache.pointee.mediumSizes = MediumSizeTable()
    }
}


extension CallCounters {
    /// Sets, in zeroed counters, the fields whose defaults are not 0 (see ThreadCache.initialize).
    static func initializeDefaults(_ calls: inout CallCounters) {
        calls.countdown = 1
        calls.countdownArmed = 1
        calls.latencyCountdown = 1
    }
}

extension UnsafeMutablePointer where Pointee == ThreadCache {
    @inline(__always) var bins: UnsafeMutablePointer<CacheBin> {
        UnsafeMutableRawPointer(self + 1).assumingMemoryBound(to: CacheBin.self)
    }

    // A cached block holds two words: the next block of its bin, and the address of its own tag
    // byte in the order map. The encoded tag address is the block's cache mark (a second free
    // sees it), and spares the flush the segment-map walk to the tag it checks. Both are stored
    // encoded (FreeLinks), so that a program writing to a block after freeing it is caught at
    // the pop, before either word is followed.

    /// Bins in all: the orders' and the slab classes'.
    @inline(__always) var totalBins: Int { pointee.binCount &+ pointee.slabBinCount }

    /// The bin of allocation code `code` (an order below binCount, or a slab class's code of a
    /// pool with slabs), or -1 when no bin holds it: the pool's binOfCode, read from the cache's
    /// tag table (one load).
    @inline(__always) func bin(ofCode code: Int) -> Int {
        guard code <= Int(Tag.orderMask) else { return -1 }
        return pointee.tagBins.bin(Tag.used | UInt8(truncatingIfNeeded: code))
    }

    /// The allocation code of bin `bin` (numbered alike in every cache of the pool).
    @inline(__always) func code(ofBin bin: Int) -> Int { BuddyEngine(state: pointee.pool).codeOfBin(bin) }

    /// Bin `bin`'s slot.
    @inline(__always) func slot(_ bin: Int) -> UnsafeMutablePointer<CacheBin> { bins + bin }

    /// The slot of the bin the fast paths' tables name by `words`, the bin's index x
    /// ThreadCache.wordsPerBin: its offset from the first bin in 8-byte words, so that its address
    /// is one scaled index from the cache's, with no shift (a CacheBin is 32 bytes).
    @inline(__always) func slot(words: Int) -> UnsafeMutablePointer<CacheBin> {
        (UnsafeMutableRawPointer(bins) + words &* 8).assumingMemoryBound(to: CacheBin.self)
    }

    /// The bin (in words) and code of a request of `request` <= cachedSizeLimit bytes aligned to
    /// 16, by the fast paths' tables: the small one up to orderPathLimit, the medium one above;
    /// nil where the medium table names no bin. (mallocFast reads the small table directly, and
    /// mallocMedium, above it, mediumEntry.)
    @inline(__always) func sizeEntry(_ request: UInt) -> (binWords: Int, code: Int)? {
        if request <= pointee.orderPathLimit { return pointee.smallSizes.entry(request) }
        let entry = mediumEntry(request)
        return entry.binWords == MediumSizeTable.none ? nil : entry
    }

    /// The bin (in words, or MediumSizeTable.none) and code of a cached request above
    /// orderPathLimit: the medium table's up to its limit, LargeSizes' above.
    @inline(__always) func mediumEntry(_ request: UInt) -> (binWords: Int, code: Int) {
        request > MediumSizeTable.limit ? LargeSizes.entry(request, minShift: pointee.minShift) : pointee.mediumSizes.entry(request)
    }

    /// The tag, code and bin (in words) of the block at `address`, `offset` bytes into the
    /// segment whose order map is `map`, when it is the program's block (or slab object) of a
    /// code the bins hold; nil for anything else, which the caller's checked path handles: a
    /// tag that is not used, a code no bin holds, or a block a cache holds (it keeps its used
    /// tag and carries the cache mark: freeing it again is a double free). The lookup free's
    /// and realloc's fast paths share, without the lock: the block is the caller's, so no other
    /// thread changes its tag. (The mark is one load from the line free's push writes anyway.)
    @inline(__always) func cachedUse(_ address: UInt, map: UnsafeMutablePointer<UInt8>?, offset: UInt)
        -> (tag: UnsafeMutablePointer<UInt8>, code: Int, binWords: Int)? {
        let tag = map.unsafelyUnwrapped + Int(truncatingIfNeeded: offset &>> pointee.minShift)
        let value = tag.pointee
        if CacheMark.isSet(address, tag: tag, cacheKey: pointee.linkKey) { return nil }
        let words = pointee.tagBins.binWords(value)
        if words == TagBinTable.none { return nil }
        // (The table said used: the code is the tag less the state, no mask.)
        return (tag, Int(value) &- Int(Tag.used), words)
    }

    /// Sets CallCounters.freeSampleDue. A non-zero value also clears the size of free's copy of
    /// its last segment, so that free's range test sends every free to the sample check until
    /// the sample is taken (free then copies the segment again):
    ///
    ///     calls.freeSampleDue != 0  =>  lastSize == 0
    @inline(__always) func setFreeSampleDue(_ due: Int) {
        pointee.calls.freeSampleDue = due
        if due != 0 { pointee.lastSize = 0 }
    }

    /// The index of the bin whose slot is `slot`.
    @inline(__always) func bin(of slot: UnsafeMutablePointer<CacheBin>) -> Int { slot - bins }

    /// Takes a cached block of bin `bin` (the caller checked it is a bin) and its tag's address,
    /// or nil: when the bin is empty, and when the block's links were overwritten (reported and
    /// handled by FreeLinks.cacheCorrupted; the bin is then abandoned).
    @inline(__always) func pop(_ bin: Int) -> (block: UnsafeMutableRawPointer, tag: UnsafeMutablePointer<UInt8>)? {
        let (block, tag, sound) = take(slot(bin))
        guard let block else { return nil }
        guard sound else {
            FreeLinks.cacheCorrupted(self, bin: bin, block: block, function: "malloc()")
            return nil
        }
        return (block, UnsafeMutablePointer<UInt8>(bitPattern: tag).unsafelyUnwrapped)
    }

    /// The pop itself, with no call in it (so the fast paths keep no registers for one): the
    /// bin's first block and its tag's address; nil when the bin is empty; not `sound` when the
    /// block's links were overwritten, with the bin untouched (the caller reports it:
    /// FreeLinks.cacheCorrupted).
    @inline(__always) func take(_ slot: UnsafeMutablePointer<CacheBin>) -> (block: UnsafeMutableRawPointer?, tag: UInt, sound: Bool) {
        guard let block = slot.pointee.head else { return (nil, 0, false) }
        let key = pointee.linkKey
        let next = FreeLinks.decode(block.load(as: UInt.self), key: key)
        let tag = FreeLinks.decode(block.load(fromByteOffset: MemoryLayout<UInt>.stride, as: UInt.self), key: key)
        if _slowPath(!FreeLinks.valid(next: next, tag: tag)) { return (block, 0, false) }
        slot.pointee.head = UnsafeMutableRawPointer(bitPattern: next)
        slot.pointee.room &+= 1
        // The block leaves the cache: no mark (its line is in this core's cache: just read).
        CacheMark.clear(block)
        return (block, tag, true)
    }

    /// Keeps a block (whose tag the caller set to cached); returns true when the bin is now over
    /// its limit and must be flushed.
    @inline(__always) func push(_ block: UnsafeMutableRawPointer, _ bin: Int, tag: UnsafeMutablePointer<UInt8>) -> Bool {
        push(block, into: slot(bin), tag: tag)
    }

    /// push, to the bin whose slot is `slot`.
    @inline(__always) func push(_ block: UnsafeMutableRawPointer, into slot: UnsafeMutablePointer<CacheBin>, tag: UnsafeMutablePointer<UInt8>) -> Bool {
        let key = pointee.linkKey
        block.storeBytes(of: FreeLinks.encode(UInt(bitPattern: slot.pointee.head), key: key), as: UInt.self)
        // (The encoded tag link is the cache mark: its one definition is CacheMark's.)
        block.storeBytes(of: CacheMark.value(tag: tag, key: key), toByteOffset: MemoryLayout<UInt>.stride, as: UInt.self)
        slot.pointee.head = block
        slot.pointee.room &-= 1
        return slot.pointee.isOverLimit
    }
}

extension BuddyEngine {
    /// The calling thread's cache for this (the process) pool, creating it on the thread's first
    /// call; nil when the thread has none (exiting, or no memory for one).
    @inline(__always) func threadCache() -> UnsafeMutablePointer<ThreadCache>? {
        let raw = buddy_thread_cache()
        if raw == nil { return createThreadCache() }
        if raw == UnsafeMutableRawPointer(bitPattern: 1) { return nil } // BUDDY_CACHE_DISABLED
        return raw!.assumingMemoryBound(to: ThreadCache.self)
    }

    /// Lets threads keep caches of this pool's blocks, with a depot between them.
    func enableThreadCaches() {
        allowThreadCaches()
        // Without a depot (no page for it) the bins exchange with the pool alone.
        _ = Depot.create(self)
    }

    /// Lets threads keep caches (without a depot: tests add one or not).
    func allowThreadCaches() {
        // A cached block's encoded tag link is its cache mark (Segment.swift): the engine reads
        // it, for the codes that have bins.
        state.pointee.cacheMarkKey = process.pointee.linkKey
        state.pointee.cacheMarkOrders = cachedOrderCount
        process.pointee.cachesEnabled = true
        process.pointee.cachedSizeLimit = UInt(geometry.size(ofOrder: cachedOrderCount - 1))
        // Requests up to 1 KiB take malloc's table path; larger cached ones mallocMedium's (the
        // classes from 1 KiB up start where the table ends: SlabClass.floor == SmallSizeTable.limit).
        process.pointee.orderPathLimit = min(process.pointee.cachedSizeLimit, SmallSizeTable.limit)
        // The fast paths' tables, copied into every cache (SmallSizeTable.swift).
        for i in 0..<SmallSizeTable.entries {
            let code = self.code(forSize: UInt(min(16 * i, geometry.maxBlock)), alignment: minimumAlignment)
            process.pointee.smallSizes.set(i, bin: binOfCode(code), code: code)
        }
        for j in 0..<MediumSizeTable.entries {
            let size = MediumSizeTable.floor + 128 * UInt(j + 1)
            let code = size <= process.pointee.cachedSizeLimit ? self.code(forSize: size, alignment: minimumAlignment) : -1
            process.pointee.mediumSizes.set(j, bin: code < 0 ? -1 : binOfCode(code), code: max(code, 0))
        }
        for code in 0...Int(Tag.orderMask) where binOfCode(code) >= 0 {
            process.pointee.tagBins.set(code: code, bin: binOfCode(code))
        }
    }

    /// Orders with a bin: those whose blocks are at most `largestCachedBlock`.
    var cachedOrderCount: Int {
        geometry.order(forSize: min(ThreadCache.largestCachedBlock, geometry.maxBlock)) + 1
    }

    /// Bins in every cache of this pool: the cached orders', then the slab classes'.
    var binsPerCache: Int { cachedOrderCount &+ state.pointee.slabClassCount }

    /// The allocation code of bin `bin` in every cache of this pool.
    func codeOfBin(_ bin: Int) -> Int {
        bin < cachedOrderCount ? bin : state.pointee.slabFirstCode &+ (bin &- cachedOrderCount)
    }

    /// The bin of allocation code `code` in every cache of this pool, or -1 when no bin holds it
    /// (the inverse of codeOfBin; ThreadCache.bin(ofCode:) reads it from the cache's tag table).
    func binOfCode(_ code: Int) -> Int {
        if code < cachedOrderCount { return code }
        let c = code &- state.pointee.slabFirstCode
        return c >= 0 && c < state.pointee.slabClassCount ? cachedOrderCount &+ c : -1
    }

    /// The most blocks bin `bin` holds (the same in every cache): its bytes' worth, at most
    /// maxBlocksPerBin, at least one.
    func binLimit(_ bin: Int) -> Int {
        // The classes under 1 KiB hold as many bytes as the orders they sit between: with half
        // as many, their bins went to the pool more often (smallbatch took the pool lock 102,204
        // times; 71,127 with 32 KiB).
        let size = size(ofCode: codeOfBin(bin))
        let small = bin < cachedOrderCount || size < SlabClass.floor
        let perBin = small ? ThreadCache.bytesPerBin : ThreadCache.bytesPerSlabBin
        return min(ThreadCache.maxBlocksPerBin, max(1, perBin / size))
    }

    @inline(never)
    func createThreadCache() -> UnsafeMutablePointer<ThreadCache>? {
        let geometry = self.geometry
        let binCount = cachedOrderCount
        let slabBinCount = state.pointee.slabClassCount
        let bytes = MemoryLayout<ThreadCache>.stride + (binCount + slabBinCount) * MemoryLayout<CacheBin>.stride
        // The cache is the pool's own metadata: a pool block when one can hold it, else a mapping
        // of its own (a block's order is at most maxOrder; codes above it are slab classes).
        let mapped = bytes > geometry.maxBlock
        let page = buddy_os_page_size()
        let mappedBytes = mapped ? (bytes + page - 1) & ~(page - 1) : 0
        let locked = lock()
        guard process.pointee.cachesEnabled,
              let block = mapped ? buddy_os_map_aligned(mappedBytes, page) : allocate(order: geometry.order(forSize: bytes)) else {
            unlock(locked)
            buddy_thread_disable_cache()
            return nil
        }
        let cache = block.bindMemory(to: ThreadCache.self, capacity: 1)
        ThreadCache.initialize(cache, pool: state, next: process.pointee.caches, binCount: binCount, slabBinCount: slabBinCount)
        cache.pointee.minShift = UInt(geometry.minShift)
        cache.pointee.mappedBytes = mappedBytes
        cache.setFreeSampleDue((state.pointee.stats.instrumentPeriod == 1 ? CallCounters.timedFree : 0)
            | (state.pointee.stats.profileSampleBytes != 0 ? CallCounters.profileFrees : 0))
        cache.pointee.minBlockMask = state.pointee.minBlockMask
        cache.pointee.orderPathLimit = process.pointee.orderPathLimit
        cache.pointee.cachedSizeLimit = process.pointee.cachedSizeLimit
        cache.pointee.smallSizes = process.pointee.smallSizes
        cache.pointee.mediumSizes = process.pointee.mediumSizes
        cache.pointee.tagBins = process.pointee.tagBins
        cache.pointee.linkKey = process.pointee.linkKey
        for bin in 0..<cache.totalBins {
            (cache.bins + bin).initialize(to: CacheBin(head: nil, count: 0, limit: Int32(binLimit(bin))))
        }
        process.pointee.caches?.pointee.prev = cache
        process.pointee.caches = cache
        unlock(locked)
        buddy_thread_set_cache(UnsafeMutableRawPointer(cache))
        buddy_thread_key_set(UnsafeMutableRawPointer(cache)) // may allocate: we are inside (depth > 0)
        return cache
    }

    /// An empty bin takes its spare batch, or a batch from the depot (takeSpareOrBatch), and
    /// hands out the batch's first block; nil when there is none.
    func firstOfBatch(_ cache: UnsafeMutablePointer<ThreadCache>, bin: Int, code: Int) -> UnsafeMutableRawPointer? {
        guard takeSpareOrBatch(cache, bin: bin), let (block, _) = cache.pop(bin) else { return nil }
        foldLiveDelta(cache)
        return block
    }

    /// The first block of `code` when no cache holds one, in the order that keeps the pool
    /// small: a free block; for a refill of `cache`'s bin `bin` (-1: none), a batch that reached
    /// the depot meanwhile; the depot's free memory, shelf by shelf (allocateDrainingDepot); a
    /// segment's untouched tail; and, once this thread's cached blocks and the depot went back
    /// (they keep buddies from coalescing, and may make the block), a new segment. Takes the pool
    /// lock and returns with it held (`locked`), but for a batch: its first block, tagged used.
    func allocateBeforeGrowing(code: Int, cache: UnsafeMutablePointer<ThreadCache>?, bin: Int,
                               dirtyBytes: UnsafeMutablePointer<Int>?, locked: inout Bool) -> FirstBlock {
        locked = lock()
        if let block = allocate(code: code, mayGrow: false, mayCarve: false, dirtyBytes: dirtyBytes) { return FirstBlock(block: block) }
        unlock(locked)
        if let cache, bin >= 0, let block = firstOfBatch(cache, bin: bin, code: code) { return FirstBlock(block: block, fromBatch: true) }
        let drained = allocateDrainingDepot(code: code, dirtyBytes: dirtyBytes)
        locked = lock()
        if drained != nil { return FirstBlock(block: drained) }
        if let block = allocate(code: code, mayGrow: false, dirtyBytes: dirtyBytes) { return FirstBlock(block: block, carved: true) }
        unlock(locked)
        if let cache = cache ?? threadCache() { flushAll(cache) }
        drainDepot()
        locked = lock()
        return FirstBlock(block: allocate(code: code, mayGrow: true, dirtyBytes: dirtyBytes), carved: true)
    }

    /// An empty bin: takes half its limit in blocks (or slab objects) of allocation code `code`
    /// from the pool under one lock, keeps all but the first (marked), and returns the first;
    /// nil when the pool is full. (The pool tags them all used.)
    @inline(never)
    func refill(_ cache: UnsafeMutablePointer<ThreadCache>, code: Int) -> UnsafeMutableRawPointer? {
        let bin = cache.bin(ofCode: code)
        // The bin's own spare batch, else a batch another thread's bin gave up (Depot.swift):
        // no pool lock, no split.
        if let block = firstOfBatch(cache, bin: bin, code: code) { return block }
        let batch = max(1, Int((cache.bins + bin).pointee.limit) / 2)
        var locked = false
        let found = allocateBeforeGrowing(code: code, cache: cache, bin: bin, dirtyBytes: nil, locked: &locked)
        if found.fromBatch { return found.block }
        guard let first = found.block else {
            unlock(locked)
            return nil
        }
        var taken = 1
        // The rest of the batch comes from free blocks alone when the first did (no new pages
        // while the depot may hold free memory: it was tried first). Blocks come in runs cut
        // from one free block each (allocateRun), pushed in address order, so that the bin
        // hands them out in the order one allocation at a time gave (the last first: handed
        // out in address order, larsonN read 0.80x glibc against 0.68x, README "Performance").
        if code <= geometry.maxOrder {
            while taken < batch, let run = allocateRun(order: code, count: batch &- taken, mayCarve: found.carved) {
                let size = UInt(geometry.size(ofOrder: code))
                for i in 0..<run.blocks {
                    _ = cache.push(UnsafeMutableRawPointer(bitPattern: run.first &+ UInt(i) &* size).unsafelyUnwrapped, bin,
                                   tag: run.tag + (i &<< code))
                }
                taken &+= run.blocks
            }
        } else {
            // Slab objects come a slab at a time (allocateObjects), linked through their first
            // words, which the pushes overwrite.
            while taken < batch, let run = allocateObjects(code: code, count: batch &- taken, mayCarve: found.carved) {
                let map = run.segment.pointee.orderMap
                var object: UnsafeMutableRawPointer? = run.head
                while let o = object {
                    object = o.load(as: UnsafeMutableRawPointer?.self)
                    _ = cache.push(o, bin, tag: map + slot(UInt(bitPattern: o), in: run.segment))
                }
                taken &+= run.objects
            }
        }
        foldLiveDelta(cache)
        unlock(locked)
        return first
    }

    /// Gives a bin's blocks back to the pool (which coalesces them, or puts objects back on
    /// their slabs) until `keep` remain.
    @inline(never)
    func flush(_ cache: UnsafeMutablePointer<ThreadCache>, bin: Int, keep: Int) {
        let code = cache.code(ofBin: bin)
        let locked = lock()
        while Int((cache.bins + bin).pointee.count) > keep, let (block, tag) = cache.pop(bin) {
            // Every block on a bin of code k is tagged used|k: anything else is corruption.
            guard tag.pointee == Tag.used | UInt8(truncatingIfNeeded: code) else {
                FreeLinks.cacheCorrupted(cache, bin: bin, block: block, function: "malloc()")
                break
            }
            let address = UInt(bitPattern: block)
            release(address, code: code, segment: SegmentMap.lookup(address)!)
        }
        foldLiveDelta(cache)
        unlock(locked)
    }

    /// Empties every bin of the cache, and its spare batches.
    func flushAll(_ cache: UnsafeMutablePointer<ThreadCache>) {
        for bin in 0..<cache.totalBins {
            releaseSpare(cache, bin: bin)
            if (cache.bins + bin).pointee.count > 0 { flush(cache, bin: bin, keep: 0) }
        }
    }

    /// The thread is exiting: every cached block goes back, the counters are folded into the
    /// pool, and the cache's own block is freed. Later calls of this thread use the pool directly.
    func retire(_ cache: UnsafeMutablePointer<ThreadCache>) {
        flushAll(cache)
        let locked = lock()
        unlinkCache(cache)
        let address = UInt(bitPattern: cache)
        let mappedBytes = cache.pointee.mappedBytes
        if mappedBytes == 0, case .allocated(let order) = classify(UnsafeRawPointer(cache)) {
            releaseBlock(address, order: order, segment: SegmentMap.lookup(address)!)
        }
        unlock(locked)
        if mappedBytes != 0 { buddy_os_unmap(UnsafeMutableRawPointer(cache), mappedBytes) }
    }

    /// Takes a cache out of the registry, folding its call counters into the pool (lock held).
    func unlinkCache(_ cache: UnsafeMutablePointer<ThreadCache>) {
        foldLiveDelta(cache)
        withUnsafePointer(to: &cache.pointee.calls) { process.pointee.retiredCacheCalls.add($0) }
        if let prev = cache.pointee.prev { prev.pointee.next = cache.pointee.next } else { process.pointee.caches = cache.pointee.next }
        cache.pointee.next?.pointee.prev = cache.pointee.prev
    }

    /// In a forked child only the forking thread exists: the other threads' caches are dropped
    /// from the registry (their blocks stay allocated: a cache caught mid-update by fork cannot be
    /// trusted to give them back safely).
    func dropOtherThreadsCaches() {
        let mine = buddy_thread_cache()
        var cache = process.pointee.caches
        while let current = cache {
            cache = current.pointee.next
            if UnsafeMutableRawPointer(current) != mine { unlinkCache(current) }
        }
    }

    /// Bytes held in live thread caches (allocated to the pool, free to the program).
    var cachedBytes: UInt {
        var total: UInt = 0
        var cache = process.pointee.caches
        while let current = cache {
            for bin in 0..<current.totalBins {
                let blocks = (current.bins + bin).pointee.count &+ (current.bins + bin).pointee.spareCount
                total &+= UInt(blocks) &* UInt(size(ofCode: current.code(ofBin: bin)))
            }
            cache = current.pointee.next
        }
        return total
    }
}

/// The pthread key destructor: a thread with a cache is exiting.
@_cdecl("buddy_thread_exit")
public func buddy_thread_exit(_ raw: UnsafeMutableRawPointer?) {
    guard let raw, raw != UnsafeMutableRawPointer(bitPattern: 1) else { return }
    let cache = raw.assumingMemoryBound(to: ThreadCache.self)
    buddy_thread_enter()
    BuddyEngine(state: cache.pointee.pool).retire(cache)
    buddy_thread_disable_cache()
    buddy_thread_leave()
}

/// What allocateBeforeGrowing found.
struct FirstBlock {
    /// The block; nil when the pool is full.
    var block: UnsafeMutableRawPointer?
    /// It came from pages no one had touched (a segment's tail, or a new segment): the rest of a
    /// refill's batch may come from there too.
    var carved = false
    /// A batch reached the bin from its spare or the depot, and `block` is its first (tagged
    /// used); the pool lock is not held.
    var fromBatch = false
}
