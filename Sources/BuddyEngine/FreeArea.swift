import CBuddySupport

/// A free block's list links, stored in the free block itself (every block holds >= 16 bytes).
package struct FreeLink {
    package var next: UnsafeMutablePointer<FreeLink>?
    package var prev: UnsafeMutablePointer<FreeLink>?
}

/// The free area of one order: a doubly linked list (so a buddy leaves it in O(1)) and its length.
package struct FreeArea {
    package var head: UnsafeMutablePointer<FreeLink>?
    package var count: Int
}

extension BuddyEngine {
    /// The address of a block's tag byte in its segment's order map.
    @inlinable @inline(__always) package func tagAddress(_ address: UnsafeMutableRawPointer) -> UnsafeMutablePointer<UInt8> {
        let a = UInt(bitPattern: address)
        let segment = SegmentMap.lookup(a)!
        return segment.pointee.orderMap + slot(a, in: segment)
    }

    // MARK: Free areas

    @inline(__always) package func push(_ block: UnsafeMutablePointer<FreeLink>, order: Int, in segment: UnsafeMutablePointer<Segment>,
                                released: Bool = false) {
        let area = segment.pointee.freeAreas + order
        block.pointee = FreeLink(next: area.pointee.head, prev: nil)
        if geometry.size(ofOrder: order) >= BuddyEngine.releaseMinBlock {
            // Written on every push, so a program's old data never passes for the mark.
            UnsafeMutableRawPointer(block).storeBytes(of: released ? BuddyEngine.releasedMark : 0,
                                                      toByteOffset: BuddyEngine.releasedMarkOffset, as: UInt64.self)
        }
        area.pointee.head?.pointee.prev = block
        area.pointee.head = block
        area.pointee.count &+= 1
        segment.pointee.nonEmpty |= 1 &<< UInt64(order)
    }

    @inline(__always) package func remove(_ block: UnsafeMutablePointer<FreeLink>, order: Int, in segment: UnsafeMutablePointer<Segment>) {
        let area = segment.pointee.freeAreas + order
        let link = block.pointee
        // Safe unlinking (glibc's "corrupted double-linked list" check): a free block's links
        // live in the block, where a program writing after free can reach them. Each must lie in
        // this segment, on a block boundary, and link back to this block, before either is
        // followed for a write:
        //     next == nil || next.prev == block,    prev == nil ? head == block : prev.next == block
        if _slowPath(!linksValid(block, order: order, in: segment)) { freeListCorrupted(block) }
        if let prev = link.prev { prev.pointee.next = link.next } else { area.pointee.head = link.next }
        link.next?.pointee.prev = link.prev
        area.pointee.count &-= 1
        if area.pointee.count == 0 { segment.pointee.nonEmpty &= ~(1 &<< UInt64(order)) }
    }

    /// Records that the block (or slab object) at `address` is handed out (Segment.handedOut).
    @inline(__always) package func markHandedOut(_ address: UInt, in segment: UnsafeMutablePointer<Segment>) {
        let s = slot(address, in: segment)
        segment.pointee.handedOut.unsafelyUnwrapped[s &>> 6] |= 1 &<< UInt64(s & 63)
    }

    @inline(__always) package func wasHandedOut(_ address: UInt, in segment: UnsafeMutablePointer<Segment>) -> Bool {
        let s = slot(address, in: segment)
        return segment.pointee.handedOut.unsafelyUnwrapped[s &>> 6] & (1 &<< UInt64(s & 63)) != 0
    }

    /// Whether the links of `block`, free on the list of `order`, can be followed (see remove).
    @inline(__always) package func linksValid(_ block: UnsafeMutablePointer<FreeLink>, order: Int, in segment: UnsafeMutablePointer<Segment>) -> Bool {
        let link = block.pointee
        let mask = UInt(geometry.minBlock &- 1)
        if let next = link.next {
            let a = UInt(bitPattern: next)
            if !segment.pointee.contains(a) || a & mask != 0 || next.pointee.prev != block { return false }
        }
        if let prev = link.prev {
            let a = UInt(bitPattern: prev)
            if !segment.pointee.contains(a) || a & mask != 0 || prev.pointee.next != block { return false }
        } else if (segment.pointee.freeAreas + order).pointee.head != block {
            return false
        }
        return true
    }

    /// A block was freed and ends at `end`: when the block that follows it is free, its links
    /// (at its start, where an overflow of the freed block lands first) must still be valid.
    /// Catches an overflow into a free neighbour at the free that follows it, rather than at
    /// the allocation that would unlink the neighbour (which may never come). On the release
    /// path only (lock held): a tag load, and a few more loads when the neighbour is free.
    @inline(__always) package func checkFreeNeighbour(at end: UInt, in segment: UnsafeMutablePointer<Segment>) {
        guard end &- segment.pointee.base < segment.pointee.frontier else { return }
        let tag = segment.pointee.orderMap[slot(end, in: segment)]
        guard tag & Tag.stateMask == Tag.free, Int(tag & Tag.orderMask) <= geometry.maxOrder else { return }
        let neighbour = UnsafeMutablePointer<FreeLink>(bitPattern: end)!
        if _slowPath(!linksValid(neighbour, order: Int(tag & Tag.orderMask), in: segment)) { freeListCorrupted(neighbour, overflow: true) }
    }

    /// A free area's list is broken at `block` (see remove): the pool cannot trust its free lists
    /// any more, whatever the error strategy, so this stops the program with a message.
    @inline(never)
    package func freeListCorrupted(_ block: UnsafeMutablePointer<FreeLink>, overflow: Bool = false) -> Never {
        corrupted(UnsafeRawPointer(block), overflow ? .neighbourLinks : .freeLinks)
    }

    /// Heap corruption the engine found: the owner reports it (EngineHooks.corruption), or the
    /// engine writes one line; then the program stops.
    @inline(never)
    package func corrupted(_ block: UnsafeRawPointer, _ cause: EngineCorruption) -> Never {
        if let hook = state.pointee.hooks.corruption {
            buddy_call_corruption_hook(hook, UnsafeMutableRawPointer(state), block, cause.rawValue)
        } else {
            var line = TextBuffer()
            line.append("buddy: heap corruption: the free block at ")
            line.append(hex: UInt(bitPattern: block))
            line.append(" has invalid links (a write after free, or an overflow of the block before it); aborting\n")
            line.write(to: 2)
        }
        buddy_os_abort()
    }
}
