import CBuddySupport

/// How a pool is configured. The defaults are the design document's (initial size 1 MiB,
/// blocks 16 B to 1 MiB, growth factor 2.0, no limit).
public struct PoolConfig: Equatable, Sendable {
    /// Smallest block, a power of two >= 16.
    public var minBlock = 16
    /// Largest block, a power of two >= minBlock; larger requests are not the pool's.
    public var maxBlock = 1 << 20
    /// Bytes mapped when the pool is created (rounded up to a power of two >= the minimum segment).
    public var initialSize = 1 << 20
    /// A new segment grows the pool from `S` to about `S * growthFactor` bytes (>= 1.0).
    public var growthFactor = 2.0
    /// Upper bound on the bytes of all segments; 0 means no limit.
    public var maxPoolSize = 0
    /// When the pool takes its lock.
    public var threadSafety = ThreadSafety.automatic
    /// What happens after a bad pointer has been counted and reported.
    public var errorStrategy = ErrorStrategy.abort
    /// Seconds a free top-order block keeps its pages, and an empty segment its mapping, before
    /// they go back to the OS (checked when blocks are freed; 0: at once).
    public var releaseDelay = 1.0
    /// Size classes of segments: blocks smaller than `smallBlocksBelow` come from segments of
    /// their own, blocks from there up to `largeBlocksFrom` from others, larger ones from a third
    /// kind (0: no such boundary). See "Segments by size class" in BuddyEngine.
    public var smallBlocksBelow = 0
    public var largeBlocksFrom = 0
    /// Slab classes for requests from 1 KiB to 32 KiB (Slab.swift): malloc's pool only.
    public var slabs = false
    /// BUDDY_HARDEN (Hardening.swift): canaries and a quarantine, no thread caches. malloc's
    /// pool only.
    public var hardened = false

    public init() {}

    /// The smallest segment: a multiple of the segment map's granule and of the largest block.
    public var minSegment: Int { max(1 << SegmentMap.granuleShift, maxBlock) }
}

public enum ThreadSafety: UInt8, Sendable {
    /// Lock, but skip the lock while the process has a single thread.
    case automatic
    /// Always lock.
    case always
    /// Never lock: the pool is used from one thread at a time.
    case off
}

public enum ErrorStrategy: UInt8, Sendable {
    /// Report, then abort like glibc's "free(): invalid pointer".
    case abort
    /// Report and carry on, leaving the pool untouched.
    case log
}

/// What a pointer is to a pool.
public enum PointerKind: Equatable, Sendable {
    /// No pool owns this address: it belongs to the system allocator (or to nobody).
    case foreign
    /// Inside another pool's segment.
    case otherPool
    /// The start of an allocated block of this order, or of a slab object whose class has this
    /// code (`order > maxOrder`: see Slab.swift; `size(ofCode:)` gives the bytes of either).
    case allocated(order: Int)
    /// The start of a free block: freeing it again is a double free.
    case free
    /// Inside a segment, but not the start of any block the program was given (inside a block,
    /// or the start of a free block it never held).
    case interior
}

/// Event counters of a pool. Updated under the pool lock (or by its single thread).
public struct PoolCounters: Equatable, Sendable {
    public var allocations: UInt64 = 0
    public var frees: UInt64 = 0
    public var failedAllocations: UInt64 = 0
    public var invalidPointers: UInt64 = 0
    public var doubleFrees: UInt64 = 0
    public var splits: UInt64 = 0
    public var coalesces: UInt64 = 0
    public var segmentsAdded: UInt64 = 0
    public var segmentsReleased: UInt64 = 0
    public var reallocInPlace: UInt64 = 0
    public var peakAllocatedBytes: UInt64 = 0
    /// Bytes given back to the OS (pages advised away, segments unmapped).
    public var releasedBytes: UInt64 = 0
    /// Calls handed to the system allocator, and their bytes (updated atomically, lock-free).
    public var systemCalls: UInt64 = 0
    public var systemBytes: UInt64 = 0
    public init() {}
}
