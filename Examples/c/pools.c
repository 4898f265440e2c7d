// Private pools from C (buddy.h): create, allocate, free, the errors, statistics, the report.
//
//   tools/pkgconfig.sh .build/release
//   cc -o pools Examples/c/pools.c $(PKG_CONFIG_PATH=.build/release/pkgconfig pkg-config --cflags --libs buddymalloc)
//   ./pools
//
// Linking -lBuddyMalloc also makes the buddy pool this program's malloc (checked at the end).
#include <buddy.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(condition) do { if (!(condition)) { \
    fprintf(stderr, "pools.c:%d: check failed: %s\n", __LINE__, #condition); exit(1); } } while (0)

int main(void) {
    // A pool with the design document's defaults: 1 MiB, blocks of 16 B to 1 MiB, thread safe.
    buddy_pool_config config = buddy_pool_config_default();
    buddy_pool *pool = buddy_pool_create(&config);
    CHECK(pool != NULL);

    void *small = buddy_pool_alloc(pool, 100, 0);          // a 128-byte block
    void *aligned = buddy_pool_alloc(pool, 100, 4096);     // a 4 KiB block, aligned to 4 KiB
    CHECK(small != NULL && aligned != NULL);
    memset(small, 0xAB, buddy_pool_block_size(pool, small)); // every byte of the block is usable
    printf("small: %zu-byte block, aligned: %zu-byte block at a multiple of 4096: %s\n",
           buddy_pool_block_size(pool, small), buddy_pool_block_size(pool, aligned),
           ((uintptr_t)aligned % 4096 == 0) ? "yes" : "no");
    CHECK(buddy_pool_owns(pool, small) && !buddy_pool_owns(pool, (char *)small + 16));

    // Errors come back as codes; the pool is never changed by a bad call.
    void *result = NULL;
    int code = buddy_pool_alloc_ex(pool, 64, 3, &result);
    printf("alignment 3: %s\n", buddy_pool_strerror(code));
    CHECK(code == BUDDY_INVALID_ALIGNMENT && result == NULL);
    code = buddy_pool_alloc_ex(pool, (size_t)2 << 20, 0, &result);
    printf("2 MiB from a pool whose largest block is 1 MiB: %s\n", buddy_pool_strerror(code));
    CHECK(code == BUDDY_OUT_OF_MEMORY);

    // A second pool, limited to one 64 KiB segment: it fills up.
    buddy_pool_config limited = buddy_pool_config_default();
    limited.initial_size = 64 << 10;
    limited.max_block = 64 << 10;
    limited.max_size = 64 << 10;
    buddy_pool *small_pool = buddy_pool_create(&limited);
    CHECK(small_pool != NULL);
    void *whole = buddy_pool_alloc(small_pool, 64 << 10, 0);
    CHECK(whole != NULL);
    code = buddy_pool_alloc_ex(small_pool, 16, 0, &result);
    printf("a full pool: %s\n", buddy_pool_strerror(code));
    CHECK(code == BUDDY_POOL_FULL);

    // A pointer freed into the wrong pool is refused; both pools stay intact.
    code = buddy_pool_free(small_pool, small);
    printf("freeing the first pool's block into the second: %s\n", buddy_pool_strerror(code));
    CHECK(code == BUDDY_INVALID_POINTER);
    CHECK(buddy_pool_free(pool, small) == BUDDY_OK);
    CHECK(buddy_pool_free(pool, small) == BUDDY_INVALID_POINTER); // a double free
    CHECK(buddy_pool_free(pool, aligned) == BUDDY_OK);

    // Statistics: a versioned snapshot.
    struct buddy_pool_stats stats = BUDDY_POOL_STATS_INIT;
    CHECK(buddy_pool_stats(pool, &stats) == BUDDY_OK);
    printf("stats: %llu bytes in %u segment(s), %llu allocated, %llu allocations, %llu frees, %llu invalid pointers, %llu double frees\n",
           (unsigned long long)stats.total_bytes, stats.segment_count, (unsigned long long)stats.allocated_bytes,
           (unsigned long long)stats.allocations, (unsigned long long)stats.frees,
           (unsigned long long)stats.invalid_pointers, (unsigned long long)stats.double_frees);
    CHECK(stats.version == BUDDY_POOL_STATS_VERSION && stats.allocated_bytes == 0 && stats.allocations == 2);

    // reset frees everything at once.
    CHECK(buddy_pool_reset(small_pool) == BUDDY_OK && !buddy_pool_owns(small_pool, whole));
    CHECK(buddy_pool_alloc(small_pool, 16, 0) != NULL);

    // The report, as BUDDY_REPORT writes the process pool's.
    fflush(stdout);
    CHECK(buddy_pool_report(pool, STDOUT_FILENO, BUDDY_POOL_REPORT_TEXT) == BUDDY_OK);

    buddy_pool_destroy(small_pool);
    buddy_pool_destroy(pool);

    // Linked with -lBuddyMalloc, malloc is the buddy pool too: 100 bytes take a 128-byte block
    // (glibc would say 104).
    void *p = malloc(100);
    printf("malloc_usable_size(malloc(100)) = %zu\n", malloc_usable_size(p));
    CHECK(malloc_usable_size(p) == 128);
    free(p);
    printf("pools: ok\n");
    return 0;
}
