import CBuddySupport

extension BuddyEngine {
    // MARK: Dispatch: a block of an order, or a slab object (Slab.swift)

    /// An allocation of `code`: a block of that order or an object of that slab class.
    /// `dirtyBytes` as in allocate(order:): objects are always dirty (left as the caller set it).
    /// `mayCarve` as in allocate(order:).
    @inlinable @inline(__always) public func allocate(code: Int, mayGrow: Bool, mayCarve: Bool = true, dirtyBytes: UnsafeMutablePointer<Int>? = nil) -> UnsafeMutableRawPointer? {
        code <= geometry.maxOrder ? allocate(order: code, mayGrow: mayGrow, mayCarve: mayCarve, dirtyBytes: dirtyBytes)
            : allocateObject(code: code, mayGrow: mayGrow, mayCarve: mayCarve)
    }

    /// Gives back an allocation of `code` (a block, coalesced; or an object, to its slab).
    @inlinable @inline(__always) public func release(_ address: UInt, code: Int, segment: UnsafeMutablePointer<Segment>) {
        if code <= geometry.maxOrder { releaseBlock(address, order: code, segment: segment) }
        else { releaseObject(address, code: code, segment: segment) }
    }

    // MARK: Blocks

    // MARK: Allocation

    /// Allocates a block of `order`, splitting a larger one, carving a segment's untouched tail,
    /// or mapping a new segment. Nil when the pool may not grow (or the OS says no).
    public func allocate(order: Int) -> UnsafeMutableRawPointer? {
        allocate(order: order, mayGrow: true)
    }

    /// As `allocate(order:)`; with `mayGrow` false it fails (without counting a failure) rather
    /// than map a segment, so a caller can first give back what it holds (its thread cache).
    /// With `dirtyBytes`, it says how many bytes at the block's start may be non-zero: the rest
    /// reads as zero (calloc clears only those). 0 for a block carved from a segment's tail that
    /// no one has touched since mmap; a page for a block whose pages went back to the OS (its
    /// first page keeps the free-list links and the released mark); else the whole block.
    /// With `mayCarve` false (and `mayGrow` false) only free blocks serve: no segment's untouched
    /// tail, so a caller holding free memory elsewhere (malloc's depot) can give it back first
    /// rather than touch new pages.
    public func allocate(order: Int, mayGrow: Bool, mayCarve: Bool = true, dirtyBytes: UnsafeMutablePointer<Int>? = nil) -> UnsafeMutableRawPointer? {
        allocate(order: order, mayGrow: mayGrow, mayCarve: mayCarve, dirtyBytes: dirtyBytes, sizeClass: sizeClass(ofOrder: order))
    }

    /// As `allocate(order:mayGrow:mayCarve:dirtyBytes:)`, from segments of size class `wanted`
    /// first (a slab's: that of its objects' size, not of the slab's).
    package func allocate(order: Int, mayGrow: Bool, mayCarve: Bool, dirtyBytes: UnsafeMutablePointer<Int>?, sizeClass wanted: UInt8) -> UnsafeMutableRawPointer? {
        let geometry = self.geometry
        // The oldest segment of the order's size class that can serve the request serves it
        // (newer segments drain); then a new segment of that class; then, when the pool may not
        // grow (BUDDY_MAX_POOL, or the OS said no), any segment. While the OS refuses segments,
        // any segment comes before a new one: no mmap that is likely to fail.
        var found = take(order: order, sizeClass: wanted, mayCarve: mayCarve || mayGrow)
        if found == nil, mayGrow, segregated, mapRecentlyRefused { found = take(order: order, sizeClass: BuddyEngine.anySizeClass) }
        if found == nil, mayGrow {
            found = growOrTakeAny(order: order, sizeClass: wanted)
            // At the limit (BUDDY_MAX_POOL, or the OS refused): the empty slabs the classes keep
            // go back first (they coalesce with their buddies), then one more try; growing again
            // only if that unmapped a segment. (The callers flushed their thread's cache before
            // asking to grow.)
            let segmentBytes = state.pointee.segmentBytes
            if found == nil, releaseEmptySlabs() > 0 {
                found = take(order: order, sizeClass: wanted)
                    ?? (state.pointee.segmentBytes < segmentBytes ? growOrTakeAny(order: order, sizeClass: wanted)
                        : segregated ? take(order: order, sizeClass: BuddyEngine.anySizeClass) : nil)
            }
        }
        guard let (block, takenOrder, segment, carved) = found else {
            if mayGrow { state.pointee.counters.failedAllocations &+= 1 }
            return nil
        }
        let (pristine, released) = pages(of: block, order: takenOrder, in: segment, carved: carved)
        if let dirtyBytes {
            let bytes = geometry.size(ofOrder: order)
            dirtyBytes.pointee = pristine ? 0 : released ? min(buddy_os_page_size(), bytes) : bytes
        }
        _ = handOut(UInt(bitPattern: block), blocks: 1, order: order, from: takenOrder, in: segment, released: released)
        return UnsafeMutableRawPointer(block)
    }

    /// A run for a thread cache's refill: up to `count` blocks of `order`, contiguous and tagged
    /// used, cut from one free block (or, with `mayCarve`, a segment's untouched tail) of the
    /// free areas `allocate(order:)` would take it from. It never grows the pool: nil when
    /// nothing serves.
    ///
    /// A run of 2^j blocks costs one free-area removal and one tag per block. Taking them one at
    /// a time split each from the block above it: two free-area operations a block, on the
    /// links of blocks the cache was about to hand out (smallbatch: 190 instructions a block,
    /// most of them waiting on those links). The counters say the same as 2^j single
    /// allocations would (handOut), with
    ///
    ///     blocks = 2^j, with 2^j <= count and order + j <= the order of the block taken
    ///
    /// `tag` is the first block's tag; block i's is `tag + (i << order)` (a block of order k
    /// spans 2^k slots of the order map).
    package func allocateRun(order: Int, count: Int, mayCarve: Bool)
        -> (first: UInt, blocks: Int, tag: UnsafeMutablePointer<UInt8>)? {
        guard count > 0, let (block, takenOrder, segment, carved) = take(order: order, sizeClass: sizeClass(ofOrder: order), mayCarve: mayCarve)
        else { return nil }
        let address = UInt(bitPattern: block)
        // As many blocks as asked for (rounded down to a power of two), at most the block taken.
        let blocks = 1 &<< (min(takenOrder, order &+ (Int.bitWidth &- 1 &- count.leadingZeroBitCount)) &- order)
        let tag = handOut(address, blocks: blocks, order: order, from: takenOrder, in: segment,
                          released: pages(of: block, order: takenOrder, in: segment, carved: carved).released)
        return (address, blocks, tag)
    }

    /// What a block taken off a free area, or `carved` from a segment's tail, holds: `pristine`
    /// when it was never touched (if the pool mapped it: an arena, or a segment after reset, may
    /// hold anything), `released` when its pages went back to the OS (a pristine one's too).
    @inline(__always)
    private func pages(of block: UnsafeMutablePointer<FreeLink>, order: Int, in segment: UnsafeMutablePointer<Segment>,
                       carved: Bool) -> (pristine: Bool, released: Bool) {
        let pristine = carved && segment.pointee.tailIsZero
        return (pristine, pristine || (!carved && isReleased(UnsafeMutableRawPointer(block), order: order)))
    }

    /// Hands out the `blocks` (2^j) blocks of `order` at `address`, the lower end of a block of
    /// order `takenOrder` taken off its free area: the part above them goes back to the free
    /// areas (split: an upper half of a released block lies in its released pages, released
    /// too), each is tagged used and marked handed out, and the pool counts them, with the
    /// splits they stand for, as if each had been split off on its own:
    ///
    ///     splits of order m (order < m <= order + j) = 2^(order + j - m)
    ///
    /// Returns the first block's tag. (@_transparent: with @inline(__always) the optimizer kept
    /// it a call, 0.7% more instructions in smallbatch's shape than the two copies it replaces.)
    @_transparent
    private func handOut(_ address: UInt, blocks: Int, order: Int, from takenOrder: Int, in segment: UnsafeMutablePointer<Segment>,
                         released: Bool) -> UnsafeMutablePointer<UInt8> {
        let runOrder = order &+ blocks.trailingZeroBitCount
        split(address, from: takenOrder, to: runOrder, in: segment, released: released)
        var m = runOrder
        while m > order {
            let splits = 1 &<< (runOrder &- m)
            state.pointee.counters.splits &+= UInt64(splits)
            state.pointee.stats.splits.add(m, UInt64(splits))
            m &-= 1
        }
        let tag = segment.pointee.orderMap + slot(address, in: segment)
        let size = UInt(geometry.size(ofOrder: order))
        for i in 0..<blocks {
            tag[i &<< order] = Tag.used | UInt8(truncatingIfNeeded: order)
            markHandedOut(address &+ UInt(i) &* size, in: segment)
        }
        let bytes = size &* UInt(blocks)
        segment.pointee.freeBytes &-= bytes
        state.pointee.freeBytes &-= bytes
        state.pointee.allocatedBytes &+= bytes
        state.pointee.counters.allocations &+= UInt64(blocks)
        state.pointee.stats.countEngineBlockAllocated(UInt64(blocks))
        notePeakAllocated()
        return tag
    }

    /// Split: the block at `address` goes from `order` down to `newOrder`, keeping its lower
    /// half each time and putting the upper half, `address + size(k)`, on the free area of k
    /// (tagged free | k), for k = order - 1 down to newOrder. `released`: the block's pages went
    /// back to the OS, and so did its upper halves'.
    @inline(__always)
    func split(_ address: UInt, from order: Int, to newOrder: Int, in segment: UnsafeMutablePointer<Segment>, released: Bool = false) {
        var upperOrder = order
        while upperOrder > newOrder {
            upperOrder &-= 1
            let upper = address &+ UInt(geometry.size(ofOrder: upperOrder))
            segment.pointee.orderMap[slot(upper, in: segment)] = Tag.free | UInt8(truncatingIfNeeded: upperOrder)
            push(UnsafeMutablePointer(bitPattern: upper)!, order: upperOrder, in: segment, released: released)
            state.pointee.counters.splits &+= 1
            state.pointee.stats.splits.add(upperOrder &+ 1)
        }
    }

    /// peakAllocatedBytes = max(peakAllocatedBytes, allocatedBytes), after every growth.
    @inline(__always) func notePeakAllocated() {
        if UInt64(state.pointee.allocatedBytes) > state.pointee.counters.peakAllocatedBytes {
            state.pointee.counters.peakAllocatedBytes = UInt64(state.pointee.allocatedBytes)
        }
    }

    /// A block for `order` when this class's segments have none: from a segment no block
    /// holds (after the empty slab each class keeps, Slab.swift, went back: one holds its
    /// segment from ever being empty, and its going back may free room in this class's segments
    /// too); else a new segment's first top-order block; when the pool may not grow, a block of
    /// any size class's segments.
    private func growOrTakeAny(order: Int, sizeClass wanted: UInt8)
        -> (block: UnsafeMutablePointer<FreeLink>, order: Int, segment: UnsafeMutablePointer<Segment>, carved: Bool)? {
        if segregated {
            if let found = takeFromEmptySegment(order: order, sizeClass: wanted) { return found }
            if releaseEmptySlabs() > 0,
               let found = take(order: order, sizeClass: wanted) ?? takeFromEmptySegment(order: order, sizeClass: wanted) { return found }
        }
        if let grown = grow(sizeClass: wanted), let top = carveTopBlock(from: grown) { return (top, geometry.maxOrder, grown, true) }
        return segregated ? take(order: order, sizeClass: BuddyEngine.anySizeClass) : nil
    }

    /// A block for `order` from the oldest segment of another class that holds no block at all
    /// (not the pool's first, which serves every class below the large blocks'), which becomes
    /// a segment of class `wanted`; nil when there is none. An empty segment has nothing to keep
    /// apart from the new class's blocks, and its pages were touched already: a program that
    /// moves through sizes (24 MiB of 512-byte blocks freed, then 24 MiB of 64 KiB ones, and so
    /// on: Tests/Programs/size_phases.c) ended with 56 MiB resident in 4 segments, one mapped
    /// per class, and now with 32 MiB in 3.
    private func takeFromEmptySegment(order: Int, sizeClass wanted: UInt8)
        -> (block: UnsafeMutablePointer<FreeLink>, order: Int, segment: UnsafeMutablePointer<Segment>, carved: Bool)? {
        var candidate = state.pointee.segments
        while let current = candidate {
            if !current.pointee.pinned && current.pointee.sizeClass != wanted && current.pointee.freeBytes == current.pointee.size {
                current.pointee.sizeClass = wanted
                return take(order: order, sizeClass: wanted)
            }
            candidate = current.pointee.next
        }
        return nil
    }

    /// Matches a segment of any size class in `take`.
    package static let anySizeClass: UInt8 = 0xFF

    /// A free block for `order` from the oldest segment of `sizeClass` that has one: from its free
    /// areas (the smallest order that fits), else from its uncarved tail (`carved`).
    @inline(__always)
    private func take(order: Int, sizeClass: UInt8, mayCarve: Bool = true)
        -> (block: UnsafeMutablePointer<FreeLink>, order: Int, segment: UnsafeMutablePointer<Segment>, carved: Bool)? {
        var candidate = state.pointee.segments
        while let current = candidate {
            if sizeClass == BuddyEngine.anySizeClass || serves(current, sizeClass: sizeClass) {
                let fitting = current.pointee.nonEmpty & (~0 &<< UInt64(order))
                if fitting != 0 {
                    let blockOrder = fitting.trailingZeroBitCount
                    let block = current.pointee.freeAreas[blockOrder].head!
                    remove(block, order: blockOrder, in: current)
                    return (block, blockOrder, current, false)
                }
                if mayCarve, let top = carveTopBlock(from: current) { return (top, geometry.maxOrder, current, true) }
            }
            candidate = current.pointee.next
        }
        return nil
    }

    /// Outcome of a release.
    public enum ReleaseOutcome: Equatable, Sendable {
        case released
        case doubleFree
        case invalidPointer
        case foreign
        case otherPool
    }

    /// Frees the allocated block at `pointer`, coalescing it with its free buddy repeatedly.
    /// Any other pointer is classified and the pool is left untouched.
    public func release(_ pointer: UnsafeMutableRawPointer) -> ReleaseOutcome {
        switch classify(pointer) {
        case .allocated(let code):
            let address = UInt(bitPattern: pointer)
            release(address, code: code, segment: SegmentMap.lookup(address)!)
            return .released
        case .free:
            countBadPointer(.doubleFree)
            return .doubleFree
        case .interior:
            countBadPointer(.invalidPointer)
            return .invalidPointer
        case .foreign: return .foreign
        case .otherPool:
            countBadPointer(.otherPool)
            return .otherPool
        }
    }

    /// Counts a bad pointer; atomic, since some callers (malloc_usable_size) hold no lock.
    public func countBadPointer(_ outcome: ReleaseOutcome) {
        // A switch, not ==: Equatable's == is a generic call the debug build does not specialise.
        switch outcome {
        case .doubleFree: buddy_atomic_add_u64_relaxed(&state.pointee.counters.doubleFrees, 1)
        case .invalidPointer, .otherPool: buddy_atomic_add_u64_relaxed(&state.pointee.counters.invalidPointers, 1)
        case .released, .foreign: break
        }
    }

    /// The outcome a release of a pointer of this kind would have.
    public static func outcome(for kind: PointerKind) -> ReleaseOutcome {
        switch kind {
        case .allocated: return .released
        case .free: return .doubleFree
        case .interior: return .invalidPointer
        case .foreign: return .foreign
        case .otherPool: return .otherPool
        }
    }

    @usableFromInline package func releaseBlock(_ start: UInt, order startOrder: Int, segment: UnsafeMutablePointer<Segment>) {
        let geometry = self.geometry
        let bytes = UInt(geometry.size(ofOrder: startOrder))
        segment.pointee.freeBytes &+= bytes
        state.pointee.freeBytes &+= bytes
        state.pointee.allocatedBytes &-= bytes
        state.pointee.counters.frees &+= 1
        state.pointee.stats.countEngineBlockReleased()
        let map = segment.pointee.orderMap
        map[slot(start, in: segment)] = 0
        var address = start
        var order = startOrder
        // Coalesce: buddy = block ^ size(order); parent = block & ~size(order).
        while order < geometry.maxOrder {
            let size = UInt(geometry.size(ofOrder: order))
            let buddy = address ^ size
            let buddySlot = slot(buddy, in: segment)
            guard map[buddySlot] == Tag.free | UInt8(truncatingIfNeeded: order) else { break }
            remove(UnsafeMutablePointer(bitPattern: buddy)!, order: order, in: segment)
            map[buddySlot] = 0
            address &= ~size
            state.pointee.stats.coalesces.add(order)
            order &+= 1
            state.pointee.counters.coalesces &+= 1
        }
        map[slot(address, in: segment)] = Tag.free | UInt8(truncatingIfNeeded: order)
        push(UnsafeMutablePointer(bitPattern: address)!, order: order, in: segment)
        checkFreeNeighbour(at: address &+ UInt(geometry.size(ofOrder: order)), in: segment)
        if geometry.size(ofOrder: order) >= BuddyEngine.releaseMinBlock || order == geometry.maxOrder { releaseMemoryIfDue() }
    }
}
