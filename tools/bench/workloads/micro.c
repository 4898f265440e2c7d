/* micro: hot-path micro-benchmark, ns per malloc+free pair.
 *
 * Single thread, tight loop, sizes 16..4096. Two modes:
 *   pair     p = malloc(n); touch; check; free(p)           (one pointer)
 *   batch64  allocate 64 objects, then free them in LIFO order
 *            (a small live set, so it is not just one recycled pointer)
 * Each object gets its first word and last byte written and checked.
 * First one warm-up pass over every size (so the first size measured does not
 * also pay the process's start: every allocator's 16 B figure was 10-30%
 * above its 32 B one without it). Then, for each size, the loop runs
 * `trials` times after a warm-up of its own; the best trial is reported
 * (least disturbed by the machine's noise). If a size is
 * so slow that one trial would exceed ~50 ms, its iteration count is reduced
 * (ns per pair stays comparable; the run time stays bounded).
 *
 * Output, one machine-readable line per size:   <size> <ns_per_pair>
 *
 * usage: micro [pair|batch64] [iters=2000000] [trials=3]
 */
#include "common.h"

static const size_t sizes[] = {16, 32, 64, 128, 256, 512, 1024, 4096};
#define BATCH 64
#define TRIAL_BUDGET_S 0.05

static inline void touch(unsigned char *p, size_t n, uint64_t v)
{
    *(volatile uint64_t *)p = v;
    ((volatile unsigned char *)p)[n - 1] = (unsigned char)v;
}

static inline void verify(unsigned char *p, size_t n, uint64_t v)
{
    if (*(volatile uint64_t *)p != v ||
        ((volatile unsigned char *)p)[n - 1] != (unsigned char)v) {
        fprintf(stderr, "micro: CORRUPTION in block %p size %zu\n", (void *)p,
                n);
        exit(3);
    }
}

static void run_pair(size_t n, long iters)
{
    for (long i = 0; i < iters; i++) {
        unsigned char *p = xmalloc(n);
        touch(p, n, (uint64_t)i);
        verify(p, n, (uint64_t)i);
        free(p);
    }
}

static void run_batch(size_t n, long iters)
{
    unsigned char *stack[BATCH];
    long rounds = iters / BATCH;
    for (long r = 0; r < rounds; r++) {
        for (int j = 0; j < BATCH; j++) {
            stack[j] = xmalloc(n);
            touch(stack[j], n, (uint64_t)(r + j));
        }
        for (int j = BATCH - 1; j >= 0; j--) {
            verify(stack[j], n, (uint64_t)(r + j));
            free(stack[j]);
        }
    }
}

int main(int argc, char **argv)
{
    bench_name = "micro";
    int batch = 0;
    int ai = 1;
    if (argc > 1 && (argv[1][0] < '0' || argv[1][0] > '9')) {
        if (!strcmp(argv[1], "batch64")) batch = 1;
        else if (strcmp(argv[1], "pair")) {
            fprintf(stderr, "usage: micro [pair|batch64] [iters] [trials]\n");
            return 64;
        }
        ai = 2;
    }
    long iters = arg_long(argc, argv, ai, 2000000);
    long trials = arg_long(argc, argv, ai + 1, 3);
    if (iters < BATCH) iters = BATCH;
    if (trials < 1) trials = 1;

    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        long warm = iters / 10 / BATCH * BATCH + BATCH;
        if (batch) run_batch(sizes[k], warm);
        else run_pair(sizes[k], warm);
    }
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        double best = 1e30;
        long warm = iters / 10 / BATCH * BATCH + BATCH;
        long it = iters;
        double t0 = now_s();
        if (batch) run_batch(n, warm);
        else run_pair(n, warm);
        double per = (now_s() - t0) / (double)warm;
        /* keep one trial under ~TRIAL_BUDGET_S even if this size is slow */
        if (per * (double)it > TRIAL_BUDGET_S) {
            it = (long)(TRIAL_BUDGET_S / per);
            if (it < 10 * BATCH) it = 10 * BATCH;
        }
        if (batch) it = it / BATCH * BATCH;
        for (long t = 0; t < trials; t++) {
            t0 = now_s();
            if (batch) run_batch(n, it);
            else run_pair(n, it);
            double dt = now_s() - t0;
            if (dt < best) best = dt;
        }
        printf("%zu %.2f\n", n, best * 1e9 / (double)it);
    }
    return 0;
}
