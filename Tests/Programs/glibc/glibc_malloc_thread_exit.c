// The shape of glibc's malloc/tst-malloc-thread-exit.c: two outer threads each start and join,
// over and over, four short-lived inner threads; half allocate and then wait on a barrier, half
// wait and then allocate; each frees its block and exits at once. Threads end while others
// allocate, which exercises whatever the allocator keeps per thread (glibc: arenas and their
// free list; BuddyMalloc: thread caches, flushed by a thread-exit destructor). The original
// checks that this neither crashes nor hangs for a while; this one also checks that every block
// is usable, and that the rounds made progress.
//
//   glibc_malloc_thread_exit [SECONDS]     (default 2; the original runs 3)
//
// Left out: mallopt(M_ARENA_MAX, 8), glibc's arena limit (an interposed allocator has none);
// it is called, for glibc's sake, but its result is not checked.
#include "glibc_test.h"
#include <pthread.h>
#include <time.h>

enum { outer_threads = 2, inner_threads = 4 };
static const size_t block_size = 32;
static int stop;
static unsigned long rounds[outer_threads];

__attribute__((noinline)) static void release(void *p) { free(p); }

static void fail(const char *what) {
    printf("FAIL %s: %s\n", test_name, what);
    fflush(stdout);
    _exit(1);
}

static void use(unsigned char *p) {
    if (p == NULL) fail("malloc(32) returned NULL in an inner thread");
    memset(p, 0x3c, block_size);
    for (size_t i = 0; i < block_size; i++) if (p[i] != 0x3c) fail("a block changed under its thread");
}

static void *allocate_then_wait(void *arg) {
    unsigned char *p = malloc(block_size);
    use(p);
    pthread_barrier_wait(arg);
    release(p);
    return NULL;
}

static void *wait_then_allocate(void *arg) {
    pthread_barrier_wait(arg);
    unsigned char *p = malloc(block_size);
    use(p);
    release(p);
    return NULL;
}

static void *outer(void *arg) {
    unsigned long *count = arg;
    pthread_t *ids = calloc(inner_threads, sizeof *ids);
    if (ids == NULL) fail("calloc in an outer thread returned NULL");
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        pthread_barrier_t barrier;
        pthread_barrier_init(&barrier, NULL, inner_threads + 1);
        for (int i = 0; i < inner_threads; i++)
            if (pthread_create(&ids[i], NULL, i % 2 ? wait_then_allocate : allocate_then_wait, &barrier) != 0)
                fail("pthread_create failed");
        pthread_barrier_wait(&barrier);
        for (int i = 0; i < inner_threads; i++) pthread_join(ids[i], NULL);
        pthread_barrier_destroy(&barrier);
        (*count)++;
    }
    free(ids);
    return NULL;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 2;
    test_start("glibc_malloc_thread_exit", (unsigned)seconds + 20);
    mallopt(M_ARENA_MAX, 8);
    pthread_t ids[outer_threads];
    for (int i = 0; i < outer_threads; i++)
        REQUIRE(pthread_create(&ids[i], NULL, outer, &rounds[i]) == 0, "pthread_create failed");
    struct timespec pause = {(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
    nanosleep(&pause, NULL);
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < outer_threads; i++) pthread_join(ids[i], NULL);
    printf("info: rounds of %d inner threads: %lu and %lu\n", inner_threads, rounds[0], rounds[1]);
    CHECK(rounds[0] > 0 && rounds[1] > 0, "an outer thread finished no round (%lu, %lu)", rounds[0], rounds[1]);
    return test_finish();
}
