/* larson: server simulation with cross-thread frees (after Larson & Krishnan).
 *
 * Models a server whose worker threads allocate per-request objects that
 * are later released by a different worker. There are T slot arrays of S
 * objects (16..1024 B). In round r, thread t works on array (t + r) % T:
 * it replaces `ops` random slots (check + free the old object, allocate and
 * fill a new one). Arrays rotate between threads every round, so nearly
 * every free is of an object allocated by another thread.
 *
 * usage: larson [threads=4] [slots=4000] [rounds=30] [ops=25000] [seed=1]
 */
#include "common.h"
#include <pthread.h>

typedef struct { void *p; uint32_t n; uint64_t tag; } slot_t;

static long T, S, R, OPS;
static uint64_t SEED;
static slot_t **arrays;
static pthread_barrier_t barrier;

static void *worker(void *arg)
{
    long t = (long)(intptr_t)arg;
    rng_t r;
    rng_seed(&r, SEED * 1000003u + (uint64_t)t);
    uint64_t tagc = ((uint64_t)t + 1) << 40;
    for (long round = 0; round < R; round++) {
        slot_t *a = arrays[(t + round) % T];
        for (long k = 0; k < OPS; k++) {
            slot_t *e = &a[rng_below(&r, (uint64_t)S)];
            pat_check(e->p, e->n, e->tag);
            free(e->p);
            size_t n = rng_log_uniform(&r, 16, 1024);
            e->p = xmalloc(n);
            e->n = (uint32_t)n;
            e->tag = ++tagc;
            pat_fill(e->p, n, e->tag);
        }
        pthread_barrier_wait(&barrier);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    bench_name = "larson";
    T = arg_long(argc, argv, 1, 4);
    S = arg_long(argc, argv, 2, 4000);
    R = arg_long(argc, argv, 3, 30);
    OPS = arg_long(argc, argv, 4, 25000);
    SEED = (uint64_t)arg_long(argc, argv, 5, 1);
    if (T < 1) T = 1;
    if (S < 1) S = 1;

    rng_t r;
    rng_seed(&r, SEED);
    arrays = xcalloc((size_t)T, sizeof *arrays);
    for (long t = 0; t < T; t++) {
        arrays[t] = xcalloc((size_t)S, sizeof(slot_t));
        for (long i = 0; i < S; i++) {
            size_t n = rng_log_uniform(&r, 16, 1024);
            slot_t *e = &arrays[t][i];
            e->p = xmalloc(n);
            e->n = (uint32_t)n;
            e->tag = rng_next(&r);
            pat_fill(e->p, n, e->tag);
        }
    }
    pthread_barrier_init(&barrier, NULL, (unsigned)T);
    pthread_t *th = xcalloc((size_t)T, sizeof *th);
    for (long t = 0; t < T; t++)
        if (pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t)) {
            fprintf(stderr, "larson: pthread_create failed\n");
            return 2;
        }
    for (long t = 0; t < T; t++) pthread_join(th[t], NULL);
    for (long t = 0; t < T; t++) {
        for (long i = 0; i < S; i++) {
            pat_check(arrays[t][i].p, arrays[t][i].n, arrays[t][i].tag);
            free(arrays[t][i].p);
        }
        free(arrays[t]);
    }
    free(arrays);
    free(th);
    pthread_barrier_destroy(&barrier);
    printf("larson ok threads=%ld slots=%ld rounds=%ld ops=%ld\n", T, S, R,
           OPS);
    return 0;
}
