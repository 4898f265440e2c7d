/* large: large blocks near and above a size C (default 1 MiB).
 *
 * Models image/IO buffers and big arrays: a small working set of blocks of
 * C/4..4C (half of them concentrated in 0.75C..1.5C), replaced at random;
 * 10% of the steps grow or shrink a block with realloc instead. Every page of
 * every block is touched, so the cost of obtaining/returning memory from/to
 * the kernel shows up. With C = 1 MiB (`large`) the blocks sit around glibc's
 * usual mmap threshold; with C = 8 MiB (`huge`) around BuddyMalloc's largest
 * block, so that part of them goes to the system allocator.
 *
 * usage: large [live=16] [ops=8000] [seed=1] [center_kib=1024]
 */
#include "common.h"

typedef struct { void *p; size_t n; uint64_t tag; } slot_t;

static size_t center = 1u << 20;

static size_t pick_size(rng_t *r)
{
    if (rng_below(r, 2)) return rng_range(r, center / 4 * 3, center / 2 * 3);
    return rng_log_uniform(r, center / 4, center * 4);
}

int main(int argc, char **argv)
{
    bench_name = "large";
    long live = arg_long(argc, argv, 1, 16);
    long ops = arg_long(argc, argv, 2, 8000);
    uint64_t seed = (uint64_t)arg_long(argc, argv, 3, 1);
    long center_kib = arg_long(argc, argv, 4, 1024);
    if (center_kib >= 64) center = (size_t)center_kib << 10;
    if (live < 1) live = 1;

    rng_t r;
    rng_seed(&r, seed);
    slot_t *s = xcalloc((size_t)live, sizeof *s);
    uint64_t tagc = seed << 32;
    for (long i = 0; i < live; i++) {
        s[i].n = pick_size(&r);
        s[i].p = xmalloc(s[i].n);
        s[i].tag = ++tagc;
        pat_fill(s[i].p, s[i].n, s[i].tag);
    }
    for (long k = 0; k < ops; k++) {
        slot_t *e = &s[rng_below(&r, (uint64_t)live)];
        if (rng_below(&r, 10) == 0) {
            size_t n = rng_below(&r, 2) ? e->n + e->n / 2 : e->n / 2;
            if (n < center / 16) n = center / 16;
            if (n > center * 6) n = pick_size(&r);
            void *p = xrealloc(e->p, n);
            pat_check_prefix(p, e->n, e->tag, n < e->n ? n : e->n);
            e->p = p;
            e->n = n;
        } else {
            pat_check(e->p, e->n, e->tag);
            free(e->p);
            e->n = pick_size(&r);
            e->p = xmalloc(e->n);
        }
        e->tag = ++tagc;
        pat_fill(e->p, e->n, e->tag);
    }
    for (long i = 0; i < live; i++) {
        pat_check(s[i].p, s[i].n, s[i].tag);
        free(s[i].p);
    }
    free(s);
    printf("large ok live=%ld ops=%ld center=%ldK\n", live, ops, (long)(center >> 10));
    return 0;
}
