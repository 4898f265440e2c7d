// Which calls the sampled latency times (ReportTests): run with BUDDY_REPORT=stderr and
// BUDDY_REPORT_FORMAT=json, and read the report's latency object.
//
//   report_latency churn N      one thread keeps 4096 blocks of 16 B..1 KiB (log-uniform) and
//                               N times frees a random one and allocates a replacement: its bins
//                               overflow and run dry all the time, and the frees timed must still
//                               be about the mallocs timed (one malloc in the period, and the free
//                               after it)
//   report_latency consumer N   the main thread allocates N blocks and frees none of them; a
//                               second thread frees them all: its frees are timed although it
//                               never allocates
//
// Exits 0, 2 on bad arguments or a failed call.
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t state = 0x9e3779b97f4a7c15u;

static uint64_t next_random(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

// 16 B .. 1 KiB, log-uniform: 2^(4 + 6u) for u uniform in [0, 1).
static size_t random_size(void) {
    unsigned shift = 4 + (unsigned)(next_random() % 6);
    size_t low = (size_t)1 << shift;
    return low + (size_t)(next_random() % low);
}

static int churn(long n) {
    enum { live = 4096 };
    static void *slots[live];
    for (int i = 0; i < live; i++)
        if (!(slots[i] = malloc(random_size()))) return 2;
    for (long i = 0; i < n; i++) {
        void **slot = &slots[next_random() % live];
        free(*slot);
        if (!(*slot = malloc(random_size()))) return 2;
        memset(*slot, 1, 16);
    }
    for (int i = 0; i < live; i++) free(slots[i]);
    return 0;
}

static void **blocks;
static long count;

static void *free_all(void *unused) {
    (void)unused;
    for (long i = 0; i < count; i++) free(blocks[i]);
    return NULL;
}

static int consumer(long n) {
    count = n;
    // (The array is not freed: the main thread frees nothing, so no timed malloc of its arms one.)
    if (!(blocks = calloc((size_t)n, sizeof *blocks))) return 2;
    for (long i = 0; i < n; i++)
        if (!(blocks[i] = malloc(random_size()))) return 2;
    pthread_t thread;
    if (pthread_create(&thread, NULL, free_all, NULL) != 0 || pthread_join(thread, NULL) != 0) return 2;
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    long n = atol(argv[2]);
    if (n <= 0) return 2;
    if (!strcmp(argv[1], "churn")) return churn(n);
    if (!strcmp(argv[1], "consumer")) return consumer(n);
    return 2;
}
