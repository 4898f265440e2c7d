import CBuddySupport

/// The one allocation-free failure path: a static message on stderr, then abort.
/// (`fatalError` formats its message and allocates: inside malloc, with the lock held, it hangs.)
func buddyFatal(_ message: StaticString) -> Never {
    var line = LineBuffer()
    line.append("buddy: fatal: ")
    line.append(message)
    line.append(byte: 10)
    line.write(to: 2)
    buddy_os_abort()
}

/// Reports a bad pointer on one line of stderr, naming the pointer, the function and the remedy.
/// Called without any pool lock held. Aborts when the strategy says so.
func reportBadPointer(_ function: StaticString, _ pointer: UnsafeRawPointer, _ outcome: BuddyEngine.ReleaseOutcome,
                      strategy: ErrorStrategy) {
    var line = LineBuffer()
    line.append("buddy: ")
    line.append(function)
    line.append(": ")
    switch outcome {
    case .doubleFree:
        line.append("double free of ")
        line.append(hex: UInt(bitPattern: pointer))
        line.append(" (the block is already free: freed twice, or used after free)")
    case .otherPool:
        line.append("pointer ")
        line.append(hex: UInt(bitPattern: pointer))
        line.append(" belongs to a private pool (release it with buddy_pool_free)")
    default:
        line.append("invalid pointer ")
        line.append(hex: UInt(bitPattern: pointer))
        line.append(" (inside the pool, not the start of an allocated block)")
    }
    let aborting: Bool
    switch strategy {
    case .abort: aborting = true
    case .log: aborting = false
    }
    if aborting {
        line.append("; aborting (BUDDY_ON_ERROR=log reports and continues)\n")
    } else {
        line.append("; ignored, the pool is unchanged\n")
    }
    line.write(to: 2)
    // The call stack that passed the pointer, on the following lines; kept for the report.
    BadPointerLog.record(function, pointer, outcome)
    if aborting { buddy_os_abort() }
}
