/* aligned: aligned allocations, alignments 16 B..64 KiB.
 *
 * Models SIMD buffers, DMA/IO buffers, page-aligned arenas and caches:
 * a working set of blocks allocated with posix_memalign (2/3) or
 * aligned_alloc (1/3; size rounded up to a multiple of the alignment as C11
 * requires). Alignment is 2^k, k uniform in 4..16; size is log-uniform in
 * 16 B..16 KiB. Every returned pointer is checked for alignment.
 *
 * usage: aligned [live=2000] [ops=600000] [seed=1]
 */
#include "common.h"

static void *make_block(rng_t *r, size_t *size)
{
    size_t align = (size_t)1 << rng_range(r, 4, 16);
    size_t n = rng_log_uniform(r, 16, 16384);
    void *p = NULL;
    if (rng_below(r, 3) == 0) {
        n = (n + align - 1) & ~(align - 1);
        p = aligned_alloc(align, n);
        if (!p) {
            fprintf(stderr, "aligned: aligned_alloc(%zu, %zu) failed\n",
                    align, n);
            exit(2);
        }
    } else {
        int rc = posix_memalign(&p, align, n);
        if (rc || !p) {
            fprintf(stderr, "aligned: posix_memalign(%zu, %zu) failed: %d\n",
                    align, n, rc);
            exit(2);
        }
    }
    if ((uintptr_t)p & (align - 1)) {
        fprintf(stderr, "aligned: MISALIGNED: %p for alignment %zu (size %zu)\n",
                p, align, n);
        exit(4);
    }
    *size = n;
    return p;
}

int main(int argc, char **argv)
{
    return working_set_main(argc, argv, "aligned", 2000, 600000, make_block);
}
