/* buddy.h: BuddyMalloc's explicit-use API, private buddy-system pools for C and C++.
 *
 *   cc app.c $(pkg-config --cflags --libs buddymalloc)
 *
 * Linking libBuddyMalloc also makes the buddy pool the program's malloc. A private pool is
 * separate from it and from every other pool: its own segments, its own lock, its own counters.
 * Free a pool's blocks with buddy_pool_free on that pool; free() of one reports "belongs to a
 * private pool" and aborts (BUDDY_ON_ERROR=log: reports and ignores it).
 *
 * Blocks are powers of two from min_block to max_block bytes, each aligned to its own size. The
 * functions never allocate with malloc and are safe to call from any thread (thread_safe = 1).
 * The design document's C++ counterparts are named in brackets.
 */
#ifndef BUDDY_H
#define BUDDY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes [ErrorType, table 12.2]. 0 is success. */
#define BUDDY_OK                0
#define BUDDY_OUT_OF_MEMORY     1 /* the OS refused a segment, or size > max_block: free blocks, raise max_block */
#define BUDDY_INVALID_POINTER   2 /* not a block allocated from this pool (or freed twice): the pool is unchanged */
#define BUDDY_POOL_FULL         3 /* max_size reached: raise max_size or free blocks */
#define BUDDY_INVALID_ALIGNMENT 4 /* alignment is not 0 or a power of two <= max_block */
#define BUDDY_INVALID_ARGUMENT  5 /* not in the design document: a NULL pool or result pointer, an unknown format */

/* What a pool does on an error besides returning it [ErrorHandlingStrategy]. */
#define BUDDY_ON_ERROR_RETURN 0 /* return the code (or NULL with errno) only [RETURN_NULLPTR] */
#define BUDDY_ON_ERROR_LOG    1 /* also write one line on stderr [LOG_ERROR] */
#define BUDDY_ON_ERROR_ABORT  2 /* write the line, then abort() [TERMINATE] */

#define BUDDY_POOL_CONFIG_VERSION 1
#define BUDDY_POOL_STATS_VERSION  1
/* Orders an engine can have (min_block << 40 at most): the length of free_blocks. */
#define BUDDY_POOL_ORDERS 41
/* buddy_pool_report's format: plain text (the value of BUDDY_REPORT_TEXT in buddy_stats.h). */
#define BUDDY_POOL_REPORT_TEXT 0
/* buddy_pool_report's format: the versioned JSON document (BUDDY_REPORT_JSON in buddy_stats.h). */
#define BUDDY_POOL_REPORT_JSON 1

/* An opaque private pool. */
typedef struct buddy_pool buddy_pool;

/* A pool's configuration [the MemoryPool constructor]. Start from buddy_pool_config_default(). */
typedef struct buddy_pool_config {
    uint32_t version;      /* BUDDY_POOL_CONFIG_VERSION */
    int32_t thread_safe;   /* 1: a lock per pool (skipped while the process has one thread); 0: one thread at a time */
    size_t initial_size;   /* bytes mapped at creation (rounded up to a power of two >= max(64K, max_block)); default 1 MiB */
    size_t min_block;      /* smallest block, a power of two >= 16; default 16 */
    size_t max_block;      /* largest block, a power of two <= 1 GiB; default 1 MiB */
    size_t max_size;       /* limit on the bytes of all segments (BUDDY_POOL_FULL past it); 0: no limit */
    double growth_factor;  /* a full pool grows from S to about S * growth_factor bytes (1.0 to 64); default 2.0 */
    double release_delay;  /* seconds before free top-order blocks and empty segments go back to the OS; default 1.0 */
    int32_t on_error;      /* BUDDY_ON_ERROR_RETURN (default), _LOG or _ABORT */
    int32_t reserved;      /* 0 */
} buddy_pool_config;

/* A snapshot of a pool, taken under its lock [PoolStats]. A struct tag, like struct stat,
 * since buddy_pool_stats is also the function. Fields are only ever appended. */
struct buddy_pool_stats {
    uint32_t version;              /* in: the caller's layout, BUDDY_POOL_STATS_VERSION (0: 1); out: the layout written */
    uint32_t segment_count;        /* segments mapped */
    uint64_t total_bytes;          /* bytes in segments [total_memory] */
    uint64_t allocated_bytes;      /* bytes in allocated blocks [used_memory] */
    uint64_t free_bytes;           /* total_bytes - allocated_bytes [free_memory] */
    uint64_t peak_allocated_bytes; /* highest allocated_bytes since creation or the last reset of counters [peak_memory_usage] */
    uint64_t largest_free_block;   /* the largest block available without growing */
    uint64_t allocations;          /* blocks allocated [allocation_count] */
    uint64_t frees;                /* blocks freed [deallocation_count] */
    uint64_t failed_allocations;   /* allocations that failed [allocation_failures] */
    uint64_t invalid_pointers;     /* frees of pointers that were not allocated blocks of this pool [invalid_pointer_errors] */
    uint64_t double_frees;         /* frees of blocks already free (counted apart from invalid_pointers) */
    uint64_t splits;               /* blocks split in two */
    uint64_t coalesces;            /* buddies merged */
    uint64_t segments_added;       /* segments mapped */
    uint64_t segments_released;    /* segments returned to the OS */
    uint64_t min_block;            /* bytes in a block of order 0: order k holds min_block << k bytes */
    uint64_t max_block;            /* bytes in the largest block */
    uint64_t free_blocks[BUDDY_POOL_ORDERS]; /* free blocks per order, a segment's untouched tail as top-order blocks [block_size_distribution] */
};

#ifdef __cplusplus
#define BUDDY_POOL_STATS_INIT { BUDDY_POOL_STATS_VERSION }
#else
#define BUDDY_POOL_STATS_INIT { .version = BUDDY_POOL_STATS_VERSION }
#endif

/* The design document's defaults: 1 MiB initial, blocks 16 B to 1 MiB, thread safe, growth 2.0. */
static inline buddy_pool_config buddy_pool_config_default(void) {
    buddy_pool_config config = {
        BUDDY_POOL_CONFIG_VERSION, 1, (size_t)1 << 20, 16, (size_t)1 << 20, 0, 2.0, 1.0,
        BUDDY_ON_ERROR_RETURN, 0,
    };
    return config;
}

/* What an error code means and what to do about it (a static string). */
static inline const char *buddy_pool_strerror(int code) {
    switch (code) {
    case BUDDY_OK: return "success";
    case BUDDY_OUT_OF_MEMORY: return "out of memory: free blocks you no longer need, or raise max_block for larger requests";
    case BUDDY_INVALID_POINTER: return "invalid pointer: pass only pointers this pool returned, once each";
    case BUDDY_POOL_FULL: return "pool full: raise max_size, or free blocks";
    case BUDDY_INVALID_ALIGNMENT: return "invalid alignment: use 0 or a power of two up to max_block";
    case BUDDY_INVALID_ARGUMENT: return "invalid argument: a NULL pool or result pointer, or an unknown report format";
    default: return "unknown error code";
    }
}

/* Why this configuration cannot be used (a static string), or NULL when it can. */
const char *buddy_pool_config_problem(const buddy_pool_config *config);
/* Creates a pool (config NULL: the defaults); NULL with errno EINVAL (bad config) or ENOMEM [MemoryPool()]. */
buddy_pool *buddy_pool_create(const buddy_pool_config *config);
/* Returns all of the pool's memory to the OS; its pointers and the pool die. NULL: no-op [~MemoryPool()]. */
void buddy_pool_destroy(buddy_pool *pool);
/* size bytes aligned to alignment (0: min_block); NULL with errno ENOMEM or EINVAL [allocate]. */
void *buddy_pool_alloc(buddy_pool *pool, size_t size, size_t alignment);
/* As buddy_pool_alloc, returning the error code; *result is written only on success [safe_allocate]. */
int buddy_pool_alloc_ex(buddy_pool *pool, size_t size, size_t alignment, void **result);
/* Frees a block of this pool (NULL: BUDDY_OK); else BUDDY_INVALID_POINTER, pool unchanged [deallocate]. */
int buddy_pool_free(buddy_pool *pool, void *ptr);
/* Frees every block at once, keeping the first segment [reset]. */
int buddy_pool_reset(buddy_pool *pool);
/* 1 when ptr is the start of a block allocated from this pool, else 0 [is_valid_pointer]. */
int buddy_pool_owns(buddy_pool *pool, const void *ptr);
/* Bytes in the allocated block at ptr (all usable), or 0 when it is not one [get_block_size]. */
size_t buddy_pool_block_size(buddy_pool *pool, const void *ptr);
/* Fills *stats: struct buddy_pool_stats s = BUDDY_POOL_STATS_INIT; buddy_pool_stats(pool, &s) [get_stats]. */
int buddy_pool_stats(buddy_pool *pool, struct buddy_pool_stats *stats);
/* Writes the pool's report to fd, BUDDY_POOL_REPORT_TEXT or _JSON [get_detailed_report]. */
int buddy_pool_report(buddy_pool *pool, int fd, int format);

#ifdef __cplusplus
}
#endif

#endif
