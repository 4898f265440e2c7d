/* threads: many threads (more than cores) allocating and freeing privately.
 *
 * Models thread-pool applications where each worker has its own short- and
 * medium-lived objects: T threads (default 8, i.e. oversubscribed on small
 * machines, so threads get preempted while holding allocator state), each
 * with a private working set; 85% of allocations are 16..256 B, 15% are
 * 257 B..8 KiB. No object crosses threads.
 *
 * usage: threads [threads=8] [live=2000] [ops=1000000] [seed=1]
 *        (live and ops are per thread)
 */
#include "common.h"
#include <pthread.h>

typedef struct { void *p; uint32_t n; uint64_t tag; } slot_t;

static long LIVE, OPS;
static uint64_t SEED;

static size_t pick_size(rng_t *r)
{
    if (rng_below(r, 100) < 85) return rng_log_uniform(r, 16, 256);
    return rng_log_uniform(r, 257, 8192);
}

static void *worker(void *arg)
{
    long t = (long)(intptr_t)arg;
    rng_t r;
    rng_seed(&r, SEED * 104729u + (uint64_t)t);
    uint64_t tagc = ((uint64_t)t + 1) << 40;
    slot_t *s = xcalloc((size_t)LIVE, sizeof *s);
    for (long i = 0; i < LIVE; i++) {
        size_t n = pick_size(&r);
        s[i].p = xmalloc(n);
        s[i].n = (uint32_t)n;
        s[i].tag = ++tagc;
        pat_fill(s[i].p, n, s[i].tag);
    }
    for (long k = 0; k < OPS; k++) {
        slot_t *e = &s[rng_below(&r, (uint64_t)LIVE)];
        pat_check(e->p, e->n, e->tag);
        free(e->p);
        size_t n = pick_size(&r);
        e->p = xmalloc(n);
        e->n = (uint32_t)n;
        e->tag = ++tagc;
        pat_fill(e->p, n, e->tag);
    }
    for (long i = 0; i < LIVE; i++) {
        pat_check(s[i].p, s[i].n, s[i].tag);
        free(s[i].p);
    }
    free(s);
    return NULL;
}

int main(int argc, char **argv)
{
    bench_name = "threads";
    long T = arg_long(argc, argv, 1, 8);
    LIVE = arg_long(argc, argv, 2, 2000);
    OPS = arg_long(argc, argv, 3, 1000000);
    SEED = (uint64_t)arg_long(argc, argv, 4, 1);
    if (T < 1) T = 1;
    if (LIVE < 1) LIVE = 1;
    pthread_t *th = xcalloc((size_t)T, sizeof *th);
    for (long t = 0; t < T; t++)
        if (pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t)) {
            fprintf(stderr, "threads: pthread_create failed\n");
            return 2;
        }
    for (long t = 0; t < T; t++) pthread_join(th[t], NULL);
    free(th);
    printf("threads ok threads=%ld live=%ld ops=%ld\n", T, LIVE, OPS);
    return 0;
}
