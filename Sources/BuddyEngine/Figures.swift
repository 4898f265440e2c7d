import CBuddySupport

// Every free-space figure of a pool, each defined once: the report's snapshot (Stats+Snapshot),
// the C pools' buddy_pool_stats (PoolAPI) and MemoryPool's statistics read them from here.
// Nothing here allocates or calls the Swift runtime (the report runs in a signal handler).
//
// The figures of the engine's own state (the caller holds the pool lock when it is shared):
//
//     uncarved          = sum over segments of (size - frontier)      (free, on no free list yet)
//     free blocks of k  = sum over segments of freeAreas[k].count
//                         (+ uncarved / maxBlock at k = maxOrder, when counting the tails)
//     largest free      = maxBlock                           when uncarved > 0
//                         size(max over segments of the highest non-empty order), else; 0: none
//     at size limit     = maxPoolSize != 0 && segmentBytes + minSegment > maxPoolSize
//
// and two equations over figures any pool's snapshot has (malloc's pool counts its thread
// caches and slab spare into `used` and `free` before applying them; a private pool has
// neither), in `Figures`:
//
//     usage                  = used / reserved                          (0 when reserved = 0)
//     external fragmentation = 1 - largest free / min(free, maxBlock)   (0 when free = 0)

/// Memory figures of a pool.
public struct PoolUsage: Equatable, Sendable {
    public var segmentBytes: Int
    public var freeBytes: Int
    public var allocatedBytes: Int
    public var segmentCount: Int
}

/// The figures' equations over plain numbers, so that every pool's snapshot applies the same
/// ones (README, "The figures").
public enum Figures {
    /// usage = used / reserved, 0 when nothing is reserved.
    @inline(__always)
    public static func usage(used: UInt64, reserved: UInt64) -> Double {
        reserved == 0 ? 0 : Double(used) / Double(reserved)
    }

    /// external fragmentation = 1 - largestFree / min(free, maxBlock), 0 when nothing is free:
    /// how far the free memory is from the one block a request could want. (No block exceeds
    /// maxBlock: with that much free, a free top-order block is all a request can want.)
    @inline(__always)
    public static func externalFragmentation(largestFree: UInt64, free: UInt64, maxBlock: UInt64) -> Double {
        if free == 0 { return 0 }
        let reach = min(free, maxBlock)
        return 1.0 - Double(min(largestFree, reach)) / Double(reach)
    }
}

extension BuddyEngine {
    /// A snapshot of the pool's memory figures (under the lock when shared).
    public var usage: PoolUsage {
        let s = state.pointee
        return PoolUsage(segmentBytes: Int(s.segmentBytes), freeBytes: Int(s.freeBytes),
                         allocatedBytes: Int(s.allocatedBytes), segmentCount: s.segmentCount)
    }

    /// Bytes of the segments' untouched tails: uncarved = sum over segments of (size -
    /// frontier). Free (counted in freeBytes), on no free list yet.
    public var uncarvedBytes: Int { Int(state.pointee.uncarvedBytes) }

    /// The untouched tails as free top-order blocks: uncarved / maxBlock. (Exact: a segment is a
    /// multiple of the largest block, and its frontier advances by top-order blocks.)
    public var uncarvedTopBlocks: Int { Int(state.pointee.uncarvedBytes >> UInt(geometry.minShift &+ geometry.maxOrder)) }

    /// Free blocks per order on the free areas (what /proc/buddyinfo shows for the kernel).
    public func freeBlockCount(order: Int) -> Int {
        var count = 0
        var segment = state.pointee.segments
        while let current = segment {
            count &+= current.pointee.freeAreas[order].count
            segment = current.pointee.next
        }
        return count
    }

    /// Free blocks of `order` as the statistics count them: the free areas' blocks, and at the
    /// top order the untouched tails too (`uncarvedTopBlocks`).
    public func freeBlockCountWithTails(order: Int) -> Int {
        let listed = freeBlockCount(order: order)
        return order == geometry.maxOrder ? listed &+ uncarvedTopBlocks : listed
    }

    /// Bytes in the largest block the pool could hand out without growing (0 when none is free):
    /// the largest block when any tail is uncarved, else the highest non-empty order's block.
    public var largestFreeBlock: Int {
        if state.pointee.uncarvedBytes > 0 { return geometry.maxBlock }
        var best = -1
        var segment = state.pointee.segments
        while let current = segment {
            let mask = current.pointee.nonEmpty
            if mask != 0 { best = max(best, 63 &- mask.leadingZeroBitCount) }
            segment = current.pointee.next
        }
        return best < 0 ? 0 : geometry.size(ofOrder: best)
    }

    /// True when `maxPoolSize` leaves no room for another segment: a failed allocation then
    /// means "pool full", not "the OS refused memory".
    public var isAtSizeLimit: Bool {
        let limit = state.pointee.config.maxPoolSize
        return limit != 0 && Int(state.pointee.segmentBytes) &+ state.pointee.config.minSegment > limit
    }
}
