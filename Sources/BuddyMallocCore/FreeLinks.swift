#if !BUDDY_ONE_MODULE
import BuddyEngine
#endif
import CBuddySupport

/// Links stored in free memory, protected against a program that writes to a block after freeing
/// it (the way glibc's safe-linking and mimalloc's encoded free lists are).
///
/// A cached block's next link is stored as `next ^ key` and its tag address as `tag ^ key`, with
/// `key` 64 random bits per process (PoolState.linkKey). (glibc's safe-linking also mixes in the
/// link's own address, `>> 12`, to keep its key secret from a reader of one link; here the key
/// is random to begin with, and each extra instruction is paid on every malloc and free.)
/// Decoding either word of an overwritten block gives, to every bit, a value the writer cannot
/// predict; a valid link has its low 4 bits clear (every block is aligned to at least 16 bytes)
/// and lies in the 47-bit user address space, so the pop rejects all but about 1 in 2^21
/// overwrites before it follows either word:
///
///     decode(encode(p)) == p
///     valid(next, tag) <=> next & 15 == 0  &&  (next | tag) >> addressBits == 0
///
/// A rejected link is reported as heap corruption (with the call stack), counted as an invalid
/// pointer, and handled by BUDDY_ON_ERROR: abort, or abandon the bin (its blocks leak, the pool
/// stays intact) and carry on.
enum FreeLinks {
    /// The bits of the user address space (README, Limits: segments lie below 2^47).
    static let addressBits: UInt = 47

    /// Whether a decoded next link and tag address can be followed (see above).
    @inline(__always) static func valid(next: UInt, tag: UInt) -> Bool {
        // Two tests with no constant to load (a shift, a test): the pop's registers are few.
        (next | tag) &>> addressBits == 0 && next & 15 == 0
    }

    @inline(__always) static func encode(_ link: UInt, key: UInt) -> UInt { link ^ key }
    @inline(__always) static func decode(_ stored: UInt, key: UInt) -> UInt { stored ^ key }

    /// A cached block whose links were overwritten: reports it, and abandons the bin (its blocks
    /// keep their cache marks: free to the program, never handed out again) unless the error strategy
    /// aborts. The caller returns nil, so malloc takes its slow path.
    @inline(never)
    static func cacheCorrupted(_ cache: UnsafeMutablePointer<ThreadCache>, bin: Int, block: UnsafeMutableRawPointer,
                               function: StaticString) {
        (cache.bins + bin).pointee.head = nil
        (cache.bins + bin).pointee.count = 0
        let pool = BuddyEngine(state: cache.pointee.pool)
        pool.countMisuse(.heapCorruption)
        reportCorruption(function, block, strategy: pool.config.errorStrategy)
    }

    /// At exit (the library's destructor, buddy_exit_report): every link of the exiting thread's
    /// cached blocks is checked as a pop would check it, and more strictly (the tag address must
    /// be the block's own tag, tagged used with the bin's code), so that a write after free, or
    /// an overflow into a cached neighbour, that no later malloc reached is still reported. Only
    /// the calling thread's cache: the others belong to threads that may still be running. At
    /// most 128 blocks per bin; off every hot path.
    static func auditAtExit() {
        guard buddy_thread_depth() == 0 else { return }
        let raw = UInt(bitPattern: buddy_thread_cache())
        guard raw > 1, let cache = UnsafeMutablePointer<ThreadCache>(bitPattern: raw) else { return }
        buddy_thread_enter()
        defer { buddy_thread_leave() }
        for bin in 0..<cache.totalBins {
            auditList(cache, bin: bin, spare: false)
            auditList(cache, bin: bin, spare: true)
        }
    }

    /// One list of the exiting thread's cache: a bin's, or its spare batch (Depot.swift).
    private static func auditList(_ cache: UnsafeMutablePointer<ThreadCache>, bin: Int, spare: Bool) {
        let key = cache.pointee.linkKey
        let pool = BuddyEngine(state: cache.pointee.pool)
        let code = UInt8(truncatingIfNeeded: cache.code(ofBin: bin))
        let slot = cache.bins + bin
        var block = spare ? slot.pointee.spare : slot.pointee.head
        var left = Int(spare ? slot.pointee.spareCount : slot.pointee.count)
        while let b = block, left > 0 {
            let next = decode(b.load(as: UInt.self), key: key)
            let tag = decode(b.load(fromByteOffset: MemoryLayout<UInt>.stride, as: UInt.self), key: key)
            let address = UInt(bitPattern: b)
            var sound = valid(next: next, tag: tag) && (left > 1 || next == 0)
            if sound, let segment = SegmentMap.lookup(address), segment.pointee.pool == UnsafeMutableRawPointer(pool.state) {
                let own = segment.pointee.orderMap + pool.slot(address, in: segment)
                sound = tag == UInt(bitPattern: own) && own.pointee == Tag.used | code
            } else {
                sound = false
            }
            if !sound {
                if spare {
                    slot.pointee.spare = nil
                    slot.pointee.spareCount = 0
                }
                cacheCorrupted(cache, bin: bin, block: b, function: "exit()")
                break
            }
            block = UnsafeMutableRawPointer(bitPattern: next)
            left &-= 1
        }
    }
}

/// What a corruption report says happened to the block.
enum CorruptionCause {
    /// A free block's links changed: written after its free.
    case writtenAfterFree
    /// The links of the free block after a freed one changed: an overflow of the freed block
    /// (or a write after free of the neighbour).
    case freeNeighbourOverwritten
    /// BUDDY_HARDEN: the canary after a block changed (an overflow of the block, or an
    /// underflow of the block after it).
    case canaryOverwritten
    /// BUDDY_HARDEN: a quarantined block's fill pattern changed (written after its free).
    case patternChanged
    /// BUDDY_HARDEN: the canary before a freed block changed (an underflow of the block, or an
    /// overflow of the one before it). The report names the canary word.
    case underflow
}

/// Heap corruption found in a free block (see FreeLinks): one line naming the block, the call
/// stack on the next lines (kept for the report's bad_pointers as "heap_corruption"), then abort
/// or carry on as `strategy` says; nil: abort whatever BUDDY_ON_ERROR says (a list the pool
/// cannot repair).
@inline(never)
func reportCorruption(_ function: StaticString, _ block: UnsafeRawPointer, strategy: ErrorStrategy?,
                      cause: CorruptionCause = .writtenAfterFree) {
    var line = TextBuffer()
    line.append("buddy: ")
    line.append(function)
    line.append(": heap corruption: ")
    // What happened, around the block, and what happens next under BUDDY_ON_ERROR=log: a
    // block whose canary or fill was checked at its free is freed all the same; a list whose
    // links were not followed is abandoned. (if-else, not a switch: a jump table is an indirect
    // jump check-malloc-path.py cannot resolve.)
    let abandoned: StaticString = "; the free blocks listed with it are abandoned (leaked), the pool is unchanged\n"
    let freed: StaticString = "; the block is freed all the same\n"
    let before: StaticString, after: StaticString, carryingOn: StaticString
    if case .freeNeighbourOverwritten = cause {
        (before, after, carryingOn) = ("the free block at ", " has invalid links: an overflow of the block before it, or a write after free", abandoned)
    } else if case .canaryOverwritten = cause {
        (before, after, carryingOn) = ("the canary after the block at ", " was overwritten: an overflow of the block (or an underflow of the next)", freed)
    } else if case .underflow = cause {
        (before, after, carryingOn) = ("the canary at ", ", just before the block freed, was overwritten: an underflow (or an overflow of the block before)", freed)
    } else if case .patternChanged = cause {
        (before, after, carryingOn) = ("the freed block at ", " was written after it was freed (its fill pattern changed in quarantine)", freed)
    } else {
        (before, after, carryingOn) = ("the free block at ", " was written after it was freed (its free-list links are not valid)", abandoned)
    }
    line.append(before)
    line.append(hex: UInt(bitPattern: block))
    line.append(after)
    finishReport(&line, function, block, .heapCorruption, strategy: strategy, carryingOn: carryingOn,
                 fatal: "; aborting: the pool's free lists cannot be repaired\n")
}
