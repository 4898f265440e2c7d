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
///     valid(next, tag) <=> next & 15 == 0  &&  (next | tag) & highBits == 0
///
/// A rejected link is reported as heap corruption (with the call stack), counted as an invalid
/// pointer, and handled by BUDDY_ON_ERROR: abort, or abandon the bin (its blocks leak, the pool
/// stays intact) and carry on.
enum FreeLinks {
    /// The bits above the 47-bit user address space (README, Limits: segments lie below 2^47).
    static let highBits: UInt = ~((1 << 47) &- 1)

    /// Whether a decoded next link and tag address can be followed (see above).
    @inline(__always) static func valid(next: UInt, tag: UInt) -> Bool {
        ((next | tag) & highBits) | (next & 15) == 0
    }

    @inline(__always) static func encode(_ link: UInt, key: UInt) -> UInt { link ^ key }
    @inline(__always) static func decode(_ stored: UInt, key: UInt) -> UInt { stored ^ key }

    /// A cached block whose links were overwritten: reports it, and abandons the bin (its blocks
    /// stay tagged cached: free to the program, never handed out again) unless the error strategy
    /// aborts. The caller returns nil, so malloc takes its slow path.
    @inline(never)
    static func cacheCorrupted(_ cache: UnsafeMutablePointer<ThreadCache>, bin: Int, block: UnsafeMutableRawPointer) {
        (cache.bins + bin).pointee.head = nil
        (cache.bins + bin).pointee.count = 0
        let pool = BuddyEngine(state: cache.pointee.pool)
        pool.countMisuse(.heapCorruption)
        reportCorruption("malloc()", block, strategy: pool.config.errorStrategy)
    }
}

/// Heap corruption found in a free block (see FreeLinks): one line naming the block, the call
/// stack on the next lines (kept for the report's bad_pointers as "heap_corruption"), then abort
/// or carry on as `strategy` says; nil: abort whatever BUDDY_ON_ERROR says (a list the pool
/// cannot repair).
@inline(never)
func reportCorruption(_ function: StaticString, _ block: UnsafeRawPointer, strategy: ErrorStrategy?) {
    var line = LineBuffer()
    line.append("buddy: ")
    line.append(function)
    line.append(": heap corruption: the free block at ")
    line.append(hex: UInt(bitPattern: block))
    line.append(" was written after it was freed (its free-list links are not valid)")
    let aborting: Bool
    switch strategy {
    case .abort?: aborting = true
    case .log?: aborting = false
    case nil: aborting = true
    }
    if strategy == nil {
        line.append("; aborting: the pool's free lists cannot be repaired\n")
    } else if aborting {
        line.append("; aborting (BUDDY_ON_ERROR=log reports and continues)\n")
    } else {
        line.append("; the free blocks listed with it are abandoned (leaked), the pool is unchanged\n")
    }
    line.write(to: 2)
    BadPointerLog.record(function, block, .heapCorruption)
    if aborting { buddy_os_abort() }
}
