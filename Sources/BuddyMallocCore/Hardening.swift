#if !BUDDY_ONE_MODULE
import BuddyEngine
#endif
import CBuddySupport

/// BUDDY_HARDEN=on: checks that cost too much for the default configuration (README, "Bad
/// input"). When on, the process pool has no thread caches, so every call takes the locked slow
/// path (the way a pool without caches works), and that path adds:
///
///   - a canary: every block holds 8 bytes more than asked for, and its last 8 bytes (after what
///     malloc_usable_size reports) hold `canary(address of the word)`; free and realloc check it
///     (an overflow of the block), and the canary of the block just before (an underflow);
///   - a quarantine: a freed block is filled with a pattern, tagged cached (so freeing it again
///     is still a double free) and kept in a FIFO of at most `quarantineBlocks` blocks and
///     `quarantineBytes` bytes; when it leaves, the pattern is checked (a write after free),
///     then the block goes back to the pool. At exit the blocks still in quarantine are checked.
///
/// With it off, nothing here runs: the fast paths never look at it, the slow paths test one flag.
enum Hardening {
    /// Bytes a hardened block holds beyond the usable ones: the canary word.
    static let canaryBytes = 8
    static let quarantineBlocks = 1024
    static let quarantineBytes: UInt = 16 << 20
    /// A quarantined block's fill byte, and how much of each block is filled and checked (its
    /// first 256 KiB, and its last word).
    static let fillByte: UInt8 = 0xDF
    static let fillWord: UInt64 = 0xDFDF_DFDF_DFDF_DFDF
    static let fillLimit = 256 * 1024

    @inline(__always) static func canary(at word: UInt, key: UInt) -> UInt64 {
        UInt64(truncatingIfNeeded: key.byteSwapped ^ word ^ 0x5A17_C0DE_5A17_C0DE)
    }

    @inline(__always) static func setCanary(_ block: UnsafeMutableRawPointer, bytes: Int, key: UInt) {
        let word = UInt(bitPattern: block) &+ UInt(bytes &- canaryBytes)
        UnsafeMutableRawPointer(bitPattern: word)!.storeBytes(of: canary(at: word, key: key), as: UInt64.self)
    }

    @inline(__always) static func canaryIntact(_ block: UnsafeRawPointer, bytes: Int, key: UInt) -> Bool {
        let word = UInt(bitPattern: block) &+ UInt(bytes &- canaryBytes)
        return UnsafeRawPointer(bitPattern: word)!.load(as: UInt64.self) == canary(at: word, key: key)
    }

    /// Offset of the first byte of the block's fill that changed, or -1.
    static func fillChanged(_ block: UnsafeRawPointer, bytes: Int) -> Int {
        let n = min(bytes, fillLimit) / 8
        var i = 0
        while i < n {
            if block.load(fromByteOffset: i &* 8, as: UInt64.self) != fillWord { return i &* 8 }
            i &+= 1
        }
        return -1
    }

    /// The state (Tag.used or Tag.cached: quarantined) of the block that ends where the block
    /// at `address` (of allocation code `code`) starts, or 0 when there is none (the segment's or
    /// slab's start, a free block, a slab's slack). Read from the order map: a buddy block of
    /// size s ending at `address` starts at address - s, aligned to s; a slab object's previous
    /// object is one object size before it.
    static func stateBefore(_ address: UInt, code: Int, _ pool: BuddyEngine, _ segment: UnsafeMutablePointer<Segment>) -> UInt8 {
        let map = segment.pointee.orderMap
        let geometry = pool.geometry
        if code > geometry.maxOrder {
            let c = code &- pool.state.pointee.slabFirstCode
            let slab = UInt(bitPattern: pool.slab(of: address, slabClass: c, in: segment))
            let size = UInt(SlabClass.objectSize(c))
            guard address &- slab >= UInt(SlabClass.headerBytes) &+ size else { return 0 }
            let tag = map[pool.slot(address &- size, in: segment)]
            return Int(tag & Tag.orderMask) == code ? tag & Tag.stateMask : 0
        }
        let offset = address &- segment.pointee.base
        var s = UInt(geometry.minBlock)
        while s <= offset && offset & (s &- 1) == 0 && s <= UInt(geometry.maxBlock) {
            let tag = map[pool.slot(address &- s, in: segment)]
            if tag != 0 {
                let order = Int(tag & Tag.orderMask)
                guard order <= geometry.maxOrder, UInt(geometry.size(ofOrder: order)) == s else { return 0 }
                let state = tag & Tag.stateMask
                return state == Tag.used || state == Tag.cached ? state : 0
            }
            s &<<= 1
        }
        return 0
    }
}

extension BuddyEngine {
    @inline(__always) var hardened: Bool { state.pointee.config.hardened }

    /// Bytes of a block of `code` the program may use: the block's, less the canary when hardened.
    @inline(__always) func usableSize(ofCode code: Int) -> Int {
        size(ofCode: code) &- (hardened ? Hardening.canaryBytes : 0)
    }

    /// Maps the quarantine's ring (at the pool's creation, when hardened); without it, freed
    /// blocks skip the quarantine.
    func enableQuarantine() {
        let page = buddy_os_page_size()
        let bytes = (Hardening.quarantineBlocks * MemoryLayout<UInt>.stride + page - 1) & ~(page - 1)
        guard let ring = buddy_os_map_aligned(bytes, page) else { return }
        process.pointee.quarantine = ring.bindMemory(to: UInt.self, capacity: Hardening.quarantineBlocks)
    }

    /// A hardened block was allocated: its canary.
    @inline(__always) func armCanary(_ block: UnsafeMutableRawPointer, code: Int) {
        Hardening.setCanary(block, bytes: size(ofCode: code), key: process.pointee.linkKey)
    }

    /// free of an allocated block when hardened (lock held): checks its canary and the one
    /// before it, fills it, and quarantines it; blocks leaving the quarantine are checked and
    /// released. Reports under the error strategy (under log the block is freed all the same).
    func releaseHardened(_ address: UInt, code: Int, segment: UnsafeMutablePointer<Segment>, function: StaticString) {
        let block = UnsafeMutableRawPointer(bitPattern: address)!
        let bytes = size(ofCode: code)
        let key = process.pointee.linkKey
        if !Hardening.canaryIntact(block, bytes: bytes, key: key) {
            countMisuse(.heapCorruption)
            reportCorruption(function, block, strategy: config.errorStrategy, cause: .canaryOverwritten)
        }
        let before = Hardening.stateBefore(address, code: code, self, segment)
        if before != 0 {
            let word = address &- UInt(Hardening.canaryBytes)
            let value = UnsafeRawPointer(bitPattern: word)!.load(as: UInt64.self)
            let expected = before == Tag.used ? Hardening.canary(at: word, key: key) : Hardening.fillWord
            if value != expected {
                countMisuse(.heapCorruption)
                reportCorruption(function, UnsafeRawPointer(bitPattern: word)!, strategy: config.errorStrategy,
                                 cause: before == Tag.used ? .underflow : .patternChanged)
            }
        }
        guard let ring = process.pointee.quarantine else {
            release(address, code: code, segment: segment)
            return
        }
        block.initializeMemory(as: UInt8.self, repeating: Hardening.fillByte, count: min(bytes, Hardening.fillLimit))
        // (The last word too, which the next block's underflow check reads.)
        block.storeBytes(of: Hardening.fillWord, toByteOffset: bytes &- 8, as: UInt64.self)
        segment.pointee.orderMap[slot(address, in: segment)] = Tag.cached | UInt8(truncatingIfNeeded: code)
        let capacity = Hardening.quarantineBlocks
        while process.pointee.quarantineCount == capacity || (process.pointee.quarantineCount > 0
                && process.pointee.quarantineBytes &+ UInt(bytes) > Hardening.quarantineBytes) {
            evictQuarantined(function: function)
        }
        ring[(process.pointee.quarantineFirst &+ process.pointee.quarantineCount) % capacity] = address
        process.pointee.quarantineCount &+= 1
        process.pointee.quarantineBytes &+= UInt(bytes)
    }

    /// The oldest quarantined block: its fill checked, then released to the pool (lock held).
    func evictQuarantined(function: StaticString) {
        guard let ring = process.pointee.quarantine, process.pointee.quarantineCount > 0 else { return }
        let address = ring[process.pointee.quarantineFirst]
        process.pointee.quarantineFirst = (process.pointee.quarantineFirst &+ 1) % Hardening.quarantineBlocks
        process.pointee.quarantineCount &-= 1
        let segment = SegmentMap.lookup(address)!
        let code = Int(segment.pointee.orderMap[slot(address, in: segment)] & Tag.orderMask)
        let bytes = size(ofCode: code)
        process.pointee.quarantineBytes &-= UInt(bytes)
        let changed = Hardening.fillChanged(UnsafeRawPointer(bitPattern: address)!, bytes: bytes)
        if changed >= 0 {
            countMisuse(.heapCorruption)
            reportCorruption(function, UnsafeRawPointer(bitPattern: address)!, strategy: config.errorStrategy, cause: .patternChanged)
        }
        release(address, code: code, segment: segment)
    }

    /// Checks every quarantined block's fill without releasing it (at exit).
    func checkQuarantine() {
        guard let ring = process.pointee.quarantine else { return }
        var i = 0
        while i < process.pointee.quarantineCount {
            let address = ring[(process.pointee.quarantineFirst &+ i) % Hardening.quarantineBlocks]
            let segment = SegmentMap.lookup(address)!
            let code = Int(segment.pointee.orderMap[slot(address, in: segment)] & Tag.orderMask)
            if Hardening.fillChanged(UnsafeRawPointer(bitPattern: address)!, bytes: size(ofCode: code)) >= 0 {
                countMisuse(.heapCorruption)
                reportCorruption("exit()", UnsafeRawPointer(bitPattern: address)!, strategy: config.errorStrategy, cause: .patternChanged)
            }
            i &+= 1
        }
    }
}

extension Hardening {
    /// At exit: the quarantined blocks' fill (a write after free no later free reached).
    static func checkAtExit() {
        guard buddy_thread_depth() == 0, let pool = ProcessPool.existing, pool.hardened else { return }
        buddy_thread_enter()
        defer { buddy_thread_leave() }
        let locked = pool.lock()
        pool.checkQuarantine()
        pool.unlock(locked)
    }
}
