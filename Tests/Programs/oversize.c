// Blocks above the maximum block (8 MiB by default), one scenario per run:
//
//   oversize MODE
//
//   ops            malloc, realloc (grow, shrink, into the pool and out), calloc, posix_memalign,
//                  aligned_alloc, memalign, malloc_usable_size, free_sized of 12..64 MiB blocks:
//                  contents kept, zeroes, alignment, usable sizes exact and writable; prints "ops ok"
//   glibc          blocks from glibc's own allocator (__libc_malloc, small and 20 MiB) handed to
//                  free, realloc and malloc_usable_size: given back to glibc; prints "glibc ok"
//   interior       free(p + 4096) of a 20 MiB block (prints "pointer 0x...")
//   double         free(p) twice of a 20 MiB block
//   realloc-freed  realloc(p, 100) of a freed 20 MiB block
//   usable-freed   malloc_usable_size(p) of a freed 20 MiB block
//   bad-small      free(malloc(8) + 4096): not a block that was handed out
//   bad-split      free(malloc(200K) + 256K): the free upper half of a split, never handed out
//   sized-wrong    free_sized(malloc(100), 5000), then free_sized of a 20 MiB block with 0
//   sized-ok       free_sized and free_aligned_sized with the sizes asked for (malloc(0) too)
//   hold           holds one 60 MB block (every page touched) until exit
//   profile        mallocs and frees 20 MB three times
//   fork           4 threads allocate 9..40 MiB blocks while the main thread forks 30 times; each
//                  child allocates and frees an oversize block and exits; prints "fork ok"
//
// Modes that pass a bad pointer print "pointer 0x..." (flushed) first, then, if the allocator
// lets the program go on (BUDDY_ON_ERROR=log), "survived".
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include "buddy_stats.h"

// Resolved at run time from the preloaded library (the driver links without it).
#pragma weak buddy_stats_get
#include <unistd.h>

#include <dlfcn.h>

extern void *__libc_malloc(size_t size);
// glibc 2.36 has neither: the library's, found at run time (a no-op fallback never runs:
// every mode that uses them first checks they exist).
static void (*free_sized_fn)(void *, size_t);
static void (*free_aligned_sized_fn)(void *, size_t, size_t);
#define free_sized(p, n) free_sized_fn(p, n)
#define free_aligned_sized(p, a, n) free_aligned_sized_fn(p, a, n)

#define MiB ((size_t)1 << 20)

static int failures;
#define CHECK(cond, ...) do { if (!(cond)) { printf("FAIL line %d: ", __LINE__); printf(__VA_ARGS__); printf("\n"); failures++; } } while (0)

static void show_pointer(const void *p) {
    printf("pointer %p\n", p);
    fflush(stdout);
}

static int all(const unsigned char *p, size_t n, unsigned char value) {
    for (size_t i = 0; i < n; i += 509) if (p[i] != value) return 0;
    return n == 0 || p[n - 1] == value;
}

static size_t page_round(size_t n) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (n + page - 1) & ~(page - 1);
}

static int ops(void) {
    unsigned char *p = malloc(20 * MiB + 123);
    CHECK(p != NULL, "malloc 20 MiB");
    CHECK(((uintptr_t)p & 15) == 0, "alignment");
    size_t usable = malloc_usable_size(p);
    CHECK(usable == page_round(20 * MiB + 123), "usable %zu", usable);
    memset(p, 1, usable); // every usable byte is the caller's

    p = realloc(p, 40 * MiB);
    CHECK(p && all(p, 20 * MiB + 123, 1), "grow kept the contents");
    CHECK(malloc_usable_size(p) == 40 * MiB, "usable after growing %zu", malloc_usable_size(p));
    memset(p, 2, 40 * MiB);
    p = realloc(p, 12 * MiB + 5);
    CHECK(p && all(p, 12 * MiB + 5, 2), "shrink kept the contents");
    CHECK(malloc_usable_size(p) == page_round(12 * MiB + 5), "usable after shrinking %zu", malloc_usable_size(p));
    p = realloc(p, 1 * MiB);   // back into the pool: a 1 MiB block
    CHECK(p && all(p, 1 * MiB, 2), "into the pool kept the contents");
    CHECK(malloc_usable_size(p) == 1 * MiB, "usable in the pool %zu", malloc_usable_size(p));
    p = realloc(p, 30 * MiB);  // out of the pool again
    CHECK(p && all(p, 1 * MiB, 2), "out of the pool kept the contents");
    memset(p, 3, 30 * MiB);
    free(p);

    unsigned char *z = calloc(3, 8 * MiB);
    CHECK(z && all(z, 24 * MiB, 0), "calloc zeroes");
    free(z);
    errno = 0;
    void *huge = malloc((size_t)1 << 60);
    CHECK(huge == NULL && errno == ENOMEM, "malloc(2^60): %p errno %d", huge, errno);
    void *keep = malloc(64);
    errno = 0;
    z = realloc(keep, (size_t)1 << 60);
    CHECK(z == NULL && errno == ENOMEM, "realloc to 2^60 fails with ENOMEM");
    free(keep);

    void *a = NULL;
    CHECK(posix_memalign(&a, 64 * MiB, 10 * MiB) == 0, "posix_memalign 64 MiB");
    CHECK(((uintptr_t)a & (64 * MiB - 1)) == 0, "posix_memalign alignment %p", a);
    memset(a, 4, malloc_usable_size(a));
    unsigned char *b = aligned_alloc(16 * MiB, 16 * MiB);
    CHECK(b && ((uintptr_t)b & (16 * MiB - 1)) == 0, "aligned_alloc %p", (void *)b);
    memset(b, 5, 16 * MiB);
    unsigned char *c = memalign(32 * MiB, 100); // a small block with a large alignment
    CHECK(c && ((uintptr_t)c & (32 * MiB - 1)) == 0, "memalign %p", (void *)c);
    memset(c, 6, malloc_usable_size(c));
    CHECK(all(a, 10 * MiB, 4) && all(b, 16 * MiB, 5), "aligned blocks intact");
    free(a);
    free_aligned_sized(b, 16 * MiB, 16 * MiB);
    free(c);

    // Many at once, freed in a mixed order (the side table grows and stays sorted).
    enum { N = 300 };
    static unsigned char *many[N];
    for (int i = 0; i < N; i++) {
        many[i] = malloc(9 * MiB + (size_t)i * 4096);
        CHECK(many[i] != NULL, "many %d", i);
        many[i][0] = (unsigned char)i;
        many[i][9 * MiB - 1] = (unsigned char)i;
    }
    for (int i = 0; i < N; i += 3) free(many[i]);
    for (int i = 0; i < N; i++) if (i % 3) {
        CHECK(many[i][0] == (unsigned char)i && many[i][9 * MiB - 1] == (unsigned char)i, "many %d intact", i);
        CHECK(malloc_usable_size(many[i]) == 9 * MiB + (size_t)i * 4096, "many %d usable", i);
        free(many[i]);
    }
    // Freed blocks are retained (moved aside, their pages resident) and assembled into the next
    // ones: 12 + 10 MiB of them and 8 MiB of fresh pages make a 30 MiB block.
    unsigned char *r1 = malloc(12 * MiB), *r2 = malloc(10 * MiB);
    CHECK(r1 && r2, "two to retain");
    memset(r1, 8, 12 * MiB);
    memset(r2, 9, 10 * MiB);
    free(r1);
    free(r2);
    unsigned char *joined = malloc(30 * MiB);
    CHECK(joined && malloc_usable_size(joined) == 30 * MiB, "assembled usable %zu", joined ? malloc_usable_size(joined) : 0);
    memset(joined, 10, 30 * MiB);
    joined = realloc(joined, 34 * MiB + 1); // pieces cannot be one mremap: moved
    CHECK(joined && all(joined, 30 * MiB, 10), "assembled grown kept the contents");
    CHECK(malloc_usable_size(joined) == page_round(34 * MiB + 1), "assembled grown usable %zu", malloc_usable_size(joined));
    unsigned char *unshrunk = joined;
    joined = realloc(joined, 20 * MiB); // in place, whole or assembled
    CHECK(joined == unshrunk && all(joined, 20 * MiB, 10), "assembled shrunk in place kept the contents");
    CHECK(malloc_usable_size(joined) == 20 * MiB, "assembled shrunk usable %zu", malloc_usable_size(joined));
    unsigned char *after = joined;
    free(joined);
    unsigned char *zeroed = calloc(1, 25 * MiB); // never a retained block
    CHECK(zeroed && all(zeroed, 25 * MiB, 0), "calloc after frees zeroes");
    // A use after free of a retained block faults: its address is unmapped.
    pid_t child = fork();
    if (child == 0) { after[100] = 1; _exit(0); }
    int status = 0;
    waitpid(child, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV, "a write after free of a retained block: status %d", status);
    free(zeroed);
    // While retained, a freed block's address stays taken (inaccessible): a mapping asked for
    // there lands elsewhere, so none of the allocator's own can make a use after free silent.
    unsigned char *gone = malloc(16 * MiB);
    CHECK(gone != NULL, "16 MiB");
    memset(gone, 11, 16 * MiB);
    free(gone);
    void *hinted = mmap(gone, 16 * MiB, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(hinted != MAP_FAILED && hinted != (void *)gone, "a mapping at a retained block's address %p", hinted);
    if (hinted != MAP_FAILED) munmap(hinted, 16 * MiB);
    malloc_trim(0);

    if (failures) return 1;
    printf("ops ok\n");
    return 0;
}

static int glibc_pointers(void) {
    unsigned char *small = __libc_malloc(100);
    unsigned char *big = __libc_malloc(20 * MiB);
    CHECK(small && big, "glibc's malloc");
    memset(big, 7, 20 * MiB);
    // A pool block and an oversize block, so that the side table is in use meanwhile.
    void *mine = malloc(30 * MiB);
    CHECK(malloc_usable_size(small) >= 100 && malloc_usable_size(small) < 128, "glibc's usable size %zu", malloc_usable_size(small));
    CHECK(malloc_usable_size(big) >= 20 * MiB, "glibc's big usable size");
    big = realloc(big, 24 * MiB);
    CHECK(big && all(big, 20 * MiB, 7), "realloc of glibc's block");
    free(big);
    free(small);
    free(mine);
    if (failures) return 1;
    printf("glibc ok\n");
    return 0;
}

struct worker { unsigned seed; volatile int *stop; };

static void *churn(void *arg) {
    struct worker *w = arg;
    unsigned s = w->seed;
    while (!*w->stop) {
        s = s * 1103515245u + 12345u;
        size_t n = 9 * MiB + (s >> 8) % (31 * MiB);
        unsigned char *p = malloc(n);
        if (!p) { printf("malloc failed\n"); exit(1); }
        p[0] = 1;
        p[n - 1] = 2;
        p = realloc(p, n / 2 + 9 * MiB);
        if (!p) { printf("realloc failed\n"); exit(1); }
        free(p);
    }
    return NULL;
}

static int fork_while_busy(void) {
    volatile int stop = 0;
    pthread_t t[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i].seed = (unsigned)i + 1;
        w[i].stop = &stop;
        pthread_create(&t[i], NULL, churn, &w[i]);
    }
    int bad = 0;
    for (int i = 0; i < 30; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            unsigned char *p = malloc(24 * MiB);
            if (!p) _exit(1);
            memset(p, 1, 24 * MiB);
            p = realloc(p, 48 * MiB);
            free(p);
            _exit(0);
        }
        int status = 0;
        alarm(20);
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) bad++;
    }
    stop = 1;
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    if (bad) { printf("%d children failed\n", bad); return 1; }
    printf("fork ok\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: oversize MODE\n"); return 2; }
    const char *mode = argv[1];
    free_sized_fn = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "free_sized");
    free_aligned_sized_fn = (void (*)(void *, size_t, size_t))dlsym(RTLD_DEFAULT, "free_aligned_sized");
    if (!free_sized_fn || !free_aligned_sized_fn) { printf("free_sized is not exported: not under BuddyMalloc\n"); return 3; }
    if (strcmp(mode, "ops") == 0) return ops();
    if (strcmp(mode, "glibc") == 0) return glibc_pointers();
    if (strcmp(mode, "fork") == 0) return fork_while_busy();
    if (strcmp(mode, "interior") == 0) {
        unsigned char *p = malloc(20 * MiB);
        memset(p, 1, 20 * MiB);
        show_pointer(p + 4096);
        free(p + 4096);
        printf("survived\n");
        CHECK(all(p, 20 * MiB, 1), "the block is intact");
        free(p);
        return failures;
    }
    if (strcmp(mode, "double") == 0 || strcmp(mode, "realloc-freed") == 0 || strcmp(mode, "usable-freed") == 0) {
        unsigned char *p = malloc(20 * MiB);
        memset(p, 1, 20 * MiB);
        free(p);
        show_pointer(p);
        if (mode[0] == 'd') free(p);
        else if (mode[0] == 'r') printf("realloc returned %s\n", realloc(p, 100) ? "a pointer" : "NULL");
        else printf("usable %zu\n", malloc_usable_size(p));
        printf("survived\n");
        void *q = malloc(20 * MiB); // still works
        free(q);
        return 0;
    }
    if (strcmp(mode, "bad-small") == 0) {
        char *p = malloc(8);
        show_pointer(p + 4096);
        free(p + 4096);
        printf("survived\n");
        free(p);
        return 0;
    }
    if (strcmp(mode, "bad-split") == 0) {
        // The program's first large block splits a fresh 8 MiB block of the large-block
        // segments: the 256 KiB upper half right after it is free and was never handed out.
        char *p = malloc(200 * 1024);
        show_pointer(p + 256 * 1024);
        free(p + 256 * 1024);
        printf("survived\n");
        free(p);
        return 0;
    }
    if (strcmp(mode, "sized-wrong") == 0) {
        void *p = malloc(100);
        show_pointer(p);
        free_sized(p, 5000);
        printf("survived\n");
        void *q = malloc(20 * MiB);
        show_pointer(q);
        free_sized(q, 0);
        printf("survived\n");
        return 0;
    }
    if (strcmp(mode, "sized-ok") == 0) {
        size_t sizes[] = { 0, 1, 16, 17, 100, 1000, 1500, 5000, 40000, 100000, 9 * MiB, 20 * MiB + 3 };
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) free_sized(malloc(sizes[i]), sizes[i]);
        void *r = malloc(100000);
        r = realloc(r, 5000); // shrunk in place: free_sized takes the size realloc was given
        free_sized(r, 5000);
        size_t alignments[] = { 16, 64, 4096, 65536, 16 * MiB };
        for (size_t i = 0; i < sizeof alignments / sizeof alignments[0]; i++) {
            free_aligned_sized(aligned_alloc(alignments[i], 0), alignments[i], 0);
            free_aligned_sized(aligned_alloc(alignments[i], alignments[i]), alignments[i], alignments[i]);
        }
        printf("sized ok\n");
        return 0;
    }
    if (strcmp(mode, "retain") == 0) {
        // Six 20 MiB blocks freed together (nothing else oversize live) stay retained, 120 MiB
        // (the limit is 128 MiB: with 64 MiB the last three were unmapped, and a program that
        // replaces big blocks faulted them in again), and the next six are assembled from them.
        enum { K = 6 };
        unsigned char *b[K];
        for (int i = 0; i < K; i++) {
            b[i] = malloc(20 * MiB);
            CHECK(b[i] != NULL, "block %d", i);
            if (b[i]) memset(b[i], i + 1, 20 * MiB);
        }
        for (int i = 0; i < K; i++) free(b[i]);
        struct buddy_stats s = { .size = sizeof s };
        CHECK(buddy_stats_get && buddy_stats_get(&s) == 0, "buddy_stats_get");
        printf("retained after frees %llu\n", (unsigned long long)s.oversize_retained_bytes);
        CHECK(s.oversize_retained_bytes == (uint64_t)K * 20 * MiB, "retained %llu", (unsigned long long)s.oversize_retained_bytes);
        for (int i = 0; i < K; i++) {
            b[i] = malloc(20 * MiB);
            CHECK(b[i] != NULL, "again %d", i);
        }
        CHECK(buddy_stats_get(&s) == 0 && s.oversize_retained_bytes == 0, "retained after reuse %llu",
              (unsigned long long)s.oversize_retained_bytes);
        for (int i = 0; i < K; i++) free(b[i]);
        if (failures) return 1;
        printf("retain ok\n");
        return 0;
    }
    if (strcmp(mode, "many") == 0) {
        // More live oversize blocks than half of vm.max_map_count allows mappings for (each is
        // two: the block and its guard page; run with BUDDY_MAX_BLOCK=4K, 8 KiB blocks are
        // oversize). Past the budget glibc serves them (before the budget, the blocks took every
        // mapping the process had, and malloc failed, glibc's too); every block keeps its bytes,
        // grows with realloc, has a usable size that covers it, and is freed.
        long limit = 65530;
        FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
        if (f) { if (fscanf(f, "%ld", &limit) != 1) limit = 65530; fclose(f); }
        long n = limit / 2 + 8000;
        unsigned char **b = calloc((size_t)n, sizeof *b);
        CHECK(b != NULL, "the array");
        if (!b) return 1;
        for (long i = 0; i < n; i++) {
            b[i] = malloc(8192);
            CHECK(b[i] != NULL, "block %ld of %ld", i, n);
            if (!b[i]) break;
            b[i][0] = (unsigned char)i;
            b[i][8191] = (unsigned char)(i >> 8);
        }
        long bad = 0;
        for (long i = 0; i < n && b[i]; i += 3) {
            unsigned char *grown = realloc(b[i], 16384);
            if (!grown) { bad++; continue; }
            b[i] = grown;
            if (grown[0] != (unsigned char)i || grown[8191] != (unsigned char)(i >> 8)) bad++;
        }
        for (long i = 0; i < n && b[i]; i++) {
            if (b[i][0] != (unsigned char)i || b[i][8191] != (unsigned char)(i >> 8) || malloc_usable_size(b[i]) < 8192) bad++;
            free(b[i]);
        }
        CHECK(bad == 0, "%ld blocks lost bytes or size", bad);
        free(b);
        if (failures) return 1;
        printf("many ok %ld\n", n);
        return 0;
    }
    if (strcmp(mode, "hold") == 0) {
        unsigned char *p = malloc(60 * 1000 * 1000);
        memset(p, 1, 60 * 1000 * 1000);
        printf("holding\n");
        return 0;
    }
    if (strcmp(mode, "profile") == 0) {
        for (int i = 0; i < 3; i++) {
            unsigned char *p = malloc(20 * 1000 * 1000);
            memset(p, 1, 20 * 1000 * 1000);
            free(p);
        }
        printf("profile done\n");
        return 0;
    }
    fprintf(stderr, "oversize: unknown mode %s\n", mode);
    return 2;
}
