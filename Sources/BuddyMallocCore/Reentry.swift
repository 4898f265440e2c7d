#if !BUDDY_ONE_MODULE
import BuddyEngine
#endif
import CBuddySupport

// Re-entry: malloc calls things (libc, the unwinder, pthread_atfork, a signal arrives) that may
// call malloc again on the same thread, while the outer call may hold the pool lock. Every entry
// point raises the thread's depth (buddy_support.h, initial-exec TLS) around its work; a call
// that finds the depth raised is re-entrant and never touches the pool: allocations go to the
// system allocator, frees of pool blocks wait on the thread's deferred list until its next
// outer call (drainDeferredFrees). docs/swift-inside-malloc.md tells the whole story.

/// True when the thread is already inside the allocator: the call is counted as re-entrant and
/// the caller hands it to the system (or defers it). Otherwise the thread enters, and the caller
/// leaves with `buddy_thread_leave()` (a `defer` right after this test).
@inline(__always)
func reentered() -> Bool {
    if buddy_thread_depth() != 0 {
        ProcessPool.existing?.countReentrantCall()
        return true
    }
    buddy_thread_enter()
    return false
}
