import CBuddySupport

// MARK: - Slabs
//
// A power-of-two block wastes up to half of itself on a request just above a power of two: a
// 4.2 KB page of sqlite's cache takes an 8 KiB block and touches both of its pages, a 40-byte
// node takes 64 bytes. So, as the kernel puts its slab allocator above its buddy allocator,
// malloc's pool serves requests from slab classes between the powers of two:
// - from 1 KiB to 32 KiB, seven per doubling: 9/8, 10/8 ... 15/8 of a power of two (the 16/8
//   step is the next power of two, a block of its own); a slab is one buddy block of 16 times
//   the class's lower power of two;
// - under 1 KiB, eight classes (the tag's last free codes, see `smallCount`): 48, 96, 192, 320,
//   384, 640, 768 and 896 bytes (3/2 of each power of two from 32, and 5/4 of 256, 5/4 and 7/4
//   of 512, where most small bytes are); a slab is 4, 8 or 16 KiB, so that a refill or a
//   flush of a bin touches a few slabs, not one per ten objects.
// A slab is carved into objects of the class's size:
//
//     slab = header (64 bytes) | object 0 | object 1 | ... | object capacity-1 | slack
//
// Objects live in the order map like blocks: the tag of an object's first slot holds the class's
// code, `firstCode + class` (codes above the pool's orders, below `Tag.slabBlock`), as used
// (held by the program, or by a thread cache with the cache mark) or free (on its slab's free
// list); a slab block's own first slot
// holds `Tag.used | Tag.slabBlock`. So free and malloc_usable_size learn an object's class the
// way they learn a block's order, and a double, interior or header free is caught the same way.
// Objects above a slab's `carved` mark were never handed out: their pages are never touched.
//
// Invariants (checkInvariants):
//
//     live + (free list length) + (capacity - carved) == capacity             per slab
//     tag(object i) == free | code  for the objects on the free list, 0 for i >= carved,
//                      used | code for the live ones (held by the program or a cache)
//     the class's partial list holds exactly its slabs with live < capacity
//     slabSpareBytes == sum over slabs of (slab bytes - live x object size)

/// The slab classes' shape (independent of the pool: codes are assigned per pool). Classes
/// 0 ..< largeCount are those from 1 KiB up, in size order; largeCount ..< count those under
/// 1 KiB, in size order (appended: a pool whose codes leave no room for them serves the first
/// largeCount, and the statistics' layout kept its first classes where they were).
public enum SlabClass {
    /// Classes per doubling, and doublings: (1K, 2K] ... (16K, 32K].
    public static let perDoubling = 7
    public static let doublings = 5
    public static let largeCount = perDoubling * doublings
    /// Classes under 1 KiB: as many as the tag's codes leave at the default geometry (16-byte
    /// minimum block, 8 MiB maximum: orders 0...19, the 35 classes above, `Tag.slabBlock`).
    public static let smallCount = 8
    public static let count = largeCount + smallCount
    /// Requests above this size (and up to `ceiling`) may use a class from 1 KiB up; requests up
    /// to it, a class under 1 KiB.
    public static let floor: UInt = 1024
    public static let ceiling: UInt = 32 * 1024
    /// The slab header; objects start after it. A multiple of 64, so that objects (whose sizes
    /// are multiples of 128 from 1 KiB up, of 16 below) are 64-byte (16-byte) aligned.
    public static let headerBytes = 64
    /// The classes under 1 KiB: object sizes in 16-byte units, and slabs' log2 sizes, a byte
    /// each (class largeCount + i in byte i): 48 96 192 320 384 640 768 896 bytes, in slabs of
    /// 4K 4K 4K 8K 8K 8K 16K 16K.
    static let smallUnits: UInt64 = 0x3830_2818_140C_0603
    static let smallSlabShifts: UInt64 = 0x0E0E_0D0D_0D0C_0C0C
    /// The pool's mapping for the classes' state.
    package static var stateBytes: Int { stateBytes(page: buddy_os_page_size()) }
    /// The same with the page size known (the reports' snapshot: getpagesize is not
    /// async-signal-safe, the size recorded at start is).
    package static func stateBytes(page: Int) -> Int {
        (count * MemoryLayout<SlabClassState>.stride + page - 1) & ~(page - 1)
    }

    @inline(__always) package static func base(_ c: Int) -> Int { 1024 &<< (c / perDoubling) }

    @inline(__always) static func smallByte(_ table: UInt64, _ c: Int) -> Int {
        Int(truncatingIfNeeded: (table &>> UInt64(truncatingIfNeeded: (c &- largeCount) &* 8)) & 0xFF)
    }

    /// Bytes in an object of class `c`: base x (9 ... 15) / 8 from 1 KiB up.
    @inline(__always) public static func objectSize(_ c: Int) -> Int {
        if c >= largeCount { return smallByte(smallUnits, c) &<< 4 }
        let base = base(c)
        return base &+ (base &>> 3) &* (c % perDoubling &+ 1)
    }

    /// Bytes in a slab of class `c` (a buddy block): 16 x base from 1 KiB up, so that a slab
    /// holds 8 to 14 objects and its slack (under one object) stays under 12% of it.
    @inline(__always) public static func slabBytes(_ c: Int) -> Int {
        c >= largeCount ? 1 &<< smallByte(smallSlabShifts, c) : base(c) &* 16
    }

    /// Objects in a slab of class `c`.
    @inline(__always) public static func capacity(_ c: Int) -> Int { (slabBytes(c) &- headerBytes) / objectSize(c) }

    /// The class of a request of `request` bytes, floor < request <= ceiling, or -1 when its
    /// eighth step is the power of two itself (a block serves it exactly).
    @inlinable @inline(__always) public static func of(_ request: UInt) -> Int {
        let top = ceilLog2(request) // request <= 2^top, 11...15
        let step = Int(truncatingIfNeeded: (request &- 1 &- (1 &<< UInt(top &- 1))) &>> UInt(top &- 4)) // 0...7
        if step == 7 { return -1 }
        return (top &- 11) &* perDoubling &+ step
    }

    /// The class under 1 KiB of a request of `request` <= floor bytes: the smallest that holds
    /// it, or -1 when a power of two is as small (requests up to 32 bytes, and those above 48
    /// up to 64, 96 up to 128 ...).
    public static func small(_ request: UInt) -> Int {
        var below = 32 // the power of two under the class's objects
        for c in largeCount..<count {
            let size = objectSize(c)
            if size > 2 &* below { below &*= 2 }
            if request <= UInt(below) { return -1 }
            if request <= UInt(size) { return c }
        }
        return -1
    }
}

/// A slab's header, in the slab block's first bytes.
package struct SlabHeader {
    /// The class's partial list (slabs with a free or uncarved object).
    package var next: UnsafeMutablePointer<SlabHeader>?
    package var prev: UnsafeMutablePointer<SlabHeader>?
    /// Freed objects, linked through their first word.
    package var freeObjects: UnsafeMutableRawPointer?
    /// Objects out of the slab (held by the program or a thread cache).
    package var live: Int32
    /// Objects handed out at least once: objects from here up were never touched.
    package var carved: Int32
    package var capacity: Int32
    package var slabClass: Int32
    package var onPartialList: Bool
}

/// A class's slabs (in the pool's state mapping, after PoolState).
package struct SlabClassState {
    package var partial: UnsafeMutablePointer<SlabHeader>?
    /// Slabs of this class, how many are on the partial list, and objects out of them (held by
    /// the program or thread caches).
    package var slabs: Int
    package var partialCount: Int
    package var objectsOut: Int = 0
}

extension BuddyEngine {
    /// Bytes the program may use in an allocation of `code`: a block's size or an object's.
    @inline(__always) public func size(ofCode code: Int) -> Int {
        code <= geometry.maxOrder ? geometry.size(ofOrder: code) : SlabClass.objectSize(code &- state.pointee.slabFirstCode)
    }

    /// The code that serves `size` bytes aligned to `alignment`: a slab class, or the order of a
    /// block. (size <= maxBlock, alignment <= maxBlock.)
    @inlinable @inline(__always) public func code(forSize size: UInt, alignment: UInt) -> Int {
        if size > state.pointee.slabFloor && size <= state.pointee.slabCeiling && alignment <= 16 {
            let c = SlabClass.of(size)
            if c >= 0 { return state.pointee.slabFirstCode &+ c }
        } else if size <= SlabClass.floor && state.pointee.slabClassCount > SlabClass.largeCount && alignment <= 16 {
            let c = SlabClass.small(size)
            if c >= 0 { return state.pointee.slabFirstCode &+ c }
        }
        return max(geometry.order(forSize: Int(size)), geometry.order(forSize: Int(alignment)))
    }

    /// Turns slabs on (at creation, with `config.slabs`): classes whose slab fits in a
    /// block, when the minimum block lets objects start on slots and the codes fit the tag.
    /// The classes under 1 KiB need 16-byte slots (their sizes are multiples of 16) and their
    /// eight codes: a pool with larger blocks (BUDDY_MAX_BLOCK above 8M) serves those requests
    /// with blocks.
    package func enableSlabs() {
        let geometry = self.geometry
        guard geometry.minBlock <= SlabClass.headerBytes,
              geometry.maxOrder &+ 1 &+ SlabClass.largeCount <= Int(Tag.slabBlock),
              SlabClass.slabBytes(SlabClass.perDoubling - 1) <= geometry.maxBlock else { return }
        let small = geometry.minBlock == 16 && geometry.maxOrder &+ 1 &+ SlabClass.count <= Int(Tag.slabBlock)
            && SlabClass.slabBytes(SlabClass.count - 1) <= geometry.maxBlock
        var ceiling: UInt = 2048
        while ceiling < SlabClass.ceiling && SlabClass.slabBytes(SlabClass.of(ceiling &+ 1)) <= geometry.maxBlock { ceiling &<<= 1 }
        guard let memory = buddy_os_map_aligned(SlabClass.stateBytes, buddy_os_page_size()) else { return }
        let classes = memory.bindMemory(to: SlabClassState.self, capacity: SlabClass.count)
        classes.initialize(repeating: SlabClassState(partial: nil, slabs: 0, partialCount: 0), count: SlabClass.count)
        state.pointee.slabClasses = classes
        state.pointee.slabFirstCode = geometry.maxOrder &+ 1
        state.pointee.slabFloor = SlabClass.floor
        state.pointee.slabCeiling = ceiling
        state.pointee.slabClassCount = small ? SlabClass.count : SlabClass.largeCount
    }

    /// The slab that holds `address` (an object of class `c`): slabs are buddy blocks, aligned to
    /// their size within their segment.
    @inline(__always) package func slab(of address: UInt, slabClass c: Int, in segment: UnsafeMutablePointer<Segment>) -> UnsafeMutablePointer<SlabHeader> {
        let base = segment.pointee.base
        return UnsafeMutablePointer(bitPattern: base &+ ((address &- base) & ~UInt(SlabClass.slabBytes(c) &- 1)))!
    }

    // MARK: Allocation (lock held)

    /// An object of slab class `code - firstCode`, tagged used: from the first slab on the class's
    /// partial list (its free list first, then its next uncarved object), else from a new slab.
    @usableFromInline package func allocateObject(code: Int, mayGrow: Bool, mayCarve: Bool = true) -> UnsafeMutableRawPointer? {
        allocateObjects(code: code, count: 1, mayGrow: mayGrow, mayCarve: mayCarve)?.head
    }

    /// Up to `count` objects of slab class `code - firstCode` from one slab, tagged used, for a
    /// thread cache's refill: linked through their first words (plain addresses, nil-ended),
    /// with the segment that holds them (for their tags). Nil when no slab has one and no new
    /// slab can be made (`mayGrow` and `mayCarve` as in allocate(order:)).
    ///
    /// The same objects, in the same order, as `count` calls of allocateObject while the slab
    /// lasts, with the class's and the slab's counts updated once (smallbatch: 107 instructions
    /// an object one at a time).
    @inline(__always)
    package func allocateObjects(code: Int, count: Int, mayGrow: Bool = false, mayCarve: Bool)
        -> (head: UnsafeMutableRawPointer, objects: Int, segment: UnsafeMutablePointer<Segment>)? {
        let c = code &- state.pointee.slabFirstCode
        let klass = state.pointee.slabClasses! + c
        guard count > 0, let header = partialSlab(c, klass, mayGrow: mayGrow, mayCarve: mayCarve) else { return nil }
        let segment = SegmentMap.lookup(UInt(bitPattern: header))!
        let tag = Tag.used | UInt8(truncatingIfNeeded: code)
        let head = takeObject(header, slabClass: c, code: code)
        var last = head
        var objects = 1
        while true {
            let address = UInt(bitPattern: last)
            segment.pointee.orderMap[slot(address, in: segment)] = tag
            markHandedOut(address, in: segment)
            guard objects < count, header.pointee.live < header.pointee.capacity else { break }
            let next = takeObject(header, slabClass: c, code: code)
            last.storeBytes(of: next, as: UnsafeMutableRawPointer?.self)
            last = next
            objects &+= 1
        }
        last.storeBytes(of: nil, as: UnsafeMutableRawPointer?.self)
        klass.pointee.objectsOut &+= objects
        if header.pointee.live == header.pointee.capacity { unlinkPartial(header, klass) }
        state.pointee.slabSpareBytes &-= UInt(SlabClass.objectSize(c) &* objects)
        return (head, objects, segment)
    }

    /// The first slab on class `c`'s partial list, else a new one (from the pool; with
    /// `mayGrow`, from a new segment if need be).
    private func partialSlab(_ c: Int, _ klass: UnsafeMutablePointer<SlabClassState>, mayGrow: Bool, mayCarve: Bool)
        -> UnsafeMutablePointer<SlabHeader>? {
        if let slab = klass.pointee.partial { return slab }
        // From the segments of blocks of the objects' size, not of the slab's: a program's
        // 48- and 64-byte allocations then share segments (and free's copy of the thread's
        // last segment), as its 32- and 64-byte ones do.
        guard let block = allocate(order: geometry.order(forSize: SlabClass.slabBytes(c)), mayGrow: mayGrow, mayCarve: mayCarve,
                                   dirtyBytes: nil, sizeClass: sizeClass(ofOrder: geometry.order(forSize: SlabClass.objectSize(c)))) else { return nil }
        let header = block.bindMemory(to: SlabHeader.self, capacity: 1)
        header.initialize(to: SlabHeader(next: nil, prev: nil, freeObjects: nil, live: 0, carved: 0,
                                         capacity: Int32(SlabClass.capacity(c)), slabClass: Int32(c), onPartialList: false))
        // The block is the slab's, not the program's: its tag says so (see Tag.slabBlock).
        tagAddress(block).pointee = Tag.used | Tag.slabBlock
        state.pointee.slabSpareBytes &+= UInt(SlabClass.slabBytes(c))
        klass.pointee.slabs &+= 1
        linkPartial(header, klass)
        return header
    }

    /// An object out of `header` (a slab with room), counted live in it: its free list's first
    /// (the link checked before it becomes the head), else its next uncarved object. The caller
    /// tags it and counts it in the class.
    @inline(__always) private func takeObject(_ header: UnsafeMutablePointer<SlabHeader>, slabClass c: Int, code: Int) -> UnsafeMutableRawPointer {
        let object: UnsafeMutableRawPointer
        if let free = header.pointee.freeObjects {
            let next = free.load(as: UnsafeMutableRawPointer?.self)
            // The link lives in the free object, where a program writing after free reaches it:
            // it must name a free object of this slab before it becomes the list's head.
            if let n = next {
                let offset = UInt(bitPattern: n) &- UInt(bitPattern: header) &- UInt(SlabClass.headerBytes)
                if _slowPath(offset >= UInt(header.pointee.carved) &* UInt(SlabClass.objectSize(c))
                             || offset % UInt(SlabClass.objectSize(c)) != 0
                             || tagAddress(n).pointee != Tag.free | UInt8(truncatingIfNeeded: code)) {
                    corrupted(UnsafeRawPointer(free), .freeLinks)
                }
            }
            header.pointee.freeObjects = next
            object = free
        } else {
            object = UnsafeMutableRawPointer(header) + SlabClass.headerBytes + Int(header.pointee.carved) &* SlabClass.objectSize(c)
            header.pointee.carved &+= 1
        }
        header.pointee.live &+= 1
        return object
    }

    /// Puts an object (tagged used or cached) back on its slab's free list. An empty slab goes
    /// back to the pool as a block, unless it is its class's only slab with room (kept, so that
    /// a class used one object at a time does not split and coalesce a slab on every call).
    @usableFromInline package func releaseObject(_ address: UInt, code: Int, segment: UnsafeMutablePointer<Segment>) {
        let c = code &- state.pointee.slabFirstCode
        let klass = state.pointee.slabClasses! + c
        let header = slab(of: address, slabClass: c, in: segment)
        let object = UnsafeMutableRawPointer(bitPattern: address)!
        segment.pointee.orderMap[slot(address, in: segment)] = Tag.free | UInt8(truncatingIfNeeded: code)
        object.storeBytes(of: header.pointee.freeObjects, as: UnsafeMutableRawPointer?.self)
        header.pointee.freeObjects = object
        header.pointee.live &-= 1
        klass.pointee.objectsOut &-= 1
        state.pointee.slabSpareBytes &+= UInt(SlabClass.objectSize(c))
        if !header.pointee.onPartialList { linkPartial(header, klass) }
        if header.pointee.live == 0 && klass.pointee.partialCount > 1 { releaseSlab(header, klass, segment: segment) }
    }

    /// Gives every empty slab back to the pool, the kept ones too (malloc_trim). Returns how many.
    @discardableResult
    package func releaseEmptySlabs() -> Int {
        guard let classes = state.pointee.slabClasses else { return 0 }
        var released = 0
        for c in 0..<state.pointee.slabClassCount {
            var slab = classes[c].partial
            while let header = slab {
                slab = header.pointee.next
                if header.pointee.live == 0 {
                    let address = UInt(bitPattern: header)
                    releaseSlab(header, classes + c, segment: SegmentMap.lookup(address)!)
                    released &+= 1
                }
            }
        }
        return released
    }

    /// An empty slab goes back to the pool: its objects' tags are cleared, then the block is freed.
    private func releaseSlab(_ header: UnsafeMutablePointer<SlabHeader>, _ klass: UnsafeMutablePointer<SlabClassState>,
                             segment: UnsafeMutablePointer<Segment>) {
        let c = Int(header.pointee.slabClass)
        unlinkPartial(header, klass)
        let start = UInt(bitPattern: header)
        let size = SlabClass.objectSize(c)
        for i in 0..<Int(header.pointee.carved) {
            segment.pointee.orderMap[slot(start &+ UInt(SlabClass.headerBytes &+ i &* size), in: segment)] = 0
        }
        klass.pointee.slabs &-= 1
        state.pointee.slabSpareBytes &-= UInt(SlabClass.slabBytes(c))
        releaseBlock(start, order: geometry.order(forSize: SlabClass.slabBytes(c)), segment: segment)
    }

    @inline(__always) private func linkPartial(_ header: UnsafeMutablePointer<SlabHeader>, _ klass: UnsafeMutablePointer<SlabClassState>) {
        header.pointee.prev = nil
        header.pointee.next = klass.pointee.partial
        klass.pointee.partial?.pointee.prev = header
        klass.pointee.partial = header
        header.pointee.onPartialList = true
        klass.pointee.partialCount &+= 1
    }

    @inline(__always) private func unlinkPartial(_ header: UnsafeMutablePointer<SlabHeader>, _ klass: UnsafeMutablePointer<SlabClassState>) {
        if let prev = header.pointee.prev { prev.pointee.next = header.pointee.next } else { klass.pointee.partial = header.pointee.next }
        header.pointee.next?.pointee.prev = header.pointee.prev
        header.pointee.next = nil
        header.pointee.prev = nil
        header.pointee.onPartialList = false
        klass.pointee.partialCount &-= 1
    }
}

// MARK: - Invariants (tests; O(pool size))

/// What the order-map walk saw of the slabs, to compare with the classes' state.
package struct SlabTally {
    package var slabs = 0
    package var objectsOut = 0
    package var partial = 0
    package var spareBytes: UInt = 0
    /// Objects a thread cache of the pool's owner holds (tagged used with the cache mark).
    package var cached = 0
}

extension BuddyEngine {
    /// One slab's invariants (see the top of this file), from its header and its order-map slots.
    package func checkSlab(_ header: UnsafeMutablePointer<SlabHeader>, in segment: UnsafeMutablePointer<Segment>,
                   tally: inout SlabTally) -> StaticString? {
        guard state.pointee.slabClasses != nil else { return "slab block in a pool without slabs" }
        let h = header.pointee
        let c = Int(h.slabClass)
        guard c >= 0 && c < state.pointee.slabClassCount else { return "slab header names no class" }
        let capacity = SlabClass.capacity(c), size = SlabClass.objectSize(c)
        if Int(h.capacity) != capacity { return "slab capacity disagrees with its class" }
        if h.carved < 0 || Int(h.carved) > capacity || h.live < 0 || h.live > h.carved { return "slab counts out of range" }
        let code = UInt8(truncatingIfNeeded: state.pointee.slabFirstCode &+ c)
        let start = UInt(bitPattern: header)
        var freeListed = 0
        var object = h.freeObjects
        while let o = object {
            freeListed &+= 1
            if freeListed > capacity { return "slab free list longer than its capacity (a cycle)" }
            let offset = Int(UInt(bitPattern: o) &- start) &- SlabClass.headerBytes
            if offset < 0 || offset % size != 0 || offset / size >= Int(h.carved) { return "slab free list holds a stray pointer" }
            if segment.pointee.orderMap[slot(UInt(bitPattern: o), in: segment)] != Tag.free | code { return "object on a slab free list is not tagged free" }
            object = o.load(as: UnsafeMutableRawPointer?.self)
        }
        // live + free list + uncarved == capacity
        if Int(h.live) &+ freeListed &+ (capacity &- Int(h.carved)) != capacity { return "slab: live + free + uncarved != capacity" }
        var out = 0
        let slots = SlabClass.slabBytes(c) >> geometry.minShift
        let first = slot(start, in: segment)
        for i in 1..<slots {
            let tag = segment.pointee.orderMap[first &+ i]
            let offset = i << geometry.minShift &- SlabClass.headerBytes
            let isObject = offset >= 0 && offset % size == 0 && offset / size < capacity
            if !isObject || offset / size >= Int(h.carved) {
                if tag != 0 { return "tag inside a slab outside its carved objects" }
                continue
            }
            if tag & Tag.orderMask != code || tag & Tag.stateMask == 0 { return "slab object tagged with another code" }
            if tag & Tag.stateMask != Tag.free { out &+= 1 }
            if tag & Tag.stateMask == Tag.cached || (tag & Tag.stateMask == Tag.used
                                                      && isCacheMarked(start &+ UInt(i << geometry.minShift), tag: tag, in: segment)) {
                tally.cached &+= 1
            }
        }
        if out != Int(h.live) { return "slab live count disagrees with its used and cached tags" }
        if h.onPartialList != (h.live < h.capacity) { return "slab with room off the partial list, or full on it" }
        tally.slabs &+= 1
        tally.objectsOut &+= Int(h.live)
        if h.onPartialList { tally.partial &+= 1 }
        tally.spareBytes &+= UInt(SlabClass.slabBytes(c) &- Int(h.live) &* size)
        return nil
    }

    /// The classes' state against what the walk saw:
    ///
    ///     sum of slabs == slabs seen;  sum of objectsOut == objects out seen
    ///     each partial list's length == partialCount, its slabs of its class, with room
    ///     slabSpareBytes == sum over slabs of (slab bytes - live x object size)
    package func checkSlabClasses(_ tally: SlabTally) -> StaticString? {
        guard let classes = state.pointee.slabClasses else { return tally.slabs == 0 ? nil : "slabs in a pool without slabs" }
        var slabs = 0, out = 0, partial = 0
        for c in 0..<state.pointee.slabClassCount {
            let k = classes[c]
            slabs &+= k.slabs
            out &+= k.objectsOut
            var listed = 0
            var previous: UnsafeMutablePointer<SlabHeader>? = nil
            var slab = k.partial
            while let s = slab {
                listed &+= 1
                if listed > k.slabs { return "partial list longer than the class's slabs" }
                if Int(s.pointee.slabClass) != c || !s.pointee.onPartialList || s.pointee.prev != previous { return "partial list holds a stray slab" }
                previous = s
                slab = s.pointee.next
            }
            if listed != k.partialCount { return "partial list length disagrees with partialCount" }
            partial &+= listed
        }
        if slabs != tally.slabs || out != tally.objectsOut || partial != tally.partial { return "slab classes disagree with the slabs in the order maps" }
        if tally.spareBytes != state.pointee.slabSpareBytes { return "slabSpareBytes != sum of (slab bytes - live x object size)" }
        return nil
    }
}
