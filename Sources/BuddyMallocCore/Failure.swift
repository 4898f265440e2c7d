#if !BUDDY_ONE_MODULE
import BuddyEngine
#endif
import CBuddySupport

/// The one allocation-free failure path: a static message on stderr, then abort.
/// (`fatalError` formats its message and allocates: inside malloc, with the lock held, it hangs.)
func buddyFatal(_ message: StaticString) -> Never {
    var line = TextBuffer()
    line.append("buddy: fatal: ")
    line.append(message)
    line.append(byte: 10)
    line.write(to: 2)
    buddy_os_abort()
}

/// A misuse of the allocator's API the C layer reports (the report's `bad_pointers` kinds).
enum Misuse {
    /// Not the start of a block (inside one, or in free space).
    case invalidPointer
    /// free() of the start of a free block (freed twice).
    case doubleFree
    /// realloc() or malloc_usable_size() of the start of a free block.
    case useAfterFree
    /// A private pool's block given to free().
    case otherPool
    /// free_sized() or free_aligned_sized() with a size the block cannot have been asked for.
    case wrongSize
    /// A free block's links overwritten after its free (FreeLinks; reportCorruption).
    case heapCorruption

    /// The misuse a release outcome of `function` is: realloc and malloc_usable_size of a free
    /// block use it after its free, they do not free it twice.
    init(_ outcome: BuddyEngine.ReleaseOutcome, freeing: Bool) {
        let misuse: Misuse
        switch outcome {
        case .doubleFree: misuse = .doubleFree
        case .otherPool: misuse = .otherPool
        default: misuse = .invalidPointer
        }
        self = freeing ? misuse : misuse.notFreeing
    }

    /// The same misuse by a call that does not free (realloc, malloc_usable_size): a freed
    /// block is used after its free, not freed twice.
    var notFreeing: Misuse {
        if case .doubleFree = self { return .useAfterFree }
        return self
    }
}

/// Reports a bad pointer on one line of stderr, naming the pointer, the function and the remedy.
/// Called without any pool lock held. Aborts when the strategy says so.
func reportBadPointer(_ function: StaticString, _ pointer: UnsafeRawPointer, _ outcome: BuddyEngine.ReleaseOutcome,
                      strategy: ErrorStrategy) {
    reportMisuse(function, pointer, Misuse(outcome, freeing: true), strategy: strategy)
}

/// Reports a misuse (see reportBadPointer); `size` and `usable` describe a wrong size.
func reportMisuse(_ function: StaticString, _ pointer: UnsafeRawPointer, _ misuse: Misuse, strategy: ErrorStrategy,
                  size: UInt = 0, usable: UInt = 0) {
    var line = TextBuffer()
    line.append("buddy: ")
    line.append(function)
    line.append(": ")
    if case .wrongSize = misuse {
        line.append("wrong size ")
        line.append(decimal: UInt64(size))
        line.append(" for ")
        line.append(hex: UInt(bitPattern: pointer))
        line.append(" (its block holds ")
        line.append(decimal: UInt64(usable))
        line.append(" bytes: pass the size the block was allocated with)")
        return finishReport(&line, function, pointer, misuse, strategy: strategy, carryingOn: "; the block is freed\n")
    }
    // What happened, around the pointer. (if-else, not a switch: a jump table here is an
    // indirect jump tools/check-malloc-path.py cannot resolve.)
    let before: StaticString, after: StaticString
    if case .doubleFree = misuse {
        (before, after) = ("double free of ", " (the block is already free: freed twice)")
    } else if case .useAfterFree = misuse {
        (before, after) = ("use after free of ", " (the block is free: its pointer was used after free())")
    } else if case .otherPool = misuse {
        (before, after) = ("pointer ", " belongs to a private pool (release it with buddy_pool_free)")
    } else {
        (before, after) = ("invalid pointer ", " (not the start of a block)")
    }
    line.append(before)
    line.append(hex: UInt(bitPattern: pointer))
    line.append(after)
    finishReport(&line, function, pointer, misuse, strategy: strategy, carryingOn: "; ignored, the pool is unchanged\n")
}

/// The end of every misuse report: what happens next (abort, or `carryingOn` under
/// BUDDY_ON_ERROR=log; nil strategy: abort whatever it says, with `fatal` as the reason), the
/// line written, the call stack on the following lines (kept for the report's bad_pointers).
func finishReport(_ line: inout TextBuffer, _ function: StaticString, _ pointer: UnsafeRawPointer, _ misuse: Misuse,
                  strategy: ErrorStrategy?, carryingOn: StaticString, fatal: StaticString = "") {
    let aborting: Bool
    switch strategy {
    case .abort?: aborting = true
    case .log?: aborting = false
    case nil: aborting = true
    }
    if strategy == nil {
        line.append(fatal)
    } else if aborting {
        line.append("; aborting (BUDDY_ON_ERROR=log reports and continues)\n")
    } else {
        line.append(carryingOn)
    }
    line.write(to: 2)
    BadPointerLog.record(function, pointer, misuse)
    if aborting { buddy_os_abort() }
}
