import CBuddySupport

/// The order map: one tag byte for each minimum block of a segment, the side metadata that
/// replaces per-block headers. Tag values:
///
///     0                    the slot lies inside a block that starts earlier
///     Tag.free | order     a free block of `order` starts here (on the pool's free area)
///     Tag.used | order     an allocated block of `order` starts here
///     Tag.cached | order   a block the pool's owner holds back, free to the program and still
///                          allocated to the pool (malloc's hardened quarantine)
///     Tag.used | slabBlock a block carved into slab objects, whose tags (the same three
///                          states, with a slab class's code for the order) lie inside it
///                          (see Slab.swift)
///
/// A block (or object) in a thread cache keeps its `Tag.used` and carries the cache mark in its
/// second word instead (CacheMark below): the fast paths then never write the order map, whose
/// lines cover many small blocks of several threads, and no two cores pass them back and forth.
///
/// Only the first slot of a block (or slab object) is ever non-zero, so a pointer is the start of an allocated
/// block exactly when its slot holds `Tag.used | order`, it carries no cache mark, and it is a
/// multiple of the minimum block.
public enum Tag {
    public static let free: UInt8 = 0x40
    public static let used: UInt8 = 0x80
    public static let cached: UInt8 = 0xC0
    public static let stateMask: UInt8 = 0xC0
    public static let orderMask: UInt8 = 0x3F
    /// The order field of a slab block's tag (orders end at Geometry.orderLimit, slab class
    /// codes below this).
    public static let slabBlock: UInt8 = 0x3F
}

/// The cache mark: a block that a cache holds (free to the program, allocated to the pool: the
/// lazy buddy, not coalesced yet) keeps `Tag.used` in the order map and stores, in its second
/// word, its tag's address XOR the pool's `cacheMarkKey` (64 random bits; 0: the pool has no
/// caches). The owner's cache writes the mark when it takes the block and clears it when it
/// hands the block out or back to the pool, so
///
///     held by a cache  <=>  tag == Tag.used | code  &&  word 1 == address(tag) ^ cacheMarkKey
///
/// A program cannot produce the mark without the key (a live block holding it by chance: 1 in
/// 2^64), and a block's stale mark names only that block's own tag, so copying freed memory
/// elsewhere does not forge one. (The mark is the cache's encoded tag link, FreeLinks.swift.)
public enum CacheMark {
    @inline(__always) public static func value(tag: UnsafePointer<UInt8>, key: UInt) -> UInt { UInt(bitPattern: tag) ^ key }

    /// Whether the block at `address` whose tag is `tag` (Tag.used) is held by a cache.
    @inline(__always) public static func isSet(_ address: UInt, tag: UnsafePointer<UInt8>, key: UInt) -> Bool {
        key != 0 && isSet(address, tag: tag, cacheKey: key)
    }

    /// isSet with a key known not to be 0 (a thread cache's: buddy_os_random_key's keys are
    /// odd), so free's fast path skips the test.
    @inline(__always) public static func isSet(_ address: UInt, tag: UnsafePointer<UInt8>, cacheKey key: UInt) -> Bool {
        UnsafePointer<UInt>(bitPattern: address &+ UInt(MemoryLayout<UInt>.stride)).unsafelyUnwrapped.pointee == value(tag: tag, key: key)
    }

    /// Clears the mark of a block leaving a cache (to the program or to the pool).
    @inline(__always) public static func clear(_ block: UnsafeMutableRawPointer) {
        block.storeBytes(of: 0, toByteOffset: MemoryLayout<UInt>.stride, as: UInt.self)
    }
}

/// A segment: one contiguous region obtained from `mmap` (or given by the user), a power of two
/// in size and aligned to its size, so `buddy = block ^ size(order)` never leaves it.
///
/// Descriptors live in the segment table and are never unmapped: a lock-free lookup that races
/// with a release reads a stale but mapped descriptor, and rechecks it under the pool lock.
///
/// Invariant: `freeBytes == (bytes of free blocks in the order map) + (size - frontier)`.
public struct Segment {
    /// First byte of the segment.
    public var base: UInt
    /// Bytes in the segment.
    public var size: UInt
    /// The owning pool's state, or nil while the descriptor is unused.
    @usableFromInline package var pool: UnsafeMutableRawPointer?
    /// The order map: `size >> minShift` tag bytes, mapped separately from the segment.
    @usableFromInline package var orderMap: UnsafeMutablePointer<UInt8>
    package var orderMapBytes: Int
    /// Bytes below `frontier` are carved into blocks; above it, top-order blocks not yet handed
    /// to the free area (so a new segment touches no page until it is used).
    package var frontier: UInt
    /// Bytes in free blocks plus the uncarved tail.
    package var freeBytes: UInt
    /// The segment's free areas, one per order (stored after the order map), and a bitmask
    /// whose bit k is set when the free area of order k is not empty. Free areas are per segment
    /// so that allocation can prefer the oldest segments, leaving the newer ones to drain.
    package var freeAreas: UnsafeMutablePointer<FreeArea>
    package var nonEmpty: UInt64
    /// The pool's segment list, oldest first (the order in which allocation tries them).
    package var next: UnsafeMutablePointer<Segment>?
    /// True when the pool mapped the memory itself and may return it to the OS.
    package var ownsMemory: Bool
    /// True for a segment that stays for the pool's lifetime (its first one).
    package var pinned: Bool
    /// The size class of the blocks it serves (see BuddyEngine, "Segments by size class").
    package var sizeClass: UInt8 = 0
    /// True when the uncarved tail (above `frontier`) is untouched mapped memory: it reads as
    /// zero, so calloc need not clear a block carved from it (BuddyEngine.allocate's dirtyBytes).
    package var tailIsZero: Bool = false
    /// One bit per minimum block, set when a block (or slab object) starting there is handed
    /// out, never cleared but by `reset`: a free block whose bit is clear was never the
    /// program's (the upper half of a split), so freeing it is an invalid pointer, not a double
    /// free. (Stored after the free areas, in the order map's mapping.)
    package var handedOut: UnsafeMutablePointer<UInt64>? = nil

    @inlinable @inline(__always) package func contains(_ address: UInt) -> Bool {
        address &- base < size
    }
}

/// The segment table: descriptors, handed out from mapped chunks and recycled, never unmapped.
/// Guarded by `buddy_init_lock`.
package enum SegmentTable {
    package static let chunkBytes = 64 * 1024

    package static func acquire() -> UnsafeMutablePointer<Segment>? {
        buddy_lock(buddy_map_lock())
        defer { buddy_unlock(buddy_map_lock()) }
        let root = buddy_segment_table_free_list()!
        if root.pointee == nil {
            // A recycled descriptor first; else the next one of the chunk, written only now: a
            // chunk's 64 KiB are 16 pages, and initializing every descriptor at once made each
            // process fault all 16 in at its first malloc.
            let fresh = buddy_segment_table_fresh()!
            if fresh[0] == fresh[1] {
                guard let chunk = buddy_os_map_aligned(chunkBytes, buddy_os_page_size()) else { return nil }
                fresh[0] = chunk
                fresh[1] = chunk + chunkBytes / MemoryLayout<Segment>.stride * MemoryLayout<Segment>.stride
            }
            let descriptor = fresh[0]!.bindMemory(to: Segment.self, capacity: 1)
            fresh[0] = UnsafeMutableRawPointer(descriptor + 1)
            release(locked: descriptor)
        }
        let descriptor = root.pointee!.assumingMemoryBound(to: Segment.self)
        root.pointee = UnsafeMutableRawPointer(descriptor.pointee.next)
        return descriptor
    }

    package static func release(_ descriptor: UnsafeMutablePointer<Segment>) {
        buddy_lock(buddy_map_lock())
        release(locked: descriptor)
        buddy_unlock(buddy_map_lock())
    }

    private static func release(locked descriptor: UnsafeMutablePointer<Segment>) {
        let root = buddy_segment_table_free_list()!
        descriptor.initialize(to: Segment(
            base: 0, size: 0, pool: nil, orderMap: UnsafeMutablePointer(bitPattern: 1)!,
            orderMapBytes: 0, frontier: 0, freeBytes: 0,
            freeAreas: UnsafeMutablePointer(bitPattern: MemoryLayout<FreeArea>.alignment)!, nonEmpty: 0,
            next: root.pointee?.assumingMemoryBound(to: Segment.self), ownsMemory: false, pinned: false))
        root.pointee = UnsafeMutableRawPointer(descriptor)
    }
}
