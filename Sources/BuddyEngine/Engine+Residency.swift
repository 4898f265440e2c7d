import CBuddySupport

/// Resident memory explained: what holds the pool's resident pages. `resident` alone cannot say
/// why a process with 3 MB in use has 80 MB in RAM; this walk puts every resident byte of the
/// segments in one of four parts, by the tag of the block (or slab object) it lies in:
///
///     used       blocks and slab objects the program holds (tag used)
///     cached     blocks and objects in thread caches and the depot (tag used with the cache
///                mark, read only where the block's first bytes are resident), and quarantined
///                blocks (tag cached)
///     slabSpare  inside slabs, outside used and cached objects: headers, free objects, slack
///     free       free blocks and the uncarved tails: touched once, not returned to the OS yet
///
///     used + cached + slabSpare + free == resident bytes of the segments (mincore)
///
/// since the blocks tile each segment below its frontier and the tail lies above it, and a
/// page shared by small blocks is split between them byte for byte. `metadata` is the resident
/// part of the pool's own mappings (state, order maps, slab classes).
package struct Residency {
    package var used: UInt64 = 0
    package var cached: UInt64 = 0
    package var slabSpare: UInt64 = 0
    package var free: UInt64 = 0
    package var metadata: UInt64 = 0
    package init() {}

    /// The segments' resident bytes.
    package var segments: UInt64 { used &+ cached &+ slabSpare &+ free }

    /// Adds `bytes` to the part of a block or object whose tag is `tag`.
    @inline(__always) mutating func add(_ bytes: UInt64, tag: UInt8) {
        let state = tag & Tag.stateMask
        if state == Tag.used { used &+= bytes } else if state == Tag.cached { cached &+= bytes } else { free &+= bytes }
    }
}

/// Where the window's storage starts in the pool's state mapping (after the state itself).
let residencyWindowOffset = (MemoryLayout<PoolState>.stride + 63) & ~63

extension BuddyEngine {
    /// The walk over every segment's order map, page residency from mincore. The caller holds
    /// the pool lock (the window lives in the pool's state mapping). O(pool pages + blocks): for
    /// reports, never on the malloc path. Blocks whose cache marks thread caches write or clear
    /// meanwhile (without the pool lock) may land in either part, the sum stays exact.
    package func residency() -> Residency {
        var r = Residency()
        let window = UnsafeMutableRawPointer(state) + residencyWindowOffset
        let minShift = UInt(geometry.minShift)
        let firstCode = state.pointee.slabFirstCode
        var segment = state.pointee.segments
        while let current = segment {
            let seg = current.pointee
            buddy_residency_begin(window, seg.base, seg.base &+ seg.size)
            var offset: UInt = 0
            while offset < seg.frontier {
                let tag = seg.orderMap[Int(offset >> minShift)]
                let start = seg.base &+ offset
                if tag == Tag.used | Tag.slabBlock {
                    let header = UnsafeMutablePointer<SlabHeader>(bitPattern: start).unsafelyUnwrapped
                    let c = Int(header.pointee.slabClass)
                    let bytes = UInt(SlabClass.slabBytes(c))
                    var inObjects: UInt64 = 0
                    let objectSize = UInt(SlabClass.objectSize(c))
                    var object = start &+ UInt(SlabClass.headerBytes)
                    for _ in 0..<Int(max(0, header.pointee.carved)) {
                        let objectTag = seg.orderMap[Int((object &- seg.base) >> minShift)]
                        if objectTag & Tag.orderMask == UInt8(truncatingIfNeeded: firstCode &+ c) && objectTag & Tag.stateMask != Tag.free {
                            let resident = buddy_residency_bytes(window, object, objectSize)
                            r.add(resident, tag: part(objectTag, object, current, window))
                            inObjects &+= resident
                        }
                        object &+= objectSize
                    }
                    let whole = buddy_residency_bytes(window, start, bytes)
                    r.slabSpare &+= whole &- min(whole, inObjects)
                    offset &+= bytes
                    continue
                }
                // A slot that starts no block (a broken map: checkInvariants names it) counts
                // as free, one slot at a time, so the walk still ends and the sum still holds.
                let bytes = tag == 0 ? UInt(1) << minShift : UInt(geometry.size(ofOrder: Int(tag & Tag.orderMask)))
                r.add(buddy_residency_bytes(window, start, min(bytes, seg.frontier &- offset)), tag: tag == 0 ? Tag.free : part(tag, start, current, window))
                offset &+= bytes
            }
            r.free &+= buddy_residency_bytes(window, seg.base &+ seg.frontier, seg.size &- seg.frontier)
            r.metadata &+= buddy_os_resident_bytes(UnsafeRawPointer(seg.orderMap), seg.orderMapBytes)
            segment = seg.next
        }
        r.metadata &+= buddy_os_resident_bytes(UnsafeRawPointer(state), state.pointee.stateBytes)
        if let classes = state.pointee.slabClasses {
            r.metadata &+= buddy_os_resident_bytes(UnsafeRawPointer(classes), SlabClass.stateBytes(page: buddy_os_page_recorded()))
        }
        return r
    }

    /// The state whose part a block's resident bytes go to: cached for a used block with the
    /// cache mark. The mark is read only from a resident first page (a cached block's is: the
    /// cache wrote its links there), so the walk faults nothing in.
    @inline(__always) private func part(_ tag: UInt8, _ start: UInt, _ segment: UnsafeMutablePointer<Segment>, _ window: UnsafeMutableRawPointer) -> UInt8 {
        let words = UInt(2 &* MemoryLayout<UInt>.stride) // the links, the mark the second
        guard tag & Tag.stateMask == Tag.used, buddy_residency_bytes(window, start, words) == UInt64(words),
              isCacheMarked(start, tag: tag, in: segment) else { return tag }
        return Tag.cached | (tag & Tag.orderMask)
    }

    /// Bytes of [start, start + count) in resident pages, exactly; the caller holds the pool
    /// lock (it uses the walk's window).
    package func residentBytes(_ start: UInt, count: UInt) -> UInt64 {
        let window = UnsafeMutableRawPointer(state) + residencyWindowOffset
        buddy_residency_begin(window, start, start &+ count)
        return buddy_residency_bytes(window, start, count)
    }
}
