// C support for the BuddyMalloc engine: only what Swift cannot say.
//   - thread-local state (Swift has no TLS): initial-exec model, one copy defined in support.c;
//   - glibc's own allocator entry points, which no header declares;
//   - atomics with explicit orderings, errno, and the OS calls behind one thin layer.
// Everything here is allocation-free and safe to call from inside malloc.
#ifndef BUDDY_SUPPORT_H
#define BUDDY_SUPPORT_H

#include <stddef.h>
#include <stdint.h>
#include <errno.h>

// MARK: - glibc's allocator (exported by libc.so.6 since 2.2.5, declared nowhere)
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void __libc_free(void *ptr);
extern void *__libc_memalign(size_t alignment, size_t size);

/// glibc's malloc_usable_size for a pointer the system allocator owns (resolved with dlsym RTLD_NEXT).
size_t buddy_system_usable_size(void *ptr);

// MARK: - Thread-local state
/// Per-thread allocator state. Zero is the valid initial state: a new thread's first call sees it.
typedef struct buddy_thread_state {
    union {
        struct {
            /// Nesting depth inside the allocator: > 0 means a call re-entered (through libc or a
            /// signal handler) and must go to the system allocator instead of taking the pool lock again.
            uint32_t depth;
            /// Non-zero while deferred_free holds blocks (buddy_thread_set_deferred).
            uint32_t deferred_pending;
        };
        /// Both: zero when the thread is outside the allocator with no deferred free, so that
        /// malloc's fast path tests the two with one compare (buddy_thread_idle).
        uint64_t entry_word;
    };
    /// This thread's lock-owner id (buddy_lock_owner_id): 0 until the thread first takes a lock.
    uint32_t lock_id;
    /// The locks each fork prepare handler of this thread took, 8 bits a nesting level (a
    /// signal handler may fork while its thread is inside fork): ProcessPool's fork handlers.
    uint64_t fork_taken;
    /// Pool blocks freed while re-entered; they are released at the thread's next outer call.
    void *deferred_free;
    /// The thread's cache (ThreadCache.swift): NULL until the first call, BUDDY_CACHE_DISABLED
    /// once the thread has flushed it at exit (or could not get one).
    void *cache;
} buddy_thread_state;

#define BUDDY_CACHE_DISABLED ((void *)1)

extern __thread buddy_thread_state buddy_thread __attribute__((tls_model("initial-exec")));

static inline uint32_t buddy_thread_depth(void) { return buddy_thread.depth; }
// The depth is raised and lowered through the whole entry word (depth is its low half and never
// goes below 0, so deferred_pending is untouched): malloc's next buddy_thread_idle reads those
// 8 bytes, and a load wider than the store before it cannot take its value from the store
// buffer. With 4-byte stores it waited for each one to retire: the pipeline shape ran at 0.74x.
static inline void buddy_thread_enter(void) { buddy_thread.entry_word += 1; }
static inline void buddy_thread_leave(void) { buddy_thread.entry_word -= 1; }
/// buddy_thread_enter for a thread known idle (buddy_thread_idle): a store, no load, so the fast
/// paths' entry does not wait on the previous call's leave in the store buffer (with free's
/// sample test folded into its range test, the same change: glibc-thread, one thread, about 4%
/// more iterations; not measured apart). Their leave stays a subtraction: a signal handler
/// that defers a free meanwhile sets deferred_pending, which it must keep.
static inline void buddy_thread_enter_idle(void) { buddy_thread.entry_word = 1; }
static inline void *buddy_thread_deferred(void) { return buddy_thread.deferred_free; }
static inline void buddy_thread_set_deferred(void *p) {
    buddy_thread.deferred_free = p;
    buddy_thread.deferred_pending = p != NULL;
}
/// Depth 0 and no deferred free: what malloc's fast path needs before it takes a cached block
/// (a deferred free waits for the slow path, which releases it first).
static inline int buddy_thread_idle(void) { return buddy_thread.entry_word == 0; }
static inline void *buddy_thread_cache(void) { return buddy_thread.cache; }
static inline void buddy_thread_set_cache(void *c) { buddy_thread.cache = c; }
static inline void buddy_thread_disable_cache(void) { buddy_thread.cache = BUDDY_CACHE_DISABLED; }

/// Creates the key whose destructor flushes a thread's cache when the thread exits; 0 on success.
int buddy_thread_key_create(void (*destructor)(void *));
/// Associates the calling thread's cache with the key (so the destructor sees it).
void buddy_thread_key_set(void *cache);

// MARK: - Process state
/// glibc keeps this non-zero until the process creates its first thread.
extern char __libc_single_threaded;
static inline int buddy_process_is_single_threaded(void) {
    return __atomic_load_n(&__libc_single_threaded, __ATOMIC_RELAXED) != 0;
}

// MARK: - errno
static inline int buddy_errno_get(void) { return errno; }
static inline void buddy_errno_set(int value) { errno = value; }

// MARK: - Atomics (every access names its ordering)
static inline void *buddy_atomic_load_ptr_acquire(void *const *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void buddy_atomic_store_ptr_release(void **p, void *v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline uint64_t buddy_atomic_load_u64_relaxed(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void buddy_atomic_add_u64_relaxed(uint64_t *p, uint64_t v) { __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
static inline int32_t buddy_atomic_load_i32_relaxed(const int32_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void buddy_atomic_store_i32_relaxed(int32_t *p, int32_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
/// Replaces *p by `desired` when it holds `expected`: 1 when it did (one thread wins a race).
static inline int buddy_atomic_cas_u64_relaxed(uint64_t *p, uint64_t expected, uint64_t desired) {
    return __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

// MARK: - Locks
/// The allocator's lock: one 32-bit futex word that names its holder (Drepper's "mutex2" from
/// "Futexes Are Tricky", with the owner in the word as in Linux's PI futexes):
///
///     0 free    id taken by the thread with that id    id | BUDDY_LOCK_WAITERS  and a thread
///                                                       may be asleep in the kernel waiting
///
/// lock: compare-and-swap 0 -> id; on failure set the waiters bit and sleep (FUTEX_WAIT) until a
/// swap from 0 succeeds. unlock: swap in 0; if the waiters bit was set, wake one sleeper
/// (FUTEX_WAKE). Uncontended, each is one atomic instruction and no call.
///
/// Why the owner: fork's prepare handler takes every lock, but a signal handler may fork while
/// its own thread holds one (inside malloc, or inside fork's prepare handler): it must see that
/// the lock is its own and not wait for itself (buddy_lock_is_mine). The owner is in the same
/// word the acquiring instruction writes, so there is no moment when the lock is taken and the
/// owner unknown.
///
/// Why not pthread_mutex_t: the report signal handler tries the pool lock, and POSIX does not
/// list pthread_mutex_trylock as async-signal-safe. This lock is atomics and system calls issued
/// by our own `syscall` instruction (raw_syscall.h), nothing else, which
/// tools/check-malloc-path.py --signal-safe proves for the handler's whole path. Zero is the
/// free state: static storage and freshly mapped memory start unlocked.
typedef struct buddy_mutex {
    uint32_t word;
    /// Times the lock was taken after a wait (buddy_lock_wait), and taken at all: written by the
    /// holder only (plain adds under the lock), read by statistics with relaxed loads.
    uint32_t contended;
    uint64_t acquisitions;
} buddy_mutex;

#define BUDDY_LOCK_WAITERS 0x80000000u

/// A pause in a spin loop (lets the other hyper-thread run; x86 `pause`, Arm `yield`).
static inline void buddy_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield");
#endif
}

/// Gives the calling thread its lock-owner id (support.c): a process-wide counter, never 0,
/// below BUDDY_LOCK_WAITERS. A forked child keeps its thread's id: the parent's other threads,
/// whose ids it could repeat, do not exist there. Async-signal-safe (one atomic add).
uint32_t buddy_lock_assign_id(void);
static inline uint32_t buddy_lock_owner_id(void) {
    uint32_t id = buddy_thread.lock_id;
    if (__builtin_expect(id == 0, 0)) id = buddy_lock_assign_id();
    return id;
}

/// The contended halves (support.c): spin briefly, then sleep until the lock is ours; wake one
/// sleeper.
void buddy_lock_wait(buddy_mutex *m, uint32_t id);
void buddy_lock_wake(buddy_mutex *m);

/// Makes the lock free; also in a forked child, where the parent's holder does not exist.
static inline void buddy_lock_init(buddy_mutex *m) { __atomic_store_n(&m->word, 0, __ATOMIC_RELAXED); }
static inline void buddy_lock(buddy_mutex *m) {
    uint32_t id = buddy_lock_owner_id();
    uint32_t expected = 0;
    if (__builtin_expect(!__atomic_compare_exchange_n(&m->word, &expected, id, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED), 0)) {
        buddy_lock_wait(m, id);
        __atomic_store_n(&m->contended, m->contended + 1, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&m->acquisitions, m->acquisitions + 1, __ATOMIC_RELAXED);
}
/// The lock's counts (see buddy_mutex), for statistics.
static inline uint64_t buddy_lock_acquisitions(buddy_mutex *m) { return __atomic_load_n(&m->acquisitions, __ATOMIC_RELAXED); }
static inline uint64_t buddy_lock_contended(buddy_mutex *m) { return __atomic_load_n(&m->contended, __ATOMIC_RELAXED); }
static inline void buddy_unlock(buddy_mutex *m) {
    if (__builtin_expect((__atomic_exchange_n(&m->word, 0, __ATOMIC_RELEASE) & BUDDY_LOCK_WAITERS) != 0, 0)) buddy_lock_wake(m);
}
/// Takes the lock if it is free: 1 when taken. Never waits, never enters the kernel: a signal
/// handler may call it.
static inline int buddy_try_lock(buddy_mutex *m) {
    uint32_t expected = 0;
    if (!__atomic_compare_exchange_n(&m->word, &expected, buddy_lock_owner_id(), 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return 0;
    __atomic_store_n(&m->acquisitions, m->acquisitions + 1, __ATOMIC_RELAXED);
    return 1;
}
/// Whether the calling thread holds the lock. Only the holder writes its id into the word, so
/// the answer is exact for the calling thread (for others it may be stale a moment later).
static inline int buddy_lock_is_mine(buddy_mutex *m) {
    uint32_t id = buddy_thread.lock_id;
    return id != 0 && (__atomic_load_n(&m->word, __ATOMIC_RELAXED) & ~BUDDY_LOCK_WAITERS) == id;
}

/// Guards the segment table and the segment map's leaves.
extern buddy_mutex buddy_init_lock;
static inline buddy_mutex *buddy_map_lock(void) { return &buddy_init_lock; }

/// Guards the creation of the process-wide pool (taken before any other lock).
extern buddy_mutex buddy_process_init_lock;
static inline buddy_mutex *buddy_process_lock(void) { return &buddy_process_init_lock; }
/// The process-wide pool's state once created (read with acquire ordering).
extern void *buddy_process_pool;
static inline void *buddy_process_pool_get(void) { return __atomic_load_n(&buddy_process_pool, __ATOMIC_ACQUIRE); }
static inline void buddy_process_pool_publish(void *p) { __atomic_store_n(&buddy_process_pool, p, __ATOMIC_RELEASE); }
/// Set when creating the process-wide pool failed: every call then goes to the system allocator.
extern int buddy_process_pool_failed;
static inline int buddy_process_pool_has_failed(void) { return buddy_process_pool_failed; }
static inline void buddy_process_pool_set_failed(void) { buddy_process_pool_failed = 1; }
/// The value of BUDDY_REPORT read at start-up (NULL: no exit report).
extern const char *buddy_report_target;
static inline const char *buddy_report_target_get(void) { return buddy_report_target; }
/// Keeps a copy of the value (up to 1023 bytes): programs such as redis rewrite their environment
/// (setproctitle), so the string getenv returned may be gone by exit time.
void buddy_report_target_set(const char *v);

/// Registers fork handlers (prepare, parent, child) implemented in Swift.
int buddy_register_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void));

/// The locks of one fork, a bit each (ProcessPool's fork handlers record which they took).
enum { BUDDY_FORK_PROCESS_LOCK = 1, BUDDY_FORK_POOL_LOCK = 2, BUDDY_FORK_MAP_LOCK = 4, BUDDY_FORK_STDIO_LOCK = 8,
       BUDDY_FORK_OVERSIZE_LOCK = 16 };
/// Takes the lock for fork's prepare handler unless the calling thread holds it already (a
/// signal handler forking inside the allocator or inside fork): 1 when it took it.
int buddy_fork_take(buddy_mutex *m);
/// Takes glibc's stream-list lock (recursive) when the process has threads: 1 when it took it.
/// fork's prepare handler takes it before the allocator's locks, the order glibc's own fork
/// uses for its malloc (glibc bug 19431): a thread in getline holds a stream's lock and calls
/// realloc, while fflush(NULL) holds the list's lock and waits for that stream.
int buddy_fork_take_stdio(void);
/// After fork: the parent releases the stream-list lock; the child resets it (glibc's own fork
/// may have reset it already: resetting twice is harmless, releasing twice is not).
void buddy_fork_release_stdio(int child);
/// A nesting-level stack of what each prepare handler took, in the thread's state.
static inline void buddy_fork_push(uint32_t taken) { buddy_thread.fork_taken = (buddy_thread.fork_taken << 8) | (taken & 255u); }
static inline uint32_t buddy_fork_pop(void) {
    uint32_t taken = (uint32_t)(buddy_thread.fork_taken & 255u);
    buddy_thread.fork_taken >>= 8;
    return taken;
}

// MARK: - Segment map
/// Root of the process-wide radix map from address to segment descriptor (see SegmentMap.swift):
/// 2^15 entries, each NULL or a leaf of 2^16 descriptor pointers, one per 64 KiB of address space.
extern void *buddy_segment_map_storage[1 << 15];
static inline void **buddy_segment_map_root(void) { return buddy_segment_map_storage; }

/// Head of the list of unused segment descriptors (guarded by buddy_init_lock).
void **buddy_segment_table_free_list(void);
/// The descriptors of the last mapped chunk not handed out yet: [0] the next one, [1] the end
/// (both NULL before the first chunk; guarded by buddy_init_lock).
void **buddy_segment_table_fresh(void);

// MARK: - OS: the only calls the engine makes to the kernel (fault injection for tests)
/// When > 0, counts down on each map call of this thread; the call that brings it to 0 fails.
/// For tests: thread-local, so a test injecting a failure cannot disturb tests on other threads.
extern __thread int buddy_os_fail_map_countdown __attribute__((tls_model("initial-exec")));
static inline void buddy_os_fail_map_after(int calls) { buddy_os_fail_map_countdown = calls; }
/// Maps `size` bytes of zeroed, private, read-write memory aligned to `alignment` (a power of two
/// that is at least the OS page), or returns NULL.
void *buddy_os_map_aligned(size_t size, size_t alignment);
/// Gives the pages of [base, base + size) back to the OS (MADV_DONTNEED: they read as zero
/// afterwards). Preserves errno.
void buddy_os_release_pages(void *base, size_t size);
/// A coarse monotonic clock in nanoseconds (vDSO, no system call).
uint64_t buddy_os_monotonic_ns(void);
/// Unmaps what buddy_os_map_aligned returned. Preserves errno (free must not change it).
void buddy_os_unmap(void *base, size_t size);
/// Writes all of `len` bytes to `fd`, retrying short writes; async-signal-safe; preserves errno.
void buddy_os_write(int fd, const void *buf, size_t len);
void buddy_os_close(int fd);
/// The process id, for report names and headers.
int buddy_os_getpid(void);
/// The OS page size.
size_t buddy_os_page_size(void);
/// The most mappings a process may have (vm.max_map_count, read once; 65530 if unreadable).
long buddy_os_max_map_count(void);
/// The page size as the last buddy_os_page_size() found it (every pool asks when it is created);
/// 0 before. For code that must not call libc (the report signal handler's path).
extern size_t buddy_os_page_bytes;
static inline size_t buddy_os_page_recorded(void) { return __atomic_load_n(&buddy_os_page_bytes, __ATOMIC_RELAXED); }
/// Environment lookup that does not allocate (NULL when unset or before libc set up environ).
const char *buddy_os_getenv(const char *name);
/// The environment's `NAME=value` entries, NULL-terminated (NULL before libc set up environ).
char *const *buddy_os_environ(void);
/// Set when the options printed a warning (OptionReader); the library's constructor then marks
/// the environment (BUDDY_WARNED=1, outside malloc: setenv allocates), so that the processes the
/// program starts do not repeat the warnings: once per process tree.
extern int buddy_options_warned;
static inline void buddy_options_set_warned(void) { buddy_options_warned = 1; }
/// The constructor's half: sets BUDDY_WARNED=1 if a warning was printed. Call outside malloc.
void buddy_options_mark_warned(void);
/// 64 random bits for this process (the kernel's AT_RANDOM bytes: no system call, available
/// from the first instruction), never 0: the key of the free-list links (see ThreadCache).
uint64_t buddy_os_random_key(void);
/// The one failure path: writes a static message to stderr and aborts. Never returns.
__attribute__((noreturn)) void buddy_os_abort(void);

// Statistics and reports: clocks, residency, files, backtraces, the writers' flags. (Included
// here so that every importer of this module sees it, and a build folder made before the file
// existed rebuilds the module.)
// The engine's calls up to the layer that owns a pool (BuddyEngine's EngineHooks): plain C
// function pointers, called only through these two functions, so that tools/check-malloc-path.py
// knows every indirect call of the engine (the hooks' bodies are checked through the function
// that installs them, which takes their addresses).
typedef void (*buddy_corruption_hook)(void *state, const void *block, uint8_t cause);
typedef void (*buddy_segment_hook)(void *state, uintptr_t base);
void buddy_call_corruption_hook(buddy_corruption_hook hook, void *state, const void *block, uint8_t cause);
void buddy_call_segment_hook(buddy_segment_hook hook, void *state, uintptr_t base);

#include "buddy_report_support.h"
#include "buddy_oversize_support.h"

#endif
