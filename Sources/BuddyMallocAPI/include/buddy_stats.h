// buddy_stats.h: the statistics and report API of libBuddyMalloc.so, for programs that link or
// preload it and want the figures themselves (self-contained: copy it next to your program).
//
//   struct buddy_stats s = { .size = sizeof s };
//   if (buddy_stats_get(&s) == 0) printf("%llu bytes in use\n", (unsigned long long)s.used);
//   buddy_report_write(2, BUDDY_REPORT_JSON);      // the report, as BUDDY_REPORT writes it
//
// Both functions are safe to call from any thread, never allocate, and do not take the pool lock
// longer than a snapshot takes. Resolve them with dlsym(RTLD_DEFAULT, "buddy_stats_get") when the
// library may be absent. The README ("The report") defines every figure.
#ifndef BUDDY_STATS_H
#define BUDDY_STATS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The layout version buddy_stats_get writes. Fields are only ever appended: a program built
/// against an older header passes its smaller `size` and gets the fields it knows.
#define BUDDY_STATS_VERSION 1
/// Orders a pool can have (0 ... 40: the minimum block to 2^40 times it).
#define BUDDY_STATS_MAX_ORDERS 41
/// Slab classes (README, "Slabs"): 7 per doubling from 1 KiB to 32 KiB.
#define BUDDY_STATS_MAX_SLAB_CLASSES 35
/// Slab classes under 1 KiB (48 ... 896 bytes), appended after them: class 35 + i.
#define BUDDY_STATS_SMALL_SLAB_CLASSES 8
/// Power-of-two buckets: bucket b counts the values v with 2^(b-1) < v <= 2^b (bucket 0: v <= 1).
#define BUDDY_STATS_BUCKETS 64

/// The allocator's entry points, in the order of `calls` and `failures`.
enum buddy_entry_point {
    BUDDY_CALL_MALLOC, BUDDY_CALL_CALLOC, BUDDY_CALL_REALLOC, BUDDY_CALL_REALLOCARRAY, BUDDY_CALL_FREE,
    BUDDY_CALL_POSIX_MEMALIGN, BUDDY_CALL_ALIGNED_ALLOC, BUDDY_CALL_MEMALIGN, BUDDY_CALL_VALLOC,
    BUDDY_CALL_PVALLOC, BUDDY_CALL_MALLOC_USABLE_SIZE, BUDDY_CALL_FREE_SIZED, BUDDY_CALL_FREE_ALIGNED_SIZED,
    BUDDY_CALL_COUNT
};

enum buddy_health { BUDDY_HEALTHY = 0, BUDDY_WARNING = 1, BUDDY_CRITICAL = 2 };
enum buddy_latency_mode { BUDDY_LATENCY_OFF = 0, BUDDY_LATENCY_SAMPLED = 1, BUDDY_LATENCY_EXACT = 2 };
enum buddy_report_format { BUDDY_REPORT_TEXT = 0, BUDDY_REPORT_JSON = 1 };

/// One order's blocks (block_size = min_block << order).
struct buddy_order_stats {
    uint64_t block_size;
    uint64_t live;          ///< blocks the program holds
    uint64_t free;          ///< blocks on the free areas (a segment's untouched tail counts as top-order blocks)
    uint64_t cached;        ///< blocks in thread caches (free to the program, not yet coalesced)
    uint64_t allocations;   ///< blocks of this order handed to the program so far
    uint64_t splits;        ///< blocks of this order split into two of the order below
    uint64_t coalesces;     ///< pairs of free buddies of this order merged into one of the order above
    uint64_t frees;         ///< blocks of this order the program freed so far
};

/// One slab class's objects (object_size = 9/8 ... 15/8 of a power of two, carved from blocks
/// of slab_size bytes).
struct buddy_slab_stats {
    uint64_t object_size;
    uint64_t slab_size;
    uint64_t slabs;         ///< slabs of this class (blocks of slab_size, counted in used, cached and free by their objects)
    uint64_t live;          ///< objects the program holds
    uint64_t free;          ///< objects in the slabs, free to hand out (freed or never used)
    uint64_t cached;        ///< objects in thread caches
    uint64_t allocations;   ///< objects of this class handed to the program so far
    uint64_t frees;         ///< objects of this class the program freed so far
};

struct buddy_stats {
    uint32_t version;       ///< BUDDY_STATS_VERSION of what was written
    uint32_t size;          ///< in: sizeof the caller's struct (0: this header's); out: bytes written

    // Time: seconds since the epoch (CLOCK_REALTIME); uptime = now - created.
    double created, now, uptime, last_activity;

    // Configuration (the BUDDY_* options in effect).
    uint64_t min_block, max_block, initial_size, max_pool_size;
    double growth_factor;
    uint32_t thread_safety; ///< 0 auto, 1 always, 2 off
    uint32_t on_error;      ///< 0 abort, 1 log

    // Memory, in bytes. reserved = used + cached + free.
    uint64_t reserved;      ///< in segments (mapped)
    uint64_t resident;      ///< of those, in RAM (mincore); 0 when unknown
    uint64_t used;          ///< in blocks and slab objects the program holds
    uint64_t cached;        ///< in thread caches (their blocks and objects, and their descriptors)
    uint64_t free;          ///< in free blocks, segments' untouched tails, and slabs' spare bytes
    uint64_t metadata;      ///< outside the segments: order maps, the pool's state (not in reserved)
    uint64_t requested;     ///< asked for by the program, live: an estimate (used x requested_total / allocated_total)
    uint64_t requested_total;   ///< asked for, by every pool allocation so far
    uint64_t allocated_total;   ///< block bytes that served those requests
    uint64_t largest_free_block;
    uint64_t peak_used;     ///< the most bytes the pool had allocated at once (thread caches included)
    uint64_t live_allocations;
    /// The most live allocations at once: exact for a private pool and for a process whose
    /// allocations come from one thread; with T threads within (T - 1) x C of the true peak,
    /// C = 953 blocks with the default thread caches (README, "The figures").
    uint64_t peak_live_allocations;
    double usage;                   ///< used / reserved
    double internal_fragmentation;  ///< 1 - requested_total / allocated_total
    double external_fragmentation;  ///< 1 - largest_free_block / min(free, max_block); 0 when free is 0

    // Calls by entry point, and those that failed (NULL, ENOMEM or EINVAL).
    uint64_t calls[BUDDY_CALL_COUNT];
    uint64_t failures[BUDDY_CALL_COUNT];
    uint64_t invalid_pointers, double_frees;
    uint64_t system_calls;      ///< requests handed to glibc: larger than the maximum block
    uint64_t system_bytes;
    uint64_t reentrant_calls;   ///< calls made from inside the allocator (libc, signal handlers), served by glibc
    uint64_t segments, segments_added, segments_released;
    uint64_t released_bytes;    ///< given back to the OS (madvise, munmap) so far
    uint64_t realloc_in_place;

    uint32_t order_count;       ///< orders of this pool: max_order + 1
    uint32_t health;            ///< enum buddy_health
    struct buddy_order_stats orders[BUDDY_STATS_MAX_ORDERS];
    uint64_t sizes[BUDDY_STATS_BUCKETS];       ///< requested sizes (bucket of min_block and below first)
    uint64_t alignments[BUDDY_STATS_BUCKETS];  ///< explicit alignments (2^b) asked for

    // Latency of the allocator's calls, timed with CLOCK_MONOTONIC around a call.
    uint32_t latency_mode;      ///< enum buddy_latency_mode
    uint32_t latency_period;    ///< sampled: one call in this many is timed
    uint64_t alloc_samples, alloc_total_ns, alloc_max_ns;
    uint64_t free_samples, free_total_ns, free_max_ns;

    // Slab classes (appended in the first release with slabs).
    uint32_t slab_class_count;  ///< classes this pool serves (0: no slabs)
    uint32_t slab_pad_;         ///< (0)
    uint64_t slab_spare;        ///< bytes in slabs outside live and cached objects (headers, free objects, slack): counted in free
    struct buddy_slab_stats slab_classes[BUDDY_STATS_MAX_SLAB_CLASSES];

    // Blocks above the maximum block, each a mapping of its own (appended with them), and the
    // misuses found besides invalid pointers and double frees.
    uint64_t oversize_blocks;       ///< live blocks above the maximum block
    uint64_t oversize_bytes;        ///< their bytes (whole pages: their usable sizes), not in reserved
    uint64_t oversize_peak_blocks;  ///< the most live at once
    uint64_t oversize_peak_bytes;   ///< the most bytes live at once
    uint64_t held;                  ///< bytes the program holds, whoever serves them: used + oversize_bytes
    uint64_t use_after_frees;       ///< realloc or malloc_usable_size of a freed block
    uint64_t wrong_sizes;           ///< free_sized or free_aligned_sized with a size the block cannot have

    // Locks (appended with the depot): how often threads met at the pool's locks. The pool lock
    // is shared by all threads; each depot shelf by the threads exchanging one size's batches.
    uint64_t pool_lock_acquisitions;    ///< times the pool lock was taken
    uint64_t pool_lock_contended;       ///< of those, after waiting for another thread
    uint64_t depot_puts;                ///< batches a full thread-cache bin handed to the depot
    uint64_t depot_takes;               ///< batches an empty bin took from the depot
    uint64_t depot_full;                ///< batches that found their shelf full (they went to the pool)
    uint64_t depot_lock_contended;      ///< shelf locks taken after waiting for another thread
    uint64_t depot_bytes;               ///< bytes in the depot's batches now (counted in cached)
    /// Freed oversize blocks kept mapped for reuse (for at most BUDDY_RELEASE_DELAY; malloc_trim
    /// returns them): not in oversize_bytes, not in reserved.
    uint64_t oversize_retained_bytes;

    // Resident memory explained (appended with it; README, "Resident memory"): the segments'
    // resident bytes by what holds them, so that
    //     resident == resident_used + resident_cached + resident_slab_spare + resident_free,
    // the resident part of the memory outside the segments, and the process's resident set.
    uint64_t resident_used;         ///< in blocks and slab objects the program holds
    uint64_t resident_cached;       ///< in thread caches and the depot (their blocks, objects and descriptors)
    uint64_t resident_slab_spare;   ///< in slabs outside used and cached objects (headers, free objects, slack)
    uint64_t resident_free;         ///< in free blocks: written once, not given back to the OS yet
    uint64_t resident_metadata;     ///< of the metadata (order maps, the pool's state, slab classes, the depot)
    uint64_t resident_oversize;     ///< of live blocks above the maximum block
    uint64_t resident_retained;     ///< of retained oversize mappings
    uint64_t process_resident;      ///< the whole process's resident set (/proc/self/statm); 0 when unknown

    // Slab classes under 1 KiB (appended with them): classes 35 ... 42, in size order.
    uint32_t small_slab_class_count; ///< classes under 1 KiB this pool serves (0: none, e.g. BUDDY_MAX_BLOCK above 8M)
    uint32_t small_slab_pad_;        ///< (0)
    struct buddy_slab_stats small_slab_classes[BUDDY_STATS_SMALL_SLAB_CLASSES];
};

/// Fills `stats` with a snapshot of the process pool. Set `stats->size` first (0 means
/// sizeof(struct buddy_stats) of this header). Returns 0, or -1 when stats is NULL or its size
/// is below 8, or when the pool does not exist (the system allocator serves the process).
int buddy_stats_get(struct buddy_stats *stats);

/// Writes the report (BUDDY_REPORT_TEXT or BUDDY_REPORT_JSON) to `fd`, with reason "api".
/// Returns 0, or -1 for a bad format or when the pool does not exist.
int buddy_report_write(int fd, int format);

#ifdef __cplusplus
}
#endif

#endif
