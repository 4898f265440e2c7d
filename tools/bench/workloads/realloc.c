/* realloc: random sizes with realloc growth and shrink.
 *
 * Models buffers, vectors and string builders: a set of live blocks whose
 * sizes are log-uniform in 8 B..64 KiB. Each step picks a random block and
 *   30%  appends a little (grow by 1..64 B, string-builder style),
 *   20%  doubles it (vector growth),
 *   20%  shrinks it to 1/2..1/8 (shrink-to-fit),
 *   30%  frees it and allocates a fresh block of a random size.
 * Contents are verified across every realloc (the common prefix must
 * survive) and before every free.
 *
 * usage: realloc [live=4000] [ops=1500000] [seed=1]
 */
#include "common.h"

#define MIN_SZ 8u
#define MAX_SZ 65536u

typedef struct { void *p; size_t n; uint64_t tag; } slot_t;

int main(int argc, char **argv)
{
    bench_name = "realloc";
    long live = arg_long(argc, argv, 1, 4000);
    long ops = arg_long(argc, argv, 2, 1500000);
    uint64_t seed = (uint64_t)arg_long(argc, argv, 3, 1);
    if (live < 1) live = 1;

    rng_t r;
    rng_seed(&r, seed);
    slot_t *s = xcalloc((size_t)live, sizeof *s);
    uint64_t tagc = seed << 32;
    long nrealloc = 0, moved = 0;

    for (long i = 0; i < live; i++) {
        size_t n = rng_log_uniform(&r, MIN_SZ, MAX_SZ);
        s[i].p = xmalloc(n);
        s[i].n = n;
        s[i].tag = ++tagc;
        pat_fill(s[i].p, n, s[i].tag);
    }
    for (long k = 0; k < ops; k++) {
        slot_t *e = &s[rng_below(&r, (uint64_t)live)];
        unsigned what = (unsigned)rng_below(&r, 100);
        size_t n;
        if (what < 30) {
            n = e->n + rng_range(&r, 1, 64);
        } else if (what < 50) {
            n = e->n * 2;
        } else if (what < 70) {
            n = e->n >> rng_range(&r, 1, 3);
        } else {
            pat_check(e->p, e->n, e->tag);
            free(e->p);
            n = rng_log_uniform(&r, MIN_SZ, MAX_SZ);
            e->p = xmalloc(n);
            e->n = n;
            e->tag = ++tagc;
            pat_fill(e->p, n, e->tag);
            continue;
        }
        if (n < MIN_SZ) n = MIN_SZ;
        if (n > MAX_SZ) n = rng_log_uniform(&r, MIN_SZ, MAX_SZ / 4);
        void *old = e->p;
        void *p = xrealloc(e->p, n);
        nrealloc++;
        moved += (p != old);
        /* the first min(old, new) bytes must have been preserved */
        pat_check_prefix(p, e->n, e->tag, n < e->n ? n : e->n);
        e->p = p;
        e->n = n;
        e->tag = ++tagc;
        pat_fill(p, n, e->tag);
    }
    for (long i = 0; i < live; i++) {
        pat_check(s[i].p, s[i].n, s[i].tag);
        free(s[i].p);
    }
    free(s);
    printf("realloc ok live=%ld ops=%ld reallocs=%ld moved=%ld\n", live, ops,
           nrealloc, moved);
    return 0;
}
