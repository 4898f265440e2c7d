import CBuddySupport

extension BuddyEngine {
    // MARK: Segments

    /// Hands out the segment's next untouched top-order block, if it has one.
    @inline(__always)
    package func carveTopBlock(from segment: UnsafeMutablePointer<Segment>) -> UnsafeMutablePointer<FreeLink>? {
        guard segment.pointee.frontier < segment.pointee.size else { return nil }
        let address = segment.pointee.base &+ segment.pointee.frontier
        let bytes = UInt(geometry.maxBlock)
        segment.pointee.frontier &+= bytes
        state.pointee.uncarvedBytes &-= bytes
        return UnsafeMutablePointer(bitPattern: address)!
    }

    /// Maps a new segment: the pool grows from S to about S * growthFactor bytes, in a power of
    /// two >= the minimum segment, capped by maxPoolSize (falling back to the minimum segment).
    /// When the OS refuses (ulimit -v, overcommit), half the size is tried, down to the minimum
    /// segment (the smallest that holds a top-order block, so any request). For a second after
    /// a refusal (or until the pool unmaps a segment), growth starts below the refused size, so
    /// a failing request costs one failed mmap (as glibc's does), not the whole halving again;
    /// the minimum segment is always tried (the address space may have come back meanwhile).
    package func grow(sizeClass: UInt8 = 0) -> UnsafeMutablePointer<Segment>? {
        let config = state.pointee.config
        let current = Int(state.pointee.segmentBytes)
        let minimum = config.minSegment
        var size = minimum
        let wanted = Double(current) * (config.growthFactor - 1.0)
        if wanted > Double(size) { size = roundUpToPowerOfTwo(wanted >= 0x1p40 ? 1 << 40 : Int(wanted)) }
        if config.maxPoolSize != 0 && current + size > config.maxPoolSize {
            size = minimum
            if current + size > config.maxPoolSize { return nil }
        }
        if mapRecentlyRefused { size = max(minimum, min(size, state.pointee.refusedSegmentSize / 2)) }
        while true {
            if let segment = mapSegment(size: size) {
                segment.pointee.sizeClass = sizeClass
                return segment
            }
            state.pointee.refusedSegmentSize = size
            state.pointee.refusedAt = buddy_os_monotonic_ns()
            if size <= minimum { return nil }
            size /= 2
        }
    }

    /// How long a refused segment size is not tried again (unless the pool unmaps a segment).
    package static let refusalMemoryNs: UInt64 = 1_000_000_000

    /// Whether the OS refused a segment less than refusalMemoryNs ago (and the pool has not
    /// unmapped one since); forgets an older refusal.
    package var mapRecentlyRefused: Bool {
        if state.pointee.refusedSegmentSize == 0 { return false }
        if buddy_os_monotonic_ns() &- state.pointee.refusedAt < BuddyEngine.refusalMemoryNs { return true }
        state.pointee.refusedSegmentSize = 0
        return false
    }

    // MARK: Segments by size class
    //
    // A buddy pool's enemy is the small block that sits alone in a large free region: one live
    // 16-byte block keeps its 64 KiB (and 1 MiB ...) ancestor from ever being whole again, so a
    // program that mixes sizes ends up with free memory in many small blocks and no block for a
    // large request (the pool grows although most of it is free). With size classes, small,
    // medium and large blocks come from different segments, so small ones crowd together
    // and the large ones' segments stay made of large blocks.

    package var segregated: Bool { state.pointee.config.smallBlocksBelow != 0 || state.pointee.config.largeBlocksFrom != 0 }

    /// Whether `segment` serves blocks of size class `sizeClass`: its own class's, and the pool's
    /// first segment every class below the large blocks'. (A small program's blocks under 32 KiB
    /// then share the one segment the pool starts with: each further segment costs its order map
    /// and the pages its first split chain touches, in every process the library is loaded into.)
    @inline(__always) package func serves(_ segment: UnsafeMutablePointer<Segment>, sizeClass: UInt8) -> Bool {
        segment.pointee.sizeClass == sizeClass || (segment.pointee.pinned && sizeClass < BuddyEngine.largeSizeClass)
    }

    /// The size class of blocks of `largeBlocksFrom` and up.
    package static let largeSizeClass: UInt8 = 2

    @inline(__always) package func sizeClass(ofOrder order: Int) -> UInt8 {
        let size = geometry.size(ofOrder: order)
        let config = state.pointee.config
        if config.smallBlocksBelow != 0 && size < config.smallBlocksBelow { return 0 }
        if config.largeBlocksFrom != 0 && size >= config.largeBlocksFrom { return BuddyEngine.largeSizeClass }
        return config.smallBlocksBelow != 0 ? 1 : 0
    }

    @discardableResult
    package func mapSegment(size: Int) -> UnsafeMutablePointer<Segment>? {
        guard let memory = buddy_os_map_aligned(size, size) else { return nil }
        guard let segment = addSegment(base: UInt(bitPattern: memory), size: UInt(size), orderMap: nil, ownsMemory: true) else {
            buddy_os_unmap(memory, size)
            return nil
        }
        return segment
    }

    package func addSegment(base: UInt, size: UInt, orderMap: UnsafeMutablePointer<UInt8>?, ownsMemory: Bool) -> UnsafeMutablePointer<Segment>? {
        let page = buddy_os_page_size()
        // One mapping holds the order map (a byte per minimum block) and the free areas.
        let tagBytes = (Int(size >> UInt(geometry.minShift)) + 15) & ~15
        let areaBytes = (geometry.maxOrder + 1) * MemoryLayout<FreeArea>.stride
        let handedOutBytes = (tagBytes / 8 + 7) & ~7
        let mapBytes = (tagBytes + areaBytes + handedOutBytes + page - 1) & ~(page - 1)
        guard let map = buddy_os_map_aligned(mapBytes, page) else { return nil }
        guard let descriptor = SegmentTable.acquire() else {
            buddy_os_unmap(map, mapBytes)
            return nil
        }
        let areas = (map + tagBytes).bindMemory(to: FreeArea.self, capacity: geometry.maxOrder + 1)
        areas.initialize(repeating: FreeArea(head: nil, count: 0), count: geometry.maxOrder + 1)
        descriptor.pointee = Segment(
            base: base, size: size, pool: UnsafeMutableRawPointer(state),
            orderMap: map.bindMemory(to: UInt8.self, capacity: tagBytes), orderMapBytes: mapBytes,
            frontier: 0, freeBytes: size, freeAreas: areas, nonEmpty: 0, next: nil, ownsMemory: ownsMemory,
            pinned: state.pointee.segments == nil)
        // Memory the pool mapped reads as zero until a block carved from it is used (a caller's
        // arena may hold anything).
        descriptor.pointee.tailIsZero = ownsMemory
        descriptor.pointee.handedOut = (map + tagBytes + areaBytes).bindMemory(to: UInt64.self, capacity: handedOutBytes / 8)
        guard SegmentMap.assign(base, size, descriptor) else {
            _ = SegmentMap.assign(base, size, nil)
            buddy_os_unmap(map, mapBytes)
            SegmentTable.release(descriptor)
            return nil
        }
        // Append: the list stays oldest first.
        if var last = state.pointee.segments {
            while let next = last.pointee.next { last = next }
            last.pointee.next = descriptor
        } else {
            state.pointee.segments = descriptor
        }
        state.pointee.segmentCount &+= 1
        state.pointee.segmentBytes &+= size
        state.pointee.freeBytes &+= size
        state.pointee.uncarvedBytes &+= size
        state.pointee.counters.segmentsAdded &+= 1
        return descriptor
    }

    /// Takes a segment out of the pool. With `unlinkFreeBlocks`, the segment is entirely free
    /// and its carved top-order blocks leave the free area first.
    package func removeSegment(_ segment: UnsafeMutablePointer<Segment>, unlinkFreeBlocks: Bool) {
        let s = segment.pointee
        // The segment's free areas go with it: nothing to unlink elsewhere.
        if unlinkFreeBlocks {
            state.pointee.freeBytes &-= s.size
        } else {
            state.pointee.freeBytes &-= s.freeBytes
            state.pointee.allocatedBytes &-= s.size &- s.freeBytes
        }
        _ = SegmentMap.assign(s.base, s.size, nil)
        // No copy of the range may survive (malloc's thread caches keep one: the hook clears it).
        if let hook = state.pointee.hooks.segmentRemoved { buddy_call_segment_hook(hook, UnsafeMutableRawPointer(state), s.base) }
        // Unlink from the pool's list.
        if state.pointee.segments == segment {
            state.pointee.segments = s.next
        } else {
            var previous = state.pointee.segments
            while let p = previous, p.pointee.next != segment { previous = p.pointee.next }
            previous?.pointee.next = s.next
        }
        state.pointee.segmentCount &-= 1
        state.pointee.segmentBytes &-= s.size
        state.pointee.uncarvedBytes &-= s.size &- s.frontier
        state.pointee.counters.segmentsReleased &+= 1
        state.pointee.refusedSegmentSize = 0 // address space came back: a larger mapping may fit again
        if s.ownsMemory { buddy_os_unmap(UnsafeMutableRawPointer(bitPattern: s.base), Int(s.size)) }
        buddy_os_unmap(s.orderMap, s.orderMapBytes)
        SegmentTable.release(segment)
    }
}
