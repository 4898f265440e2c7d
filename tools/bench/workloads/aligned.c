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

typedef struct { void *p; size_t n; size_t align; uint64_t tag; } slot_t;

static void alloc_one(rng_t *r, slot_t *e, uint64_t tag)
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
    e->p = p;
    e->n = n;
    e->align = align;
    e->tag = tag;
    pat_fill(p, n, tag);
}

int main(int argc, char **argv)
{
    bench_name = "aligned";
    long live = arg_long(argc, argv, 1, 2000);
    long ops = arg_long(argc, argv, 2, 600000);
    uint64_t seed = (uint64_t)arg_long(argc, argv, 3, 1);
    if (live < 1) live = 1;

    rng_t r;
    rng_seed(&r, seed);
    slot_t *s = xcalloc((size_t)live, sizeof *s);
    uint64_t tagc = seed << 32;
    for (long i = 0; i < live; i++) alloc_one(&r, &s[i], ++tagc);
    for (long k = 0; k < ops; k++) {
        slot_t *e = &s[rng_below(&r, (uint64_t)live)];
        pat_check(e->p, e->n, e->tag);
        free(e->p);
        alloc_one(&r, e, ++tagc);
    }
    for (long i = 0; i < live; i++) {
        pat_check(s[i].p, s[i].n, s[i].tag);
        free(s[i].p);
    }
    free(s);
    printf("aligned ok live=%ld ops=%ld\n", live, ops);
    return 0;
}
