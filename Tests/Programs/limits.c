// The pool at its limits, one scenario per run:
//
//   limits [--any] MODE [ARGS...]
//
// Every mode first proves that BuddyMalloc is the process's malloc (malloc_usable_size(malloc(1))
// is 16, glibc says 24: a 16-byte block exists under every BUDDY_MAX_BLOCK) and exits 3 otherwise;
// --any skips that check (to run under glibc).
//
//   threads N              N threads allocate, fill, check and free blocks of 1 B to 64 KiB
//   pool-flush             BUDDY_MAX_POOL: a thread holding ~135 KB of small blocks still gets
//                          a 4 MiB block after the other threads that used the pool exited
//   until-null [MIB [N]]   allocates MIB-MiB blocks (default 1) until NULL; prints the count and
//                          errno; then, still at the limit, N more calls (one in 20 of MIB MiB,
//                          the others small); frees everything and checks the pool still works
//   calloc-rss             64 x calloc(1, 4 MiB), each touched once per 64 KiB: prints the RSS
//                          growth and checks every touched byte is zero
//   calloc-dirty           fills blocks of many sizes with garbage, frees them, then callocs the
//                          same sizes: every byte must be zero
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned next_random(unsigned *state) {
    *state = *state * 1103515245u + 12345u;
    return *state >> 8;
}

/// A field of /proc/self/status ("VmRSS", "VmHWM") in KiB, or -1.
static long status_kib(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long value = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') { value = strtol(line + n + 1, NULL, 10); break; }
    }
    fclose(f);
    return value;
}

// MARK: threads

static void *thread_work(void *arg) {
    unsigned state = (unsigned)(uintptr_t)arg;
    enum { N = 400 };
    unsigned char *blocks[N];
    size_t sizes[N];
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < N; i++) {
            size_t n = 1 + next_random(&state) % (i % 16 == 0 ? 65536 : (i % 4 == 0 ? 4096 : 64));
            blocks[i] = malloc(n);
            sizes[i] = n;
            if (!blocks[i]) { printf("malloc(%zu) returned NULL\n", n); return (void *)1; }
            memset(blocks[i], (int)(i + round), n);
        }
        for (int i = 0; i < N; i++) {
            for (size_t b = 0; b < sizes[i]; b++)
                if (blocks[i][b] != (unsigned char)(i + round)) {
                    printf("block %d (%zu bytes) overwritten at byte %zu\n", i, sizes[i], b);
                    return (void *)1;
                }
            free(blocks[i]);
        }
    }
    return NULL;
}

static int threads(int count) {
    pthread_t t[64];
    if (count < 1 || count > 64) count = 2;
    for (int i = 0; i < count; i++) pthread_create(&t[i], NULL, thread_work, (void *)(uintptr_t)(i + 1));
    int failed = 0;
    for (int i = 0; i < count; i++) {
        void *r;
        pthread_join(t[i], &r);
        if (r) failed = 1;
    }
    if (thread_work((void *)99)) failed = 1;
    if (failed) return 1;
    printf("threads ok (%d)\n", count);
    return 0;
}

// MARK: pool-flush

static void *churn(void *arg) {
    (void)arg;
    // Small blocks and slab objects of many classes, all freed: they stay in this thread's cache
    // and in the classes' kept slabs until the thread exits.
    enum { N = 200 };
    static __thread void *blocks[N];
    unsigned state = 7;
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < N; i++) {
            blocks[i] = malloc(1 + next_random(&state) % (i % 2 ? 30000 : 1000));
            if (blocks[i]) memset(blocks[i], 1, 16);
        }
        for (int i = 0; i < N; i++) free(blocks[i]);
    }
    return NULL;
}

static int pool_flush(void) {
    // The main thread holds ~135 KB of small blocks throughout, and its own cache keeps some.
    enum { HELD = 1000 };
    static void *held[HELD];
    for (int i = 0; i < HELD; i++) held[i] = malloc(100 + (i % 8) * 10);
    for (int i = 0; i < HELD; i += 2) { free(held[i]); held[i] = NULL; }
    for (int i = 0; i < 4; i++) {
        pthread_t t;
        pthread_create(&t, NULL, churn, NULL);
        pthread_join(t, NULL);
    }
    // Freed slab objects of every class, and cached blocks of this thread.
    unsigned state = 3;
    void *mine[300];
    for (int i = 0; i < 300; i++) mine[i] = malloc(1 + next_random(&state) % 30000);
    for (int i = 0; i < 300; i++) free(mine[i]);
    errno = 0;
    void *big = malloc(4 << 20);
    int saved = errno;
    printf("big %s errno %d\n", big ? "ok" : "NULL", big ? 0 : saved);
    if (!big) {
        malloc_trim(0);
        void *again = malloc(4 << 20);
        printf("after trim %s\n", again ? "ok" : "NULL");
        free(again);
        return 1;
    }
    memset(big, 5, 4 << 20);
    free(big);
    for (int i = 1; i < HELD; i += 2) free(held[i]);
    return 0;
}

// MARK: until-null

static int until_null(size_t mib, int at_limit) {
    size_t size = mib << 20;
    enum { MAX = 1 << 16 };
    static void *blocks[MAX];
    int count = 0, saved = 0;
    for (; count < MAX; count++) {
        errno = 0;
        blocks[count] = malloc(size);
        if (!blocks[count]) { saved = errno; break; }
        ((char *)blocks[count])[0] = 1;
    }
    printf("blocks %d errno %d\n", count, saved);
    fflush(stdout);
    // At the limit, a program goes on: more large requests fail, small ones are served from
    // what the pool has (none of them may retry the mapping that just failed, call after call).
    int refused = 0, served = 0;
    static void *smalls[20000];
    if (at_limit > 20000) at_limit = 20000;
    for (int i = 0; i < at_limit; i++) {
        if (i % 20 == 0) {
            void *p = malloc(size);
            if (p) free(p); else refused++;
        }
        smalls[i] = malloc(16 + (size_t)(i % 64) * 48);
        if (smalls[i]) served++;
    }
    for (int i = 0; i < at_limit; i++) free(smalls[i]);
    printf("at the limit: large refused %d, small served %d, calls refused %d\n", refused, served,
           refused + (at_limit - served));
    for (int i = 0; i < count; i++) free(blocks[i]);
    // The pool still works after the failure: small and large blocks again.
    int again = 0;
    for (; again < count && again < 16; again++) {
        blocks[again] = malloc(size);
        if (!blocks[again]) break;
        memset(blocks[again], 3, 4096);
    }
    void *small = malloc(100);
    printf("again %d small %s\n", again, small ? "ok" : "NULL");
    free(small);
    for (int i = 0; i < again; i++) free(blocks[i]);
    return 0;
}

// MARK: calloc

static int calloc_rss(void) {
    enum { COUNT = 64, SIZE = 4 << 20, STRIDE = 64 << 10 };
    static unsigned char *blocks[COUNT];
    long before = status_kib("VmRSS");
    for (int i = 0; i < COUNT; i++) {
        blocks[i] = calloc(1, SIZE);
        if (!blocks[i]) { printf("calloc failed\n"); return 1; }
        for (size_t b = 0; b < SIZE; b += STRIDE) {
            if (blocks[i][b] != 0) { printf("calloc block %d not zero at %zu\n", i, b); return 1; }
            blocks[i][b] = 1;
        }
    }
    long after = status_kib("VmRSS");
    printf("rss growth %ld KiB hwm %ld KiB\n", after - before, status_kib("VmHWM"));
    for (int i = 0; i < COUNT; i++) free(blocks[i]);
    return 0;
}

static int check_zero(const unsigned char *p, size_t n, const char *what, size_t size) {
    for (size_t b = 0; b < n; b++)
        if (p[b] != 0) {
            printf("%s(%zu) not zero at byte %zu (0x%02x)\n", what, size, b, p[b]);
            return 1;
        }
    return 0;
}

static int calloc_dirty(void) {
    static const size_t sizes[] = {
        1, 16, 24, 100, 600, 1000, 1100, 3000, 4096, 5000, 20000, 40000, 65536, 70000,
        200000, 1 << 20, (1 << 20) + 1, 3 << 20, 8 << 20,
    };
    enum { N = sizeof sizes / sizeof sizes[0], COPIES = 6 };
    static unsigned char *blocks[N][COPIES];
    for (int round = 0; round < 3; round++) {
        // Dirty blocks of every size, freed; then the same sizes from calloc (they reuse them).
        for (int i = 0; i < N; i++)
            for (int c = 0; c < COPIES; c++) {
                blocks[i][c] = malloc(sizes[i]);
                if (!blocks[i][c]) { printf("malloc failed\n"); return 1; }
                memset(blocks[i][c], 0xA5, malloc_usable_size(blocks[i][c]));
            }
        for (int i = N - 1; i >= 0; i--)
            for (int c = 0; c < COPIES; c++) free(blocks[i][c]);
        if (round == 1) malloc_trim(0); // released pages, then reused
        for (int i = 0; i < N; i++)
            for (int c = 0; c < COPIES; c++) {
                blocks[i][c] = calloc(1, sizes[i]);
                if (!blocks[i][c]) { printf("calloc failed\n"); return 1; }
                if (check_zero(blocks[i][c], sizes[i], "calloc", sizes[i])) return 1;
                memset(blocks[i][c], 0x5A, sizes[i]);
            }
        for (int i = 0; i < N; i++)
            for (int c = 0; c < COPIES; c++) free(blocks[i][c]);
        // calloc(n, m) with the product in the pool, from a split of a dirty larger block.
        unsigned char *big = malloc(4 << 20);
        memset(big, 0x77, 4 << 20);
        free(big);
        for (int k = 0; k < 64; k++) {
            unsigned char *p = calloc(16, 4096);
            if (!p || check_zero(p, 65536, "calloc-split", 65536)) return 1;
            memset(p, 0x33, 65536);
            free(p);
        }
    }
    printf("calloc ok\n");
    return 0;
}

int main(int argc, char **argv) {
    int arg = 1;
    int any = 0;
    if (arg < argc && strcmp(argv[arg], "--any") == 0) { any = 1; arg++; }
    if (!any) {
        void *probe = malloc(1);
        size_t usable = malloc_usable_size(probe);
        free(probe);
        if (usable != 16) {
            printf("not running under BuddyMalloc (malloc_usable_size(malloc(1)) = %zu)\n", usable);
            return 3;
        }
    }
    if (arg >= argc) return 2;
    const char *mode = argv[arg++];
    if (strcmp(mode, "threads") == 0) return threads(arg < argc ? atoi(argv[arg]) : 2);
    if (strcmp(mode, "pool-flush") == 0) return pool_flush();
    if (strcmp(mode, "until-null") == 0)
        return until_null(arg < argc ? (size_t)atol(argv[arg]) : 1, arg + 1 < argc ? atoi(argv[arg + 1]) : 0);
    if (strcmp(mode, "calloc-rss") == 0) return calloc_rss();
    if (strcmp(mode, "calloc-dirty") == 0) return calloc_dirty();
    return 2;
}
