import CBuddySupport

/// A pool's state, in memory the pool maps for itself (never Swift-allocated). The free areas
/// live in the segments (see Segment).
///
/// Invariants (checked by `checkInvariants()`):
///
///     every free block is on exactly one free list: that of its order, in its own segment
///     no free block has a free buddy of the same order (below maxOrder)
///     freeBytes + allocatedBytes == segmentBytes
///     segment.nonEmpty bit k == (segment.freeAreas[k].count > 0)
@usableFromInline package struct PoolState {
    /// The project's futex lock (buddy_support.h), not a pthread mutex: the report signal
    /// handler tries it, and only atomics and raw system calls are async-signal-safe there.
    package var lock: buddy_mutex
    package var config: PoolConfig
    @usableFromInline package var geometry: Geometry
    /// The segments, oldest first.
    package var segments: UnsafeMutablePointer<Segment>?
    package var segmentCount: Int
    package var segmentBytes: UInt
    package var freeBytes: UInt
    package var allocatedBytes: UInt
    /// Bytes of segments above their frontier (counted in freeBytes, on no free list yet).
    package var uncarvedBytes: UInt
    package var counters: PoolCounters
    /// Per-order and sampling statistics (PoolStats.swift).
    package var stats: PoolStats
    package var stateBytes: Int
    /// When the free top-order blocks and empty segments were last given back (monotonic ns).
    package var lastRelease: UInt64
    /// minBlock - 1: the bits a block's address has clear (free's alignment test).
    package var minBlockMask: UInt = 15
    /// Slabs (Slab.swift): the classes' state (nil: no slabs), the code of class 0 (64: none),
    /// and the requests they serve, slabFloor < size <= slabCeiling (0: none).
    package var slabClasses: UnsafeMutablePointer<SlabClassState>? = nil
    @usableFromInline package var slabFirstCode: Int = 64
    @usableFromInline package var slabFloor: UInt = 0
    @usableFromInline package var slabCeiling: UInt = 0
    /// Classes the pool serves: SlabClass.count, or largeCount when the tag has no codes for the
    /// classes under 1 KiB (0: no slabs).
    @usableFromInline package var slabClassCount: Int = 0
    /// The key of the cache mark (Segment.swift, CacheMark): 0 while no cache may hold blocks;
    /// and the orders caches keep (those below this; slab objects of every class): only their
    /// blocks can carry the mark.
    package var cacheMarkKey: UInt = 0
    package var cacheMarkOrders: Int = 0
    /// Bytes in slabs that no object out of them covers (headers, free and uncarved objects,
    /// slack): allocated to the pool, free to the program.
    package var slabSpareBytes: UInt = 0
    /// The smallest segment the OS refused to map, and when (monotonic ns); 0: none. For a
    /// second, or until the pool unmaps a segment, growth starts below it (down to the minimum
    /// segment, always tried) and any segment with room serves first (see grow, allocate), so
    /// a request at the end of the address space costs at most one failed mmap.
    package var refusedSegmentSize: Int = 0
    package var refusedAt: UInt64 = 0
    /// What the pool's owner is told (EngineHooks), and the owner's own state, opaque to the
    /// engine (malloc's process instance keeps its thread caches there; nil for private pools).
    package var hooks: EngineHooks = EngineHooks()
    package var client: UnsafeMutableRawPointer? = nil
}

/// Calls from the engine to the layer that owns a pool: C function pointers (no closure
/// context, no Swift runtime), set once after creation, called through buddy_call_*_hook
/// (buddy_support.h). The engine passes the pool's state.
package struct EngineHooks {
    /// A free block's links were found overwritten at `block` (cause: EngineCorruption's raw
    /// value): the owner reports it; the engine then aborts, since it can no longer trust its
    /// free lists. nil: the engine writes a line of its own.
    package var corruption: buddy_corruption_hook? = nil
    /// A segment is leaving the pool (under the pool lock): no copy of its range may survive
    /// (malloc's thread caches keep one).
    package var segmentRemoved: buddy_segment_hook? = nil
    package init() {}
}

/// Where the engine found a free list broken (the report's wording depends on it).
package enum EngineCorruption: UInt8 {
    /// A free block's links, in a free area or a slab's free list, met by an allocation:
    /// written after its free.
    case freeLinks = 0
    /// The links of the free block that follows a block being freed: that block overflowed.
    case neighbourLinks = 1
}
