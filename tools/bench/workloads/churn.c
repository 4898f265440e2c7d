/* churn: single-threaded churn of small objects.
 *
 * Models the bread-and-butter pattern of most programs (nodes, strings,
 * small structs): a working set of N live objects of 16..512 bytes
 * (log-uniform, so small sizes dominate); each step frees a random live
 * object and allocates a new one of a random size in its place.
 *
 * usage: churn [live=20000] [ops=6000000] [seed=1]
 */
#include "common.h"

typedef struct { void *p; uint32_t n; uint64_t tag; } slot_t;

int main(int argc, char **argv)
{
    bench_name = "churn";
    long live = arg_long(argc, argv, 1, 20000);
    long ops = arg_long(argc, argv, 2, 6000000);
    uint64_t seed = (uint64_t)arg_long(argc, argv, 3, 1);
    if (live < 1) live = 1;

    rng_t r;
    rng_seed(&r, seed);
    slot_t *s = xcalloc((size_t)live, sizeof *s);
    uint64_t tagc = seed << 32;

    for (long i = 0; i < live; i++) {
        size_t n = rng_log_uniform(&r, 16, 512);
        s[i].p = xmalloc(n);
        s[i].n = (uint32_t)n;
        s[i].tag = ++tagc;
        pat_fill(s[i].p, n, s[i].tag);
    }
    for (long k = 0; k < ops; k++) {
        slot_t *e = &s[rng_below(&r, (uint64_t)live)];
        pat_check(e->p, e->n, e->tag);
        free(e->p);
        size_t n = rng_log_uniform(&r, 16, 512);
        e->p = xmalloc(n);
        e->n = (uint32_t)n;
        e->tag = ++tagc;
        pat_fill(e->p, n, e->tag);
    }
    for (long i = 0; i < live; i++) {
        pat_check(s[i].p, s[i].n, s[i].tag);
        free(s[i].p);
    }
    free(s);
    printf("churn ok live=%ld ops=%ld\n", live, ops);
    return 0;
}
