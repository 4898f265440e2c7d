/* batches: n blocks of one size, allocated together and then all freed.
 *
 * Models a program that builds a batch of objects of one kind and then drops
 * all of it (parse a request into nodes, answer, release; load a file's
 * records, process, discard), and glibc's own malloc benchmarks, where this
 * shape is where BuddyMalloc lost on the peer suite. Each round picks a
 * size (log-uniform 16 B..32 KiB by default) and a count n (log-uniform 10..10000,
 * fewer when n blocks would exceed 8 MiB), allocates the n blocks, stamps
 * each (common.h), then checks and frees all of them: in allocation order,
 * in reverse order, or scattered (a stride through the batch), by turns.
 * With several threads each runs its own rounds; nothing crosses threads.
 *
 * usage: batches [threads=1] [rounds=1500] [max_size=32768] [seed=1]
 *        (rounds per thread; sizes are 16 B..max_size)
 */
#include "common.h"
#include <pthread.h>

#define MIN_SIZE 16u
#define MIN_N 10u
#define MAX_N 10000u
#define BATCH_BYTES (8u << 20)

static long ROUNDS;
static size_t MAX_SIZE;
static uint64_t SEED;
static uint64_t blocks_total;

static void *worker(void *arg)
{
    long id = (long)(intptr_t)arg;
    rng_t r;
    rng_seed(&r, SEED * 15485863u + (uint64_t)id);
    uint64_t tagc = ((uint64_t)id + 1) << 40;
    void **b = xcalloc(MAX_N, sizeof *b);
    uint64_t blocks = 0;
    for (long round = 0; round < ROUNDS; round++) {
        size_t size = rng_log_uniform(&r, MIN_SIZE, MAX_SIZE);
        size_t n = rng_log_uniform(&r, MIN_N, MAX_N);
        if (n * size > BATCH_BYTES) n = BATCH_BYTES / size;
        if (n < MIN_N) n = MIN_N;
        for (size_t i = 0; i < n; i++) {
            b[i] = xmalloc(size);
            stamp_fill(b[i], size, ++tagc);
        }
        switch (round % 3) {
        case 0: /* allocation order */
            for (size_t i = 0; i < n; i++) {
                stamp_check(b[i], size);
                free(b[i]);
            }
            break;
        case 1: /* reverse */
            for (size_t i = n; i-- > 0;) {
                stamp_check(b[i], size);
                free(b[i]);
            }
            break;
        default: { /* scattered: a stride coprime with n visits each once */
            size_t stride = n / 2 + 1;
            while (stride > 1) {
                size_t a = n, c = stride;
                while (c) { size_t t = a % c; a = c; c = t; }
                if (a == 1) break;
                stride++;
            }
            for (size_t k = 0, i = 0; k < n; k++, i = (i + stride) % n) {
                stamp_check(b[i], size);
                free(b[i]);
            }
        }
        }
        blocks += n;
    }
    free(b);
    __atomic_fetch_add(&blocks_total, blocks, __ATOMIC_RELAXED);
    return NULL;
}

int main(int argc, char **argv)
{
    bench_name = "batches";
    long T = arg_long(argc, argv, 1, 1);
    ROUNDS = arg_long(argc, argv, 2, 1500);
    MAX_SIZE = (size_t)arg_long(argc, argv, 3, 32768);
    SEED = (uint64_t)arg_long(argc, argv, 4, 1);
    if (T < 1) T = 1;
    if (MAX_SIZE < MIN_SIZE) MAX_SIZE = MIN_SIZE;
    if (MAX_SIZE > BATCH_BYTES / MIN_N) MAX_SIZE = BATCH_BYTES / MIN_N;
    pthread_t *th = xcalloc((size_t)T, sizeof *th);
    for (long t = 0; t < T; t++)
        if (pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t)) {
            fprintf(stderr, "batches: pthread_create failed\n");
            return 2;
        }
    for (long t = 0; t < T; t++) pthread_join(th[t], NULL);
    free(th);
    printf("batches ok threads=%ld rounds=%ld max_size=%zu blocks=%llu\n", T, ROUNDS,
           MAX_SIZE, (unsigned long long)blocks_total);
    return 0;
}
