import CBuddySupport

extension BuddyEngine {
    /// Resizes the allocated block at `pointer` (of `order`) to `newOrder` without moving it:
    /// a shrink frees the upper halves; a growth absorbs free buddies above it, and fails
    /// (returning false, changing nothing) unless each of them is free.
    public func resizeInPlace(_ pointer: UnsafeMutableRawPointer, from order: Int, to newOrder: Int) -> Bool {
        let geometry = self.geometry
        let address = UInt(bitPattern: pointer)
        let segment = SegmentMap.lookup(address)!
        let map = segment.pointee.orderMap
        if newOrder == order { return true }
        // A block whose new size class its segment does not serve moves, so that it does not
        // stay behind among blocks of another class (see "Segments by size class").
        if segregated && !serves(segment, sizeClass: sizeClass(ofOrder: newOrder)) { return false }
        if newOrder < order {
            map[slot(address, in: segment)] = Tag.used | UInt8(truncatingIfNeeded: newOrder)
            split(address, from: order, to: newOrder, in: segment)
        } else {
            var level = order
            while level < newOrder {
                let size = UInt(geometry.size(ofOrder: level))
                guard address & size == 0, map[slot(address &+ size, in: segment)] == Tag.free | UInt8(truncatingIfNeeded: level) else {
                    return false
                }
                level &+= 1
            }
            level = order
            while level < newOrder {
                let buddy = address &+ UInt(geometry.size(ofOrder: level))
                remove(UnsafeMutablePointer(bitPattern: buddy)!, order: level, in: segment)
                map[slot(buddy, in: segment)] = 0
                state.pointee.counters.coalesces &+= 1
                state.pointee.stats.coalesces.add(level)
                level &+= 1
            }
            map[slot(address, in: segment)] = Tag.used | UInt8(truncatingIfNeeded: newOrder)
        }
        let old = UInt(geometry.size(ofOrder: order)), new = UInt(geometry.size(ofOrder: newOrder))
        segment.pointee.freeBytes = segment.pointee.freeBytes &+ old &- new
        state.pointee.freeBytes = state.pointee.freeBytes &+ old &- new
        state.pointee.allocatedBytes = state.pointee.allocatedBytes &- old &+ new
        state.pointee.counters.reallocInPlace &+= 1
        notePeakAllocated()
        return true
    }
}
