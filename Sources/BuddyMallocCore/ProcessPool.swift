#if !BUDDY_ONE_MODULE
import BuddyEngine
#endif
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
        let created = BuddyEngine.create(OptionReader.processConfig())
        guard let pool = created, ProcessState.attach(to: pool) else {
            created?.destroy() // (its segments back to the OS when malloc's state could not be mapped)
            buddy_process_pool_set_failed()
            var line = TextBuffer()
            line.append("buddy: could not map the initial pool; the system allocator serves this process\n")
            line.write(to: 2)
            return nil
        }
        // Thread caches need the key whose destructor flushes them when a thread exits.
        // (Hardened: no caches, so that every call takes the checked slow path.)
        if pool.hardened {
            pool.enableQuarantine()
        } else if buddy_thread_key_create({ buddy_thread_exit($0) }) == 0 {
            pool.enableThreadCaches()
        }
        // pthread_atfork may allocate: the caller's depth sends that to the system allocator.
        _ = buddy_register_atfork(
            { ProcessPool.prepareFork() }, { ProcessPool.parentAfterFork() }, { ProcessPool.childAfterFork() })
        buddy_report_note_parent()
        buddy_process_pool_publish(pool.identity)
        return pool
    }

    // MARK: The heap the C rules run over (tests)
    //
    // The C rules (CSemantics.swift, FastPaths.swift) run over whichever pool is published as the
    // process pool. Tests install a private pool there, with a configuration of their own (a
    // small maximum block, a pool limit to reach ENOMEM), and call the rules in-process through
    // buddy_malloc, buddy_calloc ...: no preloaded library, exact errno and pointers. One at a
    // time, on a process whose malloc is not this library's.

    /// Makes `pool` the heap the C rules use: malloc's process state attached, thread caches
    /// when `threadCaches` (their thread-exit key must exist: the caller creates it, as create()
    /// does). False when the process already has a pool, or the OS refuses a page.
    static func install(_ pool: BuddyEngine, threadCaches: Bool) -> Bool {
        guard existing == nil, ProcessState.attach(to: pool) else { return false }
        if threadCaches { pool.enableThreadCaches() }
        buddy_process_pool_publish(pool.identity)
        return true
    }

    /// Takes the installed pool out again; the calling thread forgets its cache of it (the
    /// caller retires it first, or destroys the pool).
    static func uninstall() {
        buddy_process_pool_publish(nil)
        buddy_thread_set_cache(nil)
        buddy_thread_set_deferred(nil)
    }

    // Fork: the child must not inherit a lock held by a thread that does not exist there, nor a
    // pool that another thread was changing. So the prepare handler takes every lock, in this
    // order: glibc's stream-list lock (only with threads: see buddy_fork_take_stdio), the
    // process-init lock, the pool lock, the depot's shelf locks (never held with another), the
    // segment-map lock (taken inside pool calls), then the oversize blocks' table lock.
    //
    // A signal handler may fork while its thread is inside the allocator or inside this very
    // handler (glibc's tst-mallocfork2): the thread holds some of these locks already and would
    // wait for itself. buddy_fork_take skips a lock the thread holds, and the handlers remember
    // per nesting level which locks they took (buddy_fork_push/pop): the parent handler gives
    // back only those; the child frees only those, and leaves the others to the interrupted
    // call, which resumes in the child when the signal handler returns and releases them.
    //
    // The forking thread counts as inside the allocator from prepare to parent/child: it holds
    // the locks, so the report signal handler must leave its report pending rather than try them,
    // and a malloc of another atfork handler or signal handler must go to glibc.
    static func prepareFork() {
        buddy_thread_enter()
        var taken: UInt32 = 0
        if buddy_fork_take_stdio() != 0 { taken |= UInt32(BUDDY_FORK_STDIO_LOCK) }
        if buddy_fork_take(buddy_process_lock()) != 0 { taken |= UInt32(BUDDY_FORK_PROCESS_LOCK) }
        if let pool = existing, pool.forkTakeLock() { taken |= UInt32(BUDDY_FORK_POOL_LOCK) }
        existing?.depotPrepareFork()
        if buddy_fork_take(buddy_map_lock()) != 0 { taken |= UInt32(BUDDY_FORK_MAP_LOCK) }
        if Oversize.prepareFork() { taken |= UInt32(BUDDY_FORK_OVERSIZE_LOCK) }
        buddy_fork_push(taken)
    }

    static func parentAfterFork() {
        let taken = buddy_fork_pop()
        if taken & UInt32(BUDDY_FORK_OVERSIZE_LOCK) != 0 { Oversize.parentAfterFork() }
        if taken & UInt32(BUDDY_FORK_MAP_LOCK) != 0 { buddy_unlock(buddy_map_lock()) }
        existing?.depotAfterFork(child: false)
        if taken & UInt32(BUDDY_FORK_POOL_LOCK) != 0 { existing?.forceUnlock() }
        if taken & UInt32(BUDDY_FORK_PROCESS_LOCK) != 0 { buddy_unlock(buddy_process_lock()) }
        if taken & UInt32(BUDDY_FORK_STDIO_LOCK) != 0 { buddy_fork_release_stdio(0) }
        buddy_thread_leave()
    }

    static func childAfterFork() {
        let taken = buddy_fork_pop()
        if taken & UInt32(BUDDY_FORK_OVERSIZE_LOCK) != 0 { Oversize.childAfterFork() }
        if taken & UInt32(BUDDY_FORK_MAP_LOCK) != 0 { buddy_lock_init(buddy_map_lock()) }
        existing?.depotAfterFork(child: true)
        if taken & UInt32(BUDDY_FORK_POOL_LOCK) != 0 {
            existing?.reinitializeLock()
            // The other threads' caches: their threads do not exist here. Only with the pool
            // lock ours: without it, an interrupted call of this thread may be changing the list.
            existing?.dropOtherThreadsCaches()
        }
        if taken & UInt32(BUDDY_FORK_PROCESS_LOCK) != 0 { buddy_lock_init(buddy_process_lock()) }
        if taken & UInt32(BUDDY_FORK_STDIO_LOCK) != 0 { buddy_fork_release_stdio(1) }
        AllocationProfile.resetLocksInChild()
        buddy_report_note_parent()
        buddy_thread_leave()
    }
}
