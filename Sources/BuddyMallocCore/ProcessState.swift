#if !BUDDY_ONE_MODULE
import BuddyEngine
#endif
import CBuddySupport

/// malloc's process instance beside its engine: the thread caches and the fast paths' copies
/// of the pool's constants, the calls of threads without a cache, and BUDDY_HARDEN's
/// quarantine. In a page of its own, found through the engine's `client` pointer; only the
/// process pool has one (private pools are the engine alone).
struct ProcessState {
    /// The thread caches (see ThreadCache.swift).
    var caches: UnsafeMutablePointer<ThreadCache>? = nil
    /// Calls served by thread caches that have since been flushed (threads that exited).
    var retiredCacheCalls = CallCounters()
    /// Calls served without a thread cache (updated atomically).
    var directCalls = CallCounters()
    /// Whether threads get caches (once the thread-exit key exists; not when hardened).
    var cachesEnabled = false
    /// Requests up to this many bytes are served by thread caches (0 while caches are off):
    /// the malloc fast path's single size test.
    var cachedSizeLimit: UInt = 0
    /// Requests up to this many bytes (at most `SmallSizeTable.limit`) take malloc's fast path
    /// by table, read from `smallSizes`; from there up to cachedSizeLimit, mallocMedium's (by
    /// `mediumSizes`: a slab class, or an order). 0 while caches are off.
    var orderPathLimit: UInt = 0
    /// The bin and code of a request of up to 1 KiB, of one up to 32 KiB, and the bin of a used
    /// tag (SmallSizeTable.swift), set with the caches.
    var smallSizes = SmallSizeTable()
    var mediumSizes = MediumSizeTable()
    var tagBins = TagBinTable()
    /// The key that the links stored in free memory are encoded with (see FreeLinks).
    var linkKey: UInt = 0
    /// The depot's shelves (Depot.swift), one per bin: nil without thread caches.
    var depot: UnsafeMutableRawPointer? = nil
    var depotShelves = 0
    /// Bytes of the depot's mapping (metadata).
    var depotMappedBytes = 0
    /// The shelves each nested fork prepare handler took (Depot.swift, "fork").
    var depotForkMasks: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    var depotForkLevel = 0
    /// The depot's last decay pass (monotonic ns; one thread wins each period with a compare
    /// and swap), and its period: BUDDY_RELEASE_DELAY, at least Depot.minimumDecayNs.
    var depotDecayNs: UInt64 = 0
    var depotDecayPeriodNs: UInt64 = 0
    /// BUDDY_HARDEN's quarantine (Hardening.swift): a ring of freed block addresses, its oldest
    /// entry, its length, and the bytes of its blocks. nil: none.
    var quarantine: UnsafeMutablePointer<UInt>? = nil
    var quarantineFirst = 0
    var quarantineCount = 0
    var quarantineBytes: UInt = 0

    /// Maps and attaches the process state to `pool`, and tells the engine what malloc needs to
    /// hear (corruption reports, segments leaving). False when the OS refuses the page.
    static func attach(to pool: BuddyEngine) -> Bool {
        let page = buddy_os_page_size()
        let bytes = (MemoryLayout<ProcessState>.stride + page - 1) & ~(page - 1)
        guard let memory = buddy_os_map_aligned(bytes, page) else { return false }
        let process = memory.bindMemory(to: ProcessState.self, capacity: 1)
        process.initialize(to: ProcessState())
        process.pointee.linkKey = UInt(buddy_os_random_key())
        pool.state.pointee.client = memory
        pool.state.pointee.hooks.segmentRemoved = { state, base in
            BuddyEngine(state: state.unsafelyUnwrapped.assumingMemoryBound(to: PoolState.self)).forgetSegmentCopies(base: base)
        }
        pool.reportCorruptionToMalloc()
        return true
    }
}

extension BuddyEngine {
    /// The process state of malloc's pool. Only on paths of the process pool (it has one).
    @inline(__always) var process: UnsafeMutablePointer<ProcessState> {
        state.pointee.client.unsafelyUnwrapped.assumingMemoryBound(to: ProcessState.self)
    }

    /// The process state when this pool is malloc's, else nil (a private pool).
    var processIfAny: UnsafeMutablePointer<ProcessState>? {
        state.pointee.client?.assumingMemoryBound(to: ProcessState.self)
    }

    /// Corruption the engine finds in this pool is counted and reported as malloc's misuses are
    /// (the call stack, the report's bad_pointers), then the engine aborts.
    func reportCorruptionToMalloc() {
        state.pointee.hooks.corruption = { state, block, cause in
            let pool = BuddyEngine(state: state.unsafelyUnwrapped.assumingMemoryBound(to: PoolState.self))
            pool.countMisuse(.heapCorruption)
            let overflow = cause == EngineCorruption.neighbourLinks.rawValue
            reportCorruption(overflow ? "free()" : "malloc()", block.unsafelyUnwrapped, strategy: nil,
                             cause: overflow ? .freeNeighbourOverwritten : .writtenAfterFree)
        }
    }

    /// A segment at `base` leaves the pool (lock held): no thread cache may keep a copy of its
    /// range (ThreadCache.lastBase). A thread that is refreshing its copy meanwhile is freeing
    /// a pointer into a segment without a live block: not a pointer this pool handed out.
    func forgetSegmentCopies(base: UInt) {
        var cache = process.pointee.caches
        while let c = cache {
            if c.pointee.lastBase == base { c.pointee.lastSize = 0 }
            cache = c.pointee.next
        }
    }
}
