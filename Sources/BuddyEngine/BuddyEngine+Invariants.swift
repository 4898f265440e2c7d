/// The executable form of the pool's invariants. Tests call it after every step; it walks every
/// free list and every segment's order map, so it is O(pool size) and never on the malloc path.
extension BuddyEngine {
    /// Returns nil when every invariant holds, else the first one found broken:
    ///
    ///     sum over orders of freeArea[k].count == number of free tags in all order maps
    ///     every block on a segment's freeArea[k] has tag (free | k), lies in that segment,
    ///         and is aligned to size(k)                  => on exactly one list, its order's
    ///     tag(block ^ size(k)) != (free | k)  for each free block with k < maxOrder
    ///     the tags of each segment tile [base, base + frontier) with blocks
    ///     segment.freeBytes == free block bytes + (size - frontier)
    ///     freeBytes + allocatedBytes == segmentBytes
    ///     (blocks in thread caches count as allocated: the pool handed them out)
    ///     every slab block satisfies Slab.swift's invariants (checkSlab, checkSlabClasses)
    public func checkInvariants() -> StaticString? {
        var cached = 0
        return checkInvariants(cachedBlocks: &cached)
    }

    /// As checkInvariants(), also counting the blocks and slab objects its caches hold (tagged
    /// used with the cache mark, or tagged cached: quarantined), for the owner's own check.
    package func checkInvariants(cachedBlocks: inout Int) -> StaticString? {
        let geometry = self.geometry
        let s = state.pointee
        var listed = 0
        var owner = s.segments
        while let segment = owner {
            for order in 0...geometry.maxOrder {
                let area = segment.pointee.freeAreas[order]
                if (segment.pointee.nonEmpty >> UInt64(order)) & 1 != (area.count > 0 ? 1 : 0) { return "nonEmpty bit disagrees with the free area count" }
                var walked = 0
                var previous: UnsafeMutablePointer<FreeLink>? = nil
                var block = area.head
                while let b = block {
                    walked += 1
                    if walked > area.count { return "free list longer than its count (a cycle or a stray block)" }
                    if b.pointee.prev != previous { return "free list back link broken" }
                    let address = UInt(bitPattern: b)
                    guard self.segment(containing: address) == segment else { return "free block on another segment's free area" }
                    if (address &- segment.pointee.base) & UInt(geometry.size(ofOrder: order) - 1) != 0 { return "free block not aligned to its size" }
                    if segment.pointee.orderMap[slot(address, in: segment)] != Tag.free | UInt8(order) { return "block on a free list is not tagged free with that order" }
                    if order < geometry.maxOrder {
                        let buddy = address ^ UInt(geometry.size(ofOrder: order))
                        if segment.pointee.orderMap[slot(buddy, in: segment)] == Tag.free | UInt8(order) { return "free block has a free buddy of the same order" }
                    }
                    previous = b
                    block = b.pointee.next
                }
                if walked != area.count { return "free list shorter than its count" }
                listed += walked
            }
            owner = segment.pointee.next
        }
        var slabs = SlabTally()
        var tagged = 0
        var freeTotal: UInt = 0, usedTotal: UInt = 0, bytesTotal: UInt = 0, uncarved: UInt = 0, count = 0
        var segment = s.segments
        while let current = segment {
            let seg = current.pointee
            count += 1
            if seg.base & (seg.size - 1) != 0 { return "segment not aligned to its size" }
            if SegmentMap.lookup(seg.base) != current || SegmentMap.lookup(seg.base + seg.size - 1) != current { return "segment map does not point at the segment" }
            var offset: UInt = 0
            var segmentFree: UInt = 0
            while offset < seg.frontier {
                let index = Int(offset >> UInt(geometry.minShift))
                let tag = seg.orderMap[index]
                if tag == 0 { return "order map has a hole: a slot that starts no block" }
                if tag == Tag.used | Tag.slabBlock {
                    let header = UnsafeMutablePointer<SlabHeader>(bitPattern: seg.base &+ offset)!
                    if let problem = checkSlab(header, in: current, tally: &slabs) { return problem }
                    let size = UInt(SlabClass.slabBytes(Int(header.pointee.slabClass)))
                    if offset & (size - 1) != 0 { return "slab not aligned to its size" }
                    usedTotal &+= size
                    offset &+= size
                    continue
                }
                let order = Int(tag & Tag.orderMask)
                if order > geometry.maxOrder { return "order map holds an order above the maximum" }
                let size = UInt(geometry.size(ofOrder: order))
                if offset & (size - 1) != 0 { return "block not aligned to its size" }
                var inner = 1
                while inner < Int(size >> UInt(geometry.minShift)) {
                    if seg.orderMap[index + inner] != 0 { return "tag inside a block" }
                    inner += 1
                }
                if tag & Tag.stateMask == Tag.free { tagged += 1; segmentFree &+= size } else { usedTotal &+= size }
                if tag & Tag.stateMask == Tag.cached || (tag & Tag.stateMask == Tag.used && isCacheMarked(seg.base &+ offset, tag: tag, in: current)) {
                    cachedBlocks &+= 1
                }
                offset &+= size
            }
            if offset != seg.frontier { return "blocks run past the frontier" }
            if seg.freeBytes != segmentFree &+ (seg.size &- seg.frontier) { return "segment freeBytes disagrees with its order map" }
            freeTotal &+= seg.freeBytes
            bytesTotal &+= seg.size
            uncarved &+= seg.size &- seg.frontier
            segment = seg.next
        }
        if let problem = checkSlabClasses(slabs) { return problem }
        cachedBlocks &+= slabs.cached
        if tagged != listed { return "free blocks in the order maps and on the free lists differ in number" }
        if count != s.segmentCount || bytesTotal != s.segmentBytes { return "segment count or bytes disagree with the list" }
        if uncarved != s.uncarvedBytes { return "uncarved bytes disagree with the segments" }
        if freeTotal != s.freeBytes || usedTotal != s.allocatedBytes { return "pool free or allocated bytes disagree with the order maps" }
        if s.freeBytes &+ s.allocatedBytes != s.segmentBytes { return "freeBytes + allocatedBytes != segmentBytes" }
        return nil
    }
}
