import CBuddySupport

/// The process-wide map from an address to the segment descriptor covering it, shared by every
/// pool. It answers "is this pointer ours, and whose?" in two dependent loads, without a lock.
///
/// A two-level radix tree over 47-bit user addresses at a granularity of 64 KiB (the smallest
/// segment): `root[address >> 32]` is a leaf, `leaf[(address >> 16) & 0xFFFF]` a descriptor.
/// The root lives in the support library's BSS; leaves (512 KiB each, one per 4 GiB of address
/// space in use) are mapped on demand and never unmapped. Writers hold `buddy_init_lock`.
public enum SegmentMap {
    public static let granuleShift = 16
    public static let leafShift = 32
    public static let leafEntries = 1 << (leafShift - granuleShift)
    public static let addressBits = 47

    /// The descriptor whose granules cover `address`, or nil for memory no pool owns.
    @inlinable @inline(__always)
    public static func lookup(_ address: UInt) -> UnsafeMutablePointer<Segment>? {
        guard address >> UInt(addressBits) == 0 else { return nil }
        let root = buddy_segment_map_root()!
        guard let leaf = buddy_atomic_load_ptr_acquire(root + Int(address >> UInt(leafShift))) else {
            return nil
        }
        let entry = leaf.assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
            + Int((address >> UInt(granuleShift)) & UInt(leafEntries - 1))
        return buddy_atomic_load_ptr_acquire(entry)?.assumingMemoryBound(to: Segment.self)
    }

    /// Points every granule of the descriptor's range at it (nil to clear). Fails only when a
    /// leaf cannot be mapped, or when the range is beyond the 47-bit user address space.
    package static func assign(_ base: UInt, _ size: UInt, _ descriptor: UnsafeMutablePointer<Segment>?) -> Bool {
        guard (base &+ size) >> UInt(addressBits) == 0 else { return false }
        buddy_lock(buddy_map_lock())
        defer { buddy_unlock(buddy_map_lock()) }
        let root = buddy_segment_map_root()!
        var address = base
        while address < base &+ size {
            let slot = root + Int(address >> UInt(leafShift))
            var leaf = slot.pointee
            if leaf == nil {
                if descriptor == nil { address &+= 1 << UInt(granuleShift); continue }
                let bytes = leafEntries * MemoryLayout<UnsafeMutableRawPointer?>.stride
                guard let fresh = buddy_os_map_aligned(bytes, buddy_os_page_size()) else { return false }
                buddy_atomic_store_ptr_release(slot, fresh)
                leaf = fresh
            }
            let entry = leaf!.assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
                + Int((address >> UInt(granuleShift)) & UInt(leafEntries - 1))
            buddy_atomic_store_ptr_release(entry, descriptor.map { UnsafeMutableRawPointer($0) })
            address &+= 1 << UInt(granuleShift)
        }
        return true
    }
}
