// Allocations of known sizes at known sites, some of them freed by other threads, and the
// program's own count of what each site still holds at exit: the truth that buddy-report's
// per-site estimates (BUDDY_PROFILE_SAMPLE) are checked against (ProfileTruthTests).
//
//   profile_truth
//
// Each site is a function of its own (noinline, external: named by the symbol table alone):
//
//   site_small    30000 blocks of 16 to 64 bytes (malloc), all live at exit
//   site_medium   4000 slab objects of 2000 to 3499 bytes; a worker thread frees the odd ones
//   site_big      3 blocks of 12 MiB + 123 bytes (above the 8 MiB maximum block: mappings of their
//                 own); a worker thread frees two
//   site_calloc   1000 blocks of 700 bytes (calloc), all live
//   site_worker   4 threads allocate 5000 blocks of 100 to 299 bytes each; the main thread frees
//                 every third of them
//   site_churn    20000 blocks of 512 bytes, freed by a worker thread: none live at exit
//
// At the end it prints, per site, "site NAME live_bytes N live_blocks M" (the bytes asked for,
// which is what the profile's samples weigh), then "total live_bytes N". With
// PROFILE_TRUTH_REPORTS=PREFIX it also writes the process's report in both formats, one right
// after the other (buddy_report_write: PREFIX.txt, PREFIX.json), for the text reader's tests.
// Exits 3 when BuddyMalloc is not the process's malloc and PROFILE_TRUTH_REPORTS is set.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { SMALL = 30000, MEDIUM = 4000, BIG = 3, CALLOCS = 1000, WORKERS = 4, PER_WORKER = 5000, CHURN = 20000 };
#define BIG_SIZE ((size_t)(12u << 20) + 123)

struct site {
    const char *name;
    uint64_t live_bytes;
    uint64_t live_blocks;
};
static struct site sites[] = {
    {"site_small", 0, 0}, {"site_medium", 0, 0}, {"site_big", 0, 0},
    {"site_calloc", 0, 0}, {"site_worker", 0, 0}, {"site_churn", 0, 0},
};
enum { S_SMALL, S_MEDIUM, S_BIG, S_CALLOC, S_WORKER, S_CHURN, SITES };
static pthread_mutex_t counts_lock = PTHREAD_MUTEX_INITIALIZER;

static void count(int site, size_t size, int sign) {
    pthread_mutex_lock(&counts_lock);
    sites[site].live_bytes += sign > 0 ? size : -size;
    sites[site].live_blocks += sign > 0 ? 1 : -1;
    pthread_mutex_unlock(&counts_lock);
}

static void *touch(void *p) {
    if (p == NULL) { fprintf(stderr, "out of memory\n"); exit(1); }
    *(volatile char *)p = 1;
    return p;
}

__attribute__((noinline)) void *site_small(size_t size) { return touch(malloc(size)); }
__attribute__((noinline)) void *site_medium(size_t size) { return touch(malloc(size)); }
__attribute__((noinline)) void *site_big(size_t size) { return touch(malloc(size)); }
__attribute__((noinline)) void *site_calloc(size_t size) { return touch(calloc(1, size)); }
__attribute__((noinline)) void *site_worker(size_t size) { return touch(malloc(size)); }
__attribute__((noinline)) void *site_churn(size_t size) { return touch(malloc(size)); }

struct batch {
    void **blocks;
    size_t *sizes;
    int count;
    int site;
    int stride;  // free every stride-th block, from `first`
    int first;
};

/* A worker that frees another thread's blocks. */
static void *free_batch(void *arg) {
    struct batch *b = arg;
    for (int i = b->first; i < b->count; i += b->stride) {
        free(b->blocks[i]);
        count(b->site, b->sizes[i], -1);
        b->blocks[i] = NULL;
    }
    return NULL;
}

/* A worker that allocates blocks of its own (the main thread frees some). */
static void *allocate_batch(void *arg) {
    struct batch *b = arg;
    for (int i = 0; i < b->count; i++) {
        b->sizes[i] = 100 + (size_t)((i * 7 + b->first * 13) % 200);
        b->blocks[i] = site_worker(b->sizes[i]);
        count(S_WORKER, b->sizes[i], +1);
    }
    return NULL;
}

static void run_freeing_thread(struct batch *b) {
    pthread_t t;
    if (pthread_create(&t, NULL, free_batch, b) != 0 || pthread_join(t, NULL) != 0) { perror("pthread"); exit(1); }
}

static void write_reports(const char *prefix) {
    int (*write_report)(int, int) = (int (*)(int, int))dlsym(RTLD_DEFAULT, "buddy_report_write");
    if (write_report == NULL) { fprintf(stderr, "BuddyMalloc is not the process's malloc\n"); exit(3); }
    const char *suffixes[] = {".txt", ".json"};
    for (int format = 0; format < 2; format++) {
        char path[4096];
        snprintf(path, sizeof path, "%s%s", prefix, suffixes[format]);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || write_report(fd, format) != 0) { perror(path); exit(1); }
        close(fd);
    }
}

int main(void) {
    static void *small[SMALL], *medium[MEDIUM], *big[BIG], *callocs[CALLOCS], *churn[CHURN];
    static size_t small_sizes[SMALL], medium_sizes[MEDIUM], big_sizes[BIG], churn_sizes[CHURN];

    for (int i = 0; i < SMALL; i++) {
        small_sizes[i] = 16 + (size_t)(i % 49);
        small[i] = site_small(small_sizes[i]);
        count(S_SMALL, small_sizes[i], +1);
    }
    for (int i = 0; i < MEDIUM; i++) {
        medium_sizes[i] = 2000 + (size_t)((i * 37) % 1500);
        medium[i] = site_medium(medium_sizes[i]);
        count(S_MEDIUM, medium_sizes[i], +1);
    }
    for (int i = 0; i < BIG; i++) {
        big_sizes[i] = BIG_SIZE;
        big[i] = site_big(BIG_SIZE);
        count(S_BIG, BIG_SIZE, +1);
    }
    for (int i = 0; i < CALLOCS; i++) {
        callocs[i] = site_calloc(700);
        count(S_CALLOC, 700, +1);
    }
    for (int i = 0; i < CHURN; i++) {
        churn_sizes[i] = 512;
        churn[i] = site_churn(512);
        count(S_CHURN, 512, +1);
    }

    // Other threads free: the odd medium objects, two of the big blocks, every churned block.
    struct batch odd = {medium, medium_sizes, MEDIUM, S_MEDIUM, 2, 1};
    struct batch bigs = {big, big_sizes, 2, S_BIG, 1, 0};
    struct batch churned = {churn, churn_sizes, CHURN, S_CHURN, 1, 0};
    run_freeing_thread(&odd);
    run_freeing_thread(&bigs);
    run_freeing_thread(&churned);

    // Threads allocate; this thread frees every third of their blocks.
    static void *worker_blocks[WORKERS][PER_WORKER];
    static size_t worker_sizes[WORKERS][PER_WORKER];
    struct batch workers[WORKERS];
    pthread_t threads[WORKERS];
    for (int w = 0; w < WORKERS; w++) {
        workers[w] = (struct batch){worker_blocks[w], worker_sizes[w], PER_WORKER, S_WORKER, 3, w};
        if (pthread_create(&threads[w], NULL, allocate_batch, &workers[w]) != 0) { perror("pthread_create"); return 1; }
    }
    for (int w = 0; w < WORKERS; w++) pthread_join(threads[w], NULL);
    for (int w = 0; w < WORKERS; w++) {
        workers[w].first = 0;
        free_batch(&workers[w]);
    }

    uint64_t total = 0;
    for (int s = 0; s < SITES; s++) {
        printf("site %s live_bytes %llu live_blocks %llu\n", sites[s].name, (unsigned long long)sites[s].live_bytes,
               (unsigned long long)sites[s].live_blocks);
        total += sites[s].live_bytes;
    }
    printf("total live_bytes %llu\n", (unsigned long long)total);
    fflush(stdout);
    const char *prefix = getenv("PROFILE_TRUTH_REPORTS");
    if (prefix != NULL && *prefix != '\0') write_reports(prefix);
    // Everything counted live stays live until exit (the exit report's sites).
    return small[0] != NULL && callocs[0] != NULL ? 0 : 1;
}
