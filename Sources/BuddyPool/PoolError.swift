internal import BuddyEngine

/// Why a pool call failed: the design document's four error types (section 7.3, table 12.2),
/// with its error codes as raw values (the same numbers as buddy.h's `BUDDY_*` codes).
///
/// The thrown value names the kind of failure and what to do about it; the pool's error logger
/// (see `MemoryPool.ErrorStrategy.log`) also receives a line with the particulars (sizes,
/// addresses, limits).
///
/// C++: `OutOfMemoryException`, `InvalidPointerException`, `PoolFullException`,
/// `InvalidAlignmentException`; `ErrorType` for the codes.
public enum PoolError: Int32, Error, Sendable, CaseIterable, CustomStringConvertible {
    /// The system refused memory for a new segment, or the request is larger than the pool's
    /// largest block (a private pool has no fallback allocator). `OUT_OF_MEMORY`, `BUDDY_OUT_OF_MEMORY`.
    case outOfMemory = 1
    /// The pointer is not the start of a block allocated from this pool (from another pool, from
    /// elsewhere, inside a block, or already freed). The pool is left unchanged.
    /// `INVALID_POINTER`, `BUDDY_INVALID_POINTER`.
    case invalidPointer = 2
    /// The pool reached `maxSize` and may not grow. `POOL_FULL`, `BUDDY_POOL_FULL`.
    case poolFull = 3
    /// The alignment is not a power of two no larger than the pool's largest block.
    /// `INVALID_ALIGNMENT`, `BUDDY_INVALID_ALIGNMENT`.
    case invalidAlignment = 4

    /// The design document's error code (table 12.2), equal to buddy.h's `BUDDY_*` value.
    public var code: Int32 { rawValue }

    /// The design document's name for the code: `OUT_OF_MEMORY`, `INVALID_POINTER`, ...
    public var name: String {
        switch self {
        case .outOfMemory: "OUT_OF_MEMORY"
        case .invalidPointer: "INVALID_POINTER"
        case .poolFull: "POOL_FULL"
        case .invalidAlignment: "INVALID_ALIGNMENT"
        }
    }

    /// What went wrong and what to do: the remedies of table 12.2.
    public var description: String {
        switch self {
        case .outOfMemory:
            "OUT_OF_MEMORY: the pool could not get memory; free blocks you no longer need, or give the pool a larger maxBlockSize for large requests"
        case .invalidPointer:
            "INVALID_POINTER: the pointer is not a block allocated from this pool; deallocate only pointers this pool returned, once each"
        case .poolFull:
            "POOL_FULL: the pool reached its maxSize; raise maxSize, or free blocks"
        case .invalidAlignment:
            "INVALID_ALIGNMENT: use a power of two no larger than the pool's maxBlockSize"
        }
    }
}

extension PoolError {
    /// The error of a problem the private-pool core reports (its code is the raw value).
    init(_ problem: PoolProblem) {
        self = PoolError(rawValue: problem.code) ?? .outOfMemory
    }
}
