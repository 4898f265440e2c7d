// The peak of live allocations (peak_live_allocations) under BuddyMalloc (ReportTests). Build
// with -I Sources/BuddyMallocAPI/include.
//
//   report_peak single N M    one thread: N blocks at once, all freed, then M < N: the peak is
//                             exactly the live count before + N
//   report_peak threads T K   T threads each hold K blocks at once (a barrier), then free them:
//                             the peak is within the bound the README gives
//
// Prints "name value" lines; nothing between the two snapshots prints (stdio allocates). Exits 0,
// 2 on bad arguments or a failed call, 3 when BuddyMalloc is not the process's malloc.
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include "buddy_stats.h"

// Resolved at run time from the preloaded library (the driver links without it).
#pragma weak buddy_stats_get

// Sizes from 24 B to 70 KB: cached orders (fast paths, refills, flushes) and orders no thread
// cache holds (the locked path), so that every way a block is counted is taken.
static const size_t sizes[] = { 24, 64, 200, 1000, 5000, 40000, 70000 };

static void *allocate(long i) {
    size_t size = sizes[i % 7];
    if (i % 5 == 0) return calloc(1, size);
    if (i % 11 == 0) {
        void *p = NULL;
        return posix_memalign(&p, 64, size) == 0 ? p : NULL;
    }
    return malloc(size);
}

static int snapshot(struct buddy_stats *s) {
    s->size = sizeof *s;
    return buddy_stats_get(s);
}

static int single(long n, long m) {
    void **blocks = calloc((size_t)n, sizeof *blocks);
    if (blocks == NULL) return 2;
    struct buddy_stats before, after;
    if (snapshot(&before) != 0) return 2;
    for (long i = 0; i < n; i++) if ((blocks[i] = allocate(i)) == NULL) return 2;
    for (long i = 0; i < n; i++) free(blocks[i]);
    for (long i = 0; i < m; i++) if ((blocks[i] = allocate(i)) == NULL) return 2;
    if (snapshot(&after) != 0) return 2;
    printf("baseline_live %llu\nbaseline_peak %llu\npeak %llu\nlive %llu\n",
           (unsigned long long)before.live_allocations, (unsigned long long)before.peak_live_allocations,
           (unsigned long long)after.peak_live_allocations, (unsigned long long)after.live_allocations);
    for (long i = 0; i < m; i++) free(blocks[i]);
    free(blocks);
    return 0;
}

static pthread_barrier_t all_hold;
static long per_thread;

static void *hold(void *argument) {
    long first = (long)argument * per_thread;
    void **blocks = malloc((size_t)per_thread * sizeof *blocks);
    if (blocks == NULL) return (void *)1;
    for (long i = 0; i < per_thread; i++) if ((blocks[i] = allocate(first + i)) == NULL) return (void *)1;
    pthread_barrier_wait(&all_hold); // every thread holds its K blocks now
    for (long i = 0; i < per_thread; i++) free(blocks[i]);
    free(blocks);
    return NULL;
}

static int threads(int t, long k) {
    pthread_t workers[64];
    per_thread = k;
    if (pthread_barrier_init(&all_hold, NULL, (unsigned)t) != 0) return 2;
    struct buddy_stats before, after;
    if (snapshot(&before) != 0) return 2;
    for (int i = 0; i < t; i++) if (pthread_create(&workers[i], NULL, hold, (void *)(long)i) != 0) return 2;
    int failed = 0;
    for (int i = 0; i < t; i++) {
        void *result;
        pthread_join(workers[i], &result);
        failed |= result != NULL;
    }
    if (failed || snapshot(&after) != 0) return 2;
    printf("baseline_live %llu\nbaseline_peak %llu\npeak %llu\nlive %llu\n",
           (unsigned long long)before.live_allocations, (unsigned long long)before.peak_live_allocations,
           (unsigned long long)after.peak_live_allocations, (unsigned long long)after.live_allocations);
    return 0;
}

int main(int argc, char **argv) {
    void *probe = malloc(100);
    size_t usable = malloc_usable_size(probe);
    free(probe);
    if (usable != 128 || buddy_stats_get == NULL) {
        printf("not running under BuddyMalloc (malloc_usable_size(malloc(100)) = %zu)\n", usable);
        return 3;
    }
    if (argc == 4 && argv[1][0] == 's') {
        long n = atol(argv[2]), m = atol(argv[3]);
        if (n <= 0 || m < 0 || m >= n) return 2;
        return single(n, m);
    }
    if (argc == 4 && argv[1][0] == 't') {
        int t = atoi(argv[2]);
        long k = atol(argv[3]);
        if (t < 1 || t > 64 || k <= 0) return 2;
        return threads(t, k);
    }
    fprintf(stderr, "usage: report_peak single N M | threads T K\n");
    return 2;
}
