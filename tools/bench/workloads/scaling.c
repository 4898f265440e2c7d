/* scaling: allocator throughput against the number of threads, one shape at a time.
 *
 * Run by `bench.py scaling` at 1, 2, 4, ... 64 threads; on a 2-core machine
 * everything above 2 threads is oversubscribed, which is where a thread that
 * is preempted while holding an allocator lock shows. Shapes:
 *
 *   private   each thread churns its own share of 8192 blocks, 16..1024 B
 *             log-uniform: free a random one, allocate a replacement.
 *             Nothing crosses threads.
 *   exchange  larson-style: one shared array of 8192 slots (16..1024 B
 *             blocks); each step allocates a block and swaps it into a
 *             random slot with an atomic exchange, then frees the block it
 *             got back, which another thread allocated (all but 1/T of the
 *             time).
 *   pipeline  T/2 producer/consumer pairs, each with its own lock-free
 *             single-producer/single-consumer ring of 256 pointers (a full
 *             or empty ring yields the CPU); the producer allocates
 *             16..1024 B messages, the consumer checks and frees them. With
 *             one thread, that thread fills its ring with 64 messages and
 *             then drains it.
 *   random    like private with a share of 64 blocks of 16 B..1 MiB,
 *             log-uniform (half of the requests are above 4 KiB and a
 *             quarter above 64 KiB: large-block and mmap paths).
 *
 * The working sets are totals shared out between the threads (each gets
 * total/T, at least one block), so 64 threads touch no more memory than 2
 * and what changes with T is the number of threads only; a working set that
 * grew with T measured the caches (throughput fell tenfold from 2 to 64
 * threads under every allocator).
 * One operation is one malloc together with the free of one block (for
 * pipeline: one message produced and consumed). Every block is stamped
 * (common.h: tag, size, last word, one word per page) and checked before it
 * is freed, by whichever thread frees it.
 *
 * The threads first build their working sets, meet at a barrier, then run
 * until `ms` milliseconds have passed (a flag the main thread sets) or each
 * has done `ops` operations (ms=0 gives fixed, deterministic work; for
 * pipeline `ops` counts per producer). The window runs from the first
 * thread's start to the last thread's stop; the working sets are freed after
 * it. Output, one line:
 *   scaling shape=S threads=T ops=N elapsed_s=X ops_per_s=Y cpu_s=C ops_per_cpu_s=Z
 * where C is the CPU time the threads got within their windows (summed
 * CLOCK_THREAD_CPUTIME_ID): Z, operations per CPU-second, does not depend
 * on how much of the machine other programs took, and C / X is the number
 * of CPUs the run had.
 *
 * usage: scaling SHAPE THREADS [ms=500] [ops=0] [seed=1]
 */
#include "common.h"
#include <pthread.h>
#include <sched.h>

#define SMALL_MAX 1024u
#define RANDOM_MAX (1u << 20)
#define PRIVATE_TOTAL 8192
#define EXCHANGE_TOTAL 8192
#define RANDOM_TOTAL 64
#define RING_CAP 256u /* power of two */
#define SOLO_BATCH 64u

enum shape { PRIVATE, EXCHANGE, PIPELINE, RANDOM };
static const char *shape_names[] = {"private", "exchange", "pipeline", "random"};

typedef struct {
    /* producer side and consumer side on separate cache lines */
    _Alignas(64) unsigned long head; /* next slot to write (producer) */
    _Alignas(64) unsigned long tail; /* next slot to read (consumer) */
    _Alignas(64) void *slot[RING_CAP];
} ring_t;

typedef struct {
    _Alignas(64) long id;
    pthread_t th;
    uint64_t ops;
    double t_start, t_end;     /* wall clock */
    double cpu_start, cpu_end; /* this thread's CPU time */
} worker_t;

static enum shape SHAPE;
static long T;
static uint64_t MAX_OPS; /* 0 = no limit */
static uint64_t SEED;
static int stop_flag;
static pthread_barrier_t barrier;
static void **shared_slots; /* exchange */
static long shared_n;
static ring_t *rings;       /* pipeline: one per pair */

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void window_start(worker_t *w)
{
    w->cpu_start = thread_cpu_s();
    w->t_start = now_s();
}

static void window_end(worker_t *w)
{
    w->t_end = now_s();
    w->cpu_end = thread_cpu_s();
}

static inline int should_stop(uint64_t done)
{
    if (MAX_OPS && done >= MAX_OPS) return 1;
    return __atomic_load_n(&stop_flag, __ATOMIC_RELAXED);
}

static inline void *new_block(rng_t *r, size_t max, uint64_t *tagc)
{
    size_t n = rng_log_uniform(r, STAMP_MIN, max);
    void *p = xmalloc(n);
    stamp_fill(p, n, ++*tagc);
    return p;
}

static inline void drop_block(void *p, size_t max)
{
    stamp_check(p, max);
    free(p);
}

/* private and random: a working set of `live` blocks of up to `max` bytes */
static uint64_t run_private(worker_t *w, rng_t *r, uint64_t *tagc, long live,
                            size_t max)
{
    void **s = xcalloc((size_t)live, sizeof *s);
    for (long i = 0; i < live; i++) s[i] = new_block(r, max, tagc);
    pthread_barrier_wait(&barrier);
    window_start(w);
    uint64_t done = 0;
    while (!should_stop(done)) {
        void **e = &s[rng_below(r, (uint64_t)live)];
        drop_block(*e, max);
        *e = new_block(r, max, tagc);
        done++;
    }
    window_end(w);
    for (long i = 0; i < live; i++) drop_block(s[i], max);
    free(s);
    return done;
}

static uint64_t run_exchange(worker_t *w, rng_t *r, uint64_t *tagc)
{
    for (long i = w->id * shared_n / T; i < (w->id + 1) * shared_n / T; i++)
        shared_slots[i] = new_block(r, SMALL_MAX, tagc);
    pthread_barrier_wait(&barrier);
    window_start(w);
    uint64_t done = 0;
    while (!should_stop(done)) {
        void *mine = new_block(r, SMALL_MAX, tagc);
        void **e = &shared_slots[rng_below(r, (uint64_t)shared_n)];
        void *old = __atomic_exchange_n(e, mine, __ATOMIC_ACQ_REL);
        drop_block(old, SMALL_MAX);
        done++;
    }
    window_end(w);
    return done; /* main frees the slots after the join */
}

static inline int ring_push(ring_t *q, void *p)
{
    unsigned long h = q->head;
    if (h - __atomic_load_n(&q->tail, __ATOMIC_ACQUIRE) == RING_CAP) return 0;
    q->slot[h % RING_CAP] = p;
    __atomic_store_n(&q->head, h + 1, __ATOMIC_RELEASE);
    return 1;
}

static inline int ring_pop(ring_t *q, void **p)
{
    unsigned long t = q->tail;
    if (__atomic_load_n(&q->head, __ATOMIC_ACQUIRE) == t) return 0;
    *p = q->slot[t % RING_CAP];
    __atomic_store_n(&q->tail, t + 1, __ATOMIC_RELEASE);
    return 1;
}

static void run_producer(worker_t *w, rng_t *r, uint64_t *tagc, ring_t *q)
{
    pthread_barrier_wait(&barrier);
    window_start(w);
    uint64_t made = 0;
    while (!should_stop(made)) {
        void *p = new_block(r, SMALL_MAX, tagc);
        while (!ring_push(q, p)) sched_yield();
        made++;
    }
    while (!ring_push(q, NULL)) sched_yield(); /* end of stream */
    window_end(w);
}

static uint64_t run_consumer(worker_t *w, ring_t *q)
{
    pthread_barrier_wait(&barrier);
    window_start(w);
    uint64_t done = 0;
    for (;;) {
        void *p;
        while (!ring_pop(q, &p)) sched_yield();
        if (!p) break;
        drop_block(p, SMALL_MAX);
        done++;
    }
    window_end(w);
    return done;
}

/* pipeline with one thread: fill the ring, then drain it */
static uint64_t run_solo_pipeline(worker_t *w, rng_t *r, uint64_t *tagc, ring_t *q)
{
    pthread_barrier_wait(&barrier);
    window_start(w);
    uint64_t done = 0;
    while (!should_stop(done)) {
        for (unsigned k = 0; k < SOLO_BATCH; k++)
            ring_push(q, new_block(r, SMALL_MAX, tagc));
        void *p;
        while (ring_pop(q, &p)) {
            drop_block(p, SMALL_MAX);
            done++;
        }
    }
    window_end(w);
    return done;
}

static long share(long total)
{
    return total / T > 0 ? total / T : 1;
}

static void *worker(void *arg)
{
    worker_t *w = arg;
    rng_t r;
    rng_seed(&r, SEED * 1000003u + (uint64_t)w->id);
    uint64_t tagc = ((uint64_t)w->id + 1) << 40;
    switch (SHAPE) {
    case PRIVATE:
        w->ops = run_private(w, &r, &tagc, share(PRIVATE_TOTAL), SMALL_MAX);
        break;
    case RANDOM:
        w->ops = run_private(w, &r, &tagc, share(RANDOM_TOTAL), RANDOM_MAX);
        break;
    case EXCHANGE:
        w->ops = run_exchange(w, &r, &tagc);
        break;
    case PIPELINE:
        if (T == 1)
            w->ops = run_solo_pipeline(w, &r, &tagc, &rings[0]);
        else if (w->id % 2 == 0)
            run_producer(w, &r, &tagc, &rings[w->id / 2]);
        else
            w->ops = run_consumer(w, &rings[w->id / 2]);
        break;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    bench_name = "scaling";
    if (argc < 3) {
        fprintf(stderr, "usage: scaling private|exchange|pipeline|random THREADS "
                        "[ms=500] [ops=0] [seed=1]\n");
        return 64;
    }
    int found = 0;
    for (int i = 0; i < 4; i++)
        if (!strcmp(argv[1], shape_names[i])) {
            SHAPE = (enum shape)i;
            found = 1;
        }
    if (!found) {
        fprintf(stderr, "scaling: unknown shape '%s'\n", argv[1]);
        return 64;
    }
    T = arg_long(argc, argv, 2, 1);
    long ms = arg_long(argc, argv, 3, 500);
    MAX_OPS = (uint64_t)arg_long(argc, argv, 4, 0);
    SEED = (uint64_t)arg_long(argc, argv, 5, 1);
    if (T < 1) T = 1;
    if (SHAPE == PIPELINE && T > 1 && T % 2) {
        fprintf(stderr, "scaling: pipeline needs 1 or an even number of threads\n");
        return 64;
    }
    if (ms == 0 && MAX_OPS == 0) {
        fprintf(stderr, "scaling: give a time (ms) or an operation limit (ops)\n");
        return 64;
    }

    if (SHAPE == EXCHANGE) {
        shared_n = EXCHANGE_TOTAL > T ? EXCHANGE_TOTAL : T;
        shared_slots = xcalloc((size_t)shared_n, sizeof *shared_slots);
    }
    if (SHAPE == PIPELINE) {
        size_t pairs = T == 1 ? 1 : (size_t)T / 2;
        if (posix_memalign((void **)&rings, 64, pairs * sizeof *rings)) {
            fprintf(stderr, "scaling: posix_memalign failed\n");
            return 2;
        }
        memset(rings, 0, pairs * sizeof *rings);
    }
    worker_t *ws;
    if (posix_memalign((void **)&ws, 64, (size_t)T * sizeof *ws)) {
        fprintf(stderr, "scaling: posix_memalign failed\n");
        return 2;
    }
    memset(ws, 0, (size_t)T * sizeof *ws);
    pthread_barrier_init(&barrier, NULL, (unsigned)T + 1);
    for (long t = 0; t < T; t++) {
        ws[t].id = t;
        if (pthread_create(&ws[t].th, NULL, worker, &ws[t])) {
            fprintf(stderr, "scaling: pthread_create failed\n");
            return 2;
        }
    }
    pthread_barrier_wait(&barrier);
    if (ms) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {}
        __atomic_store_n(&stop_flag, 1, __ATOMIC_RELAXED);
    }
    uint64_t ops = 0;
    double t0 = 1e300, t1 = 0, cpu = 0;
    for (long t = 0; t < T; t++) {
        pthread_join(ws[t].th, NULL);
        ops += ws[t].ops;
        cpu += ws[t].cpu_end - ws[t].cpu_start;
        if (ws[t].t_start < t0) t0 = ws[t].t_start;
        if (ws[t].t_end > t1) t1 = ws[t].t_end;
    }
    if (SHAPE == EXCHANGE) {
        for (long i = 0; i < shared_n; i++) drop_block(shared_slots[i], SMALL_MAX);
        free(shared_slots);
    }
    free(rings);
    free(ws);
    pthread_barrier_destroy(&barrier);
    double el = t1 - t0;
    printf("scaling shape=%s threads=%ld ops=%llu elapsed_s=%.6f ops_per_s=%.0f "
           "cpu_s=%.6f ops_per_cpu_s=%.0f\n",
           shape_names[SHAPE], T, (unsigned long long)ops, el,
           el > 0 ? (double)ops / el : 0.0, cpu, cpu > 0 ? (double)ops / cpu : 0.0);
    return 0;
}
