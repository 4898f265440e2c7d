// A busy multithreaded program for the report triggers (ReportTests): THREADS threads allocate,
// fill, verify, reallocate and free blocks of assorted sizes (some freed by another thread) for
// SECONDS, while the test sends it signals or the interval thread writes reports.
//
//   report_threads THREADS SECONDS READY_FILE
//
// Creates READY_FILE once the threads run (the test waits for it before signalling), prints
// "threads ok N" and exits 0 when every block held its pattern, 1 otherwise; 3 when BuddyMalloc
// is not the process's malloc.
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { SLOTS = 64 };
static double deadline;
static atomic_int failures;
static atomic_long operations;
// Blocks handed from one thread to the next (cross-thread frees).
static _Atomic(unsigned char *) mailbox[16];

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static unsigned next_random(unsigned *state) {
    *state = *state * 1103515245u + 12345u;
    return *state >> 8;
}

static void fill(unsigned char *p, size_t n, unsigned char v) { memset(p, v, n); }

static int check(const unsigned char *p, size_t n, unsigned char v) {
    for (size_t i = 0; i < n; i += 1 + i / 8) if (p[i] != v) return 1;
    return n > 0 && p[n - 1] != v;
}

static void *worker(void *argument) {
    unsigned state = (unsigned)(uintptr_t)argument * 7919u + 1;
    unsigned char *blocks[SLOTS] = {0};
    size_t sizes[SLOTS] = {0};
    int index = (int)(uintptr_t)argument;
    long done = 0;
    while (now() < deadline) {
        for (int round = 0; round < 200; round++) {
            int k = (int)(next_random(&state) % SLOTS);
            unsigned char tag = (unsigned char)(k + 1);
            if (blocks[k] != NULL) {
                if (check(blocks[k], sizes[k], tag)) atomic_fetch_add(&failures, 1);
                if (next_random(&state) % 4 == 0) {
                    size_t n = 1 + next_random(&state) % 3000;
                    unsigned char *q = realloc(blocks[k], n);
                    if (q == NULL) { atomic_fetch_add(&failures, 1); continue; }
                    size_t keep = n < sizes[k] ? n : sizes[k];
                    if (check(q, keep, tag)) atomic_fetch_add(&failures, 1);
                    fill(q, n, tag);
                    blocks[k] = q;
                    sizes[k] = n;
                    continue;
                }
                free(blocks[k]);
                blocks[k] = NULL;
            }
            unsigned r = next_random(&state);
            size_t n = r % 16 == 0 ? 4096 + r % 200000 : 1 + r % 700;
            blocks[k] = r % 32 == 1 ? calloc(1, n) : malloc(n);
            if (blocks[k] == NULL) { atomic_fetch_add(&failures, 1); continue; }
            sizes[k] = n;
            fill(blocks[k], n, tag);
            done++;
        }
        // Pass one block to the next thread's mailbox; free what our own mailbox holds.
        unsigned char *give = malloc(100);
        if (give) memset(give, 0x5A, 100);
        unsigned char *old = atomic_exchange(&mailbox[(index + 1) % 16], give);
        free(old);
        unsigned char *mine = atomic_exchange(&mailbox[index % 16], NULL);
        if (mine && check(mine, 100, 0x5A)) atomic_fetch_add(&failures, 1);
        free(mine);
    }
    for (int k = 0; k < SLOTS; k++) {
        if (blocks[k] && check(blocks[k], sizes[k], (unsigned char)(k + 1))) atomic_fetch_add(&failures, 1);
        free(blocks[k]);
    }
    atomic_fetch_add(&operations, done);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: report_threads THREADS SECONDS READY_FILE\n");
        return 2;
    }
    void *probe = malloc(100);
    size_t usable = malloc_usable_size(probe);
    free(probe);
    if (usable != 128) {
        printf("not running under BuddyMalloc (malloc_usable_size(malloc(100)) = %zu)\n", usable);
        return 3;
    }
    // Programs started by the test runner (Foundation's Process) inherit a mask that blocks most
    // signals; a shell would start them with none blocked, as the library expects.
    sigset_t unblock;
    sigemptyset(&unblock);
    sigaddset(&unblock, SIGUSR1);
    sigprocmask(SIG_UNBLOCK, &unblock, NULL);
    int count = atoi(argv[1]);
    if (count < 1 || count > 64) count = 4;
    deadline = now() + atof(argv[2]);
    pthread_t threads[64];
    for (int i = 0; i < count; i++) pthread_create(&threads[i], NULL, worker, (void *)(uintptr_t)i);
    FILE *ready = fopen(argv[3], "w");
    if (ready) { fprintf(ready, "%d\n", (int)getpid()); fclose(ready); }
    for (int i = 0; i < count; i++) pthread_join(threads[i], NULL);
    for (int i = 0; i < 16; i++) free(atomic_exchange(&mailbox[i], NULL));
    if (atomic_load(&failures) != 0) {
        printf("threads FAILED: %d corrupted or failed blocks\n", atomic_load(&failures));
        return 1;
    }
    printf("threads ok %d (%ld allocations)\n", count, atomic_load(&operations));
    return 0;
}
