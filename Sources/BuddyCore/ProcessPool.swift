import CBuddySupport

/// The process-wide allocator: one instance of the engine, created from static state at the
/// first call (which arrives before any constructor has run), with fork handlers.
enum ProcessPool {
    /// The pool, creating it on first use; nil when it could not be created (the system
    /// allocator then serves everything). The caller is inside the allocator (depth > 0).
    @inline(__always)
    static func get() -> BuddyEngine? {
        if let state = buddy_process_pool_get() {
            return BuddyEngine(state: state.assumingMemoryBound(to: PoolState.self))
        }
        return create()
    }

    /// The pool if it exists, without creating it.
    @inline(__always)
    static var existing: BuddyEngine? {
        buddy_process_pool_get().map {
            BuddyEngine(state: $0.assumingMemoryBound(to: PoolState.self))
        }
    }

    @inline(never)
    static func create() -> BuddyEngine? {
        buddy_lock(buddy_process_lock())
        defer { buddy_unlock(buddy_process_lock()) }
        if let pool = existing { return pool }
        if buddy_process_pool_has_failed() != 0 { return nil }
        guard let pool = BuddyEngine.create(OptionReader.processConfig()) else {
            buddy_process_pool_set_failed()
            var line = LineBuffer()
            line.append("buddy: could not map the initial pool; the system allocator serves this process\n")
            line.write(to: 2)
            return nil
        }
        // Thread caches need the key whose destructor flushes them when a thread exits.
        if buddy_thread_key_create({ buddy_thread_exit($0) }) == 0 {
            pool.enableThreadCaches()
        }
        // pthread_atfork may allocate: the caller's depth sends that to the system allocator.
        _ = buddy_register_atfork(
            { ProcessPool.prepareFork() }, { ProcessPool.parentAfterFork() }, { ProcessPool.childAfterFork() })
        buddy_process_pool_publish(pool.identity)
        return pool
    }

    // Fork: the child must not inherit a lock held by a thread that does not exist there.
    // Order: process-init lock, pool lock, then the segment-map lock (taken inside pool calls).
    // The forking thread counts as inside the allocator from prepare to parent/child: it holds
    // the locks, so the report signal handler must leave its report pending rather than try them,
    // and a malloc of another atfork handler or signal handler must go to glibc.
    static func prepareFork() {
        buddy_thread_enter()
        buddy_lock(buddy_process_lock())
        existing?.forceLock()
        buddy_lock(buddy_map_lock())
        Oversize.prepareFork()
    }

    static func parentAfterFork() {
        Oversize.parentAfterFork()
        buddy_unlock(buddy_map_lock())
        existing?.forceUnlock()
        buddy_unlock(buddy_process_lock())
        buddy_thread_leave()
    }

    static func childAfterFork() {
        Oversize.childAfterFork()
        buddy_lock_init(buddy_map_lock())
        existing?.reinitializeLock()
        existing?.dropOtherThreadsCaches()
        buddy_lock_init(buddy_process_lock())
        buddy_thread_leave()
    }
}
