#include <buddy.h>
#include <stdio.h>

int main(void) {
    buddy_pool_config config = buddy_pool_config_default();
    config.max_size = 4 << 20;                         // at most 4 MiB of segments
    buddy_pool *pool = buddy_pool_create(&config);
    if (pool == NULL) return 1;

    void *p = buddy_pool_alloc(pool, 100, 64);         // 100 bytes aligned to 64: a 128-byte block
    printf("%zu\n", buddy_pool_block_size(pool, p));   // 128
    buddy_pool_free(pool, p);                          // BUDDY_OK
    int code = buddy_pool_free(pool, p);               // freed twice: BUDDY_INVALID_POINTER
    printf("%s\n", buddy_pool_strerror(code));

    struct buddy_pool_stats stats = BUDDY_POOL_STATS_INIT;
    buddy_pool_stats(pool, &stats);
    printf("%llu allocations, %llu double frees\n",
           (unsigned long long)stats.allocations, (unsigned long long)stats.double_frees);
    buddy_pool_destroy(pool);
    return 0;
}
